//! Several `goals-host run` processes on one PostgreSQL database, as on several
//! machines (each with its own data directory, so none can see another's lock
//! files): each due link syncs once across them, a host killed with SIGKILL
//! has its claims taken over once their lease lapses, each connection's limit
//! holds across all of them, and `goals-host hosts` shows who is alive.

use goals_e2e::{Cli, Sim, World, copy_links, goals_host_binary, shared_cache_dir};
use goals_host::bindings::Aggregation;
use goals_host::connections;
use goals_host::goals::clock::{Clock, SystemClock};
use goals_host::goals::sync;
use goals_host::params;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

const LINKS: i64 = 1000;
/// Short, so the test waits seconds for the takeover, not the default 30.
const LEASE_SECONDS: i64 = 8;

/// A scheduler process on `world`'s database, with a data directory of its own.
fn start_host(world: &World, data_dir: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(goals_host_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--cache-dir")
        .arg(shared_cache_dir())
        .args(["--claim-lease", &LEASE_SECONDS.to_string()])
        .args(["run", "--poll", "0.25", "--concurrency", "40"])
        .env(
            "GOALS_HOST_DATABASE_URL",
            world.database_url().expect("on PostgreSQL"),
        )
        .env("GOALS_HOST_SECRET_KEY_FILE", world.key_file())
        .stdout(Stdio::null())
        .stderr(log_file(data_dir))
        .kill_on_drop(true)
        .spawn()
        .expect("start a host")
}

/// Where a host's log goes, to be shown when the test fails.
fn log_file(data_dir: &std::path::Path) -> std::fs::File {
    std::fs::File::create(data_dir.join("host.log")).expect("a log file")
}

/// The hosts' logs, for a failure's message.
fn logs(dirs: &[tempfile::TempDir]) -> String {
    dirs.iter()
        .map(|dir| std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// `goals-host hosts --json` on `world`'s database.
async fn hosts(world: &World, cli: &Cli) -> Vec<Value> {
    let url = world.database_url().expect("on PostgreSQL");
    let key = world.key_file();
    let run = cli
        .run_with_env(
            &["hosts", "--json"],
            &[
                ("GOALS_HOST_DATABASE_URL", url),
                (
                    "GOALS_HOST_SECRET_KEY_FILE",
                    key.to_str().expect("a UTF-8 path"),
                ),
            ],
        )
        .await;
    assert!(run.success(), "{}", run.stderr);
    run.json().as_array().cloned().expect("a list of hosts")
}

/// Links synced at least once.
async fn synced_links(world: &World) -> i64 {
    world
        .db
        .run(|sql| {
            Ok(sql.query_row(
                "SELECT count(DISTINCT key_result_id) FROM sync_runs WHERE status = 'success'",
                params![],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

/// Runs of each status, over all links.
async fn census(world: &World) -> BTreeMap<String, i64> {
    world
        .db
        .run(|sql| {
            Ok(sql.query_map(
                "SELECT status, count(*) FROM sync_runs GROUP BY status",
                params![],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
            )?)
        })
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_sync_each_link_once_and_take_over_from_a_killed_one() {
    let Some(world) = World::on_postgres("three hosts").await else {
        return;
    };
    // The second connection on a simulator of its own, which counts that
    // connection's requests at once, whichever host sends them.
    let second_sim = Sim::start().await;
    let second = connections::add(
        &world.db,
        world.runtime.info(),
        second_sim.new_connection("second"),
    )
    .await
    .expect("add the second connection")
    .id;
    let template = world.key_result("KR 0").await;
    world
        .link(
            &template,
            "account",
            "Active Accounts",
            "name",
            Aggregation::Count,
        )
        .await;
    copy_links(&world.db, template.id, LINKS, &second).await;

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children: Vec<tokio::process::Child> = dirs
        .iter()
        .map(|dir| start_host(&world, dir.path()))
        .collect();
    let cli = Cli::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while hosts(&world, &cli).await.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hosts did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // (A small view: the simulator, in this process, stays cheap next to the
    // hosts.) Slow answers keep each connection busy up to its limit; then all links
    // fall due at once, by the wall clock the hosts read.
    world.sim.server.set_latency(Duration::from_millis(200));
    second_sim.server.set_latency(Duration::from_millis(200));
    let due = SystemClock.now() - 1;
    let round_started = std::time::Instant::now();
    world
        .db
        .run(move |sql| Ok(sql.execute("UPDATE metric_links SET next_run_at = ?1", params![due])?))
        .await
        .unwrap();

    // Killed while it holds claims, after the round is under way.
    let victim = children.remove(0);
    let victim_pid = victim.id().expect("the host's pid");
    let victim_owner = format!("{victim_pid}-%");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let owner = victim_owner.clone();
        let (held, synced): (i64, i64) = world
            .db
            .run(move |sql| {
                Ok(sql.query_row(
                    "SELECT (SELECT count(*) FROM metric_links WHERE running_owner LIKE ?1),
                            (SELECT count(*) FROM sync_runs WHERE status = 'success')",
                    params![owner],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        if held > 0 && synced >= 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the round did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut victim = victim;
    victim.start_kill().expect("kill -9");
    victim.wait().await.expect("reap the killed host");
    let killed_at = SystemClock.now();
    eprintln!("at the kill: {:?}", census(&world).await);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while synced_links(&world).await < LINKS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every link synced: {:?}\n{}",
            census(&world).await,
            logs(&dirs)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{LINKS} links synced by 3 hosts (one killed) in {:.1} s",
        round_started.elapsed().as_secs_f64()
    );
    // The hosts command shows the killed host as gone once its heartbeat
    // lapses, holding nothing, and the other two alive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = hosts(&world, &cli).await;
        let victim = listed
            .iter()
            .find(|host| host["pid"] == i64::from(victim_pid))
            .expect("the killed host is listed until it is forgotten");
        if victim["alive"] == false {
            assert_eq!(victim["running"], 0, "{victim}");
            break listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "{victim}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let alive = listed.iter().filter(|host| host["alive"] == true).count();
    assert_eq!(alive, 2, "{listed:?}\n{}", logs(&dirs));
    for child in &mut children {
        child.start_kill().expect("stop a host");
        child.wait().await.expect("reap a host");
    }

    // Each link synced exactly once per slot of its schedule, none lost; what
    // the killed host held was interrupted, once, and synced by another host.
    // (A round this long reaches some links' next hourly slot: those sync
    // again, in that slot, as they should.)
    let runs: Vec<(i64, i64, String, i64)> = world
        .db
        .run(|sql| {
            Ok(sql.query_map(
                "SELECT r.key_result_id, r.started_at, r.status, l.interval_seconds
                 FROM sync_runs r JOIN metric_links l ON l.key_result_id = r.key_result_id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?)
        })
        .await
        .unwrap();
    // Per link and slot (named by the slot's end): successes, interruptions.
    let mut per_slot: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    for (kr, started_at, status, interval) in &runs {
        // A sync of a later slot, cut off when the test stopped the hosts,
        // leaves its slot unfinished: no slot to count.
        if status == "running" {
            continue;
        }
        let slot = per_slot
            .entry((*kr, sync::next_run(*started_at, *interval, *kr)))
            .or_default();
        match status.as_str() {
            "success" => slot.0 += 1,
            "interrupted" => slot.1 += 1,
            other => panic!("Key Result {kr}: a run ended {other}\n{}", logs(&dirs)),
        }
    }
    let synced: BTreeSet<i64> = per_slot.keys().map(|(kr, _)| *kr).collect();
    assert_eq!(synced.len() as i64, LINKS, "every link synced, none lost");
    for ((kr, slot), (successes, interrupted)) in &per_slot {
        assert!(
            *successes == 1 && *interrupted <= 1,
            "Key Result {kr}, slot ending {slot}: {successes} success(es), {interrupted} \
             interrupted\n{:#?}\n{}",
            sync::history(&world.db, *kr, 10, None).await.unwrap(),
            logs(&dirs)
        );
    }
    let owner = victim_owner.clone();
    let (interrupted, others, latest_takeover): (i64, i64, Option<i64>) = world
        .db
        .run(move |sql| {
            Ok(sql.query_row(
                "SELECT count(*) FILTER (WHERE owner LIKE ?1),
                        count(*) FILTER (WHERE owner NOT LIKE ?1),
                        max(finished_at)
                 FROM sync_runs WHERE status = 'interrupted'",
                params![owner],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert!(interrupted > 0, "the killed host held claims");
    assert_eq!(
        others,
        0,
        "only the killed host's syncs were interrupted\n{}",
        logs(&dirs)
    );
    // The round is still going when the lease lapses: a poll of a live host
    // (every 0.25 s, on 2 busy cores) takes the claims over soon after.
    let latest_takeover = latest_takeover.expect("interrupted runs");
    assert!(
        latest_takeover <= killed_at + LEASE_SECONDS + 2,
        "claims taken over {} s after the kill, lease {LEASE_SECONDS} s",
        latest_takeover - killed_at
    );

    let limit = world.runtime.info().max_concurrent_per_connection as usize;
    let peaks = [
        world.sim.server.peak_concurrency(),
        second_sim.server.peak_concurrency(),
    ];
    for peak in peaks {
        assert!(
            peak <= limit,
            "a connection had {peak} requests at once across the hosts, over {limit}"
        );
    }
    eprintln!("peak requests at once per connection: {peaks:?} (limit {limit})");
}
