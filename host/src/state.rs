//! What one plugin call can reach: WASI (no files, no sockets), wasi:http through
//! the outbound policy, the storage and log imports scoped to its connection, and
//! the time left before its deadline.

use crate::bindings::v0_1::goals::integration as v0_1;
use crate::bindings::v0_2::goals::integration::types;
use crate::bindings::{deadline, log, storage};
use crate::db::{Database, plugin_value_context};
use crate::limits::{Limits, MemoryLimiter};
use crate::outbound::OutboundHooks;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Storage of one plugin for one connection.
#[derive(Clone)]
pub struct PluginStorage {
    db: Database,
    plugin: String,
    connection_id: String,
}

impl PluginStorage {
    pub fn new(db: Database, plugin: &str, connection_id: &str) -> Self {
        PluginStorage {
            db,
            plugin: plugin.to_string(),
            connection_id: connection_id.to_string(),
        }
    }
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
    storage: PluginStorage,
    limits: Arc<Limits>,
    /// When the call is stopped (see [`Limits::call_timeout`]).
    deadline: Instant,
    observer: Option<LogObserver>,
}

impl HostState {
    pub fn new(
        hooks: OutboundHooks,
        storage: PluginStorage,
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
            storage,
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
        let scope = self.storage.clone();
        let context = plugin_value_context(&scope.plugin, &scope.connection_id, &key);
        let found = scope
            .db
            .clone()
            .run(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT value FROM plugin_kv
                         WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3
                           AND (expires_at IS NULL OR expires_at > unixepoch())",
                        params![scope.plugin, scope.connection_id, key],
                        |row| row.get::<_, Vec<u8>>(0),
                    )
                    .optional()?)
            })
            .await;
        let sealed = found.unwrap_or_else(|e| {
            tracing::warn!("plugin storage read failed: {e}");
            None
        })?;
        // A value sealed under another key reads as absent: the plugin then signs
        // in again or refetches, and nothing crashes.
        match self.storage.db.keyring().open(&context, &sealed) {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::warn!("a stored plugin value cannot be opened: {e}");
                None
            }
        }
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<(), String> {
        let scope = self.storage.clone();
        let context = plugin_value_context(&scope.plugin, &scope.connection_id, &key);
        let value = scope
            .db
            .keyring()
            .seal(&context, &value)
            .map_err(|e| format!("storage cannot seal the value: {e}"))?;
        let (max_bytes, max_keys) = (self.limits.storage_bytes, self.limits.storage_keys);
        scope
            .db
            .clone()
            .run(move |conn| {
                // Expired values are never read again; dropping them here keeps the
                // table from growing with every token refresh.
                conn.execute(
                    "DELETE FROM plugin_kv WHERE plugin = ?1 AND connection_id = ?2
                       AND expires_at <= unixepoch()",
                    params![scope.plugin, scope.connection_id],
                )?;
                let (keys, bytes): (u64, u64) = conn.query_row(
                    "SELECT count(*), coalesce(sum(length(value)), 0) FROM plugin_kv
                     WHERE plugin = ?1 AND connection_id = ?2 AND key <> ?3",
                    params![scope.plugin, scope.connection_id, key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if keys + 1 > max_keys || bytes + value.len() as u64 > max_bytes {
                    return Ok(Err(format!(
                        "the plugin's storage for this connection is full ({} keys, {} KiB; \
                         limits --storage-keys {max_keys}, --storage-limit {} KiB)",
                        keys,
                        bytes >> 10,
                        max_bytes >> 10
                    )));
                }
                conn.execute(
                    "INSERT INTO plugin_kv (plugin, connection_id, key, value, expires_at)
                     VALUES (?1, ?2, ?3, ?4, unixepoch() + ?5)
                     ON CONFLICT (plugin, connection_id, key)
                     DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                    params![scope.plugin, scope.connection_id, key, value, ttl_seconds],
                )?;
                Ok(Ok(()))
            })
            .await
            .map_err(|e| format!("storage is unavailable: {e}"))?
    }

    async fn delete(&mut self, key: String) {
        let scope = self.storage.clone();
        let deleted = scope
            .db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM plugin_kv WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
                    params![scope.plugin, scope.connection_id, key],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = deleted {
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
        let connection = self.storage.connection_id.as_str();
        let plugin = self.storage.plugin.as_str();
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

// A 0.1 component gets the same storage, deadline and log: the interfaces did not
// change between the versions.
impl v0_1::types::Host for HostState {}

impl v0_1::storage::Host for HostState {
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

impl v0_1::deadline::Host for HostState {
    fn remaining_milliseconds(&mut self) -> u64 {
        deadline::Host::remaining_milliseconds(self)
    }
}

impl v0_1::log::Host for HostState {
    fn write(&mut self, level: v0_1::log::Level, message: String) {
        let level = match level {
            v0_1::log::Level::Trace => log::Level::Trace,
            v0_1::log::Level::Debug => log::Level::Debug,
            v0_1::log::Level::Info => log::Level::Info,
            v0_1::log::Level::Warn => log::Level::Warn,
            v0_1::log::Level::Error => log::Level::Error,
        };
        log::Host::write(self, level, message)
    }
}
