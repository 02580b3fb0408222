//! The reference host of the `goals:integration` world: it loads an integration
//! component on wasmtime and gives it HTTP (restricted to the connection's
//! origins), storage and logging. It knows nothing about any particular service.

pub mod artifact;
pub mod bench;
pub mod bindings;
pub mod cli;
pub mod connections;
pub mod db;
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
