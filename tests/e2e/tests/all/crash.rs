//! Crash safety: a scheduler process killed with SIGKILL while syncs are in
//! flight, then started again. Nothing is lost, duplicated or applied twice, and
//! the interrupted syncs run again, once. The data changes while the host is
//! down, so a value from the wrong run, or applied again, shows: each Key
//! Result's value and its time are exactly those of its one successful run.

use dataverse_sim::Row;
use goals_e2e::{Cli, Sim, goals_host_binary, hot_leads};
use goals_host::bindings::{Aggregation, CurrencyChoice};
use goals_host::connections;
use goals_host::db::Database;
use goals_host::goals::keyresults::{self, ItemKind, NewKeyResult};
use goals_host::goals::linking::{self, Wanted};
use goals_host::goals::progress::{Direction, Unit};
use goals_host::goals::sync::{SyncRun, history};
use goals_host::runtime::{self, PluginSource};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

const LINKS: usize = 24;

/// Hot leads added while the host is down.
const ADDED: usize = 7;

/// `count` new open hot leads, numbered from `first`.
fn hot_lead_rows(first: usize, count: usize) -> Vec<Row> {
    (first..first + count)
        .map(|i| {
            let mut row = Row::new();
            row.insert(
                "leadid".into(),
                json!(format!("0000c4a5-0000-4000-8000-{i:012}")),
            );
            row.insert("fullname".into(), json!(format!("Crash Lead {i}")));
            row.insert("statecode".into(), json!(0));
            row.insert("leadqualitycode".into(), json!(1));
            row.insert("createdon".into(), json!("2025-06-01T12:00:00Z"));
            row
        })
        .collect()
}

/// Every sync run of the Key Results, in the order they started.
async fn runs(db: &Database, krs: &[i64]) -> Vec<SyncRun> {
    let mut all = Vec::new();
    for &kr in krs {
        all.extend(
            history(db, kr, 100, None)
                .await
                .expect("read the sync runs"),
        );
    }
    all.sort_by_key(|run| run.id);
    all
}

/// Each Key Result's value and its time are exactly those of its latest
/// successful run, and a Key Result without one has no value: no value comes
/// from a run that did not finish, nor is applied again by another.
async fn values_follow_runs(db: &Database, krs: &[i64], when: &str) {
    for &kr in krs {
        let runs = history(db, kr, 100, None).await.unwrap();
        // Newest first.
        let latest = runs.iter().find(|r| r.status == "success");
        let current = keyresults::get_by_id(db, kr).await.unwrap();
        let expected = latest.map_or((None, None, None), |run| {
            (run.value, run.finished_at, Some("sync".to_string()))
        });
        assert_eq!(
            (
                current.current_value,
                current.current_at,
                current.current_source
            ),
            expected,
            "{when}: Key Result {kr}, runs {runs:?}"
        );
    }
}

/// (running, succeeded, interrupted) sync runs, and links with a running claim.
async fn census(db: &Database) -> (i64, i64, i64, i64) {
    db.run(|conn| {
        let count = |sql: &str| conn.query_row(sql, goals_host::params![], |r| r.get::<i64>(0));
        Ok((
            count("SELECT count(*) FROM sync_runs WHERE status = 'running'")?,
            count("SELECT count(*) FROM sync_runs WHERE status = 'success'")?,
            count("SELECT count(*) FROM sync_runs WHERE status = 'interrupted'")?,
            count("SELECT count(*) FROM metric_links WHERE running_since IS NOT NULL")?,
        ))
    })
    .await
    .expect("read the database")
}

#[tokio::test]
async fn a_killed_scheduler_loses_nothing_and_retries_what_it_interrupted_once() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());

    // Links created directly in the host's database, all due now.
    let db = Database::open(cli.data_dir()).expect("open the host's database");
    let runtime = runtime::load(&PluginSource::Embedded, db.clone())
        .await
        .expect("plugin");
    let conn = connections::get(&db, "sim", None)
        .await
        .expect("connection");
    let metric = linking::choose(
        &runtime,
        &conn,
        &Wanted {
            app: "Sales Hub".into(),
            entity: "lead".into(),
            view: "Hot Leads".into(),
            measure: goals_host::goals::linking::WantedMeasure::Column {
                column: "fullname".into(),
                aggregation: Aggregation::Count,
            },
            currency: CurrencyChoice::Base,
            window: None,
        },
    )
    .await
    .expect("metric")
    .metric;
    let now = goals_host::goals::clock::Clock::now(&goals_host::goals::clock::SystemClock);
    let mut krs = Vec::new();
    for i in 0..LINKS {
        let kr = keyresults::create(
            &db,
            NewKeyResult {
                kind: ItemKind::KeyResult,
                parent_id: None,
                due_date: None,
                period: Default::default(),
                organization_id: conn.organization_id,
                title: format!("KR {i}"),
                owner: "ana".into(),
                unit: Unit::Number,
                currency_code: None,
                start: 0.0,
                target: 10_000.0,
                direction: Direction::Increase,
            },
            now,
        )
        .await
        .expect("key result");
        keyresults::save_link(&db, kr.id, metric.clone(), 3600, now)
            .await
            .expect("link");
        krs.push(kr.id);
    }

    // Slow answers keep several syncs in flight at once; with at most six
    // claimed at a time, some links have not started when the host dies.
    sim.server.set_latency(Duration::from_millis(400));
    let mut scheduler = tokio::process::Command::new(goals_host_binary())
        .arg("--data-dir")
        .arg(cli.data_dir())
        .args([
            "run",
            "--poll",
            "0.05",
            "--concurrency",
            "6",
            "--per-connection",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the scheduler");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (running, succeeded, _, _) = census(&db).await;
        if running > 0 && succeeded > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sync got in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no chance to clean up.
    scheduler.start_kill().expect("kill -9");
    scheduler.wait().await.expect("reap");
    let (running, succeeded, interrupted, claimed) = census(&db).await;
    assert!(running > 0, "syncs were in flight when the host died");
    assert_eq!(
        running, claimed,
        "every running sync holds its link's claim"
    );
    assert_eq!(interrupted, 0);
    let at_kill = runs(&db, &krs).await;
    let synced_before: BTreeMap<i64, i64> = at_kill
        .iter()
        .filter(|r| r.status == "success")
        .map(|r| (r.key_result_id, r.id))
        .collect();
    let in_flight: BTreeSet<i64> = at_kill
        .iter()
        .filter(|r| r.status == "running")
        .map(|r| r.key_result_id)
        .collect();
    let last_run_before = at_kill.iter().map(|r| r.id).max().unwrap_or(0);
    assert_eq!(
        synced_before.len() as i64,
        succeeded,
        "one success per link"
    );
    assert_eq!(in_flight.len() as i64, running, "one running sync per link");
    eprintln!(
        "at the kill: {succeeded} synced, {running} in flight, {} not started",
        LINKS as i64 - succeeded - running
    );
    values_follow_runs(&db, &krs, "at the kill").await;

    // The data changes while the host is down: a value measured before the kill
    // and one measured after the restart differ.
    let before = hot_leads();
    let after = before + ADDED as f64;
    sim.server.add_rows("lead", hot_lead_rows(0, ADDED));

    sim.server.set_latency(Duration::ZERO);
    let restarted = cli.json(&["run", "--once", "--per-connection", "8"]).await;
    let left = LINKS as i64 - succeeded;
    assert_eq!(
        restarted,
        json!({
            "started": left,
            "succeeded": left,
            "failed": 0,
            "skipped": 0,
            "interrupted": 0,
            "recovered_interrupted": running,
        }),
        "the links not synced before the kill sync now, once"
    );
    let (running_after, succeeded_after, interrupted_after, claimed_after) = census(&db).await;
    assert_eq!(
        (running_after, claimed_after),
        (0, 0),
        "nothing is left running"
    );
    assert_eq!(
        interrupted_after, running,
        "each interrupted run is marked, none lost"
    );
    assert_eq!(
        succeeded_after as usize, LINKS,
        "every link synced exactly once: {succeeded} before the kill, the rest after"
    );
    for &kr in &krs {
        let runs = history(&db, kr, 100, None).await.unwrap();
        let successes: Vec<_> = runs.iter().filter(|r| r.status == "success").collect();
        assert_eq!(successes.len(), 1, "Key Result {kr}: {runs:?}");
        let success = successes[0];
        match synced_before.get(&kr) {
            Some(&id) => {
                assert_eq!(success.id, id, "Key Result {kr} did not sync again");
                assert_eq!(success.value, Some(before), "Key Result {kr}");
            }
            None => {
                assert!(success.id > last_run_before, "Key Result {kr}: {runs:?}");
                assert_eq!(success.value, Some(after), "Key Result {kr}");
            }
        }
        let interrupted = runs.iter().filter(|r| r.status == "interrupted").count();
        assert_eq!(
            interrupted,
            usize::from(in_flight.contains(&kr)),
            "Key Result {kr}: {runs:?}"
        );
        assert_eq!(runs.len(), 1 + interrupted, "Key Result {kr}: {runs:?}");
        let link = keyresults::link(&db, kr).await.unwrap().expect("linked");
        assert!(
            link.next_run_at > now,
            "the schedule moved on for Key Result {kr}"
        );
        assert!(link.running_since.is_none());
        assert_eq!(link.last_success_at, success.finished_at, "Key Result {kr}");
    }
    values_follow_runs(&db, &krs, "after the restart").await;

    // Nothing is due any more: another start syncs nothing, though the data
    // changed again, and every value stays as it is.
    let settled = runs(&db, &krs).await;
    sim.server.add_rows("lead", hot_lead_rows(ADDED, ADDED));
    let again = cli.json(&["run", "--once"]).await;
    assert_eq!(again["started"], json!(0), "{again}");
    assert_eq!(again["recovered_interrupted"], json!(0), "{again}");
    assert_eq!(
        runs(&db, &krs).await,
        settled,
        "no run was added or changed"
    );
    values_follow_runs(&db, &krs, "after another start").await;
}
