//! Sign-in and secrets through the `goals-host` binary: a person's device-code
//! sign-in, secrets sealed in the database file, a lost key, and a grep of every
//! output of a full run (logs at trace level included) for known secrets.

use goals_e2e::{Cli, Run, Sim, dataset, goals_host_binary};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Everything at trace level but the compiler's internals, which see compiled
/// code only (and write gigabytes at trace).
const TRACE_EVERYTHING: &str = "trace,cranelift_codegen=off,cranelift_frontend=off,\
    wasmtime_internal_cranelift=off,regalloc2=off,cranelift_bforest=off";

/// Adds a connection that signs in as a person, approving the code the host
/// shows, and returns the finished command's output.
async fn add_person_connection(sim: &Sim, cli: &Cli, name: &str, log: &str) -> Run {
    let url = sim.url();
    let mut child = tokio::process::Command::new(goals_host_binary())
        .arg("--data-dir")
        .arg(cli.data_dir())
        .args([
            "connection",
            "add",
            "--name",
            name,
            "--url",
            &url,
            "--authority",
            &url,
            "--tenant",
            &sim.config.tenant,
            "--client-id",
            &sim.config.client_id,
            "--sign-in",
            "device",
            "--allow-loopback",
            "--json",
            "-vv",
        ])
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start goals-host");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.map(|_| text)
    });
    let err = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.map(|_| text)
    });
    // The person approves the code the host is waiting on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let user_code = loop {
        if let Some(code) = sim
            .server
            .device_codes()
            .into_iter()
            .find(|c| c.state == dataverse_sim::DeviceCodeState::Pending)
        {
            break code.user_code;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no device code was requested"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    sim.server.approve_device_code(&user_code);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the sign-in finishes")
        .expect("goals-host ran");
    let stdout = out.await.expect("join").expect("read stdout");
    let stderr = err.await.expect("join").expect("read stderr");
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&user_code),
        "the code is shown to the person:\n{stderr}"
    );
    assert!(stderr.contains("/devicelogin"), "{stderr}");
    Run {
        output: std::process::Output {
            status,
            stdout: stdout.clone().into_bytes(),
            stderr: stderr.clone().into_bytes(),
        },
        stdout,
        stderr,
    }
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
        .add_connection_with(&sim, "wrong", "not-the-secret", &[], &[])
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

    let kr = cli
        .json(&[
            "kr", "create", "--title", "Hot", "--owner", "ana", "--start", "0", "--target", "9000",
        ])
        .await["id"]
        .to_string();
    let steps: Vec<Vec<&str>> = vec![
        vec![
            "kr",
            "link",
            &kr,
            "--connection",
            "alice",
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
        ],
        vec!["kr", "sync", &kr],
        vec!["run", "--once"],
        vec!["kr", "show", &kr],
        vec!["kr", "history", &kr],
        vec!["alerts", "--all"],
        vec!["connection", "list"],
        vec!["connection", "test", "sim"],
        vec!["connection", "test", "alice"],
        vec![
            "measure",
            "--connection",
            "sim",
            "--entity",
            "lead",
            "--view",
            "Hot Leads",
            "--column",
            "fullname",
            "--aggregation",
            "count",
        ],
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
    let kr = cli
        .json(&[
            "kr", "create", "--title", "Hot", "--owner", "ana", "--start", "0", "--target", "9000",
        ])
        .await["id"]
        .to_string();
    let linked = cli
        .json(&[
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
        ])
        .await;
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
