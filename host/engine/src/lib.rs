//! The engine of the `goals:integration` world: it loads integration components
//! on wasmtime (either contract version, compiled artifacts cached, instances
//! pooled) and runs each call in a fresh, limited store whose HTTP reaches only
//! the call's origins. It knows no application: plugin storage comes through
//! [`state::PluginStore`], and each call names a narrow [`runtime::CallTarget`].

pub mod artifact;
pub mod bindings;
pub mod integrations;
pub mod limits;
pub mod outbound;
pub mod runtime;
pub mod state;

pub use integrations::{Integrations, UnknownIntegration};
pub use runtime::{CallError, CallTarget, PluginRuntime};
pub use state::{PluginStore, Quota, Scope, StoreError};
