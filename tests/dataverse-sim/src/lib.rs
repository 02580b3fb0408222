//! A Dataverse Web API and Microsoft identity platform simulator with seeded
//! sample data of a sales organization, for end-to-end tests and the demo.
//!
//! [`RunningSimulator::start`] serves, on one loopback origin, the identity
//! platform's token endpoint (`POST /{tenant}/oauth2/v2.0/token`: client
//! credentials for an application; device code and rotating refresh tokens for a
//! person, see [`identity`]), its device authorization endpoint and the read side
//! of the Web API (`GET /api/data/v9.2/...`, also inside `POST /api/data/v9.2/$batch`): apps,
//! site maps, app components, table and column metadata (option sets included),
//! views, charts, the organization
//! and its currencies, OData queries and FetchXML (joins and `exists`/`in`
//! semi-joins, paging cookies, aggregates with the 50,000-row limit). Answers
//! follow the documented shapes (see `shared/design/dataverse-examples`).
//! [`dataset`] exposes the same data to tests so they can compute expected answers
//! independently; the test hooks of [`RunningSimulator`] change one simulator's
//! data only (see [`Overlay`]).

pub mod batch;
pub mod data;
pub mod errors;
pub mod fetch;
pub mod format;
pub mod identity;
pub mod like;
pub mod odata;
pub mod present;
pub mod server;
pub mod webapi;
pub mod xml;

pub use data::{
    App, AppComponent, AttributeDef, AttributeType, BENCH_ENTITY, BENCH_ROWS, Chart, ChartKind,
    Currency, Dataset, Db, EntityDef, OptionLabel, Overlay, Row, SiteMap, SystemUser, View,
    ViewKind, dataset,
};
pub use errors::ODataError;
pub use identity::{Caller, DeviceCodeInfo, DeviceCodeState, SimConfig};
pub use server::{Fault, RecordedRequest, RunningSimulator};
