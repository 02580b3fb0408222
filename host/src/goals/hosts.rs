//! The host processes running a scheduler on the database. Each registers
//! itself and renews a heartbeat as often as it renews its claims, so anyone
//! sharing the database sees which hosts are alive and what each is syncing;
//! a host whose heartbeat lapsed has died, and its claims lapse with it.

use crate::db::{Database, DbError};
use crate::goals::clock::{Clock, Timestamp};
use crate::params;
use std::sync::Arc;

/// Rows of hosts gone this long are removed when another host starts.
const FORGET_AFTER_SECONDS: i64 = 86_400;

/// One host as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// The process's lease id: the owner its claims and runs record.
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    pub lease_seconds: i64,
    /// Its heartbeat is within its lease.
    pub alive: bool,
    /// Syncs it holds claims of now.
    pub running: i64,
}

/// This process's registration: the heartbeat runs until it is dropped or
/// [`Registration::end`]ed.
pub struct Registration {
    db: Database,
    heartbeat: tokio::task::AbortHandle,
}

/// Registers this process and starts its heartbeat.
pub async fn register(db: &Database, clock: Arc<dyn Clock>) -> Result<Registration, DbError> {
    let hostname = whoami::hostname().unwrap_or_else(|_| "unknown".to_string());
    beat(db, clock.now(), &hostname, true).await?;
    let (every, beating) = (db.lease().renew_every(), db.clone());
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = beat(&beating, clock.now(), &hostname, false).await {
                tracing::warn!("renewing this host's heartbeat: {error}");
            }
        }
    })
    .abort_handle();
    Ok(Registration {
        db: db.clone(),
        heartbeat,
    })
}

/// Writes this host's row: all of it when starting, the heartbeat after. An
/// upsert, so a row removed meanwhile (by an operator) comes back.
async fn beat(
    db: &Database,
    now: Timestamp,
    hostname: &str,
    starting: bool,
) -> Result<(), DbError> {
    let (lease, hostname) = (Arc::clone(db.lease()), hostname.to_string());
    db.run(move |sql| {
        if starting {
            sql.execute(
                "DELETE FROM hosts WHERE heartbeat_at + lease_seconds < ?1",
                params![now - FORGET_AFTER_SECONDS],
            )?;
        }
        sql.execute(
            "INSERT INTO hosts (id, hostname, pid, version, started_at, heartbeat_at,
                 lease_seconds)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                 lease_seconds = excluded.lease_seconds",
            params![
                lease.id(),
                hostname,
                i64::from(std::process::id()),
                env!("CARGO_PKG_VERSION"),
                now,
                lease.lease_seconds()
            ],
        )?;
        Ok(())
    })
    .await
}

impl Registration {
    /// Removes this host's row: a clean stop, which leaves nothing to lapse.
    pub async fn end(self) -> Result<(), DbError> {
        self.heartbeat.abort();
        let id = self.db.lease().id().to_string();
        self.db
            .run(move |sql| Ok(sql.execute("DELETE FROM hosts WHERE id = ?1", params![id])?))
            .await?;
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // After `end`, or on an error path: the row lapses by itself.
        self.heartbeat.abort();
    }
}

/// Every registered host, alive ones first, each with its running syncs.
pub async fn list(db: &Database, now: Timestamp) -> Result<Vec<Host>, DbError> {
    let lease = Arc::clone(db.lease());
    db.run(move |sql| {
        Ok(sql.query_map(
            "SELECT h.id, h.hostname, h.pid, h.version, h.started_at, h.heartbeat_at,
                 h.lease_seconds,
                 (SELECT count(*) FROM metric_links l
                  WHERE l.running_owner = h.id AND l.running_since IS NOT NULL)
             FROM hosts h
             ORDER BY h.heartbeat_at + h.lease_seconds > ?1 DESC, h.started_at, h.id",
            params![now],
            |r| {
                let id: String = r.get(0)?;
                let heartbeat_at: Timestamp = r.get(5)?;
                let lease_seconds: i64 = r.get(6)?;
                // A process of this machine that ended is gone at once.
                let alive = heartbeat_at + lease_seconds > now && lease.is_alive(&id);
                Ok(Host {
                    id,
                    hostname: r.get(1)?,
                    pid: r.get(2)?,
                    version: r.get(3)?,
                    started_at: r.get(4)?,
                    heartbeat_at,
                    lease_seconds,
                    alive,
                    running: r.get(7)?,
                })
            },
        )?)
    })
    .await
}
