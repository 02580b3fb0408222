//! Syncs per second with 1, 2 and 3 `goals-host run` processes (release build)
//! on one PostgreSQL database, beside one on SQLite, and the claim latency
//! each host logs (p50, p99): 2,000 links due at once on two connections, each
//! to a simulator of its own on loopback, answering at once. Run with
//! `GOALS_TEST_DATABASE_URL=postgres://... cargo bench -p goals-e2e --bench hosts`
//! (`GOALS_BENCH_LINKS` changes the number of links); it prints a table.

use goals_e2e::{CREATE_KR, Cli, Sim, cargo_binary, cargo_messages, copy_links};
use goals_host::db::Database;
use goals_host::goals::clock::{Clock, SystemClock};
use goals_host::params;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The release build of goals-host, built (or found up to date) by cargo.
fn release_binary() -> PathBuf {
    let mut build = std::process::Command::new(cargo_binary());
    // The bench's own packages and targets besides the binary, so cargo
    // unifies features as for the bench and reuses its release build.
    build
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "goals-host",
            "-p",
            "goals-e2e",
            "--bin",
            "goals-host",
            "--benches",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cargo_messages(build, "the release goals-host")
        .iter()
        .find_map(|m| {
            (m["target"]["name"] == "goals-host")
                .then(|| m["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .expect("cargo reported the goals-host executable")
}

/// One measured round.
struct Round {
    backend: &'static str,
    hosts: usize,
    seconds: f64,
    /// Claim times in microseconds, from every host's log.
    claims: Vec<u64>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

async fn open(cli: &Cli) -> Database {
    match cli.database_url() {
        Some(url) => Database::open_postgres(url, cli.data_dir()).await,
        None => Database::open(cli.data_dir()),
    }
    .expect("open the bench's database")
}

async fn synced_since(db: &Database, since: i64) -> i64 {
    db.run(move |sql| {
        Ok(sql.query_row(
            "SELECT count(DISTINCT key_result_id) FROM sync_runs
             WHERE status = 'success' AND started_at >= ?1",
            params![since],
            |r| r.get(0),
        )?)
    })
    .await
    .expect("count the synced links")
}

async fn round(binary: &Path, cli: Cli, backend: &'static str, hosts: usize, links: i64) -> Round {
    let (first, second) = (Sim::start().await, Sim::start().await);
    assert!(cli.add_connection(&first, "first").await.success());
    assert!(cli.add_connection(&second, "second").await.success());
    let kr = cli.json(&CREATE_KR).await["id"].to_string();
    cli.json(&[
        "kr",
        "link",
        &kr,
        "--connection",
        "first",
        "--app",
        "Sales Hub",
        "--entity",
        "account",
        "--view",
        "Active Accounts",
        "--column",
        "name",
        "--aggregation",
        "count",
    ])
    .await;
    let db = open(&cli).await;
    let second_id = goals_host::connections::get(&db, "second", None)
        .await
        .expect("the second connection")
        .id;
    copy_links(&db, kr.parse().expect("an id"), links, &second_id).await;

    // On PostgreSQL each host has a data directory of its own, as on its own
    // machine, and the key; on SQLite the one host runs in the data directory.
    let dirs: Vec<tempfile::TempDir> = (0..hosts).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Vec::new();
    for dir in &dirs {
        let mut command = tokio::process::Command::new(binary);
        match cli.database_url() {
            Some(url) => {
                command
                    .arg("--data-dir")
                    .arg(dir.path())
                    .env("GOALS_HOST_DATABASE_URL", url)
                    .env(
                        "GOALS_HOST_SECRET_KEY_FILE",
                        cli.data_dir().join("secret.key"),
                    );
            }
            None => {
                command.arg("--data-dir").arg(cli.data_dir());
            }
        }
        children.push(
            command
                .arg("--cache-dir")
                .arg(binary.with_file_name("bench-precompiled"))
                .args(["run", "--poll", "0.25"])
                .env("RUST_LOG", "goals_host::sync=info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("host.log")).unwrap())
                .kill_on_drop(true)
                .spawn()
                .expect("start a host"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let registered: i64 = db
            .run(|sql| Ok(sql.query_row("SELECT count(*) FROM hosts", params![], |r| r.get(0))?))
            .await
            .unwrap();
        if registered as usize >= hosts {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hosts did not start:\n{}",
            dirs.iter()
                .map(|dir| std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let due = SystemClock.now();
    let started = Instant::now();
    db.run(move |sql| {
        Ok(sql.execute("UPDATE metric_links SET next_run_at = ?1", params![due - 1])?)
    })
    .await
    .unwrap();
    while synced_since(&db, due).await < links {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the round did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let mut claims: Vec<u64> = dirs
        .iter()
        .flat_map(|dir| {
            std::fs::read_to_string(dir.path().join("host.log"))
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let (_, rest) = line.split_once(" claim_us=")?;
                    rest.split_once(' ')?.0.parse::<u64>().ok()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    claims.sort_unstable();
    Round {
        backend,
        hosts,
        seconds,
        claims,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os(goals_e2e::postgres::URL_ENV).is_none() {
        eprintln!(
            "skipped: set {}=postgres://… to measure hosts on PostgreSQL",
            goals_e2e::postgres::URL_ENV
        );
        return;
    }
    let links: i64 = std::env::var("GOALS_BENCH_LINKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let binary = release_binary();
    let mut rounds = vec![round(&binary, Cli::new(), "SQLite", 1, links).await];
    for hosts in 1..=3 {
        let cli = Cli::on_postgres(&format!("bench {hosts} hosts"))
            .await
            .expect("a test database");
        rounds.push(round(&binary, cli, "PostgreSQL", hosts, links).await);
    }
    println!("{links} links due at once on two connections, simulators answering at once:\n");
    println!("| database | hosts | syncs/s | claim p50 | claim p99 |");
    println!("|---|---:|---:|---:|---:|");
    for round in &rounds {
        println!(
            "| {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            round.backend,
            round.hosts,
            links as f64 / round.seconds,
            percentile(&round.claims, 0.5),
            percentile(&round.claims, 0.99),
        );
    }
}
