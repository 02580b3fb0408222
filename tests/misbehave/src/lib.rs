//! A deliberately misbehaving integration component, for the host's containment
//! tests (`tests/e2e/tests/limits.rs`).
//!
//! Compiled for `wasm32-wasip2` this crate is a component of the
//! `goals:integration` world. `metrics.fetch-and-aggregate` misbehaves as its
//! `spec.column` asks (see [`Misbehaviour`]); every other export answers at once,
//! without any I/O, so a test can check that the host still serves a normal call
//! right after a bad one. Never load it outside tests.
//!
//! It is built against the frozen `goals:integration@0.1.0` on purpose: every
//! containment test then also proves the host still loads and calls 0.1
//! components.

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "integration",
    });
}

#[cfg(target_arch = "wasm32")]
mod component;

pub use bindings::goals::integration::types;

use types::{Aggregation, App, PluginInfo};

/// What `fetch-and-aggregate` does, chosen by `spec.column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `loop`: computes forever.
    Loop,
    /// `memory`: allocates and touches memory until allocation fails (the
    /// component then aborts); stops by itself only after [`MEMORY_BOMB_CAP`].
    Memory,
    /// `forbidden-host`: GETs [`FORBIDDEN_URL`], which is no connection's origin.
    ForbiddenHost,
    /// `private-address`: GETs the connection's own environment URL (the test
    /// makes it a private or metadata address).
    PrivateAddress,
    /// `huge-response`: GETs `spec.entity` (a path and query, e.g.
    /// `/test/bytes/4194304?chunked=1`) below the environment URL and reads the
    /// whole body.
    HugeResponse,
    /// `storage-flood`: stores values of `spec.entity` bytes (default
    /// [`FLOOD_VALUE_BYTES`]) under new keys until `storage.set` fails, then
    /// fails with `error::limit` carrying the host's message; stops by itself
    /// only after [`FLOOD_CAP`] keys.
    StorageFlood,
    /// `panic`: panics (the component is built with `panic = "abort"`: a trap).
    Panic,
}

impl Misbehaviour {
    pub fn parse(column: &str) -> Option<Misbehaviour> {
        Some(match column {
            "loop" => Misbehaviour::Loop,
            "memory" => Misbehaviour::Memory,
            "forbidden-host" => Misbehaviour::ForbiddenHost,
            "private-address" => Misbehaviour::PrivateAddress,
            "huge-response" => Misbehaviour::HugeResponse,
            "storage-flood" => Misbehaviour::StorageFlood,
            "panic" => Misbehaviour::Panic,
            _ => return None,
        })
    }
}

/// Not an origin of any connection the tests add.
pub const FORBIDDEN_URL: &str = "https://example.com/";

/// The memory bomb gives up (and succeeds) after this much: far above any limit
/// the tests set, so success means the host's memory limit is missing, without
/// eating the machine.
pub const MEMORY_BOMB_CAP: usize = 256 << 20;

/// The storage flood gives up (and succeeds) after this many keys: far above any
/// quota the tests set.
pub const FLOOD_CAP: u32 = 1000;

/// Size of each flooded value unless `spec.entity` gives one.
pub const FLOOD_VALUE_BYTES: usize = 4096;

pub fn describe() -> PluginInfo {
    PluginInfo {
        name: "Misbehaving test plugin".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_sync_interval_seconds: 3600,
        max_concurrent_per_connection: 1,
        aggregations: vec![Aggregation::Count],
    }
}

/// The one app `list-apps` answers with.
pub fn well_behaved_app() -> App {
    App {
        id: "00000000-0000-0000-0000-00000000b0b0".to_string(),
        unique_name: "wellbehaved".to_string(),
        name: "Well-behaved app".to_string(),
        description: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_misbehaviour_has_its_column_name() {
        for (column, expected) in [
            ("loop", Misbehaviour::Loop),
            ("memory", Misbehaviour::Memory),
            ("forbidden-host", Misbehaviour::ForbiddenHost),
            ("private-address", Misbehaviour::PrivateAddress),
            ("huge-response", Misbehaviour::HugeResponse),
            ("storage-flood", Misbehaviour::StorageFlood),
            ("panic", Misbehaviour::Panic),
        ] {
            assert_eq!(Misbehaviour::parse(column), Some(expected));
        }
        assert_eq!(Misbehaviour::parse("revenue"), None);
    }
}
