//! The configuration file: its settings apply below the flags and the
//! environment, `config show` prints the effective ones without a password,
//! and a file with an unknown key (or none where one is named) is a usage
//! error naming it.

use goals_e2e::{Run, goals_host_binary};
use std::path::Path;

/// `goals-host` with `args`, `env` set, and nothing from this process's own
/// environment or a data directory flag: the file decides.
async fn goals_host(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(goals_host_binary());
    command.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.expect("run goals-host");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a configuration file");
    path.display().to_string()
}

#[tokio::test]
async fn the_file_sits_under_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let key_file = write(dir.path(), "shared.key", &format!("{}\n", "ab".repeat(32)));
    let config = write(
        dir.path(),
        "goals-host.toml",
        &format!(
            "data_dir = {:?}\nsecret_key_file = {key_file:?}\n\
             database_url = \"postgres://goals:hunter2@db.internal/goals\"\n\
             claim_lease = 12\n\n[run]\nconcurrency = 7\n",
            data_dir.display().to_string()
        ),
    );

    let shown = goals_host(&["--config", &config, "config", "show", "--json"], &[]).await;
    assert!(shown.success(), "{}", shown.stderr);
    let settings = shown.json();
    assert_eq!(settings["claim_lease"], 12, "{settings}");
    assert_eq!(settings["run"]["concurrency"], 7, "{settings}");
    assert_eq!(settings["run"]["poll"], 1.0, "the rest keeps its default");
    assert_eq!(
        settings["database_url"], "postgres://goals:***@db.internal/goals",
        "the password is never shown"
    );
    assert!(!shown.stdout.contains("hunter2"));
    let text = goals_host(&["--config", &config, "config", "show"], &[]).await;
    assert!(text.stdout.contains("concurrency = 7"), "{}", text.stdout);
    assert!(!text.stdout.contains("hunter2"));

    // The environment beats the file; a flag beats both.
    let env = [
        ("GOALS_HOST_CLAIM_LEASE", "20"),
        ("GOALS_HOST_CONFIG", config.as_str()),
    ];
    let from_env = goals_host(&["config", "show", "--json"], &env).await.json();
    assert_eq!(from_env["claim_lease"], 20, "{from_env}");
    assert_eq!(from_env["config_file"], config.as_str());
    let from_flag = goals_host(&["--claim-lease", "40", "config", "show", "--json"], &env)
        .await
        .json();
    assert_eq!(from_flag["claim_lease"], 40, "{from_flag}");

    // The file's data directory and key file are the ones used.
    let without_database = write(
        dir.path(),
        "local.toml",
        &format!(
            "data_dir = {:?}\nsecret_key_file = {key_file:?}\n",
            data_dir.display().to_string()
        ),
    );
    let created = goals_host(
        &[
            "--config",
            &without_database,
            "tenant",
            "create",
            "acme",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(created.success(), "{}", created.stderr);
    assert!(
        data_dir.join("goals.db").is_file(),
        "the file's data directory"
    );
    assert!(
        !data_dir.join("secret.key").exists(),
        "the file's key file, not a new one in the data directory"
    );
}

#[tokio::test]
async fn an_unknown_key_or_a_missing_file_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "typo.toml", "[run]\nconcurency = 3\n");
    let refused = goals_host(&["--config", &config, "config", "show", "--json"], &[]).await;
    assert_eq!(refused.output.status.code(), Some(2), "{}", refused.stderr);
    assert_eq!(refused.json()["error"]["kind"], "usage");
    assert!(
        refused.stderr.contains("concurency") && refused.stderr.contains("typo.toml"),
        "{}",
        refused.stderr
    );

    // A value the flag would refuse is refused from the file too.
    let config = write(dir.path(), "range.toml", "[run]\nkeep_history_days = 0\n");
    let refused = goals_host(&["--config", &config, "config", "show"], &[]).await;
    assert_eq!(refused.output.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("keep_history_days = 0") && refused.stderr.contains("range.toml"),
        "{}",
        refused.stderr
    );

    let missing = dir.path().join("nowhere.toml").display().to_string();
    let refused = goals_host(&["--config", &missing, "tenant", "list"], &[]).await;
    assert_eq!(refused.output.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("nowhere.toml"),
        "{}",
        refused.stderr
    );
}

/// The example under deploy/ is a file the host takes as it is, `serve`'s
/// settings included.
#[tokio::test]
async fn the_deploy_example_is_a_valid_configuration() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/goals-host.toml");
    let example = example.to_str().expect("a UTF-8 path");
    let shown = goals_host(&["--config", example, "config", "show", "--json"], &[]).await;
    assert!(shown.success(), "{}", shown.stderr);
    let settings = shown.json();
    assert_eq!(settings["serve"]["listen"], "127.0.0.1:8080", "{settings}");
    assert_eq!(settings["log_format"], "json");
    assert_eq!(settings["run"]["grace"], 30.0);
}
