//! Signing a connection in again through the `goals-host` binary, as users do:
//! a sync is refused (a revoked refresh token, a replaced client secret), the
//! connection needs sign-in and an alert says so; `connection sign-in` repairs
//! it, closes the alert and the link syncs again.

use goals_e2e::{Cli, Sim, hot_leads};
use serde_json::{Value, json};

fn connection<'a>(listed: &'a Value, name: &str) -> &'a Value {
    listed
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no connection '{name}' in {listed}"))
}

fn needs_sign_in_alerts(alerts: &Value) -> Vec<&Value> {
    alerts
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == "needs-sign-in")
        .collect()
}

/// Sync now refused by the identity platform: it ran, failed as unauthorized
/// (exit 4, the run beside the error), and its document is returned.
async fn refused_sync(cli: &Cli, kr: &str) -> Value {
    let failed = cli.run(&["kr", "sync", kr, "--json"]).await;
    assert_eq!(
        failed.output.status.code(),
        Some(4),
        "needs sign-in: {}",
        failed.stderr
    );
    let failed = failed.json();
    assert_eq!(failed["error"]["kind"], "unauthorized", "{failed}");
    assert_eq!(failed["run"]["status"], "failure", "{failed}");
    assert_eq!(failed["run"]["error_kind"], "unauthorized", "{failed}");
    failed
}

/// The refused sync: the connection needs sign-in saying why, one alert is
/// open about it, and its links wait (nothing is scheduled, Sync now refused).
async fn assert_stopped(cli: &Cli, kr: &str, name: &str, why: &str) {
    let listed = cli.json(&["connection", "list"]).await;
    let stopped = connection(&listed, name);
    assert_eq!(stopped["status"], "needs-sign-in", "{stopped}");
    let reason = stopped["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "{reason}");

    let alerts = cli.json(&["alerts"]).await;
    let open = needs_sign_in_alerts(&alerts);
    assert_eq!(open.len(), 1, "{alerts}");
    assert!(
        open[0]["about"]
            .as_str()
            .is_some_and(|about| about.contains(name)),
        "{alerts}"
    );
    assert!(open[0]["closed_at"].is_null());
    let text = cli.run(&["alerts"]).await;
    assert!(text.stdout.contains("needs-sign-in"), "{}", text.stdout);

    let refused = cli.run(&["kr", "sync", kr, "--json"]).await;
    assert!(!refused.success());
    assert_eq!(refused.json()["error"]["kind"], "needs-sign-in");
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 0, "links wait for the sign-in: {once}");
}

/// After `connection sign-in`: the connection is ok, the alert closed, and the
/// waiting link runs in the next scheduler round, not an hour later.
async fn assert_resumed(cli: &Cli, kr: &str, name: &str) {
    let listed = cli.json(&["connection", "list"]).await;
    let repaired = connection(&listed, name);
    assert_eq!(repaired["status"], "ok", "{repaired}");
    assert!(repaired["status_reason"].is_null(), "{repaired}");

    assert!(
        needs_sign_in_alerts(&cli.json(&["alerts"]).await).is_empty(),
        "the needs-sign-in alert is closed"
    );
    let all = cli.json(&["alerts", "--all"]).await;
    let closed = needs_sign_in_alerts(&all);
    assert_eq!(closed.len(), 1, "{all}");
    assert!(
        goals_e2e::seconds(&closed[0]["closed_at"]).is_some(),
        "{all}"
    );

    let before = cli.json(&["kr", "history", kr]).await;
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 1, "the waiting link runs at once: {once}");
    assert_eq!(once["succeeded"], 1, "{once}");
    let history = cli.json(&["kr", "history", kr]).await;
    let runs = history.as_array().expect("runs");
    assert_eq!(runs.len(), before.as_array().map_or(0, Vec::len) + 1);
    let newest = runs.iter().max_by_key(|r| r["id"].as_i64()).expect("a run");
    assert_eq!(newest["trigger"], "scheduled", "{newest}");
    assert_eq!(newest["status"], "success", "{newest}");
    assert_eq!(newest["value"], json!(hot_leads()));
    let shown = cli.json(&["kr", "show", kr]).await;
    assert_eq!(shown["key_result"]["current_value"], json!(hot_leads()));
    assert_eq!(shown["link"]["last_success_at"], newest["finished_at"]);

    let synced = cli.json(&["kr", "sync", kr]).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
}

#[tokio::test]
async fn a_person_signs_in_again_from_the_cli_after_the_sign_in_was_revoked() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    cli.add_person_connection(&sim, "alice", &[], &[]).await;
    let kr = cli.linked_hot_leads_kr("alice", &[]).await;

    // A password reset: the refresh token is revoked, the access token dies.
    sim.server.revoke_refresh_tokens();
    sim.server.expire_tokens();
    let failed = refused_sync(&cli, &kr).await;
    assert_eq!(failed["key_result"]["current_value"], json!(hot_leads()));
    assert_stopped(&cli, &kr, "alice", "AADSTS50173").await;

    let (signed_in, user_code) = cli
        .run_approving_sign_in(&sim, &["connection", "sign-in", "alice", "--json"], &[])
        .await;
    assert!(
        signed_in.success(),
        "{}\n{}",
        signed_in.stdout,
        signed_in.stderr
    );
    assert!(
        signed_in.stderr.contains(&user_code),
        "{}",
        signed_in.stderr
    );
    assert_eq!(signed_in.json()["status"], "ok");
    assert_resumed(&cli, &kr, "alice").await;
}

/// `connection sign-in sim` with `secret` passed through an environment variable.
async fn sign_in_with(cli: &Cli, secret: &str) -> goals_e2e::Run {
    cli.run_with_env(
        &[
            "connection",
            "sign-in",
            "sim",
            "--client-secret-env",
            "NEW_SECRET",
            "--json",
        ],
        &[("NEW_SECRET", secret)],
    )
    .await
}

#[tokio::test]
async fn a_service_principal_signs_in_again_with_a_new_secret_from_the_cli() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;

    // The secret expired and an admin made a new one in Entra.
    sim.server.replace_client_secret("the-new-secret");
    sim.server.expire_tokens();
    refused_sync(&cli, &kr).await;
    assert_stopped(&cli, &kr, "sim", "AADSTS7000215").await;

    // The old secret again: refused, and nothing changes.
    let refused = sign_in_with(&cli, &sim.config.client_secret).await;
    assert!(!refused.success());
    assert_eq!(refused.json()["error"]["kind"], "unauthorized");
    assert_stopped(&cli, &kr, "sim", "AADSTS7000215").await;

    let signed_in = sign_in_with(&cli, "the-new-secret").await;
    assert!(signed_in.success(), "{}", signed_in.stderr);
    assert_eq!(signed_in.json()["status"], "ok");
    assert_resumed(&cli, &kr, "sim").await;
}
