//! The scheduler: finds links whose next run is due and syncs them, with bounded
//! concurrency overall (and per connection, inside the syncer).

use crate::db::{Database, DbError};
use crate::goals::alerts;
use crate::goals::clock::Timestamp;
use crate::goals::sync::{self, SyncError, SyncRun, Syncer, Trigger};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What one round of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Round {
    pub started: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Skipped because a sync of the same link was running (e.g. "Sync now").
    pub skipped: usize,
}

pub struct Scheduler {
    syncer: Arc<Syncer>,
    slots: Arc<Semaphore>,
}

/// Links that should sync now: active, due, not running, on a usable connection
/// of an organization whose integration is switched on by both admins.
async fn due_links(db: &Database, now: Timestamp, limit: usize) -> Result<Vec<i64>, DbError> {
    db.run(move |conn| {
        let mut statement = conn.prepare(
            "SELECT l.key_result_id FROM metric_links l
             JOIN connections c ON c.id = l.connection_id
             JOIN organizations o ON o.id = c.organization_id
             JOIN tenants t ON t.id = o.tenant_id
             WHERE l.state = 'active' AND l.next_run_at <= ?1
               AND (l.running_since IS NULL OR l.running_since <= ?1 - ?2)
               AND c.status = 'ok' AND o.integration_enabled AND t.integration_enabled
             ORDER BY l.next_run_at LIMIT ?3",
        )?;
        let rows = statement.query_map(
            rusqlite::params![now, sync::CLAIM_LEASE_SECONDS, limit as i64],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
}

impl Scheduler {
    /// `concurrency` bounds the syncs running at once over all connections.
    pub fn new(syncer: Arc<Syncer>, concurrency: usize) -> Scheduler {
        Scheduler {
            syncer,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Prepares for running after a stop: syncs interrupted by it run again once.
    pub async fn recover(&self) -> Result<usize, DbError> {
        sync::recover_interrupted(self.syncer.db(), self.syncer.clock().now()).await
    }

    /// Syncs every link due now, once, and waits for all of them. A link that
    /// missed many runs while the host was stopped syncs once, then follows its
    /// interval from now.
    pub async fn run_due(&self) -> Result<Round, DbError> {
        let now = self.syncer.clock().now();
        alerts::open_stale(self.syncer.db(), now).await?;
        let due = due_links(self.syncer.db(), now, usize::MAX >> 1).await?;
        let mut tasks: JoinSet<Result<SyncRun, SyncError>> = JoinSet::new();
        let mut round = Round::default();
        for key_result in due {
            // The semaphore is never closed, so acquiring cannot fail.
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                break;
            };
            let syncer = Arc::clone(&self.syncer);
            round.started += 1;
            tasks.spawn(async move {
                let _slot = slot;
                syncer.sync(key_result, Trigger::Scheduled).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(run)) if run.status == "success" => round.succeeded += 1,
                Ok(Ok(_)) => round.failed += 1,
                Ok(Err(SyncError::AlreadyRunning { .. })) => round.skipped += 1,
                Ok(Err(SyncError::Db(e))) => return Err(e),
                Ok(Err(e)) => {
                    tracing::warn!("scheduled sync not started: {e}");
                    round.skipped += 1;
                }
                Err(e) => {
                    tracing::error!("a sync task failed: {e}");
                    round.failed += 1;
                }
            }
        }
        Ok(round)
    }

    /// Runs rounds until `stop` resolves, checking for due links every `poll`.
    pub async fn run(
        &self,
        poll: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<Round, DbError> {
        let mut total = Round::default();
        tokio::pin!(stop);
        loop {
            // A round that started finishes: its syncs are not cut off midway.
            let round = self.run_due().await?;
            if round.started > 0 {
                tracing::info!(
                    "synced {} link(s): {} succeeded, {} failed, {} skipped",
                    round.started,
                    round.succeeded,
                    round.failed,
                    round.skipped
                );
            }
            total.started += round.started;
            total.succeeded += round.succeeded;
            total.failed += round.failed;
            total.skipped += round.skipped;
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = &mut stop => return Ok(total),
            }
        }
    }
}
