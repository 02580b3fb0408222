//! The Dynamics 365 integration of the Goals platform.
//!
//! Compiled for `wasm32-wasip2` this crate is a component of the
//! `goals:integration` world (see `wit/`). Compiled natively it is a plain library,
//! so its parsers, query rewriting and error mapping are unit-tested with
//! `cargo test`.

pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.4.0",
        generate_all,
        world: "integration",
        additional_derives: [PartialEq],
        // WASI types that hold resources, which cannot be compared.
        additional_derives_ignore: ["stream-error"],
    });
}

pub mod aggregate;
pub mod auth;
pub mod batch;
pub mod cache;
pub mod charts;
pub mod client;
pub mod connection;
pub mod discovery;
pub mod errors;
pub mod fetchxml;
pub mod layout;
pub mod metadata;
pub mod metrics;
pub mod odata;
pub mod paging;
pub mod platform;
pub mod signin;
pub mod sitemap;
pub mod split;
pub mod xml;

#[cfg(target_arch = "wasm32")]
mod component;

pub use bindings::goals::integration::types;

use types::{Aggregation, CredentialKind, PluginInfo};

/// The integration's stable id: it scopes storage and secrets, so it never changes.
pub const ID: &str = "microsoft.dynamics365";

/// Dataverse's service protection limits allow 6,000 requests per user in five
/// minutes; a metric synced more often than every five minutes gains nothing a
/// person would see.
pub const MIN_SYNC_INTERVAL_SECONDS: u32 = 300;

/// Every aggregation this integration computes.
pub const AGGREGATIONS: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::CountValues,
    Aggregation::CountDistinct,
    Aggregation::Sum,
    Aggregation::Average,
    Aggregation::Min,
    Aggregation::Max,
];

/// Dataverse allows 52 concurrent requests per user and web server; staying a little
/// below leaves room for people using the same application user interactively.
pub const MAX_CONCURRENT_PER_CONNECTION: u32 = 48;

pub fn describe() -> PluginInfo {
    PluginInfo {
        id: ID.to_string(),
        name: "Dynamics 365".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        settings: connection::settings(),
        credentials: vec![CredentialKind::ClientSecret, CredentialKind::User],
        default_sync_interval_seconds: 3600,
        min_sync_interval_seconds: MIN_SYNC_INTERVAL_SECONDS,
        max_concurrent_per_connection: MAX_CONCURRENT_PER_CONNECTION,
        aggregations: AGGREGATIONS.to_vec(),
    }
}
