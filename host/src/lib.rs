//! The reference host of the `goals:integration` world: it loads an integration
//! component on wasmtime and gives it HTTP (restricted to the connection's
//! origins), storage and logging. It knows nothing about any particular service.

pub mod artifact;
// The demo and the benches bring the Dataverse simulator; a host built
// without the default `simulator` feature ships neither.
#[cfg(feature = "simulator")]
pub mod bench;
pub mod bindings;
pub mod cli;
pub mod connections;
pub mod db;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod engine;
pub mod goals;
pub mod integrations;
pub mod lease;
pub mod limits;
pub mod names;
pub mod outbound;
pub mod render;
pub mod resolve;
pub mod runtime;
pub mod secrets;
pub mod state;
