//! The end-to-end tests in one test binary, so wasmtime and the host are linked
//! once rather than once per file; each module is one area of the product.

mod api;
mod charts;
mod cli;
mod config;
mod console;
mod contract;
mod crash;
mod discovery;
mod exact;
mod faults;
mod goals;
mod hosts;
mod integrations;
mod keyresults_cli;
mod limits;
mod load;
mod metrics;
mod migrate;
mod periods;
mod pinning;
mod pool;
mod portability;
mod postgres;
mod projects;
mod secrets_cli;
mod signin;
mod signin_cli;
// Driven through a pseudo-terminal, which the tests open on Unix only.
#[cfg(unix)]
mod wizard;
