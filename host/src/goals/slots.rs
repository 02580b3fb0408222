//! A connection's concurrency limit across every host sharing a PostgreSQL
//! database (Dataverse counts concurrent requests per user, whichever host sends
//! them). Each connection has as many slot rows as its integration declares; a
//! sync leases one, renews it while it runs and frees it when done. A host that
//! dies leaves its slots to lapse with their lease.

use crate::db::{Database, DbError};
use crate::goals::clock::Clock;
use crate::params;
use std::sync::Arc;
use std::time::Duration;

/// How long a host waits before asking again for a slot all hosts hold.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// One leased slot; freed when dropped.
pub struct SharedSlot {
    db: Database,
    token: String,
    renewal: tokio::task::AbortHandle,
}

/// Waits for one of the `limit` slots of `connection_id`.
pub async fn acquire(
    db: &Database,
    clock: &Arc<dyn Clock>,
    connection_id: &str,
    limit: usize,
) -> Result<SharedSlot, DbError> {
    let token = format!("{}:{:016x}", db.lease().id(), fastrand::u64(..));
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let lease_seconds = db.lease().lease_seconds();
    loop {
        let now = clock.now();
        let (connection, owner) = (connection_id.to_string(), token.clone());
        let taken: Option<i64> = db
            .run(move |sql| {
                let take = || {
                    sql.query_opt(
                        "UPDATE connection_slots SET owner = ?2, expires_at = ?3
                         WHERE (connection_id, slot) = (
                             SELECT connection_id, slot FROM connection_slots
                             WHERE connection_id = ?1 AND slot < ?5
                               AND (owner IS NULL OR expires_at <= ?4)
                             ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
                         RETURNING slot",
                        params![connection, owner, now + lease_seconds, now, limit],
                        |r| r.get::<i64>(0),
                    )
                };
                if let Some(slot) = take()? {
                    return Ok(Some(slot));
                }
                // The connection's rows are made on its first sync (or when its
                // integration allows more); every later sync takes one at once.
                let made = sql.execute(
                    "INSERT INTO connection_slots (connection_id, slot)
                     SELECT ?1, s FROM generate_series(0, ?2 - 1) AS s
                     ON CONFLICT DO NOTHING",
                    params![connection, limit],
                )?;
                Ok(if made > 0 { take()? } else { None })
            })
            .await?;
        if taken.is_some() {
            return Ok(SharedSlot {
                db: db.clone(),
                renewal: renew(db.clone(), Arc::clone(clock), token.clone()),
                token,
            });
        }
        // Jittered, so waiting hosts do not ask in step.
        tokio::time::sleep(RETRY_EVERY + Duration::from_millis(fastrand::u64(..20))).await;
    }
}

fn renew(db: Database, clock: Arc<dyn Clock>, token: String) -> tokio::task::AbortHandle {
    let (every, lease_seconds) = (db.lease().renew_every(), db.lease().lease_seconds());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let (owner, until) = (token.clone(), clock.now() + lease_seconds);
            let renewed = db
                .run(move |sql| {
                    Ok(sql.execute(
                        "UPDATE connection_slots SET expires_at = ?2 WHERE owner = ?1",
                        params![owner, until],
                    )?)
                })
                .await;
            if let Err(error) = renewed {
                tracing::warn!("renewing a connection slot: {error}");
            }
        }
    })
    .abort_handle()
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        self.renewal.abort();
        let (db, owner) = (self.db.clone(), std::mem::take(&mut self.token));
        // Freed in the background; should that fail, the lease frees it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let freed = db
                    .run(move |sql| {
                        Ok(sql.execute(
                            "UPDATE connection_slots SET owner = NULL, expires_at = NULL
                             WHERE owner = ?1",
                            params![owner],
                        )?)
                    })
                    .await;
                if let Err(error) = freed {
                    tracing::warn!("freeing a connection slot: {error}");
                }
            });
        }
    }
}
