//! Sign-in and secrets through the `goals-host` binary: a person's device-code
//! sign-in, secrets sealed in the database file, a lost key, and a grep of every
//! output of a full run (logs at trace level included) for known secrets.

use goals_e2e::{CREATE_KR, Cli, Run, Sim, dataset, hot_leads_link};

/// Everything at trace level but the compiler's internals, which see compiled
/// code only (and write gigabytes at trace).
const TRACE_EVERYTHING: &str = "trace,cranelift_codegen=off,cranelift_frontend=off,\
    wasmtime_internal_cranelift=off,regalloc2=off,cranelift_bforest=off";

/// Adds a connection that signs in as a person, approving the code the host
/// shows, with `--json -vv` and `RUST_LOG=log`.
async fn add_person_connection(sim: &Sim, cli: &Cli, name: &str, log: &str) -> Run {
    cli.add_person_connection(sim, name, &["--json", "-vv"], &[("RUST_LOG", log)])
        .await
}

#[tokio::test]
async fn a_person_connects_with_a_device_code_from_the_cli() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = add_person_connection(&sim, &cli, "alice", "warn").await;
    assert_eq!(added.json()["status"], "ok");
    let test = cli.json(&["connection", "test", "alice"]).await;
    assert_eq!(test["user_id"], dataset().delegated_user_id.as_str());
    let apps = cli.json(&["apps", "--connection", "alice"]).await;
    assert!(apps.as_array().is_some_and(|a| !a.is_empty()));
}

#[tokio::test]
async fn a_wrong_connection_test_says_why() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli
        .add_unverified_connection(&sim, "wrong", "not-the-secret", &[], &[])
        .await;
    assert!(added.success());
    let test = cli.run(&["connection", "test", "wrong"]).await;
    assert!(!test.success());
    assert!(test.stderr.contains("AADSTS7000215"), "{}", test.stderr);
    assert!(test.stderr.contains("client secret"), "{}", test.stderr);
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_never_printed_or_logged() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let secret = sim.config.client_secret.clone();
    let mut outputs: Vec<String> = Vec::new();
    let traced = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push("-vv".to_string());
        all
    };

    let added = cli
        .add_connection_with(
            &sim,
            "sim",
            &secret,
            &["-vv"],
            &[("RUST_LOG", TRACE_EVERYTHING)],
        )
        .await;
    assert!(added.success(), "{}", added.stderr);
    outputs.extend([added.stdout, added.stderr]);
    let person = add_person_connection(&sim, &cli, "alice", TRACE_EVERYTHING).await;
    outputs.extend([person.stdout, person.stderr]);

    let kr = cli.json(&CREATE_KR).await["id"].to_string();
    let steps: Vec<Vec<&str>> = vec![
        hot_leads_link(&kr, "alice", &[]),
        vec!["kr", "sync", &kr],
        vec!["run", "--once"],
        vec!["kr", "show", &kr],
        vec!["kr", "history", &kr],
        vec!["alerts", "--all"],
        vec!["connection", "list"],
        vec!["connection", "test", "sim"],
        vec!["connection", "test", "alice"],
        goals_e2e::hot_leads_measure("sim"),
    ];
    for step in steps {
        for json in [false, true] {
            let mut args = traced(&step);
            if json {
                args.push("--json".to_string());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = cli
                .run_with_env(&args, &[("RUST_LOG", TRACE_EVERYTHING)])
                .await;
            assert!(run.success(), "{step:?}: {}", run.stderr);
            outputs.extend([run.stdout, run.stderr]);
        }
    }
    // A refresh happened too (rotated refresh tokens are secrets as well).
    sim.server.expire_tokens();
    let refreshed = cli
        .run_with_env(
            &["kr", "sync", &kr, "-vv"],
            &[("RUST_LOG", TRACE_EVERYTHING)],
        )
        .await;
    assert!(refreshed.success(), "{}", refreshed.stderr);
    outputs.extend([refreshed.stdout, refreshed.stderr]);

    let mut secrets = sim.server.issued_secrets();
    secrets.push(secret.clone());
    assert!(
        secrets.len() >= 5,
        "tokens, refresh tokens and device codes were issued"
    );
    let logged: usize = outputs.iter().map(String::len).sum();
    assert!(
        logged > 100_000,
        "the logs really were at trace level ({logged} bytes)"
    );
    for output in &outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret leaked into output"
            );
        }
        assert!(
            !output.to_lowercase().contains("bearer ey") && !output.contains("Bearer "),
            "an authorization header leaked"
        );
    }

    // At rest: the database file and its write-ahead log hold no secret in the clear.
    for file in ["goals.db", "goals.db-wal"] {
        let Ok(bytes) = std::fs::read(cli.data_dir().join(file)) else {
            continue;
        };
        for secret in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} holds a secret in the clear"
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(cli.data_dir().join("secret.key")).expect("key file");
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_lost_key_makes_connections_need_sign_in_instead_of_crashing() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.json(&CREATE_KR).await["id"].to_string();
    let linked = cli.json(&hot_leads_link(&kr, "sim", &[])).await;
    assert_eq!(linked["run"]["status"], "success");

    // The key file is replaced by another key.
    std::fs::write(
        cli.data_dir().join("secret.key"),
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .expect("replace the key");
    let listed = cli.json(&["connection", "list"]).await;
    assert_eq!(listed[0]["status"], "needs-sign-in", "{listed}");
    assert!(
        listed[0]["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("key")
    );
    let sync = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert!(!sync.success());
    assert_eq!(sync.json()["error"]["kind"], "needs-sign-in");

    let repaired = cli
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
    assert!(repaired.success(), "{}", repaired.stderr);
    let sync = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(sync["run"]["status"], "success");
}

const ANOTHER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[tokio::test]
async fn a_lost_key_makes_a_persons_connection_need_sign_in_saying_why() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    cli.add_person_connection(&sim, "alice", &[], &[]).await;
    let kr = cli.linked_hot_leads_kr("alice", &[]).await;

    std::fs::write(
        cli.data_dir().join("secret.key"),
        format!("{ANOTHER_KEY}\n"),
    )
    .expect("replace the key");
    let listed = cli.json(&["connection", "list"]).await;
    assert_eq!(listed[0]["status"], "needs-sign-in", "{listed}");
    let reason = listed[0]["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("secret key"), "{reason}");
    assert!(reason.contains("changed or was lost"), "{reason}");
    assert!(reason.contains("sign in again"), "{reason}");

    let sync = cli.run(&["kr", "sync", &kr, "--json"]).await;
    assert!(!sync.success());
    let error = &sync.json()["error"];
    assert_eq!(error["kind"], "needs-sign-in");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("changed or was lost"), "{message}");
    assert!(!message.contains("nobody has signed in"), "{message}");
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["succeeded"], 0, "{once}");

    let test = cli.run(&["connection", "test", "alice"]).await;
    assert!(!test.success());
    assert!(
        test.stderr.contains("changed or was lost"),
        "{}",
        test.stderr
    );
    assert!(
        !test.stderr.contains("nobody has signed in"),
        "{}",
        test.stderr
    );

    let (signed_in, _) = cli
        .run_approving_sign_in(&sim, &["connection", "sign-in", "alice", "--json"], &[])
        .await;
    assert!(signed_in.success(), "{}", signed_in.stderr);
    assert_eq!(signed_in.json()["status"], "ok");
    let sync = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(sync["run"]["status"], "success", "{sync}");
}

#[tokio::test]
async fn the_key_from_the_environment_opens_the_secrets_wherever_the_database_goes() {
    let sim = Sim::start().await;
    let key = [("GOALS_HOST_SECRET_KEY", ANOTHER_KEY)];
    let first = Cli::new();
    let added = first
        .add_connection_with(&sim, "sim", &sim.config.client_secret, &[], &key)
        .await;
    assert!(added.success(), "{}", added.stderr);
    let kr = first.linked_hot_leads_kr("sim", &key).await;
    assert!(
        !first.data_dir().join("secret.key").exists(),
        "with the key in the environment no key file is made"
    );

    // The database moves to another data directory; the key goes with it in
    // the environment.
    let second = Cli::new();
    for file in ["goals.db", "goals.db-wal"] {
        if first.data_dir().join(file).exists() {
            std::fs::copy(first.data_dir().join(file), second.data_dir().join(file))
                .expect("copy the database");
        }
    }
    let sync = second
        .run_with_env(&["kr", "sync", &kr, "--json"], &key)
        .await;
    assert!(sync.success(), "{}", sync.stderr);
    assert_eq!(sync.json()["run"]["status"], "success");

    // Another key from the environment, or none (a new key file is made):
    // the connection needs sign-in, nothing crashes.
    let other_key = "ff".repeat(32);
    let other: [&[(&str, &str)]; 2] = [&[("GOALS_HOST_SECRET_KEY", &other_key)], &[]];
    for env in other {
        let listed = second
            .run_with_env(&["connection", "list", "--json"], env)
            .await;
        assert!(listed.success(), "{env:?}: {}", listed.stderr);
        let listed = listed.json();
        assert_eq!(listed[0]["status"], "needs-sign-in", "{env:?}: {listed}");
        let refused = second
            .run_with_env(&["kr", "sync", &kr, "--json"], env)
            .await;
        assert!(!refused.success());
        assert_eq!(refused.json()["error"]["kind"], "needs-sign-in");
        assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    }
    assert!(second.data_dir().join("secret.key").exists());

    // The environment's key wins over the key file, and opens the secrets again.
    let listed = second
        .run_with_env(&["connection", "list", "--json"], &key)
        .await;
    assert_eq!(listed.json()[0]["status"], "ok", "{}", listed.stdout);
    let sync = second
        .run_with_env(&["kr", "sync", &kr, "--json"], &key)
        .await;
    assert_eq!(sync.json()["run"]["status"], "success", "{}", sync.stderr);

    // A key that is not one is an error that names the variable.
    let garbled = second
        .run_with_env(
            &["connection", "list"],
            &[("GOALS_HOST_SECRET_KEY", "not a key")],
        )
        .await;
    assert!(!garbled.success());
    assert!(
        garbled.stderr.contains("GOALS_HOST_SECRET_KEY is set but"),
        "{}",
        garbled.stderr
    );
    assert!(!garbled.stderr.contains("not a key"), "{}", garbled.stderr);
}

#[tokio::test]
async fn a_garbled_key_file_is_an_error_naming_the_file_and_what_to_do() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let path = cli.data_dir().join("secret.key");
    std::fs::write(&path, "garbled").expect("garble the key file");
    let listed = cli.run(&["connection", "list", "--json"]).await;
    assert!(!listed.success());
    let message = listed.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("restore it from a backup"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("garbled"),
        "the file is left for the operator"
    );
}

/// `goals-host ARGS -vv` at trace level, in text and in `--json`; returns both
/// runs.
async fn traced_both(cli: &Cli, args: &[&str], env: &[(&str, &str)]) -> [Run; 2] {
    let mut text: Vec<&str> = args.to_vec();
    text.push("-vv");
    let mut json = text.clone();
    json.push("--json");
    let mut env = env.to_vec();
    env.push(("RUST_LOG", TRACE_EVERYTHING));
    [
        cli.run_with_env(&text, &env).await,
        cli.run_with_env(&json, &env).await,
    ]
}

#[tokio::test]
async fn secrets_are_never_printed_or_logged_on_failure_paths_either() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let trace = [("RUST_LOG", TRACE_EVERYTHING)];
    // A mistyped secret may be another app's real one: it is a secret too.
    let wrong_secret = "wrong-secret-Zq81Xk";
    let new_secret = "replaced-secret-Vb42Lp";
    let mut outputs: Vec<String> = Vec::new();
    let mut keep = |runs: &[Run]| {
        for run in runs {
            outputs.extend([run.stdout.clone(), run.stderr.clone()]);
        }
    };

    // A service principal with a wrong secret: refused when added, then added
    // unverified and refused at its first call.
    let refused_add = cli
        .add_connection_with(&sim, "wrong", wrong_secret, &["-vv"], &trace)
        .await;
    assert!(!refused_add.success());
    assert!(
        refused_add.stderr.contains("AADSTS7000215"),
        "{}",
        refused_add.stderr
    );
    let added = cli
        .add_unverified_connection(&sim, "wrong", wrong_secret, &["-vv"], &trace)
        .await;
    assert!(added.success(), "{}", added.stderr);
    keep(&[refused_add, added]);
    let refused = traced_both(&cli, &["connection", "test", "wrong"], &[]).await;
    for run in &refused {
        assert!(!run.success());
        assert!(run.stderr.contains("AADSTS7000215"), "{}", run.stderr);
    }
    keep(&refused);

    // The right service principal and a person, each with a linked Key Result.
    let added = cli
        .add_connection_with(&sim, "sim", &sim.config.client_secret, &["-vv"], &trace)
        .await;
    assert!(added.success(), "{}", added.stderr);
    keep(&[added]);
    let person = add_person_connection(&sim, &cli, "alice", TRACE_EVERYTHING).await;
    keep(&[person]);
    let kr_person = cli.linked_hot_leads_kr("alice", &trace).await;
    let kr_service = cli.linked_hot_leads_kr("sim", &trace).await;

    // The person's refresh token is revoked (invalid_grant) and the service
    // principal's secret replaced (invalid_client).
    sim.server.revoke_refresh_tokens();
    sim.server.replace_client_secret(new_secret);
    sim.server.expire_tokens();
    for (kr, code) in [(&kr_person, "AADSTS50173"), (&kr_service, "AADSTS7000215")] {
        // The first sync is refused by the identity platform, the second by
        // the host (the connection needs sign-in now).
        let synced = traced_both(&cli, &["kr", "sync", kr], &[]).await;
        assert!(
            synced[0].stdout.contains("failure: unauthorized"),
            "{}",
            synced[0].stdout
        );
        assert!(synced[0].stdout.contains(code), "{}", synced[0].stdout);
        assert_eq!(synced[1].json()["error"]["kind"], "needs-sign-in");
        keep(&synced);
        let history = traced_both(&cli, &["kr", "history", kr], &[]).await;
        let runs = history[1].json();
        assert!(
            runs.as_array()
                .is_some_and(|runs| runs.iter().any(|r| r["error_message"]
                    .as_str()
                    .is_some_and(|m| m.contains(code)))),
            "the refusal is in the history: {runs}"
        );
        keep(&history);
        keep(&traced_both(&cli, &["kr", "show", kr], &[]).await);
    }
    for name in ["alice", "sim"] {
        let test = traced_both(&cli, &["connection", "test", name], &[]).await;
        assert!(test.iter().all(|run| !run.success()), "{name} is refused");
        keep(&test);
    }
    for step in [
        &["run", "--once"][..],
        &["alerts", "--all"],
        &["connection", "list"],
    ] {
        let runs = traced_both(&cli, step, &[]).await;
        assert!(runs.iter().all(Run::success), "{step:?}");
        keep(&runs);
    }

    // Signing in again: a wrong secret first, then the new one; the person
    // with a new device code.
    let sign_in = ["connection", "sign-in", "sim", "--client-secret-env", "S"];
    for (secret, works) in [(wrong_secret, false), (new_secret, true)] {
        let runs = traced_both(&cli, &sign_in, &[("S", secret)]).await;
        assert!(runs.iter().all(|run| run.success() == works), "{secret}");
        keep(&runs);
    }
    let (signed_in, _) = cli
        .run_approving_sign_in(
            &sim,
            &["connection", "sign-in", "alice", "-vv", "--json"],
            &trace,
        )
        .await;
    assert!(signed_in.success(), "{}", signed_in.stderr);
    keep(&[signed_in]);
    for kr in [&kr_person, &kr_service] {
        let synced = traced_both(&cli, &["kr", "sync", kr], &[]).await;
        assert_eq!(synced[1].json()["run"]["status"], "success");
        keep(&synced);
    }

    let mut secrets = sim.server.issued_secrets();
    secrets.extend([
        sim.config.client_secret.clone(),
        wrong_secret.to_string(),
        new_secret.to_string(),
    ]);
    assert!(secrets.len() >= 8, "{} secrets", secrets.len());
    assert!(
        outputs.iter().any(|o| o.contains("TRACE")),
        "the logs really were at trace level"
    );
    for output in &outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret leaked into output"
            );
        }
        assert!(
            !output.to_lowercase().contains("bearer ey") && !output.contains("Bearer "),
            "an authorization header leaked"
        );
    }
    for file in ["goals.db", "goals.db-wal"] {
        let Ok(bytes) = std::fs::read(cli.data_dir().join(file)) else {
            continue;
        };
        for secret in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} holds a secret in the clear"
            );
        }
    }
}

#[tokio::test]
async fn a_lost_key_is_an_open_alert_naming_the_key_and_the_fix() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    assert_eq!(cli.json(&["alerts"]).await, serde_json::json!([]));
    // The key file is lost: a new one is made, and nothing stored opens.
    std::fs::remove_file(cli.data_dir().join("secret.key")).expect("remove the key file");
    let alerts = cli.json(&["alerts"]).await;
    let open = alerts.as_array().expect("alerts");
    assert_eq!(open.len(), 1, "{alerts}");
    assert_eq!(open[0]["kind"], "needs-sign-in", "{alerts}");
    let message = open[0]["message"].as_str().unwrap_or_default();
    for words in [
        "secret.key",
        "Restore the key",
        "goals-host connection sign-in 'sim' --client-secret-env VAR",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    // Signing in again closes it.
    let repaired = cli
        .run_with_env(
            &["connection", "sign-in", "sim", "--client-secret-env", "S"],
            &[("S", &sim.config.client_secret)],
        )
        .await;
    assert!(repaired.success(), "{}", repaired.stderr);
    assert_eq!(cli.json(&["alerts"]).await, serde_json::json!([]));
}

#[tokio::test]
async fn an_empty_database_file_or_a_missing_data_directory_is_an_error() {
    let cli = Cli::new();
    std::fs::write(cli.data_dir().join("goals.db"), b"").expect("an empty goals.db");
    let run = cli.run(&["kr", "list", "--json"]).await;
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("0 bytes"), "{}", run.stderr);
    assert_eq!(
        std::fs::metadata(cli.data_dir().join("goals.db"))
            .map(|m| m.len())
            .ok(),
        Some(0),
        "left as it was"
    );

    let missing = cli.data_dir().join("typo");
    for read in [&["kr", "list"][..], &["alerts"], &["connection", "list"]] {
        let run = tokio::process::Command::new(goals_e2e::goals_host_binary())
            .arg("--data-dir")
            .arg(&missing)
            .args(read)
            .arg("--json")
            .output()
            .await
            .expect("run goals-host");
        assert_eq!(run.status.code(), Some(3), "{read:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("does not exist"), "{read:?}: {stderr}");
        assert!(!missing.exists(), "{read:?} created the directory");
    }
    let created = tokio::process::Command::new(goals_e2e::goals_host_binary())
        .arg("--data-dir")
        .arg(&missing)
        .args(["tenant", "create", "acme"])
        .output()
        .await
        .expect("run goals-host");
    assert!(created.status.success());
    assert!(
        missing.join("goals.db").exists(),
        "a command that writes creates it"
    );
}

/// `goals-host ARGS` with the data directory mounted read-only in a mount
/// namespace of its own (`unshare -m`, which needs root); `None` where the
/// machine cannot do that.
async fn on_a_read_only_mount(cli: &Cli, args: &[&str]) -> Option<std::process::Output> {
    let dir = cli.data_dir().display().to_string();
    let script = format!(
        "mount --bind '{dir}' '{dir}' && mount -o remount,bind,ro '{dir}' && \
         touch '{dir}/probe' 2>/dev/null && exit 97; exec \"$0\" \"$@\""
    );
    let output = tokio::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(goals_e2e::goals_host_binary())
        .arg("--data-dir")
        .arg(cli.data_dir())
        .args(args)
        .env("GOALS_HOST_CACHE_DIR", goals_e2e::shared_cache_dir())
        .env_remove("GOALS_HOST_SECRET_KEY")
        .output()
        .await
        .ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The mount itself failed (not root, no mount namespaces), or the
    // directory stayed writable: this machine cannot show it.
    if output.status.code() == Some(97) || stderr.contains("unshare:") || stderr.contains("mount:")
    {
        return None;
    }
    Some(output)
}

#[tokio::test]
async fn read_commands_work_on_a_read_only_data_directory() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let Some(listed) = on_a_read_only_mount(&cli, &["kr", "list", "--json"]).await else {
        let required = std::env::var_os("GOALS_E2E_REQUIRE_ALL").is_some();
        assert!(
            !required,
            "GOALS_E2E_REQUIRE_ALL is set, but this machine cannot mount a directory read-only (needs root and unshare)"
        );
        eprintln!("skipped: mounting a directory read-only needs root and unshare(1)");
        return;
    };
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed[0]["id"].to_string(), kr, "{listed}");
    for read in [
        &["kr", "show", &kr, "--json"][..],
        &["kr", "history", &kr, "--json"],
        &["connection", "list", "--json"],
        &["alerts", "--json"],
    ] {
        let run = on_a_read_only_mount(&cli, read)
            .await
            .expect("the mount worked once");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{read:?}: {stderr}");
    }
    let shown = on_a_read_only_mount(&cli, &["kr", "show", &kr, "--json"])
        .await
        .expect("the mount worked once");
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(shown["link"]["view_name"], "Hot Leads", "{shown}");
    // Writing is refused, and nothing changed.
    let write = on_a_read_only_mount(&cli, &["tenant", "create", "acme"])
        .await
        .expect("the mount worked once");
    assert!(!write.status.success());
    assert_eq!(
        cli.json(&["tenant", "list"]).await.as_array().map(Vec::len),
        Some(1)
    );
}
