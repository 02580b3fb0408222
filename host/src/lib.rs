//! The Goals application over the integration engine: tenants, organizations,
//! connections, Key Results and their links, the scheduler and the CLI. Calls to
//! integration components go through [`engine::Engine`]; running them is the
//! `goals-engine` crate's work. It knows nothing about any particular service.

// The engine's modules under their old paths, for the faces and the tests.
pub use goals_engine::{artifact, bindings, integrations, limits, outbound, state};

// The demo and the benches bring the Dataverse simulator; a host built
// without the default `simulator` feature ships neither.
pub mod api;
#[cfg(feature = "simulator")]
mod api_bench;
#[cfg(feature = "simulator")]
pub mod bench;
pub mod cli;
pub mod connecting;
pub mod connections;
pub mod console;
pub mod db;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod engine;
pub mod goals;
pub mod lease;
pub mod migrate;
pub mod names;
pub mod numbers;
pub mod plugin_store;
pub mod render;
pub mod resolve;
pub mod runtime;
pub mod secrets;
pub mod sql;
