//! Key Results through the `goals-host` binary: admins' switches, linking by
//! flags, Sync now, details, history, sign-in repair, and a scheduler process
//! that is really stopped and started again.

use goals_e2e::{CREATE_KR, Cli, Sim, hot_leads, hot_leads_link};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

async fn create_kr(cli: &Cli, extra: &[&str]) -> String {
    let kr = cli.json(&[&CREATE_KR[..], extra].concat()).await;
    kr["id"].as_i64().expect("an id").to_string()
}

async fn link_hot_leads(cli: &Cli, kr: &str, extra: &[&str]) -> Value {
    cli.json(&hot_leads_link(kr, "sim", extra)).await
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
    assert_eq!(
        link["interval_seconds"], 3600,
        "the plugin's declared interval, hourly"
    );
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
    let refused = cli.run(&hot_leads_link(&kr, "sim", &["--json"])).await;
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

/// `goals-host run` starting while a Sync now runs in another process leaves
/// that sync alone: it is neither marked interrupted nor run again beside it.
#[tokio::test]
async fn a_scheduler_starting_beside_a_running_sync_now_leaves_it_alone() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &[]).await;
    sim.server.set_latency(Duration::from_secs(5));
    let statuses = |history: Value| -> Vec<String> {
        history
            .as_array()
            .map(|runs| {
                runs.iter()
                    .map(|r| r["status"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let sync_args = ["kr", "sync", &kr, "--json"];
    let (sync_now, scheduler) = tokio::join!(cli.run(&sync_args), async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !statuses(cli.json(&["kr", "history", &kr]).await).contains(&"running".to_string()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Sync now never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cli.json(&["run", "--once"]).await
    });
    assert!(sync_now.success(), "{}", sync_now.stderr);
    assert_eq!(scheduler["recovered_interrupted"], 0, "{scheduler}");
    assert_eq!(scheduler["started"], 0, "{scheduler}");
    assert_eq!(
        statuses(cli.json(&["kr", "history", &kr]).await),
        ["success", "success"],
        "the link's first sync and the Sync now, nothing interrupted"
    );
}

#[tokio::test]
async fn a_key_result_moves_to_another_connection_of_its_organization() {
    let primary = Sim::start().await;
    let backup = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&primary, "primary").await.success());
    assert!(cli.add_connection(&backup, "backup").await.success());
    let kr = create_kr(&cli, &[]).await;
    let linked = cli.json(&hot_leads_link(&kr, "primary", &[])).await;
    assert_eq!(linked["run"]["status"], "success");
    let primary_view = cli.json(&["kr", "show", &kr]).await["link"]["view_id"]
        .as_str()
        .expect("the view's id")
        .to_string();
    // The backup environment knows the same view under another id.
    let backup_view = "0b5e1e55-0000-4000-8000-00000000beef";
    backup.server.rekey_view(&primary_view, backup_view);

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
    assert_eq!(
        details["link"]["view_id"], backup_view,
        "found by name, saved under the backup's id"
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

fn alert_kinds(alerts: &Value) -> Vec<String> {
    alerts
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| a["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_check_in_stays_while_paused_and_the_next_sync_after_resuming_replaces_it() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &[]).await;

    cli.json(&["kr", "checkin", &kr, "42"]).await;
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(
        shown.contains("will replace it") && shown.contains("kr pause"),
        "the details say the next sync replaces the check-in, unless paused:\n{shown}"
    );

    // Resuming makes the link due at once; pausing again keeps the scheduler off it.
    assert_eq!(cli.json(&["kr", "pause", &kr]).await["state"], "paused");
    cli.json(&["kr", "resume", &kr]).await;
    assert_eq!(cli.json(&["kr", "pause", &kr]).await["state"], "paused");
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(shown.contains("the link is paused"), "{shown}");
    assert_eq!(cli.json(&["run", "--once"]).await["started"], 0);
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["key_result"]["current_value"], json!(42.0));
    assert_eq!(details["key_result"]["current_source"], "check-in");

    assert_eq!(cli.json(&["kr", "resume", &kr]).await["state"], "active");
    assert_eq!(cli.json(&["run", "--once"]).await["succeeded"], 1);
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["key_result"]["current_value"], json!(hot_leads()));
    assert_eq!(details["key_result"]["current_source"], "sync");
}

#[tokio::test]
async fn a_deleted_view_breaks_the_link_with_one_alert_until_it_is_unlinked() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &[]).await;
    let view = cli.json(&["kr", "show", &kr]).await["link"]["view_id"]
        .as_str()
        .expect("the view's id")
        .to_string();
    sim.server.delete_view(&view);

    // Sync now ran, and reports the failed sync it recorded.
    let failed = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(failed["run"]["status"], "failure", "{failed}");
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["link"]["state"], "broken", "{details}");
    let reason = details["link"]["state_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("view or column was deleted or renamed: relink"),
        "{reason}"
    );
    assert_eq!(details["last_run"]["status"], "failure");
    assert_eq!(details["last_run"]["error_kind"], "not-found");
    assert_eq!(
        details["key_result"]["current_value"],
        json!(hot_leads()),
        "the last good value stays"
    );
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(shown.contains("deleted or renamed"), "{shown}");

    for _ in 0..2 {
        assert_eq!(
            cli.json(&["run", "--once"]).await["started"],
            0,
            "a broken link stops"
        );
    }
    let alerts = cli.json(&["alerts"]).await;
    assert_eq!(
        alert_kinds(&alerts),
        ["broken-link"],
        "one per episode: {alerts}"
    );
    assert!(
        alerts[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deleted or renamed")),
        "{alerts}"
    );

    cli.json(&["kr", "unlink", &kr]).await;
    assert_eq!(
        cli.json(&["alerts"]).await,
        json!([]),
        "unlinking closes it"
    );
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["link"], Value::Null);
    assert_eq!(details["key_result"]["current_value"], json!(hot_leads()));
    let closed = cli.json(&["alerts", "--all"]).await;
    assert!(
        closed[0]["closed_at"].as_i64() >= closed[0]["opened_at"].as_i64(),
        "{closed}"
    );
}

#[tokio::test]
async fn a_disabled_connection_stops_its_links_and_says_why_until_enabled() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &["--interval", "1"]).await;

    let disabled = cli
        .json(&["connection", "disable", "sim", "--reason", "license review"])
        .await;
    assert_eq!(disabled["status"], "disabled");
    let details = cli.json(&["kr", "show", &kr]).await;
    let why = details["link"]["stopped_because"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("connection 'sim' is disabled") && why.contains("license review"),
        "{details}"
    );
    let sync = cli.run(&["kr", "sync", &kr]).await;
    assert!(!sync.success());
    assert!(sync.stderr.contains("disabled"), "{}", sync.stderr);

    // Two intervals without a success: the value is stale, one alert says so.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    for _ in 0..2 {
        assert_eq!(cli.json(&["run", "--once"]).await["started"], 0);
    }
    assert_eq!(cli.json(&["kr", "show", &kr]).await["stale"], true);
    assert_eq!(alert_kinds(&cli.json(&["alerts"]).await), ["stale"]);

    let enabled = cli.json(&["connection", "enable", "sim"]).await;
    assert_eq!(enabled["status"], "ok");
    assert_eq!(cli.json(&["run", "--once"]).await["succeeded"], 1);
    assert_eq!(cli.json(&["kr", "show", &kr]).await["stale"], false);
    assert_eq!(cli.json(&["alerts"]).await, json!([]));

    let again = cli.run(&["connection", "enable", "sim"]).await;
    assert!(!again.success());
    assert!(again.stderr.contains("is not disabled"), "{}", again.stderr);
}
