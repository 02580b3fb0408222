//! The plugins' storage in the application's database: the `plugin_kv` table,
//! each value sealed with the host's key for its own place (scope and key), so a
//! copied row opens nowhere else.

use crate::db::{Database, plugin_value_context};
use crate::params;
use goals_engine::state::{PluginStore, Quota, Scope, StoreError, StoreFuture};

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl PluginStore for Database {
    fn get<'a>(&'a self, scope: &'a Scope, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let context = plugin_value_context(&scope.integration, &scope.connection_id, key);
            let (integration, connection_id, key) = (
                scope.integration.clone(),
                scope.connection_id.clone(),
                key.to_string(),
            );
            let sealed = self
                .clone()
                .run(move |conn| {
                    Ok(conn.query_opt(
                        "SELECT value FROM plugin_kv
                             WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3
                               AND (expires_at IS NULL OR expires_at > unixepoch())",
                        params![integration, connection_id, key],
                        |row| row.get::<Vec<u8>>(0),
                    )?)
                })
                .await
                .map_err(unavailable)?;
            let Some(sealed) = sealed else {
                return Ok(None);
            };
            // A value sealed under another key reads as absent: the plugin then
            // signs in again or refetches.
            match self.keyring().open(&context, &sealed) {
                Ok(value) => Ok(Some(value)),
                Err(e) => {
                    tracing::warn!("a stored plugin value cannot be opened: {e}");
                    Ok(None)
                }
            }
        })
    }

    fn set<'a>(
        &'a self,
        scope: &'a Scope,
        key: &'a str,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
        quota: Quota,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let context = plugin_value_context(&scope.integration, &scope.connection_id, key);
            let value = self
                .keyring()
                .seal(&context, &value)
                .map_err(|e| unavailable(format!("the value cannot be sealed: {e}")))?;
            let (integration, connection_id, key) = (
                scope.integration.clone(),
                scope.connection_id.clone(),
                key.to_string(),
            );
            self.clone()
                .run(move |conn| {
                    // Expired values are never read again; dropping them here keeps
                    // the table from growing with every token refresh.
                    conn.execute(
                        "DELETE FROM plugin_kv WHERE plugin = ?1 AND connection_id = ?2
                           AND expires_at <= unixepoch()",
                        params![integration, connection_id],
                    )?;
                    let (keys, bytes): (u64, u64) = conn.query_row(
                        "SELECT count(*), coalesce(sum(length(value)), 0) FROM plugin_kv
                         WHERE plugin = ?1 AND connection_id = ?2 AND key <> ?3",
                        params![integration, connection_id, key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    if keys + 1 > quota.max_keys || bytes + value.len() as u64 > quota.max_bytes {
                        return Ok(Err(StoreError::Full { keys, bytes, quota }));
                    }
                    conn.execute(
                        "INSERT INTO plugin_kv (plugin, connection_id, key, value, expires_at)
                         VALUES (?1, ?2, ?3, ?4, unixepoch() + ?5)
                         ON CONFLICT (plugin, connection_id, key)
                         DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                        params![integration, connection_id, key, value, ttl_seconds],
                    )?;
                    Ok(Ok(()))
                })
                .await
                .map_err(unavailable)?
        })
    }

    fn delete<'a>(&'a self, scope: &'a Scope, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (integration, connection_id, key) = (
                scope.integration.clone(),
                scope.connection_id.clone(),
                key.to_string(),
            );
            self.clone()
                .run(move |conn| {
                    conn.execute(
                        "DELETE FROM plugin_kv
                         WHERE plugin = ?1 AND connection_id = ?2 AND key = ?3",
                        params![integration, connection_id, key],
                    )?;
                    Ok(())
                })
                .await
                .map_err(unavailable)
        })
    }
}
