//! The `goals-host` binary end to end: connections, JSON output, errors, and the
//! demo, against a simulator on a loopback port chosen at run time.

use goals_e2e::{CREATE_KR, Cli, Sim, dataset, hot_leads_link};

#[tokio::test]
async fn connections_are_added_listed_and_removed_without_echoing_the_secret() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "Contoso").await;
    assert!(added.success(), "{}", added.stderr);
    assert!(added.stdout.contains("added connection 'Contoso'"));

    let listed = cli.json(&["connection", "list"]).await;
    let listed = listed.as_array().expect("an array of connections");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Contoso");
    assert_eq!(listed[0]["url"], sim.url());
    assert_eq!(listed[0]["integration"], "microsoft.dynamics365");
    assert_eq!(listed[0]["settings"]["environment_url"], sim.url());
    assert_eq!(listed[0]["settings"]["tenant"], sim.config.tenant.as_str());
    assert_eq!(listed[0]["origins"], serde_json::json!([sim.url()]));

    let secret = &sim.config.client_secret;
    for output in [&added.stdout, &added.stderr] {
        assert!(
            !output.contains(secret.as_str()),
            "secret printed: {output}"
        );
    }
    let text = cli.run(&["connection", "list"]).await;
    assert!(!text.stdout.contains(secret.as_str()));
    assert!(!listed[0].to_string().contains(secret.as_str()));

    let removed = cli.run(&["connection", "remove", "Contoso"]).await;
    assert!(removed.success(), "{}", removed.stderr);
    assert_eq!(
        cli.json(&["connection", "list"]).await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn duplicate_connection_names_are_a_clear_error() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "Contoso").await.success());
    let again = cli.add_connection(&sim, "Contoso").await;
    assert!(!again.success());
    assert!(
        again
            .stderr
            .contains("already has a connection named 'Contoso'"),
        "{}",
        again.stderr
    );
    let listed = cli.json(&["connection", "list"]).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_missing_secret_variable_is_named_and_nothing_is_added() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let run = cli
        .run(&[
            "connection",
            "add",
            "--name",
            "x",
            "--url",
            &sim.url(),
            "--tenant",
            "t",
            "--client-id",
            "c",
            "--client-secret-env",
            "GOALS_E2E_UNSET_SECRET",
            "--allow-loopback",
        ])
        .await;
    assert!(!run.success());
    assert!(
        run.stderr.contains("GOALS_E2E_UNSET_SECRET is not set"),
        "{}",
        run.stderr
    );
    assert_eq!(
        cli.json(&["connection", "list"]).await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn list_commands_print_json_arrays_with_ids_and_names() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());

    let apps = cli.json(&["apps", "--connection", "sim"]).await;
    let apps = apps.as_array().expect("array of apps");
    assert!(!apps.is_empty());
    for app in apps {
        assert!(app["id"].is_string() && app["name"].is_string(), "{app}");
    }
    let sales = dataset().app_by_name("Sales Hub").expect("seeded app");
    let entities = cli
        .json(&["entities", "--connection", "sim", "--app", &sales.name])
        .await;
    let logical: Vec<&str> = entities
        .as_array()
        .expect("array of entities")
        .iter()
        .map(|e| e["logical_name"].as_str().expect("logical_name"))
        .collect();
    assert!(logical.contains(&"opportunity"), "{logical:?}");
    for entity in entities.as_array().into_iter().flatten() {
        assert!(entity["name"].is_string());
    }

    let views = cli
        .json(&[
            "views",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--search",
            "open",
        ])
        .await;
    let names: Vec<&str> = views
        .as_array()
        .expect("array of views")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"Open Opportunities"), "{names:?}");

    let columns = cli
        .json(&[
            "columns",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
        ])
        .await;
    let estimated = columns
        .as_array()
        .expect("array of columns")
        .iter()
        .find(|c| c["logical_name"] == "estimatedvalue")
        .expect("estimatedvalue column");
    assert_eq!(estimated["type"], "money");
    assert!(
        columns.as_array().is_some_and(|all| all
            .iter()
            .all(|c| c["logical_name"].is_string() && c["name"].is_string())),
        "every column has the id --column takes: {columns}"
    );
    assert!(
        estimated["aggregations"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "sum"))
    );
}

#[tokio::test]
async fn measure_prints_value_records_currency_and_requests() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    // By id, so the measure makes no requests to find the view by its name.
    let views = cli
        .json(&["views", "--connection", "sim", "--entity", "opportunity"])
        .await;
    let view = views
        .as_array()
        .and_then(|all| all.iter().find(|v| v["name"] == "Open Opportunities"))
        .and_then(|v| v["id"].as_str())
        .expect("the view's id")
        .to_string();
    let args = [
        "measure",
        "--connection",
        "sim",
        "--entity",
        "opportunity",
        "--view",
        &view,
        "--column",
        "estimatedvalue",
        "--aggregation",
        "sum",
    ];
    let open: Vec<_> = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
        .collect();
    // Money sums in the organization's base currency, nulls left out.
    let base_sum: f64 = open
        .iter()
        .filter_map(|row| row.get("estimatedvalue_base").and_then(|v| v.as_f64()))
        .sum();

    sim.server.clear_requests();
    let measured = cli.json(&args).await;
    let value = measured["value"].as_f64().expect("a number");
    assert!((value - base_sum).abs() < 0.01, "{value} vs {base_sum}");
    assert_eq!(measured["currency"], "USD");
    assert_eq!(measured["records"], serde_json::json!(open.len()));
    // Every request the command made counts, finding the view among the
    // entity's views included.
    let seen = sim.server.requests();
    assert!(
        seen.iter().any(|r| r.path.ends_with("/savedqueries")),
        "the view was found by name: {seen:#?}"
    );
    assert_eq!(
        measured["requests"],
        serde_json::json!(seen.len()),
        "{seen:#?}"
    );
    assert!(
        measured["query"]
            .as_str()
            .is_some_and(|q| q.contains(r#"aggregate="sum""#) && q.contains("estimatedvalue_base"))
    );

    // The preview a person reads says the same.
    sim.server.clear_requests();
    let text = cli.run(&args).await;
    assert!(text.success(), "{}", text.stderr);
    let field = |label: &str| -> String {
        text.stdout
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no {label} line:\n{}", text.stdout))
    };
    let shown: f64 = field("value").replace(',', "").parse().expect("the value");
    assert!((shown - base_sum).abs() < 0.01, "{shown} vs {base_sum}");
    assert_eq!(field("currency"), "USD");
    assert_eq!(field("records"), open.len().to_string());
    let seen = sim.server.requests();
    assert_eq!(field("requests"), seen.len().to_string(), "{seen:#?}");
}

#[tokio::test]
async fn errors_have_a_kind_and_a_message_in_json() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());

    let unknown_view = cli
        .run(&[
            "columns",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "No Such View",
            "--json",
        ])
        .await;
    assert!(!unknown_view.success());
    assert_eq!(unknown_view.json()["error"]["kind"], "not-found");

    let gone_view = cli
        .run(&[
            "columns",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "00000000-0000-0000-0000-000000000bad",
            "--json",
        ])
        .await;
    assert!(!gone_view.success());
    assert_eq!(gone_view.json()["error"]["kind"], "not-found");
}

#[tokio::test]
async fn a_wrong_client_secret_is_unauthorized_with_the_aadsts_code() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    // Checked when added: refused, and nothing saved.
    let refused = cli
        .add_connection_with(&sim, "wrong", "not-the-secret", &["--json"], &[])
        .await;
    assert_eq!(refused.output.status.code(), Some(4), "{}", refused.stderr);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "unauthorized", "{error}");
    for words in [
        "was not added",
        "AADSTS7000215",
        "Secret ID",
        "sign the connection in again",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
    assert_eq!(
        cli.json(&["connection", "list"]).await,
        serde_json::json!([])
    );
    let wrong_client = cli
        .run_with_env(
            &[
                &sim.connection_add("other", &sim.url())
                    .into_iter()
                    .map(|a| {
                        if a == sim.config.client_id {
                            "no-such-app"
                        } else {
                            a
                        }
                    })
                    .collect::<Vec<_>>()[..],
                &["--client-secret-env", "S"],
            ]
            .concat(),
            &[("S", &sim.config.client_secret)],
        )
        .await;
    assert!(!wrong_client.success());
    assert!(
        wrong_client.stderr.contains("client id"),
        "{}",
        wrong_client.stderr
    );

    // Saved unverified, it is refused at its first call.
    let added = cli
        .add_unverified_connection(&sim, "wrong", "not-the-secret", &[], &[])
        .await;
    assert!(added.success(), "{}", added.stderr);
    let run = cli.run(&["apps", "--connection", "wrong", "--json"]).await;
    assert!(!run.success());
    let error = &run.json()["error"];
    assert_eq!(error["kind"], "unauthorized");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(message.contains("client secret"), "{message}");
    assert!(!run.stdout.contains("not-the-secret") && !run.stderr.contains("not-the-secret"));
}

#[tokio::test]
async fn loopback_is_refused_without_the_opt_in() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    // Plain http to loopback is refused when the connection is added...
    let url = sim.url();
    let refused = cli
        .run_with_env(
            &[
                "connection",
                "add",
                "--name",
                "local",
                "--url",
                &url,
                "--tenant",
                "t",
                "--client-id",
                "c",
                "--client-secret-env",
                "S",
            ],
            &[("S", "x")],
        )
        .await;
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("--allow-loopback"),
        "{}",
        refused.stderr
    );

    // ...and so is an https URL whose name resolves to loopback: the URLs meet
    // the outbound policy when the connection is added, before any byte leaves
    // (each request meets it again; the limits tests show that).
    let port = url.rsplit(':').next().expect("port");
    let https_loopback = format!("https://localhost:{port}");
    sim.server.clear_requests();
    let added = cli
        .add_unverified_url(
            "sneaky",
            &https_loopback,
            &["--authority", &https_loopback, "--json"],
        )
        .await;
    assert_eq!(added.output.status.code(), Some(2), "{}", added.stderr);
    let message = added.json()["error"]["message"].to_string();
    for words in ["loopback", "--allow-loopback", "nothing was saved"] {
        assert!(message.contains(words), "{words}: {message}");
    }
    assert_eq!(
        cli.json(&["connection", "list"]).await,
        serde_json::json!([])
    );
    assert!(
        sim.server.requests().is_empty(),
        "no request may reach the simulator"
    );

    // Internal addresses, in any of the forms a URL allows, never pass.
    for internal in [
        "https://169.254.169.254",
        "https://10.0.0.1",
        "https://[::ffff:127.0.0.1]",
        "https://0x7f000001",
        "https://[fd00:ec2::254]",
    ] {
        let refused = cli.add_unverified_url("inside", internal, &[]).await;
        assert_eq!(
            refused.output.status.code(),
            Some(2),
            "{internal}: {}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("nothing was saved"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(
        cli.json(&["connection", "list"]).await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn the_demo_walks_the_flow_and_measures_a_value() {
    let cli = Cli::new();
    let run = cli.run(&["demo", "--json"]).await;
    assert!(run.success(), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let steps = report["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "enable",
            "connection",
            "app",
            "entity",
            "view",
            "column",
            "aggregation",
            "value",
            "link",
            "project",
            "scheduler",
            "details"
        ]
    );
    let value = &steps[7]["result"];
    let expected: f64 = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
        .filter_map(|row| row.get("estimatedvalue_base").and_then(|v| v.as_f64()))
        .sum();
    let measured = value["value"].as_f64().expect("a number");
    assert!(
        (measured - expected).abs() < 0.01,
        "demo measured {measured}, data says {expected}"
    );

    // The scheduler synced both Key Results and the Project every accelerated
    // hour, and they moved.
    let hours = steps[10]["result"].as_array().expect("hours");
    assert!(hours.len() >= 3);
    assert!(hours.iter().all(|h| h["synced"] == 3), "{hours:?}");
    let pipeline: Vec<f64> = hours
        .iter()
        .map(|h| h["pipeline"].as_f64().expect("a value"))
        .collect();
    assert!((pipeline[0] - expected).abs() < 0.01);
    assert!(pipeline.windows(2).all(|w| w[1] > w[0]), "{pipeline:?}");
    let details = &steps[11]["result"];
    assert_eq!(details["link"]["state"], "active");
    assert_eq!(details["link"]["view_name"], "Open Opportunities");
    assert!(details["key_result"]["progress_percent"].is_number());
}

#[tokio::test]
async fn the_compiled_plugin_is_kept_and_a_corrupt_one_is_rebuilt() {
    let cli = Cli::new();
    let cache = tempfile::tempdir().expect("cache directory");
    let cache_dir = cache.path().to_string_lossy().into_owned();
    let args = ["describe", "-v", "--cache-dir", cache_dir.as_str()];
    let describe = || cli.run(&args);
    let first = describe().await;
    assert!(first.success(), "{}", first.stderr);
    assert!(first.stderr.contains("Compiled"), "{}", first.stderr);
    let second = describe().await;
    assert!(second.stderr.contains("Precompiled"), "{}", second.stderr);
    assert_eq!(first.stdout, second.stdout);

    let artifacts: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache listing")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let mut bytes = std::fs::read(&artifacts[0]).expect("artifact");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&artifacts[0], bytes).expect("corrupt it");
    let third = describe().await;
    assert!(third.success(), "{}", third.stderr);
    assert!(third.stderr.contains("Rebuilt"), "{}", third.stderr);
    assert_eq!(first.stdout, third.stdout);
}

#[tokio::test]
async fn the_simulator_binary_announces_its_address_first_and_takes_credentials() {
    use tokio::io::AsyncBufReadExt;
    let mut simulator = tokio::process::Command::new(goals_e2e::simulator_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tenant",
            "contoso-test",
            "--client-id",
            "11111111-2222-3333-4444-555555555555",
            "--client-secret",
            "binary-secret",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the simulator binary");
    let stdout = simulator.stdout.take().expect("its standard output");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = &goals_e2e::announced_url(&mut lines).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let cli = Cli::new();
    let add = |name: &'static str, secret: &'static str| {
        let cli = &cli;
        async move {
            cli.run_with_env(
                &[
                    "connection",
                    "add",
                    "--name",
                    name,
                    "--url",
                    url,
                    "--authority",
                    url,
                    "--tenant",
                    "contoso-test",
                    "--client-id",
                    "11111111-2222-3333-4444-555555555555",
                    "--client-secret-env",
                    "S",
                    "--allow-loopback",
                ],
                &[("S", secret)],
            )
            .await
        }
    };
    assert!(add("given", "binary-secret").await.success());
    let apps = cli.json(&["apps", "--connection", "given"]).await;
    assert!(apps.as_array().is_some_and(|a| !a.is_empty()), "{apps}");

    // The default secret is not accepted once another was given: the
    // connection is refused when added.
    let refused = add("default", "sim-secret").await;
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("AADSTS7000215"),
        "{}",
        refused.stderr
    );
    let _ = simulator.kill().await;
}

#[tokio::test]
async fn the_plugin_flag_loads_another_component() {
    let cli = Cli::new();
    let embedded = cli.json(&["describe"]).await;
    assert_eq!(embedded["name"], "Dynamics 365");
    let plugin = goals_e2e::misbehaving_component().display().to_string();
    // Loaded beside the built-in integration, which stays the default.
    let beside = cli.json(&["--plugin", &plugin, "describe"]).await;
    assert_eq!(beside["id"], "microsoft.dynamics365");
    let other = cli
        .json(&[
            "--plugin",
            &plugin,
            "describe",
            "--integration",
            "Misbehaving test plugin",
        ])
        .await;
    assert_eq!(other["name"], "Misbehaving test plugin", "{other}");
    let unknown = cli
        .run(&["describe", "--integration", "example.nothing", "--json"])
        .await;
    assert_eq!(unknown.output.status.code(), Some(3), "{}", unknown.stderr);
    assert!(
        unknown.stdout.contains("microsoft.dynamics365") && unknown.stdout.contains("--plugin"),
        "names what runs and how to load more: {}",
        unknown.stdout
    );

    let missing = cli
        .run(&["--plugin", "/nonexistent/plugin.wasm", "describe"])
        .await;
    assert!(!missing.success());
    assert!(
        missing.stderr.contains("/nonexistent/plugin.wasm"),
        "the error names the file: {}",
        missing.stderr
    );
}

#[tokio::test]
async fn the_version_names_the_commit_and_the_wit_package() {
    let run = Cli::new().run(&["--version"]).await;
    assert!(run.success(), "{}", run.stderr);
    let version = run.stdout.trim();
    assert!(
        version.starts_with("goals-host ")
            && version.contains("goals:integration@0.4.0, @0.3.0, @0.2.0, @0.1.0"),
        "{version}"
    );
    let commit = version
        .split("commit ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap_or_default();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "a commit hash or 'unknown': {version}"
    );
}

/// Every command of the tree, clap's own `help` commands left out.
fn every_command(command: &clap::Command) -> Vec<&clap::Command> {
    let mut all = vec![command];
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        all.extend(every_command(sub));
    }
    all
}

fn built_cli() -> clap::Command {
    use clap::CommandFactory;
    let mut command = goals_host::cli::Cli::command();
    // Propagates the global options into every subcommand.
    command.build();
    command
}

#[tokio::test]
async fn every_argument_has_help_and_global_options_their_own_heading() {
    let command = built_cli();
    let mut missing = Vec::new();
    let mut misplaced = Vec::new();
    for sub in every_command(&command) {
        for arg in sub.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_long_help().or(arg.get_help());
            if help.is_none_or(|help| help.to_string().trim().is_empty()) {
                missing.push(format!("{} {id}", sub.get_name()));
            }
            if arg.is_global_set() && arg.get_help_heading() != Some("Global options") {
                misplaced.push(format!("{} {id}", sub.get_name()));
            }
        }
    }
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
    assert!(
        misplaced.is_empty(),
        "global options outside \"Global options\": {misplaced:?}"
    );
    let globals = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .count();
    assert!(globals >= 10, "{globals} global options");
}

/// Splits an example as a shell would: words, '…' and "…" quoting, a `#`
/// comment or a `>` redirection ending it.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let quoted = word.get_or_insert_with(String::new);
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                    quoted.push(inner);
                }
            }
            '#' | '>' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[tokio::test]
async fn every_example_in_the_help_parses() {
    use clap::Parser;
    let command = built_cli();
    let mut examples = 0;
    for sub in every_command(&command) {
        let Some(text) = sub.get_after_long_help() else {
            continue;
        };
        let text = text.to_string().replace("\\\n", " ");
        for line in text.lines().map(str::trim) {
            if !line.starts_with("goals-host ") {
                continue;
            }
            examples += 1;
            let words = shell_words(line);
            if let Err(error) = goals_host::cli::Cli::try_parse_from(&words) {
                panic!(
                    "the example `{line}` of `{}` does not parse:\n{error}",
                    sub.get_name()
                );
            }
        }
    }
    assert!(examples >= 30, "only {examples} examples");
}

#[tokio::test]
async fn main_commands_show_examples_in_their_long_help() {
    let cli = Cli::new();
    for command in [
        &["tenant", "create"][..],
        &["tenant", "enable"],
        &["org", "create"],
        &["org", "enable"],
        &["connection", "add"],
        &["connection", "sign-in"],
        &["connection", "test"],
        &["apps"],
        &["entities"],
        &["views"],
        &["columns"],
        &["measure"],
        &["kr", "create"],
        &["kr", "link"],
        &["kr", "sync"],
        &["kr", "show"],
        &["kr", "history"],
        &["run"],
        &["alerts"],
        &["completions"],
    ] {
        let run = cli.run(&[command, &["--help"]].concat()).await;
        assert!(run.success(), "{command:?}: {}", run.stderr);
        let examples = run.stdout.split_once("Examples:\n").map(|(_, e)| e);
        assert!(
            examples.is_some_and(|e| e.contains(&format!("  goals-host {}", command.join(" ")))),
            "{command:?}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("Global options:"),
            "{command:?}:\n{}",
            run.stdout
        );
    }
    let link = cli.run(&["kr", "link", "--help"]).await.stdout;
    for words in [
        "--connection Contoso --interactive",
        "--view 'Open Opportunities'",
    ] {
        assert!(link.contains(words), "{words}:\n{link}");
    }
    let add = cli.run(&["connection", "add", "--help"]).await.stdout;
    for words in [
        "export CONTOSO_SECRET=",
        "--client-secret-env CONTOSO_SECRET",
    ] {
        assert!(add.contains(words), "{words}:\n{add}");
    }
    let run = cli.run(&["run", "--help"]).await.stdout;
    assert!(run.contains("--per-connection"), "{run}");
    assert!(!run.contains(&usize::MAX.to_string()), "{run}");
    assert!(!run.contains("18446744073709551615"), "{run}");
}

#[tokio::test]
async fn completions_print_a_script_for_the_shell() {
    let cli = Cli::new();
    let bash = cli.run(&["completions", "bash"]).await;
    assert!(bash.success(), "{}", bash.stderr);
    assert!(
        bash.stdout.contains("goals-host") && bash.stdout.contains("complete "),
        "{}",
        bash.stdout
    );
    assert!(bash.stdout.contains("--per-connection"), "{}", bash.stdout);
    let json = cli.json(&["completions", "zsh"]).await;
    assert_eq!(json["shell"], "zsh");
    assert!(
        json["script"]
            .as_str()
            .is_some_and(|s| s.contains("#compdef goals-host")),
        "{json}"
    );
    let unknown = cli.run(&["completions", "cmd.exe"]).await;
    assert_eq!(unknown.output.status.code(), Some(2), "{}", unknown.stderr);
}

/// Every command's `--json` document, checked against the published schema
/// (`docs/cli.schema.json`): a renamed or undocumented field fails here.
#[tokio::test]
async fn every_commands_json_follows_the_published_schema() {
    let schema_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.schema.json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path).expect("read docs/cli.schema.json"),
    )
    .expect("the schema is JSON");
    let documented: Vec<String> = schema["commands"]
        .as_object()
        .expect("the schema maps commands to definitions")
        .values()
        .map(|name| name.as_str().expect("a definition name").to_string())
        .collect();
    let mut checked = std::collections::BTreeSet::new();
    let mut check = |definition: &str, document: &serde_json::Value| {
        let mut rooted = schema.clone();
        rooted["$ref"] = serde_json::json!(format!("#/$defs/{definition}"));
        let validator = jsonschema::validator_for(&rooted).expect("the schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{definition}: {errors:#?}\n{document:#}");
        checked.insert(definition.to_string());
    };

    let sim = Sim::start().await;
    let cli = Cli::new();
    let json = |run: goals_e2e::Run| run.json();

    check("tenant", &cli.json(&["tenant", "create", "acme"]).await);
    check("tenant", &cli.json(&["tenant", "disable", "acme"]).await);
    check("tenants", &cli.json(&["tenant", "list"]).await);
    check(
        "organization",
        &cli.json(&["org", "create", "sales", "--tenant", "acme"])
            .await,
    );
    check(
        "organization",
        &cli.json(&["org", "disable", "sales"]).await,
    );
    check("organizations", &cli.json(&["org", "list"]).await);

    let added = cli
        .add_connection_with(&sim, "sim", &sim.config.client_secret, &["--json"], &[])
        .await;
    assert!(added.success(), "{}", added.stderr);
    let added = added.json();
    assert!(added["verified_as"]["user_id"].is_string(), "{added}");
    check("connection_added", &added);
    let spare = cli
        .add_unverified_connection(&sim, "spare", "not-yet", &["--json"], &[])
        .await;
    assert!(spare.success(), "{}", spare.stderr);
    check("connection_added", &spare.json());
    check("connections", &cli.json(&["connection", "list"]).await);
    check("identity", &cli.json(&["connection", "test", "sim"]).await);
    let signed_in = cli
        .run_with_env(
            &[
                "connection",
                "sign-in",
                "spare",
                "--client-secret-env",
                "S",
                "--json",
            ],
            &[("S", &sim.config.client_secret)],
        )
        .await;
    assert!(signed_in.success(), "{}", signed_in.stderr);
    check("connection", &signed_in.json());
    check(
        "connection",
        &cli.json(&["connection", "disable", "spare"]).await,
    );
    check(
        "connection",
        &cli.json(&["connection", "enable", "spare"]).await,
    );
    check(
        "connection",
        &cli.json(&["connection", "remove", "spare"]).await,
    );

    check("plugin_info", &cli.json(&["describe"]).await);
    check("apps", &cli.json(&["apps", "--connection", "sim"]).await);
    let entities = cli
        .json(&["entities", "--connection", "sim", "--app", "Sales Hub"])
        .await;
    check("entities", &entities);
    check(
        "views",
        &cli.json(&[
            "views",
            "--connection",
            "sim",
            "--entity",
            "lead",
            "--search",
            "hot",
        ])
        .await,
    );
    check(
        "charts",
        &cli.json(&["charts", "--connection", "sim", "--entity", "opportunity"])
            .await,
    );
    let columns = [
        "--connection",
        "sim",
        "--entity",
        "opportunity",
        "--view",
        "Open Opportunities",
    ];
    check(
        "columns",
        &cli.json(&[&["columns"][..], &columns].concat()).await,
    );
    let measured = cli
        .json(
            &[
                &["measure"][..],
                &columns,
                &["--column", "estimatedvalue", "--aggregation", "sum"],
            ]
            .concat(),
        )
        .await;
    assert_eq!(measured["currency"], "USD");
    check("measurement", &measured);

    let kr = cli.json(&CREATE_KR).await;
    check("key_result", &kr);
    let kr = kr["id"].to_string();
    check("details", &cli.json(&["kr", "show", &kr]).await);
    check(
        "link_result",
        &cli.json(&hot_leads_link(&kr, "sim", &[])).await,
    );
    check("key_results", &cli.json(&["kr", "list"]).await);
    check("sync_result", &cli.json(&["kr", "sync", &kr]).await);
    check("details", &cli.json(&["kr", "show", &kr]).await);
    check("runs", &cli.json(&["kr", "history", &kr]).await);
    check("link", &cli.json(&["kr", "pause", &kr]).await);
    check("key_result", &cli.json(&["kr", "checkin", &kr, "12"]).await);
    check("link", &cli.json(&["kr", "resume", &kr]).await);
    // A Project's documents: the same definitions, the item named `project`.
    let project = cli
        .json(&[
            "project",
            "create",
            "--title",
            "Partner campaign",
            "--owner",
            "ben",
            "--start",
            "0",
            "--target",
            "100",
            "--parent",
            &kr,
            "--due-date",
            "2027-03-31",
        ])
        .await;
    check("key_result", &project);
    let project = project["id"].to_string();
    let linked = cli
        .json(
            &[
                &[
                    "project",
                    "link",
                    &project,
                    "--connection",
                    "sim",
                    "--app",
                    "Sales Hub",
                ][..],
                &goals_e2e::HOT_LEADS_METRIC,
            ]
            .concat(),
        )
        .await;
    assert!(linked["project"].is_object(), "{linked}");
    check("link_result", &linked);
    check(
        "sync_result",
        &cli.json(&["project", "sync", &project]).await,
    );
    check("details", &cli.json(&["project", "show", &project]).await);
    check("key_results", &cli.json(&["project", "list"]).await);
    check("round", &cli.json(&["run", "--once"]).await);
    // A scheduler registers itself while it runs.
    let mut running = cli
        .command(&["run", "--duration", "60"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start goals-host run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let hosts = loop {
        let hosts = cli.json(&["hosts"]).await;
        if hosts.as_array().is_some_and(|hosts| !hosts.is_empty()) {
            break hosts;
        }
        assert!(std::time::Instant::now() < deadline, "no host registered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    running.kill().await.expect("stop goals-host run");
    assert_eq!(hosts[0]["alive"], true, "{hosts}");
    check("hosts", &hosts);
    check("settings", &cli.json(&["config", "show"]).await);
    let created = cli
        .json(&[
            "token",
            "create",
            "--role",
            "member",
            "--org",
            "default",
            "--user",
            "ana@contoso.com",
        ])
        .await;
    check("token_created", &created);
    check("tokens", &cli.json(&["token", "list"]).await);
    let id = created["id"].as_str().expect("a token id");
    check("token", &cli.json(&["token", "revoke", id]).await);
    // `serve` prints its address first, then, when stopped, its document.
    let mut serving = cli
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-scheduler",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start goals-host serve");
    let mut stdout = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        serving.stdout.take().expect("stdout"),
    ));
    let url = goals_e2e::announced_url(&mut stdout).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let pid = serving.id().expect("a pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout.into_inner(), &mut rest)
        .await
        .expect("the document");
    check(
        "served",
        &serde_json::from_str(&rest).expect("one JSON document"),
    );

    // Work that ran and failed, and failures before any work.
    sim.server.inject_fault(dataverse_sim::Fault::Status {
        status: 429,
        retry_after_seconds: Some(600),
    });
    let failed = json(cli.run(&["kr", "sync", &kr, "--json"]).await);
    assert_eq!(failed["error"]["kind"], "throttled", "{failed}");
    check("sync_result", &failed);
    sim.server.clear_faults();
    let waiting = json(cli.run(&["kr", "sync", &kr, "--json"]).await);
    assert_eq!(waiting["error"]["kind"], "throttled", "{waiting}");
    check("failure", &waiting);
    check(
        "failure",
        &json(cli.run(&["kr", "show", "999", "--json"]).await),
    );
    check(
        "failure",
        &json(cli.run(&["kr", "show", "--json", "--nonsense"]).await),
    );
    check(
        "failure",
        &json(
            cli.run(&["apps", "--connection", "nowhere", "--json"])
                .await,
        ),
    );
    sim.server.replace_client_secret("rotated");
    sim.server.expire_tokens();
    let refused = json(cli.run(&["kr", "sync", &kr, "--force", "--json"]).await);
    assert_eq!(refused["error"]["kind"], "unauthorized", "{refused}");
    check("sync_result", &refused);
    check("alerts", &cli.json(&["alerts", "--all"]).await);
    check("key_result", &cli.json(&["kr", "unlink", &kr]).await);
    check("details", &cli.json(&["kr", "show", &kr]).await);
    check("completions", &cli.json(&["completions", "bash"]).await);

    let unchecked: Vec<&String> = documented
        .iter()
        .filter(|d| !checked.contains(*d))
        .collect();
    assert!(
        unchecked.is_empty(),
        "documented but never checked: {unchecked:?}"
    );
}

/// `token` failures have the kinds and exit codes of every command, and say
/// what is wrong in the token's own words.
#[tokio::test]
async fn token_errors_name_what_is_wrong() {
    let cli = Cli::new();
    let missing = cli.run(&["token", "revoke", "nope", "--json"]).await;
    assert_eq!(missing.output.status.code(), Some(3), "{}", missing.stderr);
    let error = &missing.json()["error"];
    assert_eq!(error["kind"], "not-found", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no token with id 'nope'") && !m.contains("Key Result")),
        "{error}"
    );
    let unscoped = cli
        .run(&["token", "create", "--role", "member", "--json"])
        .await;
    assert_eq!(
        unscoped.output.status.code(),
        Some(2),
        "{}",
        unscoped.stderr
    );
    assert_eq!(unscoped.json()["error"]["kind"], "usage");
    let unknown = cli
        .run(&[
            "token",
            "create",
            "--role",
            "org-admin",
            "--org",
            "Nowhere",
            "--json",
        ])
        .await;
    assert_eq!(unknown.output.status.code(), Some(3), "{}", unknown.stderr);
    assert_eq!(unknown.json()["error"]["kind"], "not-found");
}
