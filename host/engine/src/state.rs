//! What one plugin call can reach: WASI (no files, no sockets), wasi:http through
//! the outbound policy, the storage and log imports scoped to its connection, and
//! the time left before its deadline.

use crate::bindings::v0_1::goals::integration as v0_1;
use crate::bindings::v0_2::goals::integration as v0_2;
use crate::bindings::v0_3::goals::integration as v0_3;
use crate::bindings::v0_4::goals::integration::types;
use crate::bindings::{deadline, log, storage};
use crate::limits::{Limits, MemoryLimiter};
use crate::outbound::OutboundHooks;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Whose values a storage call reads or writes: one integration's, for one
/// connection. `describe` runs with an empty connection id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub integration: String,
    pub connection_id: String,
}

/// How much one scope may hold (see [`Limits::storage_keys`] and
/// [`Limits::storage_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_keys: u64,
    pub max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the plugin's storage for this connection is full ({keys} keys, {} KiB; limits \
         --storage-keys {}, --storage-limit {} KiB)",
        .bytes >> 10, .quota.max_keys, .quota.max_bytes >> 10
    )]
    Full { keys: u64, bytes: u64, quota: Quota },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where the `storage` import keeps values: the application's database. Values
/// are opaque bytes; keeping them secret at rest is the store's duty, since
/// plugins keep tokens there.
pub trait PluginStore: Send + Sync {
    /// The value, unless absent or expired.
    fn get<'a>(&'a self, scope: &'a Scope, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Stores `value`, expiring after `ttl_seconds` when given, refusing with
    /// [`StoreError::Full`] what would take the scope past `quota`.
    fn set<'a>(
        &'a self,
        scope: &'a Scope,
        key: &'a str,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
        quota: Quota,
    ) -> StoreFuture<'a, ()>;
    fn delete<'a>(&'a self, scope: &'a Scope, key: &'a str) -> StoreFuture<'a, ()>;
}

/// Sees the plugin's info lines as they are written: a face shows them as
/// progress ("reading page 7 ...") while a long call runs.
pub type LogObserver = Arc<dyn Fn(&str) + Send + Sync>;

pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) memory: MemoryLimiter,
    store: Arc<dyn PluginStore>,
    scope: Scope,
    limits: Arc<Limits>,
    /// When the call is stopped (see [`Limits::call_timeout`]).
    deadline: Instant,
    observer: Option<LogObserver>,
}

impl HostState {
    pub fn new(
        hooks: OutboundHooks,
        store: Arc<dyn PluginStore>,
        scope: Scope,
        limits: Arc<Limits>,
        deadline: Instant,
    ) -> Self {
        HostState {
            // Nothing inherited: no environment, arguments, files or sockets.
            wasi: WasiCtxBuilder::new().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            memory: MemoryLimiter::new(limits.memory_bytes),
            store,
            scope,
            limits,
            deadline,
            observer: None,
        }
    }

    /// With `observer` told of each info line the plugin writes.
    pub fn observed_by(mut self, observer: Option<LogObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// When the call is stopped.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl types::Host for HostState {}

impl storage::Host for HostState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        // A read that fails reads as absent: the plugin then signs in again or
        // refetches, and nothing crashes.
        self.store.get(&self.scope, &key).await.unwrap_or_else(|e| {
            tracing::warn!("plugin storage read failed: {e}");
            None
        })
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<(), String> {
        let quota = Quota {
            max_keys: self.limits.storage_keys,
            max_bytes: self.limits.storage_bytes,
        };
        self.store
            .set(&self.scope, &key, value, ttl_seconds, quota)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) {
        if let Err(e) = self.store.delete(&self.scope, &key).await {
            tracing::warn!("plugin storage delete failed: {e}");
        }
    }
}

impl deadline::Host for HostState {
    fn remaining_milliseconds(&mut self) -> u64 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) {
        let connection = self.scope.connection_id.as_str();
        let plugin = self.scope.integration.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", plugin, connection, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", plugin, connection, "{message}"),
            log::Level::Info => {
                if let Some(observer) = &self.observer {
                    observer(&message);
                }
                tracing::info!(target: "plugin", plugin, connection, "{message}")
            }
            log::Level::Warn => tracing::warn!(target: "plugin", plugin, connection, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", plugin, connection, "{message}"),
        }
    }
}

// Components of older contract versions get the same storage, deadline and
// log: those interfaces did not change, only their package's version.
macro_rules! older_imports {
    ($version:ident) => {
        impl $version::storage::Host for HostState {
            async fn get(&mut self, key: String) -> Option<Vec<u8>> {
                storage::Host::get(self, key).await
            }

            async fn set(
                &mut self,
                key: String,
                value: Vec<u8>,
                ttl_seconds: Option<u32>,
            ) -> Result<(), String> {
                storage::Host::set(self, key, value, ttl_seconds).await
            }

            async fn delete(&mut self, key: String) {
                storage::Host::delete(self, key).await
            }
        }

        impl $version::deadline::Host for HostState {
            fn remaining_milliseconds(&mut self) -> u64 {
                deadline::Host::remaining_milliseconds(self)
            }
        }

        impl $version::log::Host for HostState {
            fn write(&mut self, level: $version::log::Level, message: String) {
                let level = match level {
                    $version::log::Level::Trace => log::Level::Trace,
                    $version::log::Level::Debug => log::Level::Debug,
                    $version::log::Level::Info => log::Level::Info,
                    $version::log::Level::Warn => log::Level::Warn,
                    $version::log::Level::Error => log::Level::Error,
                };
                log::Host::write(self, level, message)
            }
        }
    };
}

// 0.2 and 0.3 reuse 0.4's types; 0.1 has its own.
impl v0_1::types::Host for HostState {}
older_imports!(v0_1);
older_imports!(v0_2);
older_imports!(v0_3);
