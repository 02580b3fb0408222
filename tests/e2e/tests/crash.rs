//! Crash safety: a scheduler process killed with SIGKILL while syncs are in
//! flight, then started again. Nothing is lost, duplicated or applied twice, and
//! the interrupted syncs run again, once.

use goals_e2e::{Cli, Sim, dataset, goals_host_binary};
use goals_host::bindings::{Aggregation, CurrencyChoice};
use goals_host::connections;
use goals_host::db::Database;
use goals_host::goals::keyresults::{self, NewKeyResult};
use goals_host::goals::linking::{self, Wanted};
use goals_host::goals::progress::{Direction, Unit};
use goals_host::runtime::{PluginRuntime, PluginSource};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const LINKS: usize = 24;

fn hot_leads() -> f64 {
    dataset()
        .rows("lead")
        .iter()
        .filter(|row| {
            row.get("statecode") == Some(&json!(0)) && row.get("leadqualitycode") == Some(&json!(1))
        })
        .count() as f64
}

/// (running, succeeded, interrupted) sync runs, and links with a running claim.
async fn census(db: &Database) -> (i64, i64, i64, i64) {
    db.run(|conn| {
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
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
    let runtime = PluginRuntime::load(&PluginSource::Embedded, db.clone())
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
            column: "fullname".into(),
            aggregation: Aggregation::Count,
            currency: CurrencyChoice::Base,
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

    // Slow answers keep several syncs in flight at once.
    sim.server.set_latency(Duration::from_millis(400));
    let mut scheduler = tokio::process::Command::new(goals_host_binary())
        .arg("--data-dir")
        .arg(cli.data_dir())
        .args(["run", "--poll", "0.05", "--per-connection", "4"])
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

    sim.server.set_latency(Duration::ZERO);
    let restarted = cli.json(&["run", "--once", "--per-connection", "8"]).await;
    assert_eq!(restarted["recovered_interrupted"], json!(running));
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
    for kr in krs {
        let runs = goals_host::goals::sync::history(&db, kr, 100)
            .await
            .unwrap();
        let successes = runs.iter().filter(|r| r.status == "success").count();
        assert_eq!(successes, 1, "Key Result {kr}: {runs:?}");
        let value = keyresults::get_by_id(&db, kr).await.unwrap().current_value;
        assert_eq!(value, Some(hot_leads()));
        let link = keyresults::link(&db, kr).await.unwrap().expect("linked");
        assert!(
            link.next_run_at > now,
            "the schedule moved on for Key Result {kr}"
        );
        assert!(link.running_since.is_none());
    }
}
