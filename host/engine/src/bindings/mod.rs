//! Host-side bindings of the `goals:integration` world, one module per released
//! version of `wit/`. The host works in the newest version's types; a component
//! built against an older version is called through its own bindings, converted
//! at the edge (see [`v0_1`], [`v0_2`], [`v0_3`]).

pub mod v0_1;
pub mod v0_2;
pub mod v0_3;

/// `goals:integration@0.4.0`, the version the host speaks.
pub mod v0_4 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.4.0",
        world: "integration",
        imports: {
            // Storage reads and writes SQLite, which must not block the async runtime.
            "goals:integration/storage": async,
        },
        exports: { default: async },
        // The WASI imports of the world are wasmtime's own implementations, linked
        // (and restricted) separately.
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi": wasmtime_wasi::p2::bindings,
        },
    });
}

pub use v0_4::goals::integration::types::{
    Aggregation, App, Certificate, Chart, ChartCategory, ChartMeasure, ChartSelection, Column,
    ColumnType, Connection, Credential, CredentialKind, CurrencyChoice, DateGrouping, DateWindow,
    DeviceCode, Entity, Error, Identity, Measurement, MetricSpec, MetricValue, PluginInfo, Setting,
    SettingKind, SettingValue, SignInStatus, Throttle, View, ViewKind, ViewRef,
};
pub use v0_4::goals::integration::{deadline, log, storage};
pub use v0_4::{Integration, IntegrationPre};
