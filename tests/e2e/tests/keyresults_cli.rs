//! Key Results through the `goals-host` binary: admins' switches, linking by
//! flags, Sync now, details, history, sign-in repair, and a scheduler process
//! that is really stopped and started again.

use goals_e2e::{Cli, Sim, dataset};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

fn hot_leads() -> f64 {
    dataset()
        .rows("lead")
        .iter()
        .filter(|row| {
            row.get("statecode") == Some(&json!(0)) && row.get("leadqualitycode") == Some(&json!(1))
        })
        .count() as f64
}

async fn create_kr(cli: &Cli, extra: &[&str]) -> String {
    let mut args = vec![
        "kr",
        "create",
        "--title",
        "Work hot leads",
        "--owner",
        "ana",
        "--start",
        "0",
        "--target",
        "10000",
    ];
    args.extend_from_slice(extra);
    let kr = cli.json(&args).await;
    kr["id"].as_i64().expect("an id").to_string()
}

async fn link_hot_leads(cli: &Cli, kr: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "kr",
        "link",
        kr,
        "--connection",
        "sim",
        "--app",
        "Sales Hub",
        "--entity",
        "lead",
        "--view",
        "Hot Leads",
        "--column",
        "fullname",
        "--aggregation",
        "count",
    ];
    args.extend_from_slice(extra);
    cli.json(&args).await
}

#[tokio::test]
async fn a_key_result_linked_by_flags_syncs_and_shows_its_details() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;

    let linked = link_hot_leads(&cli, &kr, &[]).await;
    assert_eq!(linked["preview"]["value"], json!(hot_leads()));
    assert_eq!(linked["run"]["status"], "success");
    assert_eq!(linked["key_result"]["current_value"], json!(hot_leads()));
    let progress = hot_leads() / 10000.0 * 100.0;
    let shown = linked["key_result"]["progress_percent"]
        .as_f64()
        .expect("progress");
    assert!((shown - progress.min(100.0)).abs() < 1e-9);

    let synced = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(synced["run"]["trigger"], "manual");
    assert_eq!(
        synced["run"]["requests"],
        json!(1),
        "a cached sync is one request"
    );

    let details = cli.json(&["kr", "show", &kr]).await;
    let link = &details["link"];
    assert_eq!(link["connection"], "sim");
    assert_eq!(link["app"], "Sales Hub");
    assert_eq!(link["entity"], "lead");
    assert_eq!(link["view"], "Hot Leads");
    assert_eq!(link["column"], "fullname");
    assert_eq!(link["aggregation"], "count");
    assert_eq!(link["state"], "active");
    assert_eq!(details["stale"], false);
    assert_eq!(details["last_run"]["status"], "success");
    assert!(link["next_run_at"].as_i64().is_some());

    let text = cli.run(&["kr", "show", &kr]).await;
    for label in ["Dynamics 365 link", "last success", "next sync", "stale"] {
        assert!(
            text.stdout.contains(label),
            "{label} missing:\n{}",
            text.stdout
        );
    }

    let history = cli.json(&["kr", "history", &kr]).await;
    let runs = history.as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["status"] == "success"));
    assert_eq!(cli.json(&["alerts"]).await, json!([]));
}

#[tokio::test]
async fn a_link_to_an_entity_outside_the_app_is_refused_with_the_choices() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    let run = cli
        .run(&[
            "kr",
            "link",
            &kr,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
            "--entity",
            "incident",
            "--view",
            "Active Cases",
            "--column",
            "title",
            "--aggregation",
            "count",
        ])
        .await;
    assert!(!run.success());
    assert!(
        run.stderr.contains("has no entity 'incident'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("opportunity"), "{}", run.stderr);
    assert_eq!(
        cli.json(&["kr", "show", &kr]).await["link"],
        Value::Null,
        "nothing saved"
    );
}

#[tokio::test]
async fn the_admins_switches_stop_syncs_and_the_details_say_why() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    for args in [
        vec!["tenant", "create", "Contoso"],
        vec!["org", "create", "Contoso Sales", "--tenant", "Contoso"],
    ] {
        assert!(cli.run(&args).await.success());
    }
    let added = cli
        .add_connection_with(
            &sim,
            "sim",
            &sim.config.client_secret,
            &["--org", "Contoso Sales"],
            &[],
        )
        .await;
    assert!(added.success(), "{}", added.stderr);
    let kr = create_kr(&cli, &["--org", "Contoso Sales"]).await;

    // Both switches are off for a new tenant and organization.
    let refused = cli
        .run(&[
            "kr",
            "link",
            &kr,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
            "--entity",
            "lead",
            "--view",
            "Hot Leads",
            "--column",
            "fullname",
            "--aggregation",
            "count",
            "--json",
        ])
        .await;
    assert!(!refused.success());
    assert_eq!(refused.json()["error"]["kind"], "disabled");
    assert!(
        refused.stderr.contains("tenant 'Contoso'"),
        "{}",
        refused.stderr
    );

    assert!(cli.run(&["tenant", "enable", "Contoso"]).await.success());
    assert!(cli.run(&["org", "enable", "Contoso Sales"]).await.success());
    let linked = link_hot_leads(&cli, &kr, &[]).await;
    assert_eq!(linked["run"]["status"], "success");

    assert!(
        cli.run(&["org", "disable", "Contoso Sales"])
            .await
            .success()
    );
    let sync = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(sync.json()["error"]["kind"], "disabled");
    let details = cli.json(&["kr", "show", &kr]).await;
    let why = details["link"]["stopped_because"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("organization 'Contoso Sales'"), "{details}");
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 0, "no scheduled syncs while disabled");
}

#[tokio::test]
async fn sign_in_with_a_wrong_secret_changes_nothing_and_the_right_one_repairs() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let wrong = cli
        .run_with_env(
            &[
                "connection",
                "sign-in",
                "sim",
                "--client-secret-env",
                "S",
                "--json",
            ],
            &[("S", "not-the-secret")],
        )
        .await;
    assert!(!wrong.success());
    assert_eq!(wrong.json()["error"]["kind"], "unauthorized");
    // The stored secret still works.
    let kr = create_kr(&cli, &[]).await;
    assert_eq!(
        link_hot_leads(&cli, &kr, &[]).await["run"]["status"],
        "success"
    );

    let right = cli
        .run_with_env(
            &[
                "connection",
                "sign-in",
                "sim",
                "--client-secret-env",
                "S",
                "--json",
            ],
            &[("S", &sim.config.client_secret)],
        )
        .await;
    assert!(right.success(), "{}", right.stderr);
    assert_eq!(right.json()["status"], "ok");
    for output in [&wrong.stdout, &wrong.stderr, &right.stdout, &right.stderr] {
        assert!(!output.contains(&sim.config.client_secret));
    }
}

async fn successful_runs(cli: &Cli, kr: &str) -> usize {
    cli.json(&["kr", "history", kr, "--limit", "1000"])
        .await
        .as_array()
        .map(|runs| runs.iter().filter(|r| r["status"] == "success").count())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_stopped_scheduler_catches_up_once_when_started_again() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &["--interval", "1"]).await;

    // A scheduler process syncs the link every second...
    let mut scheduler = tokio::process::Command::new(goals_e2e::goals_host_binary())
        .arg("--data-dir")
        .arg(cli.data_dir())
        .args(["run", "--poll", "0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the scheduler");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while successful_runs(&cli, &kr).await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduler did not sync"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...until the process is killed.
    scheduler.kill().await.expect("stop the scheduler");
    let before = successful_runs(&cli, &kr).await;

    // Several runs are missed while it is down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 1, "{once}");
    assert_eq!(
        successful_runs(&cli, &kr).await,
        before + 1,
        "caught up once, not per missed run"
    );
    let details = cli.json(&["kr", "show", &kr]).await;
    let next = details["link"]["next_run_at"].as_i64().expect("next run");
    let last = details["link"]["last_success_at"]
        .as_i64()
        .expect("last success");
    assert_eq!(next, last + 1, "the next run follows the interval from now");
}

#[tokio::test]
async fn a_key_result_moves_to_another_connection_of_its_organization() {
    let primary = Sim::start().await;
    let backup = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&primary, "primary").await.success());
    assert!(cli.add_connection(&backup, "backup").await.success());
    let kr = create_kr(&cli, &[]).await;
    let linked = cli
        .json(&[
            "kr",
            "link",
            &kr,
            "--connection",
            "primary",
            "--app",
            "Sales Hub",
            "--entity",
            "lead",
            "--view",
            "Hot Leads",
            "--column",
            "fullname",
            "--aggregation",
            "count",
        ])
        .await;
    assert_eq!(linked["run"]["status"], "success");

    backup.server.clear_requests();
    let moved = cli
        .json(&["kr", "link", &kr, "--connection", "backup"])
        .await;
    assert_eq!(moved["run"]["status"], "success");
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["link"]["connection"], "backup");
    assert_eq!(
        details["link"]["view"], "Hot Leads",
        "the metric stays the same"
    );
    assert!(
        !backup.server.requests().is_empty(),
        "the sync went to the new connection"
    );

    // A connection of another organization is not offered.
    assert!(cli.run(&["tenant", "create", "Other"]).await.success());
    assert!(
        cli.run(&["org", "create", "Elsewhere", "--tenant", "Other"])
            .await
            .success()
    );
    let added = cli
        .add_connection_with(
            &backup,
            "foreign",
            &backup.config.client_secret,
            &["--org", "Elsewhere"],
            &[],
        )
        .await;
    assert!(added.success(), "{}", added.stderr);
    let refused = cli
        .run(&["kr", "link", &kr, "--connection", "foreign", "--json"])
        .await;
    assert!(!refused.success());
    assert_eq!(refused.json()["error"]["kind"], "not-found");
}
