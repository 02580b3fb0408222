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

/// A simulator, a CLI with the connection "sim" to it, and a Key Result linked
/// to the count of Hot Leads (`extra` given to `kr link`) and synced once.
async fn linked_kr(extra: &[&str]) -> (Sim, Cli, String) {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, extra).await;
    (sim, cli, kr)
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
    assert_eq!(link["app_name"], "Sales Hub");
    assert_eq!(link["entity_logical_name"], "lead");
    assert_eq!(link["view_name"], "Hot Leads");
    assert_eq!(link["column_logical_name"], "fullname");
    assert_eq!(link["aggregation"], "count");
    assert_eq!(link["state"], "active");
    assert_eq!(
        link["interval_seconds"], 3600,
        "the plugin's declared interval, hourly"
    );
    assert_eq!(details["stale"], false);
    assert_eq!(details["last_run"]["status"], "success");
    assert!(goals_e2e::seconds(&link["next_run_at"]).is_some());

    let text = cli.run(&["kr", "show", &kr]).await;
    for label in [
        "integration     microsoft.dynamics365",
        "last success",
        "next sync",
        "stale",
    ] {
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
    let (_sim, cli, kr) = linked_kr(&["--interval", "1"]).await;

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
    cli.advance_clock(4);
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 1, "{once}");
    assert_eq!(
        successful_runs(&cli, &kr).await,
        before + 1,
        "caught up once, not per missed run"
    );
    let details = cli.json(&["kr", "show", &kr]).await;
    let next = goals_e2e::seconds(&details["link"]["next_run_at"]).expect("next run");
    let last = goals_e2e::seconds(&details["link"]["last_success_at"]).expect("last success");
    assert_eq!(next, last + 1, "the next run follows the interval from now");
}

/// `goals-host run` starting while a Sync now runs in another process leaves
/// that sync alone: it is neither marked interrupted nor run again beside it.
#[tokio::test]
async fn a_scheduler_starting_beside_a_running_sync_now_leaves_it_alone() {
    let (sim, cli, kr) = linked_kr(&[]).await;
    sim.server.set_latency(Duration::from_secs(5));
    let sync_args = ["kr", "sync", &kr, "--json"];
    let (sync_now, scheduler) = tokio::join!(cli.run(&sync_args), async {
        until_running(&cli, &kr).await;
        cli.json(&["run", "--once"]).await
    });
    assert!(sync_now.success(), "{}", sync_now.stderr);
    assert_eq!(scheduler["recovered_interrupted"], 0, "{scheduler}");
    assert_eq!(scheduler["started"], 0, "{scheduler}");
    assert_eq!(
        run_statuses(&cli, &kr).await,
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
        details["link"]["view_name"], "Hot Leads",
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
    let (_sim, cli, kr) = linked_kr(&[]).await;

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
    let (sim, cli, kr) = linked_kr(&[]).await;
    let view = cli.json(&["kr", "show", &kr]).await["link"]["view_id"]
        .as_str()
        .expect("the view's id")
        .to_string();
    sim.server.delete_view(&view);

    // Sync now ran, and reports the failed sync it recorded, exiting with the
    // code of a missing thing.
    let failed = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&failed), Some(3), "{}", failed.stderr);
    let failed = failed.json();
    assert_eq!(failed["run"]["status"], "failure", "{failed}");
    assert_eq!(failed["error"]["kind"], "not-found", "{failed}");
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
        goals_e2e::seconds(&closed[0]["closed_at"]) >= goals_e2e::seconds(&closed[0]["opened_at"]),
        "{closed}"
    );
}

#[tokio::test]
async fn a_disabled_connection_stops_its_links_and_says_why_until_enabled() {
    let (_sim, cli, kr) = linked_kr(&["--interval", "1"]).await;

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
    cli.advance_clock(3);
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

/// Borrowed arguments from owned ones.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The exit code of a finished `goals-host` run.
fn code(run: &goals_e2e::Run) -> Option<i32> {
    run.output.status.code()
}

#[tokio::test]
async fn exit_codes_tell_a_failed_sync_a_missing_thing_a_usage_error_and_a_sign_in_apart() {
    let (sim, cli, kr) = linked_kr(&[]).await;

    let missing = cli.run(&["kr", "show", "999", "--json"]).await;
    assert_eq!(code(&missing), Some(3), "{}", missing.stderr);
    assert_eq!(missing.json()["error"]["kind"], "not-found");

    let usage = cli.run(&["kr", "show", &kr, "--json", "--bogus"]).await;
    assert_eq!(code(&usage), Some(2), "{}", usage.stderr);
    let error = &usage.json()["error"];
    assert_eq!(error["kind"], "usage", "{error}");
    assert!(error["message"].to_string().contains("--bogus"), "{error}");

    // Throttled for longer than a call may wait: the sync runs, fails and says so.
    sim.server.inject_fault(dataverse_sim::Fault::Status {
        status: 429,
        retry_after_seconds: Some(600),
    });
    let failed = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&failed), Some(5), "{}", failed.stderr);
    let failed = failed.json();
    assert_eq!(failed["run"]["status"], "failure", "{failed}");
    assert_eq!(failed["error"]["kind"], "throttled", "{failed}");
    assert_eq!(failed["key_result"]["current_value"], json!(hot_leads()));
    sim.server.clear_faults();
    // Inside the window Dataverse asked for, Sync now says until when and sends
    // nothing, unless forced.
    sim.server.clear_requests();
    let waiting = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&waiting), Some(5), "{}", waiting.stderr);
    let error = &waiting.json()["error"];
    assert_eq!(error["kind"], "throttled", "{error}");
    assert!(error["message"].to_string().contains("--force"), "{error}");
    assert!(sim.server.requests().is_empty(), "nothing was sent");
    let text = cli.run(&["kr", "sync", &kr, "--force"]).await;
    assert_eq!(code(&text), Some(0), "{}", text.stderr);

    // The secret was replaced at the tenant: the sync needs a new sign-in, and
    // every message says which command gives it.
    sim.server.replace_client_secret("rotated");
    sim.server.expire_tokens();
    let refused = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&refused), Some(4), "{}", refused.stderr);
    assert_eq!(refused.json()["error"]["kind"], "unauthorized");
    let fix = "goals-host connection sign-in 'sim' --client-secret-env VAR";
    let shown = cli.run(&["kr", "show", &kr]).await;
    assert!(shown.stdout.contains(fix), "{}", shown.stdout);
    let alerts = cli.json(&["alerts"]).await.to_string();
    assert!(alerts.contains(fix), "{alerts}");
    assert!(!alerts.contains("add the connection again"), "{alerts}");
    let waiting = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&waiting), Some(4), "{}", waiting.stderr);
    assert!(waiting.stderr.contains(fix), "{}", waiting.stderr);
}

#[tokio::test]
async fn a_money_metric_in_another_currency_than_the_key_result_is_refused() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let euro_kr = create_currency_kr(&cli, "Pipeline in euro", "EUR").await;
    let link = |kr: &str, view: &str, currency: &str| {
        [
            "kr",
            "link",
            kr,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
            "--entity",
            "opportunity",
            "--view",
            view,
            "--column",
            "estimatedvalue",
            "--aggregation",
            "sum",
            "--currency",
            currency,
            "--json",
        ]
        .map(str::to_string)
    };
    let args = link(&euro_kr, "Open Opportunities", "base");
    let refused = cli
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(code(&refused), Some(2), "{}", refused.stderr);
    let message = refused.json()["error"]["message"].to_string();
    for word in ["USD", "EUR", "--currency transaction"] {
        assert!(message.contains(word), "{word}: {message}");
    }
    let shown = cli.json(&["kr", "show", &euro_kr]).await;
    assert!(shown["link"].is_null(), "nothing was linked: {shown}");

    // A view of euro rows in their own currency is euros.
    let args = link(&euro_kr, "Open Deals in Euro", "transaction");
    let linked = cli
        .json(&args.iter().map(String::as_str).collect::<Vec<_>>()[..args.len() - 1])
        .await;
    assert_eq!(linked["preview"]["currency"], "EUR", "{linked}");
    assert_eq!(linked["run"]["currency"], "EUR", "{linked}");
    let shown = cli.json(&["kr", "show", &euro_kr]).await;
    assert_eq!(shown["link"]["currency"], "EUR", "{shown}");
    assert_eq!(shown["link"]["currency_mode"], "transaction", "{shown}");

    // A count has no currency, and says so.
    let kr = create_kr(&cli, &[]).await;
    link_hot_leads(&cli, &kr, &[]).await;
    let shown = cli.json(&["kr", "show", &kr]).await;
    assert!(shown["link"]["currency"].is_null(), "{shown}");
    let text = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(!text.contains("base currency"), "{text}");
    assert!(text.contains("not an amount of money"), "{text}");
}

async fn create_currency_kr(cli: &Cli, title: &str, code: &str) -> String {
    let kr = cli
        .json(&[
            "kr",
            "create",
            "--title",
            title,
            "--owner",
            "ana",
            "--unit",
            "currency",
            "--currency-code",
            code,
            "--start",
            "0",
            "--target",
            "1000000",
        ])
        .await;
    kr["id"].as_i64().expect("an id").to_string()
}

#[tokio::test]
async fn org_scopes_every_key_result_command() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    assert!(cli.run(&["tenant", "create", "other"]).await.success());
    assert!(
        cli.run(&["org", "create", "elsewhere", "--tenant", "other"])
            .await
            .success()
    );
    for command in [
        vec!["kr", "show", &kr],
        vec!["kr", "sync", &kr],
        vec!["kr", "history", &kr],
        hot_leads_link(&kr, "sim", &[]),
    ] {
        let args = [&command[..], &["--org", "elsewhere", "--json"]].concat();
        let run = cli.run(&args).await;
        assert_eq!(code(&run), Some(3), "{command:?}: {}", run.stderr);
        let message = run.json()["error"]["message"].to_string();
        assert!(
            message.contains("organization 'elsewhere'"),
            "{command:?}: {message}"
        );
        let args = [&command[..], &["--org", "Nope", "--json"]].concat();
        let run = cli.run(&args).await;
        assert_eq!(code(&run), Some(3), "{command:?}: {}", run.stderr);
        assert!(run.stderr.contains("Nope"), "{}", run.stderr);
    }
    for listing in [["kr", "list"], ["connection", "list"]] {
        let run = cli
            .run(&[&listing[..], &["--org", "Nope", "--json"]].concat())
            .await;
        assert_eq!(code(&run), Some(3), "{listing:?}: {}", run.stderr);
    }
    let shown = cli.json(&["kr", "show", &kr, "--org", "default"]).await;
    assert_eq!(shown["key_result"]["id"].to_string(), kr);

    let listed = cli.json(&["kr", "list"]).await;
    assert_eq!(listed[0]["organization"], "default", "{listed}");
    let text = cli.run(&["kr", "list"]).await.stdout;
    assert!(text.contains("ORGANIZATION"), "{text}");

    let duplicate = cli.run(&[&CREATE_KR[..], &["--json"]].concat()).await;
    assert_eq!(
        code(&duplicate),
        Some(2),
        "titles are unique per organization"
    );
}

#[tokio::test]
async fn intervals_are_read_as_durations_and_bounded() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = create_kr(&cli, &[]).await;
    for refused in ["0", "9223372036854775807", "32d", "soon"] {
        let run = cli
            .run(&hot_leads_link(
                &kr,
                "sim",
                &["--interval", refused, "--json"],
            ))
            .await;
        assert_eq!(code(&run), Some(2), "{refused}: {}", run.stderr);
        assert!(run.stderr.contains("--interval"), "{}", run.stderr);
    }
    let linked = link_hot_leads(&cli, &kr, &["--interval", "90m"]).await;
    assert_eq!(linked["run"]["status"], "success");
    let shown = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(shown["link"]["interval_seconds"], 5400);
    let text = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(text.contains("1h 30m"), "{text}");
}

#[tokio::test]
async fn measure_reports_every_request_it_made_and_lists_columns_for_a_typo() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let measure = |column: &'static str| {
        vec![
            "measure",
            "--connection",
            "sim",
            "--entity",
            "lead",
            "--view",
            "hot leads",
            "--column",
            column,
            "--aggregation",
            "count",
        ]
    };
    sim.server.clear_requests();
    let measured = cli.json(&measure("fullname")).await;
    let sent = sim.server.requests().len();
    assert_eq!(measured["value"], json!(hot_leads()));
    assert!(sent > 1, "the view's name was looked up: {sent} requests");
    assert_eq!(measured["requests"], json!(sent), "{measured}");
    assert!(measured["bytes_received"].as_u64() > Some(0));
    assert!(
        measured["query"]
            .as_str()
            .is_some_and(|q| q.contains("<fetch"))
    );

    let text = cli.run(&measure("fullname")).await.stdout;
    assert!(!text.contains("<fetch"), "FetchXML only with -v:\n{text}");
    let verbose = cli
        .run(&[&measure("fullname")[..], &["-v"]].concat())
        .await
        .stdout;
    assert!(verbose.contains("<fetch"), "{verbose}");

    let typo = cli
        .run(&[&measure("fulname")[..], &["--json"]].concat())
        .await;
    assert_eq!(code(&typo), Some(3), "{}", typo.stderr);
    let message = typo.json()["error"]["message"].to_string();
    assert!(
        message.contains("no column 'fulname'") && message.contains("fullname"),
        "{message}"
    );
    assert!(!message.contains("removed or renamed"), "{message}");

    // `kr link`'s preview counts the look-ups of app, entity, view and column
    // too; with the first sync's requests, that is all the simulator saw.
    let kr = create_kr(&cli, &[]).await;
    sim.server.clear_requests();
    let linked = link_hot_leads(&cli, &kr, &[]).await;
    let sent = sim.server.requests().len() as u64;
    let preview = linked["preview"]["requests"]
        .as_u64()
        .expect("preview requests");
    let first_sync = linked["run"]["requests"].as_u64().expect("run requests");
    assert!(preview > 1, "{linked}");
    assert_eq!(preview + first_sync, sent, "{linked}");
}

#[tokio::test]
async fn apps_are_found_by_unique_name_and_any_case() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let apps = cli.json(&["apps", "--connection", "sim"]).await;
    let sales = apps
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == "Sales Hub"))
        .expect("the Sales Hub app")
        .clone();
    let unique = sales["unique_name"].as_str().expect("a unique name");
    let by_name = cli
        .json(&["entities", "--connection", "sim", "--app", "Sales Hub"])
        .await;
    for app in [
        unique,
        &unique.to_uppercase(),
        "sales hub",
        sales["id"].as_str().expect("id"),
    ] {
        let entities = cli
            .json(&["entities", "--connection", "sim", "--app", app])
            .await;
        assert_eq!(entities, by_name, "--app {app}");
    }

    // Tables by display name too, in any case, for the commands without an app.
    let lead = by_name
        .as_array()
        .and_then(|all| all.iter().find(|e| e["logical_name"] == "lead"))
        .expect("the lead table");
    let display = lead["name"]
        .as_str()
        .expect("a display name")
        .to_uppercase();
    let views = |entity: &str| {
        let args = [
            "views",
            "--connection",
            "sim",
            "--entity",
            entity,
            "--search",
            "hot",
        ];
        args.map(str::to_string)
    };
    let by_logical = cli.json(&strs(&views("lead"))).await;
    let by_display = cli.json(&strs(&views(&display))).await;
    assert_eq!(by_display, by_logical, "--entity {display}");
    let unknown = cli.run(&strs(&views("No Such Table"))).await;
    assert_eq!(code(&unknown), Some(3), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no table 'No Such Table'"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn the_scheduler_logs_one_line_per_sync_at_info() {
    let (sim, cli, kr) = linked_kr(&["--interval", "1"]).await;
    cli.advance_clock(2);
    let run = cli.run(&["run", "--once", "-v"]).await;
    assert!(run.success(), "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains(&format!("sync kr={kr} ")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    for field in [
        "connection=\"sim\"",
        "trigger=\"scheduled\"",
        "outcome=\"success\"",
        "requests=1",
        "took_ms=",
    ] {
        assert!(lines[0].contains(field), "{field}: {}", lines[0]);
    }
    assert!(!run.stderr.contains(&sim.config.client_secret));
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no colour when stderr is not a terminal"
    );
}

#[tokio::test]
async fn an_unreachable_environment_is_one_line_in_plain_words() {
    let cli = Cli::new();
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let added = cli
        .add_unverified_url("down", &url, &["--authority", &url, "--allow-loopback"])
        .await;
    assert!(added.success(), "{}", added.stderr);
    let run = cli.run(&["apps", "--connection", "down"]).await;
    assert_eq!(code(&run), Some(5), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    // How the failure shows (a refused connection, or one that broke) depends
    // on timing; that it names the origin in plain words does not.
    let unreachable = format!("could not reach {url}: ");
    for words in [unreachable.as_str(), "check the environment URL"] {
        assert!(lines[0].contains(words), "{words}: {}", lines[0]);
    }
    for noise in ["WARN", "Os {", "StreamError", "\u{1b}["] {
        assert!(!run.stderr.contains(noise), "{noise}: {}", run.stderr);
    }
}

/// The statuses of a Key Result's runs, newest first.
async fn run_statuses(cli: &Cli, kr: &str) -> Vec<String> {
    cli.json(&["kr", "history", kr])
        .await
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| r["status"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a sync of `kr` is recorded as running.
async fn until_running(cli: &Cli, kr: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while run_statuses(cli, kr).await.first().map(String::as_str) != Some("running") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sync_whose_process_died_is_taken_over_at_once() {
    let (sim, cli, kr) = linked_kr(&[]).await;
    sim.server.set_latency(Duration::from_secs(30));
    let mut stuck = cli
        .command(&["kr", "sync", &kr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a Sync now");
    until_running(&cli, &kr).await;
    // Ctrl-C, kill -9, a lost machine: the process ends mid-sync.
    stuck.start_kill().expect("kill the Sync now");
    let _ = stuck.wait().await;

    let shown = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(shown["last_run"]["status"], "interrupted", "{shown}");
    let text = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(text.contains("interrupted"), "{text}");

    // The next Sync now takes the link over: no "already running".
    sim.server.set_latency(Duration::ZERO);
    let started = tokio::time::Instant::now();
    let again = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert_eq!(code(&again), Some(0), "{}", again.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        run_statuses(&cli, &kr).await,
        ["success", "interrupted", "success"]
    );
}

#[tokio::test]
async fn sigterm_lets_running_syncs_finish_and_exits_zero() {
    let (sim, cli, kr) = linked_kr(&["--interval", "1"]).await;

    for (grace, latency, outcome) in [("30", 3, "success"), ("0.5", 20, "interrupted")] {
        cli.advance_clock(2);
        sim.server.set_latency(Duration::from_secs(latency));
        let scheduler = cli
            .command(&["run", "--grace", grace, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the scheduler");
        until_running(&cli, &kr).await;
        let pid = scheduler.id().expect("a pid").to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        assert!(signalled.success());
        let done = tokio::time::timeout(Duration::from_secs(60), scheduler.wait_with_output())
            .await
            .expect("the scheduler stops within its grace")
            .expect("the scheduler's output");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(0), "grace {grace}: {stderr}");
        let round: Value = serde_json::from_slice(&done.stdout).expect("one JSON document");
        assert_eq!(
            run_statuses(&cli, &kr).await.first().map(String::as_str),
            Some(outcome),
            "grace {grace}: {round}"
        );
        if outcome == "interrupted" {
            assert_eq!(round["interrupted"], 1, "{round}");
            let link = cli.json(&["kr", "show", &kr]).await["link"].clone();
            let now = cli.now();
            assert!(
                goals_e2e::seconds(&link["next_run_at"]).is_some_and(|at| at <= now),
                "the cut-off sync is due again: {link}"
            );
        } else {
            assert_eq!(round["succeeded"], 1, "{round}");
        }
    }
}

#[tokio::test]
async fn kr_resume_checks_a_broken_link_again() {
    let (sim, cli, kr) = linked_kr(&[]).await;
    let not_found = || dataverse_sim::Fault::Status {
        status: 404,
        retry_after_seconds: None,
    };
    for _ in 0..10 {
        sim.server.inject_fault(not_found());
    }
    let broke = cli.run(&["kr", "sync", &kr]).await;
    assert_eq!(code(&broke), Some(3), "{}", broke.stderr);
    let shown = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(shown["link"]["state"], "broken", "{shown}");

    // Still missing: resume says so and the link stays broken.
    let still = cli.run(&["kr", "resume", &kr, "--json"]).await;
    assert_eq!(code(&still), Some(3), "{}", still.stderr);
    assert_eq!(still.json()["state"], "broken", "{}", still.stdout);

    // Back again: resume checks, and the link is active with a fresh value.
    sim.server.clear_faults();
    let resumed = cli.run(&["kr", "resume", &kr, "--json"]).await;
    assert_eq!(code(&resumed), Some(0), "{}", resumed.stderr);
    assert_eq!(resumed.json()["state"], "active", "{}", resumed.stdout);
    let shown = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(shown["link"]["state"], "active", "{shown}");
    assert_eq!(shown["last_run"]["status"], "success", "{shown}");
}

#[tokio::test]
async fn names_with_hidden_characters_are_refused() {
    let cli = Cli::new();
    for args in [
        vec![
            "kr",
            "create",
            "--title",
            "Deals\u{202E}gnp",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "1",
        ],
        vec!["tenant", "create", "acme\u{2066}"],
    ] {
        let run = cli.run(&[&args[..], &["--json"]].concat()).await;
        assert_eq!(code(&run), Some(2), "{args:?}: {}", run.stderr);
    }
}
