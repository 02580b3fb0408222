//! The scheduler: finds links whose next run is due and syncs them, with bounded
//! concurrency overall (and per connection, inside the syncer).

use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::goals::sync::{self, SyncError, SyncRun, Syncer, Trigger};
use crate::goals::{alerts, history};
use crate::params;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::{Id, JoinError, JoinSet};

/// What one round of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Round {
    pub started: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Skipped because a sync of the same link was running (e.g. "Sync now").
    pub skipped: usize,
    /// Still running when a stop's grace period ended: recorded as interrupted,
    /// and run again by the next scheduler.
    pub interrupted: usize,
}

/// How long a stop waits for running syncs unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

pub struct Scheduler {
    syncer: Arc<Syncer>,
    slots: Arc<Semaphore>,
    grace: Duration,
    keep_days: u32,
    /// When the hourly housekeeping last ran.
    last_housekeeping: std::sync::Mutex<Option<Timestamp>>,
}

/// How often the scheduler sweeps old runs and looks for sealed secrets its key
/// cannot open: neither changes from one poll to the next.
const HOUSEKEEPING_EVERY_SECONDS: i64 = 3600;

/// A link that is due, and the connection whose slots it waits for.
struct DueLink {
    key_result: i64,
    connection_id: String,
    integration: String,
}

/// Links that should sync now: active, due, not running, on a usable connection
/// of an organization whose integration is switched on by both admins.
async fn due_links(db: &Database, now: Timestamp) -> Result<Vec<DueLink>, DbError> {
    db.run(move |conn| {
        let rows = conn.query_map(
            "SELECT l.key_result_id, l.connection_id, c.integration FROM metric_links l
             JOIN connections c ON c.id = l.connection_id
             JOIN organizations o ON o.id = c.organization_id
             JOIN tenants t ON t.id = o.tenant_id
             WHERE l.state = 'active' AND l.next_run_at <= ?1
               AND (l.running_since IS NULL
                    OR coalesce(l.claim_expires_at, l.running_since + ?2) <= ?1)
               AND c.status = 'ok' AND o.integration_enabled = 1 AND t.integration_enabled = 1
               AND (c.throttled_until IS NULL OR c.throttled_until <= ?1)
             ORDER BY l.next_run_at",
            params![now, sync::CLAIM_LEASE_SECONDS],
            |r| {
                Ok(DueLink {
                    key_result: r.get(0)?,
                    connection_id: r.get(1)?,
                    integration: r.get(2)?,
                })
            },
        )?;
        Ok(rows)
    })
    .await
}

/// What a scheduled sync task ends with: `None` when it stopped before claiming
/// its link (the scheduler was stopping), which leaves the link due.
type Outcome = Option<Result<SyncRun, SyncError>>;

/// The syncs the scheduler has started and not yet counted.
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<Outcome>,
    /// The link of each task, so a link is in flight at most once, even when
    /// its task panicked.
    links: HashMap<Id, i64>,
}

impl InFlight {
    fn count(
        &mut self,
        round: &mut Round,
        joined: Result<(Id, Outcome), JoinError>,
    ) -> Result<(), DbError> {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        self.links.remove(&id);
        match joined {
            // A panicked sync leaves its claim behind; the claim's lease ends it.
            Err(e) => {
                tracing::error!("a sync task failed: {e}");
                round.failed += 1;
            }
            Ok((_, None)) => {}
            Ok((_, Some(Ok(run)))) if run.status == "success" => round.succeeded += 1,
            Ok((_, Some(Ok(_)))) => round.failed += 1,
            Ok((
                _,
                Some(Err(
                    SyncError::AlreadyRunning { .. }
                    | SyncError::NotDue(_)
                    | SyncError::Throttled { .. },
                )),
            )) => round.skipped += 1,
            Ok((_, Some(Err(SyncError::Db(e))))) => return Err(e),
            Ok((_, Some(Err(e)))) => {
                tracing::warn!("scheduled sync not started: {e}");
                round.skipped += 1;
            }
        }
        Ok(())
    }

    /// Counts the syncs that have finished, without waiting.
    fn reap(&mut self, round: &mut Round) -> Result<(), DbError> {
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            self.count(round, joined)?;
        }
        Ok(())
    }

    /// Waits for every started sync and counts it.
    async fn finish(&mut self, round: &mut Round) -> Result<(), DbError> {
        while let Some(joined) = self.tasks.join_next_with_id().await {
            self.count(round, joined)?;
        }
        Ok(())
    }
}

impl Scheduler {
    /// `concurrency` bounds the syncs running at once over all connections.
    pub fn new(syncer: Arc<Syncer>, concurrency: usize) -> Scheduler {
        Scheduler {
            syncer,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            grace: DEFAULT_GRACE,
            keep_days: history::DEFAULT_KEEP_DAYS,
            last_housekeeping: std::sync::Mutex::new(None),
        }
    }

    /// Runs are kept `days` days (and each link's latest of each outcome for good).
    pub fn with_keep_days(mut self, days: u32) -> Scheduler {
        self.keep_days = days.max(1);
        self
    }

    /// At the first poll and hourly after: sweeps the history, and opens an
    /// alert for each connection whose stored sign-in this host's key cannot
    /// open (which decrypts every connection's secret: not for every poll).
    async fn housekeeping_when_due(&self, now: Timestamp) -> Result<(), DbError> {
        {
            let mut last = self
                .last_housekeeping
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| now.saturating_sub(at) < HOUSEKEEPING_EVERY_SECONDS) {
                return Ok(());
            }
            *last = Some(now);
        }
        alerts::open_lost_keys(self.syncer.db(), now).await?;
        let swept = history::sweep(self.syncer.db(), now, self.keep_days).await?;
        if swept.runs > 0 {
            tracing::info!(
                "history: {} run(s) older than {} days removed, {} query text(s) no longer used",
                swept.runs,
                self.keep_days,
                swept.queries
            );
        }
        Ok(())
    }

    /// How long a stop waits for running syncs to finish and be recorded.
    pub fn with_grace(mut self, grace: Duration) -> Scheduler {
        self.grace = grace;
        self
    }

    /// Prepares for running after a stop: syncs interrupted by it run again once.
    pub async fn recover(&self) -> Result<usize, DbError> {
        sync::recover_interrupted(self.syncer.db(), self.syncer.clock().now()).await
    }

    /// Starts a sync of every due link not already in flight. Each waits for a
    /// slot of its own connection first and then for one of the overall slots,
    /// so a connection with a backlog never holds overall slots that other
    /// connections could use; then, on PostgreSQL, for one of the slots all
    /// hosts share; it claims its link only once it has them all.
    async fn dispatch(
        &self,
        flight: &mut InFlight,
        round: &mut Round,
        stopping: &Arc<AtomicBool>,
    ) -> Result<(), DbError> {
        let now = self.syncer.clock().now();
        self.housekeeping_when_due(now).await?;
        // A peer that died mid-sync (kill -9, a lost machine) left claims that
        // no one will finish: they are taken over within a poll of the lapse.
        let recovered = sync::recover_interrupted(self.syncer.db(), now).await?;
        if recovered > 0 {
            tracing::info!(
                "{recovered} sync(s) of stopped processes marked interrupted; they run again"
            );
        }
        alerts::open_stale(self.syncer.db(), now).await?;
        // Links already in flight, looked up once rather than per due link.
        let in_flight: HashSet<i64> = flight.links.values().copied().collect();
        for due in due_links(self.syncer.db(), now).await? {
            if in_flight.contains(&due.key_result) {
                continue;
            }
            round.started += 1;
            let syncer = Arc::clone(&self.syncer);
            let overall = Arc::clone(&self.slots);
            let stopping = Arc::clone(stopping);
            let key_result = due.key_result;
            let task = flight.tasks.spawn(async move {
                let local = syncer
                    .local_slot(&due.connection_id, &due.integration)
                    .await?;
                // The semaphore is never closed, so acquiring cannot fail.
                let _overall = overall.acquire_owned().await.ok();
                if stopping.load(Ordering::SeqCst) {
                    return None;
                }
                // The slot all hosts share comes last: it is the scarcest, and
                // held only by a sync ready to send.
                let slot = match syncer.shared_slot(local, Some(due.key_result)).await {
                    Ok(slot) => slot,
                    Err(not_due) => return Some(Err(not_due)),
                };
                Some(
                    syncer
                        .sync_holding(due.key_result, Trigger::Scheduled, Some(slot))
                        .await,
                )
            });
            flight.links.insert(task.id(), key_result);
        }
        Ok(())
    }

    /// Syncs every link due now, once, and waits for all of them. A link that
    /// missed many runs while the host was stopped syncs once, then follows its
    /// interval from now.
    pub async fn run_due(&self) -> Result<Round, DbError> {
        let mut flight = InFlight::default();
        let mut round = Round::default();
        self.dispatch(&mut flight, &mut round, &Arc::new(AtomicBool::new(false)))
            .await?;
        flight.finish(&mut round).await?;
        Ok(round)
    }

    /// Runs until `stop` resolves, looking for due links every `poll`: a link
    /// that falls due starts as soon as slots allow, whatever else is running.
    /// On stop, syncs that have claimed their link finish; queued ones stay due.
    pub async fn run(
        &self,
        poll: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<Round, DbError> {
        let mut flight = InFlight::default();
        let mut total = Round::default();
        let stopping = Arc::new(AtomicBool::new(false));
        tokio::pin!(stop);
        loop {
            let before = total.clone();
            flight.reap(&mut total)?;
            self.dispatch(&mut flight, &mut total, &stopping).await?;
            if total != before {
                tracing::info!(
                    "{} sync(s) started in all, {} succeeded, {} failed, {} skipped; {} in flight",
                    total.started,
                    total.succeeded,
                    total.failed,
                    total.skipped,
                    flight.links.len()
                );
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = &mut stop => break,
            }
        }
        stopping.store(true, Ordering::SeqCst);
        tracing::info!(
            "stopping: {} sync(s) in flight get up to {:?} to finish",
            flight.links.len(),
            self.grace
        );
        if tokio::time::timeout(self.grace, flight.finish(&mut total))
            .await
            .is_err()
        {
            // Past the grace period: what still runs is cut off and recorded as
            // interrupted, so the next scheduler runs it again, once.
            flight.tasks.abort_all();
            while flight.tasks.join_next().await.is_some() {}
            total.interrupted =
                sync::interrupt_own(self.syncer.db(), self.syncer.clock().now()).await?;
        }
        // Queued syncs that stopped before claiming their link did not start.
        total.started = total.succeeded + total.failed + total.skipped + total.interrupted;
        Ok(total)
    }
}
