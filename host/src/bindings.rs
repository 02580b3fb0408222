//! Host-side bindings of the `goals:integration` world, generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "integration",
    imports: {
        // Storage reads and writes SQLite, which must not block the async runtime.
        "goals:integration/storage": async,
    },
    exports: { default: async },
});

pub use goals::integration::types::{
    Aggregation, App, Column, ColumnType, Connection, Credential, CurrencyChoice, DeviceCode,
    Entity, Error, Identity, Measurement, MetricSpec, MetricValue, SignInStatus, Throttle, View,
    ViewKind, ViewRef,
};
