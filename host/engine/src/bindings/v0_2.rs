//! `goals:integration@0.2.0`, frozen: components built against it keep loading.
//!
//! 0.3 and 0.4 only added types (the date window, the chart records) and
//! parameters, so 0.2's types are 0.4's, record for record: the bindings reuse
//! them and nothing is converted. A 0.2 component measures
//! without a window; the runtime refuses to ask it for one.

wasmtime::component::bindgen!({
    path: "../../wit/v0.2.0",
    world: "integration",
    imports: { "goals:integration/storage": async },
    exports: { default: async },
    with: {
        "goals:integration/types": super::v0_4::goals::integration::types,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi": wasmtime_wasi::p2::bindings,
    },
});
