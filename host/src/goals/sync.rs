//! One sync of one Key Result: the single path used by the scheduler and by
//! "Sync now". It claims the link (one sync per link at a time), measures the
//! metric through the plugin under the connection's concurrency limit, and
//! records the outcome in one transaction.

use crate::bindings::{DateWindow, Error as PluginError, MetricValue};
use crate::connections::{self, ConnectionRecord, Status};
use crate::db::{Database, DbError};
use crate::engine::Engine;
use crate::goals::admin;
use crate::goals::alerts::{self, AlertKind};
use crate::goals::clock::{Clock, Timestamp};
use crate::goals::history;
use crate::goals::keyresults::{ItemKind, Link, LinkState, Period, link_row};
use crate::goals::slots;
use crate::lease::ProcessLease;
use crate::params;
use crate::runtime::{CallError, error_kind, error_message};
use crate::sql::{Row, Sql, SqlError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long the first sync of a new link waits for a scheduled one that
/// claimed it first.
const NEW_LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub use crate::lease::CLAIM_LEASE_SECONDS;

/// The assignments that free a link's claim, in every statement that ends a sync.
const RELEASE_CLAIM: &str = "running_since = NULL, running_owner = NULL, claim_expires_at = NULL";

/// First retry after a failure; doubled per consecutive failure up to the cap.
pub const BACKOFF_BASE_SECONDS: i64 = 60;
pub const BACKOFF_CAP_SECONDS: i64 = 3600;

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Scheduled,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{} {key_result} is not linked to a metric", .kind.noun())]
    NotLinked { kind: ItemKind, key_result: i64 },
    #[error("a sync of {} {key_result} is already running (since {}); its result will show in `goals-host {} show {key_result}`", .kind.noun(), crate::goals::clock::format(*.since), .kind.command())]
    AlreadyRunning {
        kind: ItemKind,
        key_result: i64,
        since: Timestamp,
    },
    #[error("the service asked to wait: {} {key_result} syncs again at {} (give --force to send now anyway)", .kind.noun(), crate::goals::clock::format(*.until))]
    Throttled {
        kind: ItemKind,
        key_result: i64,
        until: Timestamp,
    },
    /// A scheduled sync found the link synced already (by another host) since
    /// it was listed as due.
    #[error("Key Result {0} is not due: another host synced it first")]
    NotDue(i64),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    ConnectionUnavailable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A finished sync, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    pub id: i64,
    pub key_result_id: i64,
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `running`, `success`, `failure` or `interrupted`.
    pub status: String,
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub records: Option<i64>,
    pub requests: Option<i64>,
    pub bytes: Option<i64>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub query: Option<String>,
    /// The process that ran (or runs) it.
    pub owner: Option<String>,
    /// Computed when the item was linked, for a day before it (see
    /// `backfill`): today's rows by their creation date.
    pub backfilled: bool,
}

/// Runs with their query's text (kept once per distinct query).
const SELECT_RUNS: &str = "SELECT r.*, coalesce(q.text, r.query) AS query_text
     FROM sync_runs r LEFT JOIN sync_queries q ON q.id = r.query_id";

pub(crate) fn run_row(r: &Row) -> Result<SyncRun, SqlError> {
    Ok(SyncRun {
        id: r.get("id")?,
        key_result_id: r.get("key_result_id")?,
        trigger: r.get("trigger")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        status: r.get("status")?,
        value: r.get("value")?,
        currency: r.get("currency")?,
        records: r.get("records")?,
        requests: r.get("requests")?,
        bytes: r.get("bytes")?,
        error_kind: r.get("error_kind")?,
        error_message: r.get("error_message")?,
        query: r.get("query_text")?,
        owner: r.get("owner")?,
        backfilled: r.get::<i64>("backfilled")? != 0,
    })
}

/// When a link runs next after a success at `now`: its first slot after `now`.
/// A link's slots lie every `interval` from a phase fixed by its id, so links
/// added together spread over the whole interval, and a link that runs on time
/// (or late by less than an interval) keeps exactly its interval: no drift.
pub fn next_run(now: Timestamp, interval: i64, key_result_id: i64) -> Timestamp {
    let interval = interval.max(1);
    let phase = fastrand::Rng::with_seed(key_result_id as u64).i64(0..interval);
    let slots = now
        .saturating_sub(phase)
        .div_euclid(interval)
        .saturating_add(1);
    phase.saturating_add(slots.saturating_mul(interval))
}

/// Delay before retrying after `failures` consecutive failures: doubling from a
/// minute, never longer than the link's interval or an hour, and up to a fifth
/// earlier by a jitter fixed per link and attempt, so links that failed together
/// in an outage do not all come back at the same second.
pub fn backoff(failures: i64, interval: i64, key_result_id: i64) -> i64 {
    let exponent = failures.clamp(1, 32) - 1;
    let full = BACKOFF_BASE_SECONDS
        .saturating_mul(1_i64 << exponent.min(30))
        .min(BACKOFF_CAP_SECONDS)
        .min(interval.max(1));
    let seed = (key_result_id as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(failures as u64);
    full - fastrand::Rng::with_seed(seed).i64(0..=full / 5)
}

/// The longest wait a Retry-After may impose: the link's interval or a day,
/// whichever is longer. A bogus header (99999999 s) must not park a link for years.
pub fn retry_after_cap(interval: i64) -> i64 {
    interval.max(24 * 3600)
}

/// Runs syncs; shared by the scheduler and "Sync now".
pub struct Syncer {
    db: Database,
    runtime: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    per_connection_limit: usize,
    per_connection: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Per connection, the turn to ask the database for one of its shared
    /// slots: one task per host asks at a time, the rest queue here, so a
    /// backlog costs the database a few polls, not one per waiting sync.
    shared_turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Told of every recorded run and how long it took (the API's metrics).
    observer: Option<RunObserver>,
}

/// What a [`Syncer`] tells of each run it records.
pub type RunObserver = Arc<dyn Fn(&SyncRun, std::time::Duration) + Send + Sync>;

/// A slot of one connection's concurrency limit, held for one sync.
pub struct ConnectionSlot {
    connection_id: String,
    integration: String,
    _permit: OwnedSemaphorePermit,
    /// On PostgreSQL, the slot counted across every host.
    shared: Option<slots::SharedSlot>,
}

/// A link's claim as recorded.
struct Claim {
    since: Option<Timestamp>,
    owner: Option<String>,
    expires_at: Option<Timestamp>,
    next_run_at: Timestamp,
}

impl Claim {
    /// Held by a live sync: its owner's process is alive (when this host can
    /// tell) and it was renewed in time.
    fn is_live(&self, lease: &ProcessLease, now: Timestamp) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        // This process knows its own syncs are running, renewed or not.
        if self.owner.as_deref() == Some(lease.id()) {
            return true;
        }
        let expires_at = self.expires_at.unwrap_or(since + CLAIM_LEASE_SECONDS);
        let owner_alive = self.owner.as_deref().is_some_and(|id| lease.is_alive(id));
        owner_alive && now < expires_at
    }
}

/// What a claim gives the sync.
struct Claimed {
    run_id: i64,
    link: Link,
    connection: ConnectionRecord,
    /// The item's period on the link's date column, if the link applies it.
    window: Option<DateWindow>,
}

impl Syncer {
    /// `per_connection_limit` is capped, per connection, by the maximum its
    /// integration declares.
    pub fn new(
        db: Database,
        runtime: Arc<dyn Engine>,
        clock: Arc<dyn Clock>,
        per_connection_limit: usize,
    ) -> Syncer {
        Syncer {
            db,
            runtime,
            clock,
            per_connection_limit: per_connection_limit.max(1),
            per_connection: Mutex::default(),
            shared_turns: Mutex::default(),
            observer: None,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn runtime(&self) -> &Arc<dyn Engine> {
        &self.runtime
    }

    /// Waits for a free slot of the connection; syncs of one connection never
    /// exceed its limit: the operator's, within what `integration` declares.
    pub async fn connection_slot(
        &self,
        connection_id: &str,
        integration: &str,
    ) -> Option<ConnectionSlot> {
        let local = self.local_slot(connection_id, integration).await?;
        self.shared_slot(local, None).await.ok()
    }

    /// This host's own slot of the connection, without the one all hosts
    /// sharing PostgreSQL count (see [`Syncer::shared_slot`]).
    pub async fn local_slot(
        &self,
        connection_id: &str,
        integration: &str,
    ) -> Option<ConnectionSlot> {
        let local = self.connection_slots(connection_id, integration);
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = local.acquire_owned().await.ok()?;
        Some(ConnectionSlot {
            connection_id: connection_id.to_string(),
            integration: integration.to_string(),
            _permit: permit,
            shared: None,
        })
    }

    /// Adds to a local slot one of the connection's slots all hosts share (on
    /// PostgreSQL). For a scheduled sync of `due`, it first checks the link is
    /// still due, since another host may have synced it while this one
    /// waited: `Err(NotDue)` then, and no shared slot was taken.
    pub async fn shared_slot(
        &self,
        mut slot: ConnectionSlot,
        due: Option<i64>,
    ) -> Result<ConnectionSlot, SyncError> {
        if !self.db.is_postgres() || slot.shared.is_some() {
            return Ok(slot);
        }
        if let Some(key_result) = due
            && !self.still_due(key_result).await?
        {
            return Err(SyncError::NotDue(key_result));
        }
        let declared = self
            .runtime
            .declared(&slot.integration)
            .map_or(1, |info| info.max_concurrent_per_connection.max(1) as usize);
        let turn = self.shared_turn(&slot.connection_id);
        let _turn = turn.lock().await;
        match slots::acquire(&self.db, &self.clock, &slot.connection_id, declared).await {
            Ok(shared) => slot.shared = Some(shared),
            // The sync's own statements meet the same database and say why.
            Err(error) => tracing::warn!(
                "no shared slot of connection {}: {error}",
                slot.connection_id
            ),
        }
        Ok(slot)
    }

    /// Whether the link is due and unclaimed, as far as a read can tell (the
    /// claim decides for sure).
    async fn still_due(&self, key_result: i64) -> Result<bool, SyncError> {
        let now = self.clock.now();
        Ok(self
            .db
            .run(move |sql| {
                Ok(sql
                    .query_opt(
                        "SELECT 1 FROM metric_links WHERE key_result_id = ?1
                             AND next_run_at <= ?2
                             AND (running_since IS NULL
                                  OR coalesce(claim_expires_at, running_since + ?3) <= ?2)",
                        params![key_result, now, CLAIM_LEASE_SECONDS],
                        |r| r.get::<i64>(0),
                    )?
                    .is_some())
            })
            .await?)
    }

    fn shared_turn(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .shared_turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(turns.entry(connection_id.to_string()).or_default())
    }

    fn connection_slots(&self, connection_id: &str, integration: &str) -> Arc<Semaphore> {
        let mut slots = self
            .per_connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(slots.entry(connection_id.to_string()).or_insert_with(|| {
            let declared = self
                .runtime
                .declared(integration)
                .map_or(1, |info| info.max_concurrent_per_connection.max(1) as usize);
            Arc::new(Semaphore::new(self.per_connection_limit.min(declared)))
        }))
    }

    /// Syncs one Key Result now and returns the recorded run.
    pub async fn sync(&self, key_result_id: i64, trigger: Trigger) -> Result<SyncRun, SyncError> {
        self.sync_holding(key_result_id, trigger, None).await
    }

    /// [`Syncer::sync`] with a slot of the link's connection already held (the
    /// scheduler queues for it before claiming the link). A slot of another
    /// connection (the link moved meanwhile) is given back for the right one.
    pub async fn sync_holding(
        &self,
        key_result_id: i64,
        trigger: Trigger,
        held: Option<ConnectionSlot>,
    ) -> Result<SyncRun, SyncError> {
        let started = std::time::Instant::now();
        let result = self.sync_recorded(key_result_id, trigger, held).await;
        if let (Some(observe), Ok(run)) = (&self.observer, &result) {
            observe(run, started.elapsed());
        }
        result
    }

    /// The first sync of a link just saved or reactivated. The link is due at
    /// once, so a scheduler may have claimed it first: then this waits for that
    /// sync to end (a minute at most) and syncs again, so the caller gets a run
    /// of the link as it was saved rather than "already running".
    pub async fn sync_new_link(&self, key_result_id: i64) -> Result<SyncRun, SyncError> {
        let deadline = std::time::Instant::now() + NEW_LINK_WAIT;
        loop {
            match self.sync(key_result_id, Trigger::Manual).await {
                Err(SyncError::AlreadyRunning { .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Tells `observer` of every run this syncer records from now on.
    pub fn with_observer(mut self, observer: RunObserver) -> Syncer {
        self.observer = Some(observer);
        self
    }

    async fn sync_recorded(
        &self,
        key_result_id: i64,
        trigger: Trigger,
        held: Option<ConnectionSlot>,
    ) -> Result<SyncRun, SyncError> {
        let claiming = std::time::Instant::now();
        let claimed = self.claim(key_result_id, trigger).await?;
        let claim_took = claiming.elapsed();
        let _slot = match held {
            Some(slot) if slot.connection_id == claimed.connection.id => Some(slot),
            other => {
                drop(other);
                self.connection_slot(&claimed.connection.id, &claimed.connection.integration)
                    .await
            }
        };
        let spec = claimed.link.metric.spec();
        let chart = claimed.link.metric.chart_selection();
        let started = std::time::Instant::now();
        // A link breaks only when the view or column is confirmed gone: a
        // not-found must survive one re-check (a replica behind, a view being
        // re-published) before the scheduler stops the link for good.
        let mut checks = 0;
        let result = loop {
            checks += 1;
            let result = self
                .renewing(
                    claimed.link.key_result_id,
                    self.runtime.fetch_and_aggregate_within(
                        &claimed.connection,
                        &spec,
                        claimed.window.as_slice(),
                        chart.as_ref(),
                    ),
                )
                .await;
            let not_found = matches!(
                result,
                Err(CallError::Plugin {
                    error: PluginError::NotFound(_),
                    ..
                })
            );
            if !not_found || checks == 2 {
                break result;
            }
        };
        let connection = claimed.connection.name.clone();
        let run = self.record(claimed, result).await?;
        log_run(&run, &connection, claim_took, started.elapsed());
        Ok(run)
    }

    /// Runs `work` while renewing this host's claim of the link, so other hosts
    /// see the sync is alive however long it takes.
    async fn renewing<T>(&self, key_result_id: i64, work: impl Future<Output = T>) -> T {
        let lease = Arc::clone(self.db.lease());
        let renew = async {
            loop {
                tokio::time::sleep(lease.renew_every()).await;
                let until = self.clock.now() + lease.lease_seconds();
                let owner = lease.id().to_string();
                let renewed = self
                    .db
                    .run(move |conn| {
                        Ok(conn.execute(
                            "UPDATE metric_links SET claim_expires_at = ?2
                             WHERE key_result_id = ?1 AND running_owner = ?3",
                            params![key_result_id, until, owner],
                        )?)
                    })
                    .await;
                if let Err(error) = renewed {
                    tracing::warn!("renewing the claim of Key Result {key_result_id}: {error}");
                }
            }
        };
        tokio::select! {
            done = work => done,
            never = renew => never,
        }
    }

    async fn claim(&self, key_result_id: i64, trigger: Trigger) -> Result<Claimed, SyncError> {
        let now = self.clock.now();
        // The link with what its item adds to the sync (its kind for messages,
        // its period for the window), in one read.
        let (link, kind, period) = self
            .db
            .run(move |conn| {
                Ok(conn
                    .query_opt(
                        "SELECT k.kind, k.period_start, k.period_end, l.*
                         FROM key_results k
                         LEFT JOIN metric_links l ON l.key_result_id = k.id
                         WHERE k.id = ?1",
                        params![key_result_id],
                        |r| {
                            let link = match r.get::<Option<i64>>("key_result_id")? {
                                Some(_) => Some(link_row(r)?),
                                None => None,
                            };
                            let kind = ItemKind::parse(&r.get::<String>("kind")?)
                                .unwrap_or(ItemKind::KeyResult);
                            let period = Period {
                                start: r.get("period_start")?,
                                end: r.get("period_end")?,
                            };
                            Ok((link, kind, period))
                        },
                    )?
                    .unwrap_or((None, ItemKind::KeyResult, Period::default())))
            })
            .await?;
        let link = link.ok_or(SyncError::NotLinked {
            kind,
            key_result: key_result_id,
        })?;
        let connection = connections::get_by_id(&self.db, &link.metric.connection_id)
            .await
            .map_err(|e| SyncError::ConnectionUnavailable(e.to_string()))?;
        let organization = admin::organization_by_id(&self.db, connection.organization_id)
            .await
            .map_err(|e| SyncError::Disabled(e.to_string()))?;
        if let Some(reason) = organization.disabled_reason() {
            return Err(SyncError::Disabled(reason));
        }
        if connection.status != Status::Ok {
            let reason = connection.status_reason.as_deref();
            return Err(SyncError::ConnectionUnavailable(match connection.status {
                Status::NeedsSignIn => format!(
                    "connection '{}' needs sign-in: {}; fix: {}",
                    connection.name,
                    reason.unwrap_or("its credential was refused"),
                    connection.sign_in_command()
                ),
                _ => format!(
                    "connection '{}' is disabled: {}",
                    connection.name,
                    reason.unwrap_or("ask its admin")
                ),
            }));
        }
        let lease = Arc::clone(self.db.lease());
        let owner = lease.id().to_string();
        let expires_at = now + lease.lease_seconds();
        let connection_id = connection.id.clone();
        let claim = self
            .db
            .run(move |conn| {
                let tx = conn.transaction()?;
                // Hosts sharing PostgreSQL claim at once: the row lock makes the
                // second wait and then read the first's claim. (SQLite's write
                // lock, taken at BEGIN, already orders them.)
                let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
                let claim: Option<Claim> = tx.query_opt(
                    &format!(
                        "SELECT running_since, running_owner, claim_expires_at, next_run_at
                         FROM metric_links WHERE key_result_id = ?1{lock}"
                    ),
                    params![key_result_id],
                    |r| {
                        Ok(Claim {
                            since: r.get(0)?,
                            owner: r.get(1)?,
                            expires_at: r.get(2)?,
                            next_run_at: r.get(3)?,
                        })
                    },
                )?;
                let Some(claim) = claim else {
                    return Ok(Err(SyncError::NotLinked {
                        kind,
                        key_result: key_result_id,
                    }));
                };
                if trigger == Trigger::Scheduled {
                    // Another host may have been throttled since this one
                    // listed the link as due.
                    let throttled: Option<Timestamp> = tx.query_row(
                        "SELECT throttled_until FROM connections WHERE id = ?1",
                        params![connection_id],
                        |r| r.get(0),
                    )?;
                    if let Some(until) = throttled.filter(|until| *until > now) {
                        return Ok(Err(SyncError::Throttled {
                            kind,
                            key_result: key_result_id,
                            until,
                        }));
                    }
                }
                if let Some(since) = claim.since {
                    if claim.is_live(&lease, now) {
                        return Ok(Err(SyncError::AlreadyRunning {
                            kind,
                            key_result: key_result_id,
                            since,
                        }));
                    }
                    // The claim's owner is gone: its sync will never be recorded.
                    // It counts as interrupted, and this sync is its retry.
                    interrupt(&tx, now, Claims::OfLink(key_result_id))?;
                } else if trigger == Trigger::Scheduled && claim.next_run_at > now {
                    // Another host synced it since this one found it due.
                    return Ok(Err(SyncError::NotDue(key_result_id)));
                }
                tx.execute(
                    "UPDATE metric_links SET running_since = ?2, running_owner = ?3,
                         claim_expires_at = ?4
                     WHERE key_result_id = ?1",
                    params![key_result_id, now, owner, expires_at],
                )?;
                let run_id: i64 = tx.query_row(
                    "INSERT INTO sync_runs (key_result_id, trigger, started_at, status, owner)
                     VALUES (?1, ?2, ?3, 'running', ?4) RETURNING id",
                    params![key_result_id, trigger.as_str(), now, owner],
                    |r| r.get(0),
                )?;
                tx.commit()?;
                Ok(Ok(run_id))
            })
            .await??;
        let window = period.window(link.metric.period_column.as_deref());
        Ok(Claimed {
            run_id: claim,
            link,
            connection,
            window,
        })
    }

    async fn record(
        &self,
        claimed: Claimed,
        result: Result<crate::bindings::Measurement, CallError>,
    ) -> Result<SyncRun, SyncError> {
        let now = self.clock.now();
        let Claimed {
            run_id,
            link,
            connection,
            ..
        } = claimed;
        let kr = link.key_result_id;
        self.db
            .run(move |conn| {
                let tx = conn.transaction()?;
                // The link's row first, as a claim and a takeover lock it: a
                // claim that lapsed (this host stalled past its lease) may have
                // been taken over, and the run is then no longer this host's to
                // record. Its result is dropped rather than recorded twice.
                // (SQLite's write lock, taken at BEGIN, already orders them.)
                if tx.is_postgres() {
                    tx.query_opt(
                        "SELECT 1 FROM metric_links WHERE key_result_id = ?1 FOR UPDATE",
                        params![kr],
                        |r| r.get::<i64>(0),
                    )?;
                }
                let status: Option<String> = tx.query_opt(
                    "SELECT status FROM sync_runs WHERE id = ?1",
                    params![run_id],
                    |r| r.get(0),
                )?;
                if status.as_deref() != Some("running") {
                    tracing::warn!(
                        "the claim of Key Result {kr} lapsed while it synced and was taken \
                         over: this result is dropped, the run was recorded as interrupted"
                    );
                    return Ok(());
                }
                match result {
                    Ok(measurement) => {
                        let value = match measurement.value {
                            Some(MetricValue::Number(n)) => Some(n),
                            // A date cannot be a Key Result's value; links to
                            // dates are refused, so this is a changed column.
                            Some(MetricValue::DateTime(_)) => {
                                broken(
                                    &tx,
                                    &link,
                                    run_id,
                                    now,
                                    "invalid",
                                    "the metric is now a date, which cannot be a Key Result's value: relink",
                                )?;
                                tx.commit()?;
                                return Ok(());
                            }
                            None => None,
                        };
                        if let Some(reason) = currency_changed(&tx, kr, measurement.currency.as_deref())? {
                            failed(&tx, run_id, now, "invalid", &reason)?;
                            backoff_after_failure(&tx, &link, now)?;
                            tx.commit()?;
                            return Ok(());
                        }
                        let query_id = history::query_id(&tx, &measurement.query)?;
                        tx.execute(
                            "UPDATE sync_runs SET finished_at = ?2, status = 'success', value = ?3,
                                 currency = ?4, records = ?5, requests = ?6, bytes = ?7,
                                 query_id = ?8
                             WHERE id = ?1",
                            params![
                                run_id,
                                now,
                                value,
                                measurement.currency,
                                measurement.records as i64,
                                i64::from(measurement.requests),
                                measurement.bytes_received as i64,
                                query_id
                            ],
                        )?;
                        // An empty view has no average: the Key Result keeps its value.
                        if let Some(value) = value {
                            tx.execute(
                                "UPDATE key_results SET current_value = ?2,
                                     current_source = 'sync', current_at = ?3 WHERE id = ?1",
                                params![kr, value, now],
                            )?;
                        }
                        tx.execute(
                            &format!(
                                "UPDATE metric_links SET {RELEASE_CLAIM}, failures = 0,
                                     last_success_at = ?2, last_attempt_at = ?2, next_run_at = ?3,
                                     state = CASE state WHEN 'paused' THEN 'paused' ELSE 'active' END,
                                     state_reason = CASE state WHEN 'paused' THEN state_reason END
                                 WHERE key_result_id = ?1"
                            ),
                            params![kr, now, next_run(now, link.interval_seconds, kr)],
                        )?;
                        // Dataverse answered: whatever throttle it set has ended.
                        tx.execute(
                            "UPDATE connections SET throttled_until = NULL
                             WHERE id = ?1 AND throttled_until IS NOT NULL",
                            params![connection.id],
                        )?;
                        alerts::close(&tx, AlertKind::BrokenLink, &alerts::kr_subject(kr), now)?;
                        alerts::close(&tx, AlertKind::Stale, &alerts::kr_subject(kr), now)?;
                    }
                    Err(CallError::Plugin { error }) => {
                        let message = error_message(&error).to_string();
                        failed(&tx, run_id, now, error_kind(&error), &message)?;
                        match &error {
                            PluginError::Throttled(throttle) => {
                                let until = now.saturating_add(
                                    i64::from(throttle.retry_after_seconds.max(1))
                                        .min(retry_after_cap(link.interval_seconds)),
                                );
                                retry_at(&tx, kr, now, until, false)?;
                                // Dataverse throttles the user, not the link: no
                                // host sends for the connection before then.
                                tx.execute(
                                    "UPDATE connections SET throttled_until = ?2
                                     WHERE id = ?1
                                       AND (throttled_until IS NULL OR throttled_until < ?2)",
                                    params![connection.id, until],
                                )?;
                            }
                            PluginError::Unauthorized(_) => {
                                tx.execute(
                                    "UPDATE connections SET status = 'needs-sign-in',
                                         status_reason = ?2 WHERE id = ?1",
                                    params![connection.id, message],
                                )?;
                                alerts::open(
                                    &tx,
                                    AlertKind::NeedsSignIn,
                                    &alerts::connection_subject(&connection.id),
                                    &format!(
                                        "connection '{}' needs sign-in: {message}; fix: {}",
                                        connection.name,
                                        connection.sign_in_command()
                                    ),
                                    now,
                                )?;
                                tx.execute(
                                    &format!(
                                        "UPDATE metric_links SET {RELEASE_CLAIM},
                                             last_attempt_at = ?2 WHERE key_result_id = ?1"
                                    ),
                                    params![kr, now],
                                )?;
                            }
                            PluginError::NotFound(_) => {
                                let reason = format!(
                                    "view or column was deleted or renamed: relink ({message})"
                                );
                                mark_broken(&tx, &link, now, &reason)?;
                            }
                            // A query the environment refuses today (rows in several
                            // currencies, a view too large) may pass tomorrow: the
                            // link retries, and says why meanwhile.
                            PluginError::Invalid(_)
                            | PluginError::Limit(_)
                            | PluginError::Upstream(_) => {
                                backoff_after_failure(&tx, &link, now)?;
                            }
                        }
                    }
                    Err(CallError::Trap(trap)) => {
                        failed(&tx, run_id, now, "plugin-failure", &format!("{trap:#}"))?;
                        backoff_after_failure(&tx, &link, now)?;
                    }
                    Err(CallError::HostLimit(limit)) => {
                        failed(&tx, run_id, now, "host-limit", &limit)?;
                        backoff_after_failure(&tx, &link, now)?;
                    }
                    Err(refused @ CallError::Refused { .. }) => {
                        failed(&tx, run_id, now, "host-refused", &refused.to_string())?;
                        backoff_after_failure(&tx, &link, now)?;
                    }
                    // Another host of the platform may run the integration; this
                    // one tries again later, as after any failure of its own.
                    Err(CallError::NoIntegration(missing)) => {
                        failed(&tx, run_id, now, "no-integration", &missing)?;
                        backoff_after_failure(&tx, &link, now)?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        let run = self
            .db
            .run(move |conn| {
                Ok(conn.query_row(
                    &format!("{SELECT_RUNS} WHERE r.id = ?1"),
                    params![run_id],
                    run_row,
                )?)
            })
            .await?;
        Ok(run)
    }
}

/// One line per sync at info level: what an operator reads in `goals-host run`'s
/// log. Only recorded fields, never a credential. `claim` is how long taking
/// the link took (its row lock waited for included), `took` the rest.
fn log_run(run: &SyncRun, connection: &str, claim: std::time::Duration, took: std::time::Duration) {
    let millis = took.as_millis();
    let claim = claim.as_micros();
    // Fields, not a formatted message, so that `--log-format json` gives them
    // as JSON members; the text format prints them as `key=value`.
    match run.status.as_str() {
        "success" => tracing::info!(
            target: "goals_host::sync",
            kr = run.key_result_id,
            run = run.id,
            connection,
            trigger = run.trigger,
            outcome = "success",
            value = run.value,
            records = run.records,
            requests = run.requests,
            claim_us = claim,
            took_ms = millis,
            "sync"
        ),
        status => tracing::info!(
            target: "goals_host::sync",
            kr = run.key_result_id,
            run = run.id,
            connection,
            trigger = run.trigger,
            outcome = status,
            kind = run.error_kind.as_deref().unwrap_or("-"),
            requests = run.requests,
            claim_us = claim,
            took_ms = millis,
            error = run.error_message.as_deref().unwrap_or_default(),
            "sync"
        ),
    }
}

/// Why a measured amount cannot be the Key Result's value: its currency is not
/// the Key Result's (links are checked when saved, so the view's rows or the
/// organization's base currency changed since).
fn currency_changed(
    tx: &Sql<'_>,
    key_result_id: i64,
    measured: Option<&str>,
) -> Result<Option<String>, SqlError> {
    let (unit, wanted): (String, Option<String>) = tx.query_row(
        "SELECT unit, currency_code FROM key_results WHERE id = ?1",
        params![key_result_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(wanted), Some(measured)) = (wanted.filter(|_| unit == "currency"), measured) else {
        return Ok(None);
    };
    Ok((!measured.eq_ignore_ascii_case(&wanted)).then(|| {
        format!(
            "the metric is now in {measured}, not the Key Result's {wanted}; the value is kept \
             until the view's rows are in {wanted} again or the link is redone"
        )
    }))
}

fn failed(
    tx: &Sql<'_>,
    run_id: i64,
    now: Timestamp,
    kind: &str,
    message: &str,
) -> Result<(), SqlError> {
    tx.execute(
        "UPDATE sync_runs SET finished_at = ?2, status = 'failure', error_kind = ?3,
             error_message = ?4 WHERE id = ?1",
        params![run_id, now, kind, message],
    )?;
    Ok(())
}

fn retry_at(
    tx: &Sql<'_>,
    key_result_id: i64,
    now: Timestamp,
    at: Timestamp,
    count_failure: bool,
) -> Result<(), SqlError> {
    tx.execute(
        &format!(
            "UPDATE metric_links SET {RELEASE_CLAIM}, last_attempt_at = ?2, next_run_at = ?3,
                 failures = failures + ?4 WHERE key_result_id = ?1"
        ),
        params![key_result_id, now, at, i64::from(count_failure)],
    )?;
    Ok(())
}

fn backoff_after_failure(tx: &Sql<'_>, link: &Link, now: Timestamp) -> Result<(), SqlError> {
    let delay = backoff(
        link.failures.saturating_add(1),
        link.interval_seconds,
        link.key_result_id,
    );
    retry_at(tx, link.key_result_id, now, now.saturating_add(delay), true)
}

fn mark_broken(tx: &Sql<'_>, link: &Link, now: Timestamp, reason: &str) -> Result<(), SqlError> {
    tx.execute(
        &format!(
            "UPDATE metric_links SET {RELEASE_CLAIM}, last_attempt_at = ?2, state = 'broken',
                 state_reason = ?3 WHERE key_result_id = ?1"
        ),
        params![link.key_result_id, now, reason],
    )?;
    alerts::open(
        tx,
        AlertKind::BrokenLink,
        &alerts::kr_subject(link.key_result_id),
        reason,
        now,
    )
}

fn broken(
    tx: &Sql<'_>,
    link: &Link,
    run_id: i64,
    now: Timestamp,
    kind: &str,
    reason: &str,
) -> Result<(), SqlError> {
    failed(tx, run_id, now, kind, reason)?;
    mark_broken(tx, link, now, reason)
}

/// Whose claims [`interrupt`] ends.
enum Claims<'a> {
    OfLink(i64),
    /// Every claim of one process (`None`: claims from before owners were kept).
    OfOwner(Option<&'a str>),
}

/// Ends claims whose sync will never be recorded (its process stopped, its
/// lease lapsed, or a stop cut it off): their running runs become interrupted
/// and their links are freed and due now, so each runs again once. Returns the
/// runs interrupted.
fn interrupt(tx: &Sql<'_>, now: Timestamp, claims: Claims<'_>) -> Result<usize, SqlError> {
    let (runs, links, key): (&str, &str, &dyn crate::sql::ToValue) = match &claims {
        Claims::OfLink(id) => ("key_result_id = ?2", "key_result_id = ?2", id),
        Claims::OfOwner(owner) => (
            "owner IS NOT DISTINCT FROM ?2",
            "running_since IS NOT NULL AND running_owner IS NOT DISTINCT FROM ?2",
            owner,
        ),
    };
    let interrupted = tx.execute(
        &format!(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = ?1
             WHERE status = 'running' AND {runs}"
        ),
        params![now, key],
    )?;
    tx.execute(
        &format!(
            "UPDATE metric_links SET {RELEASE_CLAIM}, next_run_at = CASE WHEN next_run_at < ?1 THEN next_run_at ELSE ?1 END
             WHERE {links}"
        ),
        params![now, key],
    )?;
    Ok(interrupted)
}

/// Sync runs that were running when their host process stopped: marked
/// interrupted, and their links made due so they run again, once. Syncs of
/// processes still running (a `kr sync` beside this one) are left alone.
pub async fn recover_interrupted(db: &Database, now: Timestamp) -> Result<usize, DbError> {
    let lease = Arc::clone(db.lease());
    db.run(move |conn| {
        // Read first: the scheduler asks every poll, and nearly always nothing
        // needs the write lock.
        let owners: Vec<Option<String>> = conn.query_map(
            "SELECT owner FROM sync_runs WHERE status = 'running'
                 UNION SELECT running_owner FROM metric_links WHERE running_since IS NOT NULL",
            params![],
            |r| r.get(0),
        )?;
        let gone: Vec<Option<String>> = owners
            .into_iter()
            .filter(|owner| !owner.as_deref().is_some_and(|id| lease.is_alive(id)))
            .collect();
        let lapsed: Vec<i64> = conn.query_map(
            "SELECT key_result_id FROM metric_links WHERE running_since IS NOT NULL
                   AND coalesce(claim_expires_at, running_since + ?2) <= ?1
                   AND running_owner IS DISTINCT FROM ?3",
            params![now, CLAIM_LEASE_SECONDS, lease.id()],
            |r| r.get(0),
        )?;
        if gone.is_empty() && lapsed.is_empty() {
            return Ok(0);
        }
        let tx = conn.transaction()?;
        let mut interrupted = 0;
        let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
        for key_result_id in lapsed {
            // Read again under the row's lock: its sync may have been recorded
            // (or renewed) since the list was read.
            let still_lapsed = tx.query_opt(
                &format!(
                    "SELECT 1 FROM metric_links WHERE key_result_id = ?1
                         AND running_since IS NOT NULL
                         AND coalesce(claim_expires_at, running_since + ?3) <= ?2
                         AND running_owner IS DISTINCT FROM ?4{lock}"
                ),
                params![key_result_id, now, CLAIM_LEASE_SECONDS, lease.id()],
                |r| r.get::<i64>(0),
            )?;
            if still_lapsed.is_some() {
                interrupted += interrupt(&tx, now, Claims::OfLink(key_result_id))?;
            }
        }
        for owner in &gone {
            interrupted += interrupt(&tx, now, Claims::OfOwner(owner.as_deref()))?;
        }
        tx.commit()?;
        Ok(interrupted)
    })
    .await
}

/// This process's syncs still running, cut off by a stop: recorded as
/// interrupted and their links due again. Returns how many.
pub async fn interrupt_own(db: &Database, now: Timestamp) -> Result<usize, DbError> {
    let owner = db.lease().id().to_string();
    db.run(move |conn| {
        let tx = conn.transaction()?;
        let interrupted = interrupt(&tx, now, Claims::OfOwner(Some(&owner)))?;
        tx.commit()?;
        Ok(interrupted)
    })
    .await
}

/// When "Sync now" should not send: Dataverse asked to wait, and the retry is
/// still ahead, for this link (its last run was throttled) or for its whole
/// connection (any host's sync of it was). The time it asked to wait until.
pub async fn throttled_until(
    db: &Database,
    key_result_id: i64,
    now: Timestamp,
) -> Result<Option<Timestamp>, DbError> {
    db.run(move |conn| {
        let link: Option<Timestamp> = conn.query_opt(
            "SELECT next_run_at FROM metric_links
                 WHERE key_result_id = ?1 AND next_run_at > ?2
                   AND (SELECT error_kind FROM sync_runs WHERE key_result_id = ?1
                        ORDER BY id DESC LIMIT 1) = 'throttled'",
            params![key_result_id, now],
            |r| r.get(0),
        )?;
        let connection: Option<Timestamp> = conn
            .query_opt(
                "SELECT c.throttled_until FROM metric_links l
                     JOIN connections c ON c.id = l.connection_id
                 WHERE l.key_result_id = ?1 AND c.throttled_until > ?2",
                params![key_result_id, now],
                |r| r.get(0),
            )?
            .flatten();
        Ok(link.max(connection))
    })
    .await
}

/// The Key Result's newest successful run.
pub async fn last_success(db: &Database, key_result_id: i64) -> Result<Option<SyncRun>, DbError> {
    db.run(move |conn| {
        Ok(conn.query_opt(
            &format!(
                "{SELECT_RUNS} WHERE r.key_result_id = ?1 AND r.status = 'success'
                     ORDER BY r.id DESC LIMIT 1"
            ),
            params![key_result_id],
            run_row,
        )?)
    })
    .await
}

/// How many of the item's runs were back-filled when it was linked.
pub async fn backfilled_points(db: &Database, key_result_id: i64) -> Result<i64, DbError> {
    db.run(move |conn| {
        Ok(conn.query_row(
            "SELECT count(*) FROM sync_runs WHERE key_result_id = ?1 AND backfilled = 1",
            params![key_result_id],
            |r| r.get(0),
        )?)
    })
    .await
}

/// A Key Result's runs, newest first: `limit` of them, older than run `before`
/// when given (the next page after a page ending with that run).
pub async fn history(
    db: &Database,
    key_result_id: i64,
    limit: usize,
    before: Option<i64>,
) -> Result<Vec<SyncRun>, DbError> {
    db.run(move |conn| {
        let rows = conn.query_map(
            &format!(
                "{SELECT_RUNS} WHERE r.key_result_id = ?1 AND (CAST(?3 AS BIGINT) IS NULL OR r.id < ?3)
                 ORDER BY r.id DESC LIMIT ?2"
            ),
            params![key_result_id, i64::try_from(limit).unwrap_or(i64::MAX), before],
            run_row,
        )?;
        Ok(rows)
    })
    .await
}

/// Whether a link is due for its state: paused and broken links never are.
pub fn is_scheduled(link: &Link) -> bool {
    link.state == LinkState::Active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_their_slot_every_interval_and_spread_over_it() {
        let now = 1_800_000_000;
        let firsts: Vec<Timestamp> = (1..=200).map(|kr| next_run(now, 3600, kr)).collect();
        assert!(
            firsts.iter().all(|at| (now + 1..=now + 3600).contains(at)),
            "within an interval"
        );
        let distinct: std::collections::BTreeSet<_> = firsts.iter().map(|at| at % 3600).collect();
        assert!(
            distinct.len() > 150,
            "links added together spread out: {}",
            distinct.len()
        );
        for kr in 1..=50 {
            let mut at = next_run(now, 3600, kr);
            for late in [0, 1, 59, 1800, 3599] {
                let next = next_run(at + late, 3600, kr);
                assert_eq!(next, at + 3600, "no drift for a run {late} s late");
                at = next;
            }
            assert_eq!(
                next_run(at + 3600, 3600, kr),
                at + 7200,
                "a run a whole interval late skips the missed slot"
            );
        }
        assert_eq!(next_run(now, 1, 7), now + 1);
        assert!((now + 1..=now + 5).contains(&next_run(now, 5, 7)));
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_with_jitter_below_it() {
        let full = [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600];
        for kr in 1..=50 {
            for (failures, full) in (1..).zip(full) {
                let delay = backoff(failures, 3600, kr);
                assert!(
                    (full - full / 5..=full).contains(&delay),
                    "failure {failures}: {delay} s, full {full} s"
                );
                assert_eq!(delay, backoff(failures, 3600, kr), "the same every time");
            }
            assert!(backoff(40, 3600, kr) <= 3600);
            assert!(backoff(4, 300, kr) <= 300, "never longer than the interval");
            assert!(
                (16..=20).contains(&backoff(3, 20, kr)),
                "a 20 s link retries within 20 s"
            );
        }
        let spread: std::collections::BTreeSet<i64> =
            (1..=50).map(|kr| backoff(5, 3600, kr)).collect();
        assert!(
            spread.len() > 25,
            "links back off at different times: {spread:?}"
        );
    }

    #[test]
    fn a_retry_after_waits_at_most_a_day_or_the_interval() {
        assert_eq!(retry_after_cap(3600), 86_400);
        assert_eq!(retry_after_cap(31 * 86_400), 31 * 86_400);
    }
}
