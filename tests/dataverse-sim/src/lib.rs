//! A Dataverse Web API and Microsoft identity platform simulator with seeded
//! sample data of a sales organization, for end-to-end tests and the demo.
//!
//! [`RunningSimulator::start`] serves, on one loopback origin, the client-credentials
//! token endpoint (`POST /{tenant}/oauth2/v2.0/token`) and the read side of the Web
//! API (`GET /api/data/v9.2/...`): apps, site maps, app components, table and
//! column metadata, views, OData queries and FetchXML (joins, paging cookies,
//! aggregates with the 50,000-row limit). Answers follow the documented shapes
//! (see `shared/design/dataverse-examples`). [`dataset`] exposes the same data to
//! tests so they can compute expected answers independently.

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
    App, AppComponent, AttributeDef, AttributeType, Currency, Dataset, EntityDef, OptionLabel, Row,
    SiteMap, SystemUser, View, ViewKind, dataset,
};
pub use errors::ODataError;
pub use identity::SimConfig;
pub use server::{Fault, RecordedRequest, RunningSimulator};
