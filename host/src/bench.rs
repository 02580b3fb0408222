//! `goals-host bench`: what the host itself costs, measured against the built-in
//! simulator on loopback and printed as tables. Run it from a release build
//! (`cargo run --release --bin goals-host -- bench`): debug builds measure the
//! debug build.

use crate::bindings::{Aggregation, CurrencyChoice};
use crate::connections::{self, ConnectionRecord};
use crate::db::Database;
use crate::goals::clock::{Clock, ManualClock, SystemClock};
use crate::goals::keyresults::{self, ItemKind, NewKeyResult};
use crate::goals::linking::{self, Wanted, WantedMeasure};
use crate::goals::progress::{Direction, Unit};
use crate::goals::scheduler::Scheduler;
use crate::goals::sync::{Syncer, Trigger};
use crate::limits::Limits;
use crate::params;
use crate::render::{Report, table};
use crate::runtime::{PluginRuntime, PluginSource};
use anyhow::Context;
use dataverse_sim::{RunningSimulator, SimConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchKind {
    /// Host cost of one sync: instantiation, the plugin call, the bookkeeping
    Overhead,
    /// Syncs per second with many links due at once
    Throughput,
    /// Start to first completed sync, with and without the precompiled plugin
    ColdStart,
    /// Resident memory with 10,000 links scheduled, and per concurrent sync
    Memory,
    /// Database bytes per 100,000 sync runs, query text in each run or kept once
    History,
    /// The HTTP API: concurrent GETs of the details and previews
    Api,
    All,
}

/// A simulator, a data directory, the plugin and one connection.
pub(crate) struct Rig {
    pub(crate) simulator: RunningSimulator,
    data_dir: tempfile::TempDir,
    pub(crate) db: Database,
    pub(crate) runtime: Arc<PluginRuntime>,
    pub(crate) conn: ConnectionRecord,
    pub(crate) clock: ManualClock,
    /// Resident size once the simulator (which shares this process) is up.
    rss_with_simulator: u64,
}

impl Rig {
    pub(crate) async fn start(plugin: &PluginSource) -> anyhow::Result<Rig> {
        let config = SimConfig::default();
        let simulator = RunningSimulator::start(([127, 0, 0, 1], 0).into(), config.clone())
            .await
            .context("starting the simulator")?;
        let rss_with_simulator = rss_bytes().unwrap_or_default();
        let data_dir = tempfile::Builder::new().prefix("goals-bench-").tempdir()?;
        let db = Database::open(data_dir.path())?;
        let runtime = Arc::new(
            crate::runtime::load_with_limits(
                plugin,
                db.clone(),
                Limits::default(),
                Some(&data_dir.path().join("precompiled")),
            )
            .await?,
        );
        let conn = connections::add(
            &db,
            runtime.info(),
            crate::demo::simulator_connection(&simulator.url(), &config, "sim"),
        )
        .await?;
        Ok(Rig {
            simulator,
            data_dir,
            db,
            runtime,
            conn,
            clock: ManualClock::new(SystemClock.now()),
            rss_with_simulator,
        })
    }

    fn syncer(&self, per_connection: usize) -> Arc<Syncer> {
        Arc::new(Syncer::new(
            self.db.clone(),
            self.runtime.clone(),
            Arc::new(self.clock.clone()),
            per_connection,
        ))
    }

    /// `count` Key Results linked to a small view's row count (so the simulator's
    /// own work stays small next to the host's), all due now. Returns the first id.
    pub(crate) async fn links(&self, count: i64) -> anyhow::Result<i64> {
        let metric = linking::choose(
            &self.runtime,
            &self.conn,
            &Wanted {
                app: "Sales Hub".to_string(),
                entity: "account".to_string(),
                view: "Active Accounts".to_string(),
                measure: WantedMeasure::Column {
                    column: "name".to_string(),
                    aggregation: Aggregation::Count,
                },
                currency: CurrencyChoice::Base,
                window: None,
            },
        )
        .await?
        .metric;
        let first = keyresults::create(
            &self.db,
            NewKeyResult {
                kind: ItemKind::KeyResult,
                parent_id: None,
                due_date: None,
                period: Default::default(),
                organization_id: self.conn.organization_id,
                title: "bench".to_string(),
                owner: "bench".to_string(),
                unit: Unit::Number,
                currency_code: None,
                start: 0.0,
                target: 1000.0,
                direction: Direction::Increase,
            },
            self.clock.now(),
        )
        .await?;
        keyresults::save_link(&self.db, first.id, metric, 3600, self.clock.now()).await?;
        let now = self.clock.now();
        let id = first.id;
        self.db
            .run(move |conn| {
                let tx = conn.transaction()?;
                for _ in 1..count {
                    tx.execute(
                        "INSERT INTO key_results (organization_id, title, owner, unit,
                             start_value, target_value, direction, created_at)
                         SELECT organization_id, title, owner, unit, start_value,
                             target_value, direction, created_at FROM key_results WHERE id = ?1",
                        params![id],
                    )?;
                    tx.execute(
                        "INSERT INTO metric_links (key_result_id, connection_id, app_id,
                             app_name, entity, entity_name, view_id, view_kind, view_name,
                             column_name, column_display, aggregation, currency,
                             interval_seconds, state, next_run_at, created_at)
                         SELECT last_insert_rowid(), connection_id, app_id, app_name, entity,
                             entity_name, view_id, view_kind, view_name, column_name,
                             column_display, aggregation, currency, interval_seconds,
                             'active', ?2, ?2
                         FROM metric_links WHERE key_result_id = ?1",
                        params![id, now],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(id)
    }
}

/// Median and 99th percentile of durations, in microseconds.
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples
            .get(index)
            .map(|d| d.as_secs_f64() * 1e6)
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99))
}

/// Resident set size of this process, in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

pub async fn run(kind: BenchKind, plugin: PluginSource) -> anyhow::Result<Report> {
    let mut text = vec![format!(
        "Measured on {} core(s), {} build, simulator on loopback.",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )];
    let mut document = serde_json::Map::new();
    let all = kind == BenchKind::All;
    // First, while the process holds nothing from the other benches.
    if all || kind == BenchKind::Memory {
        let (section, value) = memory(&plugin).await?;
        text.push(section);
        document.insert("memory".into(), value);
    }
    if all || kind == BenchKind::Overhead {
        let (section, value) = overhead(&plugin).await?;
        text.push(section);
        document.insert("overhead".into(), value);
    }
    if all || kind == BenchKind::Throughput {
        let (section, value) = throughput(&plugin).await?;
        text.push(section);
        document.insert("throughput".into(), value);
    }
    if all || kind == BenchKind::ColdStart {
        let (section, value) = cold_start(&plugin).await?;
        text.push(section);
        document.insert("cold_start".into(), value);
    }
    if all || kind == BenchKind::Api {
        let (section, value) = crate::api_bench::run(&plugin).await?;
        text.push(section);
        document.insert("api".into(), value);
    }
    if all || kind == BenchKind::History {
        let (section, value) = history_size(&plugin).await?;
        text.push(section);
        document.insert("history".into(), value);
    }
    Ok(Report {
        text: text.join("\n\n"),
        json: Value::Object(document),
    })
}

/// Database bytes for 100,000 runs of one real sync (its FetchXML as the plugin
/// sent it): as versions before 0.6 of the schema stored them (the query text in
/// every run) and as they are stored now (the text once, runs refer to it).
async fn history_size(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    const RUNS: i64 = 100_000;
    let rig = Rig::start(plugin).await?;
    let kr = rig.links(1).await?;
    let run = rig.syncer(usize::MAX).sync(kr, Trigger::Manual).await?;
    let query = run.query.context("the bench run's query")?;
    let mut sizes = Vec::new();
    for text_in_each_run in [true, false] {
        let dir = tempfile::Builder::new()
            .prefix("goals-bench-history-")
            .tempdir()?;
        let db = Database::open(dir.path())?;
        let query = query.clone();
        let bytes = db
            .run(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO key_results (id, organization_id, title, owner, unit,
                         start_value, target_value, direction, created_at)
                     VALUES (1, 1, 'bench', 'bench', 'number', 0, 1000, 'increase', 0)",
                    params![],
                )?;
                let query_id: i64 = tx.query_row(
                    "INSERT INTO sync_queries (text) VALUES (?1) RETURNING id",
                    params![&query],
                    |r| r.get(0),
                )?;
                let insert = "INSERT INTO sync_runs (key_result_id, trigger, started_at,
                         finished_at, status, value, records, requests, bytes, query, query_id,
                         owner)
                     VALUES (1, 'scheduled', ?1, ?1, 'success', ?2, 1088, 1, 862, ?3, ?4,
                         '12345-0123456789abcdef')";
                for i in 0..RUNS {
                    let (text, id) = if text_in_each_run {
                        (Some(query.as_str()), None)
                    } else {
                        (None, Some(query_id))
                    };
                    tx.execute(
                        insert,
                        params![1_800_000_000 + i * 3600, 5000.0 + i as f64, text, id],
                    )?;
                }
                tx.commit()?;
                conn.execute_batch("VACUUM")?;
                let pages: i64 = conn.query_row("PRAGMA page_count", params![], |r| r.get(0))?;
                let page_size: i64 = conn.query_row("PRAGMA page_size", params![], |r| r.get(0))?;
                Ok(pages * page_size)
            })
            .await?;
        sizes.push(bytes);
    }
    let [before, after] = sizes[..] else {
        anyhow::bail!("two layouts measured");
    };
    let mib = |bytes: i64| bytes as f64 / f64::from(1 << 20);
    Ok((
        format!(
            "History, {RUNS} runs of a {}-byte query:\n  query text in every run  {:.1} MiB\n  \
             query text kept once     {:.1} MiB ({:.0}% less)",
            query.len(),
            mib(before),
            mib(after),
            100.0 - after as f64 * 100.0 / before.max(1) as f64
        ),
        serde_json::json!({
            "runs": RUNS,
            "query_bytes": query.len(),
            "bytes_with_text_in_each_run": before,
            "bytes_with_text_once": after,
        }),
    ))
}

async fn overhead(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    const ROUNDS: usize = 2000;
    let rig = Rig::start(plugin).await?;
    let kr = rig.links(1).await?;
    let syncer = rig.syncer(usize::MAX);
    syncer.sync(kr, Trigger::Manual).await?;
    let link = keyresults::link(&rig.db, kr)
        .await?
        .context("the bench link")?;
    let spec = crate::bindings::MetricSpec {
        entity: link.metric.entity.clone(),
        view: link.metric.view.clone(),
        column: link.metric.column.clone(),
        aggregation: link.metric.aggregation,
        currency: link.metric.currency,
    };
    let target = crate::engine::call_target(&rig.conn)?;

    let on_demand = crate::runtime::load_with_limits(
        plugin,
        rig.db.clone(),
        Limits {
            instance_slots: 0,
            ..Limits::default()
        },
        Some(&rig.data_dir.path().join("precompiled")),
    )
    .await?;
    anyhow::ensure!(
        rig.runtime.pooled(),
        "the instance pool is unavailable on this machine (see the log)"
    );

    let mut instantiate = Vec::with_capacity(ROUNDS);
    let mut instantiate_on_demand = Vec::with_capacity(ROUNDS);
    let mut call = Vec::with_capacity(ROUNDS);
    let mut full = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        rig.runtime.describe_now().await?;
        instantiate.push(started.elapsed());
        let started = Instant::now();
        on_demand.describe_now().await?;
        instantiate_on_demand.push(started.elapsed());
        let started = Instant::now();
        rig.runtime.fetch_and_aggregate(&target, &spec).await?;
        call.push(started.elapsed());
        let started = Instant::now();
        syncer.sync(kr, Trigger::Manual).await?;
        full.push(started.elapsed());
    }
    let rows = [
        (
            "instantiate + call, no I/O (describe), pooled",
            percentiles(instantiate),
        ),
        (
            "the same, instances allocated on demand",
            percentiles(instantiate_on_demand),
        ),
        (
            "instantiate + measure (one loopback request to the simulator)",
            percentiles(call),
        ),
        (
            "full sync: claim, measure, record in SQLite",
            percentiles(full),
        ),
    ];
    let section = format!(
        "Host overhead per sync ({ROUNDS} sequential runs, simulator answering at once)\n\n{}",
        table(
            &["WHAT", "MEDIAN µs", "P99 µs"],
            &rows
                .iter()
                .map(|(what, (median, p99))| {
                    vec![
                        what.to_string(),
                        format!("{median:.0}"),
                        format!("{p99:.0}"),
                    ]
                })
                .collect::<Vec<_>>()
        )
    );
    let value = json!(
        rows.iter()
            .map(
                |(what, (median, p99))| json!({ "what": what, "median_us": median, "p99_us": p99 })
            )
            .collect::<Vec<_>>()
    );
    rig.simulator.shutdown().await;
    Ok((section, value))
}

async fn throughput(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    const LINKS: i64 = 10_000;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for concurrency in [16, 64, 256] {
        let rig = Rig::start(plugin).await?;
        let first = rig.links(LINKS).await?;
        let syncer = rig.syncer(usize::MAX);
        // Warm the plugin's caches (token, metadata) with one sync.
        syncer.sync(first, Trigger::Manual).await?;
        rig.clock.advance(7200);
        let scheduler = Scheduler::new(Arc::clone(&syncer), concurrency);
        let started = Instant::now();
        let round = scheduler.run_due().await?;
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            round.succeeded == LINKS as usize,
            "only {} of {LINKS} syncs succeeded",
            round.succeeded
        );
        let per_second = LINKS as f64 / elapsed;
        rows.push(vec![
            LINKS.to_string(),
            concurrency.to_string(),
            rig.simulator.peak_concurrency().to_string(),
            format!("{elapsed:.2}"),
            format!("{per_second:.0}"),
            format!("{:.2} M", per_second * 3600.0 / 1e6),
        ]);
        values.push(json!({
            "links": LINKS,
            "concurrency": concurrency,
            "peak_requests_at_once": rig.simulator.peak_concurrency(),
            "seconds": elapsed,
            "syncs_per_second": per_second,
            "syncs_per_hour": per_second * 3600.0,
        }));
        rig.simulator.shutdown().await;
    }
    let section = format!(
        "Syncs per second, every link due at once (one connection, plugin limit 48 per \
         connection; the simulator shares the cores)\n\n{}",
        table(
            &[
                "LINKS",
                "CONCURRENCY",
                "PEAK AT SIMULATOR",
                "SECONDS",
                "SYNCS/S",
                "PER HOUR"
            ],
            &rows
        )
    );
    Ok((section, Value::Array(values)))
}

async fn cold_start(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    let rig = Rig::start(plugin).await?;
    let kr = rig.links(1).await?;
    rig.syncer(usize::MAX).sync(kr, Trigger::Manual).await?;
    let cache = rig.data_dir.path().join("precompiled");
    let mut rows = Vec::new();
    let mut values = Vec::new();
    // A restart: the database, its plugin caches and (or not) the compiled plugin
    // are there; the time is opening, loading and the first sync.
    for (label, cache_dir) in [
        ("compiling the plugin", None),
        ("precompiled artifact", Some(cache.as_path())),
    ] {
        let mut samples = Vec::new();
        for _ in 0..5 {
            rig.clock.advance(7200);
            let started = Instant::now();
            let db = Database::open(rig.data_dir.path())?;
            let runtime = Arc::new(
                crate::runtime::load_with_limits(plugin, db.clone(), Limits::default(), cache_dir)
                    .await?,
            );
            Syncer::new(db, runtime, Arc::new(rig.clock.clone()), usize::MAX)
                .sync(kr, Trigger::Manual)
                .await?;
            samples.push(started.elapsed());
        }
        let (median, _) = percentiles(samples);
        rows.push(vec![label.to_string(), format!("{:.1}", median / 1000.0)]);
        values.push(json!({ "how": label, "median_ms": median / 1000.0 }));
    }
    let speedup = values[0]["median_ms"].as_f64().unwrap_or(f64::NAN)
        / values[1]["median_ms"].as_f64().unwrap_or(f64::NAN);
    let section = format!(
        "Start to first completed sync (open the database, load the plugin, one sync; \
         median of 5)\n\n{}\n\nthe precompiled artifact is {speedup:.0}x faster",
        table(&["HOW", "MILLISECONDS"], &rows)
    );
    rig.simulator.shutdown().await;
    Ok((section, json!({ "runs": values, "speedup": speedup })))
}

async fn memory(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    const LINKS: i64 = 10_000;
    const CONCURRENCY: usize = 64;
    let before = rss_bytes().unwrap_or_default();
    let rig = Rig::start(plugin).await?;
    let loaded = rss_bytes().unwrap_or_default();
    let first = rig.links(LINKS).await?;
    let syncer = rig.syncer(usize::MAX);
    syncer.sync(first, Trigger::Manual).await?;
    let scheduled = rss_bytes().unwrap_or_default();

    // Sample the resident size while a round of syncs runs.
    rig.clock.advance(7200);
    let peak = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, running) = (Arc::clone(&peak), Arc::clone(&running));
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes().unwrap_or_default(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let idle = rss_bytes().unwrap_or_default();
    Scheduler::new(Arc::clone(&syncer), CONCURRENCY)
        .run_due()
        .await?;
    running.store(false, Ordering::Relaxed);
    sampler.await.ok();
    let peak = peak.load(Ordering::Relaxed);
    let per_sync = peak.saturating_sub(idle) / CONCURRENCY as u64;
    let section = format!(
        "Resident memory\n\n{}",
        table(
            &["WHAT", "RSS"],
            &[
                vec!["the bench process before starting".into(), mib(before)],
                vec!["simulator started".into(), mib(rig.rss_with_simulator)],
                vec!["plugin compiled and loaded".into(), mib(loaded)],
                vec![format!("with {LINKS} links scheduled"), mib(scheduled)],
                vec![
                    format!("peak during a round of {LINKS} syncs, {CONCURRENCY} at once"),
                    mib(peak)
                ],
                vec![
                    "per concurrent sync ((peak - idle) / concurrency)".into(),
                    mib(per_sync)
                ],
            ]
        )
    );
    rig.simulator.shutdown().await;
    Ok((
        section,
        json!({
            "before_bytes": before,
            "simulator_bytes": rig.rss_with_simulator,
            "loaded_bytes": loaded,
            "scheduled_bytes": scheduled,
            "peak_bytes": peak,
            "per_concurrent_sync_bytes": per_sync,
        }),
    ))
}
