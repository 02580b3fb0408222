//! `goals:integration@0.3.0`, frozen: components built against it keep loading.
//!
//! 0.4 only added the chart types, `list-charts` and the chart parameter of
//! `fetch-and-aggregate`, so 0.3's types are 0.4's, record for record: the
//! bindings reuse them and nothing is converted. A 0.3 component has no charts;
//! the runtime answers for it that there are none, and refuses to ask it for a
//! chart's measure.

wasmtime::component::bindgen!({
    path: "../../wit/v0.3.0",
    world: "integration",
    imports: { "goals:integration/storage": async },
    exports: { default: async },
    with: {
        "goals:integration/types": super::v0_4::goals::integration::types,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi": wasmtime_wasi::p2::bindings,
    },
});
