//! Several integrations in one host: the second test integration (`tests/tally`,
//! an API-key service with settings of its own) runs beside the built-in
//! Dynamics 365 one, through the same CLI and scheduler, each connection's calls
//! going to its own integration and each integration's storage kept apart.

use goals_e2e::tally::{API_KEY, OPEN_POINTS, TallyService, WORKSPACE};
use goals_e2e::{CREATE_KR, Cli, Sim, hot_leads, tally_component};
use goals_host::db::Database;
use serde_json::{Value, json};

/// `kr create` of a Key Result titled `title`; its id.
async fn create_kr(cli: &Cli, title: &str, env: &[(&str, &str)]) -> String {
    let mut create: Vec<&str> = CREATE_KR.to_vec();
    create[3] = title;
    create.push("--json");
    let created = cli.run_with_env(&create, env).await;
    assert!(created.success(), "{}", created.stderr);
    created.json()["id"].to_string()
}

async fn json(cli: &Cli, args: &[&str], env: &[(&str, &str)]) -> Value {
    let run = cli.run_with_env(args, env).await;
    assert!(run.success(), "{args:?}: {}", run.stderr);
    run.json()
}

/// Rows of plugin storage by (integration, connection).
async fn storage_scopes(cli: &Cli) -> Vec<(String, String)> {
    let db = Database::open_existing(cli.data_dir()).unwrap();
    db.run(|conn| {
        Ok(conn.query_map(
            "SELECT DISTINCT plugin, connection_id FROM plugin_kv ORDER BY 1, 2",
            goals_host::params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_second_integration_syncs_beside_dynamics_365_in_one_host() {
    let (sim, tally) = (Sim::start().await, TallyService::start().await);
    let cli = Cli::new();
    let plugin = tally_component().display().to_string();
    let env = [
        ("GOALS_HOST_PLUGIN", plugin.as_str()),
        ("TALLY_KEY", API_KEY),
    ];

    // Its connection form, as the integration declares it.
    let described = json(
        &cli,
        &["describe", "--integration", "example.tally", "--json"],
        &env,
    )
    .await;
    let keys: Vec<&str> = described["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(keys, ["base_url", "workspace"]);
    assert_eq!(described["credentials"], json!(["api-key"]));

    // A wrong key is refused before anything is saved; a missing setting is
    // named; then the connection is added with generic flags only.
    let url = tally.url();
    let tally_add = |key_env: &'static str| {
        [
            "connection",
            "add",
            "--name",
            "board",
            "--integration",
            "example.tally",
            "--url",
            url.as_str(),
            "--setting",
            "workspace=growth",
            "--sign-in",
            "api-key",
            "--api-key-env",
            key_env,
            "--allow-loopback",
            "--json",
        ]
    };
    let wrong_env = [env[0], ("WRONG_KEY", "not-the-key")];
    let refused = cli.run_with_env(&tally_add("WRONG_KEY"), &wrong_env).await;
    assert_eq!(refused.output.status.code(), Some(4), "{}", refused.stdout);
    assert!(refused.stdout.contains("API key"), "{}", refused.stdout);
    let args = tally_add("TALLY_KEY");
    let missing: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--setting" && *a != "workspace=growth")
        .collect();
    let missing = cli.run_with_env(&missing, &env).await;
    assert_eq!(missing.output.status.code(), Some(2), "{}", missing.stdout);
    assert!(
        missing.stdout.contains("setting 'workspace'"),
        "{}",
        missing.stdout
    );
    let listed = json(&cli, &["connection", "list", "--json"], &env).await;
    assert_eq!(listed, json!([]), "nothing half-added");

    let added = json(&cli, &args, &env).await;
    assert_eq!(added["integration"], "example.tally");
    assert_eq!(
        added["settings"],
        json!({ "base_url": url, "workspace": WORKSPACE })
    );
    assert_eq!(added["origins"], json!([url]));
    assert_eq!(added["verified_as"]["user_id"], "user-7");
    let secret_added = cli
        .add_connection_with(&sim, "crm", &sim.config.client_secret, &[], &env)
        .await;
    assert!(secret_added.success(), "{}", secret_added.stderr);

    // Discovery through the Tally connection goes to the Tally component.
    let apps = json(&cli, &["apps", "--connection", "board", "--json"], &env).await;
    assert_eq!(apps[0]["name"], "Roadmap");
    let views = json(
        &cli,
        &[
            "views",
            "--connection",
            "board",
            "--entity",
            "cards",
            "--search",
            "open",
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(views.as_array().map(Vec::len), Some(1), "{views}");
    assert_eq!(views[0]["name"], "Open cards");

    // One Key Result per integration, each synced every second by the scheduler.
    let points = create_kr(&cli, "Ship the roadmap", &env).await;
    let linked = json(
        &cli,
        &[
            "kr",
            "link",
            &points,
            "--connection",
            "board",
            "--app",
            "Roadmap",
            "--entity",
            "cards",
            "--view",
            "Open cards",
            "--column",
            "points",
            "--aggregation",
            "sum",
            "--interval",
            "1",
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(linked["run"]["status"], "success", "{linked}");
    assert_eq!(linked["key_result"]["current_value"], json!(OPEN_POINTS));
    let leads = create_kr(&cli, "Work hot leads", &env).await;
    let linked = json(
        &cli,
        &goals_e2e::hot_leads_link(&leads, "crm", &["--interval", "1", "--json"]),
        &env,
    )
    .await;
    assert_eq!(linked["key_result"]["current_value"], json!(hot_leads()));

    // Both fall due; one scheduler round syncs both through their integrations.
    cli.advance_clock(2);
    let tally_before = tally.requests().len();
    let round = cli.run_with_env(&["run", "--once"], &env).await;
    assert!(round.success(), "{}", round.stderr);
    assert!(
        tally.requests().len() > tally_before,
        "the Tally service was asked again"
    );
    for (kr, value) in [(&points, OPEN_POINTS), (&leads, hot_leads())] {
        let history = json(&cli, &["kr", "history", kr, "--json"], &env).await;
        let runs = history.as_array().expect("the runs, newest first");
        assert_eq!(runs[0]["trigger"], "scheduled", "{history}");
        assert_eq!(runs[0]["status"], "success", "{history}");
        assert_eq!(runs[0]["value"], json!(value));
    }

    // Each integration's storage under its own id, for its own connection only.
    let connections = json(&cli, &["connection", "list", "--json"], &env).await;
    let id_of = |name: &str| {
        connections
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let scopes = storage_scopes(&cli).await;
    assert!(
        scopes.contains(&("example.tally".to_string(), id_of("board"))),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&("microsoft.dynamics365".to_string(), id_of("crm"))),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().all(|(plugin, connection)| {
            (plugin == "example.tally") == (*connection == id_of("board"))
        }),
        "no integration reads another's connection: {scopes:?}"
    );

    // A host that does not run the Tally integration says so, and how to fix it:
    // the sync is recorded as failed (exit 5), the value kept.
    let without = cli.run(&["kr", "sync", &points, "--force", "--json"]).await;
    assert_eq!(without.output.status.code(), Some(5), "{}", without.stdout);
    assert_eq!(
        without.json()["key_result"]["current_value"],
        json!(OPEN_POINTS)
    );
    let error = &without.json()["error"];
    assert_eq!(error["kind"], "no-integration", "{}", without.stdout);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("example.tally") && message.contains("--plugin"),
        "{message}"
    );
}
