//! Delegated sign-in over real loopback HTTP: the device code flow, rotating
//! refresh tokens, the identity clock, and what a delegated token is on the Web
//! API.

use super::tests::{Reply, batch_body, get, get_part, post_batch, send, token};
use super::*;
use crate::identity::{DEVICE_CODE_GRANT, DeviceCodeState};
use std::panic::{AssertUnwindSafe, catch_unwind};

const DAY: Duration = Duration::from_secs(86_400);

async fn start() -> RunningSimulator {
    RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap()
}

/// `POST {path}` with a form body.
async fn post_form(sim: &RunningSimulator, path: &str, pairs: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    send(
        sim.address(),
        format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            sim.address(),
            body.len()
        ),
    )
    .await
}

fn devicecode_path(sim: &RunningSimulator) -> String {
    format!("/{}/oauth2/v2.0/devicecode", sim.config().tenant)
}

fn token_path(sim: &RunningSimulator) -> String {
    format!("/{}/oauth2/v2.0/token", sim.config().tenant)
}

fn delegated_scope(sim: &RunningSimulator, offline: bool) -> String {
    let offline = if offline { " offline_access" } else { "" };
    format!("{}/user_impersonation{offline}", sim.url())
}

async fn request_code(sim: &RunningSimulator, scope: &str) -> Reply {
    let client_id = sim.config().client_id.clone();
    post_form(
        sim,
        &devicecode_path(sim),
        &[("client_id", &client_id), ("scope", scope)],
    )
    .await
}

/// A device authorization answer that must have succeeded: (user code, device code).
async fn new_code(sim: &RunningSimulator, offline: bool) -> (String, String) {
    let reply = request_code(sim, &delegated_scope(sim, offline)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    (
        body["user_code"].as_str().unwrap().to_string(),
        body["device_code"].as_str().unwrap().to_string(),
    )
}

async fn poll(sim: &RunningSimulator, device_code: &str) -> Reply {
    let client_id = sim.config().client_id.clone();
    post_form(
        sim,
        &token_path(sim),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", &client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

async fn refresh(sim: &RunningSimulator, refresh_token: &str, extra: &[(&str, &str)]) -> Reply {
    let client_id = sim.config().client_id.clone();
    let scope = delegated_scope(sim, true);
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", refresh_token),
        ("scope", scope.as_str()),
    ];
    pairs.extend_from_slice(extra);
    post_form(sim, &token_path(sim), &pairs).await
}

/// Signs the person in through the device code flow with `offline_access`:
/// (access token, refresh token).
async fn sign_in_person(sim: &RunningSimulator) -> (String, String) {
    let (user_code, device_code) = new_code(sim, true).await;
    sim.approve_device_code(&user_code);
    let reply = poll(sim, &device_code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn app_token(sim: &RunningSimulator) -> String {
    let reply = token(sim, "sim-secret").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["access_token"].as_str().unwrap().to_string()
}

/// Asserts an identity platform error: status, `error`, the AADSTS code in
/// `error_codes` and at the start of `error_description` followed by
/// `description_start`, and the trace lines.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, error: &str, code: u32, description_start: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"], error, "{}", reply.body);
    assert_eq!(body["error_codes"], json!([code]), "{}", reply.body);
    let description = body["error_description"].as_str().unwrap();
    let prefix = format!("AADSTS{code}: {description_start}");
    assert!(
        description.starts_with(&prefix),
        "{description:?} does not start with {prefix:?}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(line), "{description:?}");
    }
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(36));
    assert_eq!(body["correlation_id"].as_str().map(str::len), Some(36));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

fn state_of(sim: &RunningSimulator, user_code: &str) -> DeviceCodeState {
    sim.device_codes()
        .into_iter()
        .find(|d| d.user_code == user_code)
        .unwrap_or_else(|| panic!("no device code {user_code}"))
        .state
}

async fn who_am_i(sim: &RunningSimulator, access: &str) -> Value {
    let reply = get(sim, "/api/data/v9.2/WhoAmI", Some(access)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_flow_with_offline_access() {
    let sim = start().await;
    let scope = delegated_scope(&sim, true);
    let reply = request_code(&sim, &scope).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store, no-cache"));
    let body = reply.json();
    let user_code = body["user_code"].as_str().unwrap().to_string();
    let device_code = body["device_code"].as_str().unwrap().to_string();
    assert!(user_code.len() >= 8, "{user_code}");
    assert!(
        user_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert!(device_code.len() >= 100, "{device_code}");
    let verification_uri = format!("{}/devicelogin", sim.url());
    assert_eq!(body["verification_uri"], json!(verification_uri));
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["interval"], 5);
    assert_eq!(
        body["message"],
        json!(format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        ))
    );
    let info = sim.device_codes();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].user_code, user_code);
    assert_eq!(info[0].state, DeviceCodeState::Pending);
    assert_eq!(info[0].scope, scope);
    assert_eq!(info[0].client_id, sim.config().client_id);

    // Waiting for the person.
    for _ in 0..2 {
        let pending = poll(&sim, &device_code).await;
        assert_refused(
            &pending,
            400,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.\r\n",
        );
    }

    // The person approves; the next poll gets the tokens.
    sim.approve_device_code(&user_code);
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Approved);
    let tokens = poll(&sim, &device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store, no-cache"));
    let body = tokens.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        json!(format!("{}/user_impersonation", sim.url()))
    );
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_string();
    assert!(!access.is_empty() && !refresh_token.is_empty());
    assert_ne!(access, refresh_token);
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Redeemed);

    // The code can be redeemed once.
    let again = poll(&sim, &device_code).await;
    assert_refused(
        &again,
        400,
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed",
    );
    assert!(
        !again.body.contains(&device_code),
        "the code is never echoed"
    );

    // The access token acts as the person.
    let me = who_am_i(&sim, &access).await;
    assert_eq!(me["UserId"], json!(dataset().delegated_user_id));

    // Both the refresh token and the device code are known secrets.
    let secrets = sim.issued_secrets();
    for secret in [&device_code, &access, &refresh_token] {
        assert!(secrets.contains(secret));
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_flow_without_offline_access_gives_no_refresh_token() {
    let sim = start().await;
    // openid and profile are accepted next to the resource scope.
    let scope = format!("openid {}/user_impersonation profile", sim.url());
    let reply = request_code(&sim, &scope).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let user_code = body["user_code"].as_str().unwrap();
    let device_code = body["device_code"].as_str().unwrap();
    // Case, spaces and dashes do not matter in a user code.
    let typed = format!(
        "{}-{}",
        user_code[..4].to_ascii_lowercase(),
        &user_code[4..]
    );
    sim.approve_device_code(&typed);
    let tokens = poll(&sim, device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let body = tokens.json();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(
        sim.issued_secrets().len(),
        2,
        "device code and access token"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_code_answers_authorization_declined() {
    let sim = start().await;
    let (user_code, device_code) = new_code(&sim, true).await;
    sim.deny_device_code(&user_code);
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Denied);
    for _ in 0..2 {
        let declined = poll(&sim, &device_code).await;
        assert_refused(
            &declined,
            400,
            "authorization_declined",
            70000,
            "The request was denied",
        );
    }
    // Declined stays declined, even once the code's time is up.
    sim.advance_clock(Duration::from_secs(901));
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Denied);
    let misuse = catch_unwind(AssertUnwindSafe(|| sim.approve_device_code(&user_code)));
    let message = *misuse.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("approve_device_code") && message.contains("not pending"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_codes_expire_by_hook_and_by_clock() {
    let sim = start().await;
    // By the hook: pending and approved codes alike.
    let (pending_code, pending_device) = new_code(&sim, true).await;
    let (approved_code, approved_device) = new_code(&sim, true).await;
    sim.approve_device_code(&approved_code);
    sim.expire_device_codes();
    for (user_code, device_code) in [
        (&pending_code, &pending_device),
        (&approved_code, &approved_device),
    ] {
        assert_eq!(state_of(&sim, user_code), DeviceCodeState::Expired);
        let expired = poll(&sim, device_code).await;
        assert_refused(
            &expired,
            400,
            "expired_token",
            70019,
            "Verification code expired.\r\n",
        );
    }

    // By the clock: still pending just before `expires_in`, expired after.
    let (user_code, device_code) = new_code(&sim, true).await;
    sim.advance_clock(Duration::from_secs(890));
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Pending);
    assert_eq!(
        poll(&sim, &device_code).await.json()["error"],
        "authorization_pending"
    );
    sim.advance_clock(Duration::from_secs(11));
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Expired);
    assert_refused(
        &poll(&sim, &device_code).await,
        400,
        "expired_token",
        70019,
        "Verification code expired.",
    );
    // An approved code not fetched in time expires too.
    let (late_code, late_device) = new_code(&sim, false).await;
    sim.approve_device_code(&late_code);
    sim.advance_clock(Duration::from_secs(900));
    assert_eq!(
        poll(&sim, &late_device).await.json()["error"],
        "expired_token"
    );

    let misuse = catch_unwind(AssertUnwindSafe(|| sim.approve_device_code(&user_code)));
    assert!(misuse.is_err(), "an expired code cannot be approved");
    let unknown = catch_unwind(AssertUnwindSafe(|| sim.deny_device_code("NOPE1234")));
    let message = *unknown.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("no device code has the user code 'NOPE1234'"));

    // A code that was never issued.
    let forged = poll(&sim, "DAQABIQEAAADforged").await;
    assert_refused(&forged, 400, "invalid_grant", 70000, "The provided value");
    assert!(!forged.body.contains("forged"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_requests_check_tenant_client_and_scope() {
    let sim = start().await;
    let client_id = sim.config().client_id.clone();
    let good_scope = delegated_scope(&sim, true);

    let tenant = post_form(
        &sim,
        "/other-tenant/oauth2/v2.0/devicecode",
        &[("client_id", &client_id), ("scope", &good_scope)],
    )
    .await;
    assert_refused(
        &tenant,
        400,
        "invalid_request",
        90002,
        "Tenant 'other-tenant' not found.",
    );

    let client = post_form(
        &sim,
        &devicecode_path(&sim),
        &[("client_id", "someone-else"), ("scope", &good_scope)],
    )
    .await;
    assert_refused(
        &client,
        400,
        "unauthorized_client",
        700016,
        "Application with identifier 'someone-else' was not found in the directory 'sim-tenant'.",
    );

    let missing = post_form(&sim, &devicecode_path(&sim), &[("client_id", &client_id)]).await;
    assert_refused(
        &missing,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'scope'.",
    );

    let url = sim.url();
    for (scope, named) in [
        // The confidential client's scope is not the delegated one.
        (
            format!("{url}/.default offline_access"),
            format!("{url}/.default"),
        ),
        (
            "https://org.crm.dynamics.com/user_impersonation".to_string(),
            "https://org.crm.dynamics.com/user_impersonation".to_string(),
        ),
        (
            format!("{url}/user_impersonation email"),
            "email".to_string(),
        ),
        ("offline_access".to_string(), "offline_access".to_string()),
    ] {
        let reply = request_code(&sim, &scope).await;
        assert_refused(
            &reply,
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {named} is not valid."
            ),
        );
    }
    let all = format!("{url}/user_impersonation offline_access openid profile");
    assert_eq!(request_code(&sim, &all).await.status, 200);

    let get_it = get(&sim, &devicecode_path(&sim), None).await;
    assert_eq!(get_it.status, 405);
    // Only the one good request made a code.
    assert_eq!(sim.device_codes().len(), 1);

    // The device code grant checks the client too.
    let (_, device_code) = new_code(&sim, true).await;
    let wrong_client = post_form(
        &sim,
        &token_path(&sim),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", "someone-else"),
            ("device_code", &device_code),
        ],
    )
    .await;
    assert_refused(
        &wrong_client,
        400,
        "unauthorized_client",
        700016,
        "Application",
    );
    let no_code = post_form(
        &sim,
        &token_path(&sim),
        &[("grant_type", DEVICE_CODE_GRANT), ("client_id", &client_id)],
    )
    .await;
    assert_refused(
        &no_code,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'device_code'.",
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_login_page_approves_and_declines() {
    let sim = start().await;
    let page = get(&sim, "/devicelogin", None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/devicelogin\">")
    );
    assert!(page.body.contains("Alice Morgan"));

    let (user_code, device_code) = new_code(&sim, true).await;
    let lower = user_code.to_ascii_lowercase();
    let approved = post_form(
        &sim,
        "/devicelogin",
        &[("user_code", &lower), ("action", "approve")],
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert!(approved.body.contains("You have signed in"));
    assert_eq!(state_of(&sim, &user_code), DeviceCodeState::Approved);
    let tokens = poll(&sim, &device_code).await.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        who_am_i(&sim, access).await["UserId"],
        json!(dataset().delegated_user_id)
    );

    let (declined_code, declined_device) = new_code(&sim, true).await;
    let declined = post_form(
        &sim,
        "/devicelogin",
        &[("user_code", &declined_code), ("action", "deny")],
    )
    .await;
    assert_eq!(declined.status, 200);
    assert_eq!(
        poll(&sim, &declined_device).await.json()["error"],
        "authorization_declined"
    );

    // A used or unknown code is refused without repeating what was typed.
    for typed in [user_code.as_str(), "<b>ZZZZ</b>"] {
        let refused = post_form(
            &sim,
            "/devicelogin",
            &[("user_code", typed), ("action", "approve")],
        )
        .await;
        assert_eq!(refused.status, 400);
        assert!(!refused.body.contains(typed));
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_are_spent_on_use() {
    let sim = start().await;
    let (access, first) = sign_in_person(&sim).await;
    let rotated = refresh(&sim, &first, &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.header("cache-control"), Some("no-store, no-cache"));
    let body = rotated.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        json!(format!("{}/user_impersonation", sim.url()))
    );
    assert_eq!(body["expires_in"], 3599);
    let second_access = body["access_token"].as_str().unwrap().to_string();
    let second = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second_access, access);
    assert_ne!(second, first);
    // Both access tokens act as the person until they expire.
    for token in [&access, &second_access] {
        assert_eq!(
            who_am_i(&sim, token).await["UserId"],
            json!(dataset().delegated_user_id)
        );
    }

    // The refresh token just used is spent (stricter than Entra).
    let reused = refresh(&sim, &first, &[]).await;
    assert_refused(
        &reused,
        400,
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
    );
    assert!(!reused.body.contains(&first));

    // The new one works, with the client secret too (a confidential client).
    let third = refresh(&sim, &second, &[("client_secret", "sim-secret")]).await;
    assert_eq!(third.status, 200, "{}", third.body);
    let third_refresh = third.json()["refresh_token"].as_str().unwrap().to_string();

    // A wrong secret, scope or client is refused before the token is spent.
    let wrong_secret = refresh(&sim, &third_refresh, &[("client_secret", "guess")]).await;
    assert_refused(
        &wrong_secret,
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided.",
    );
    assert!(!wrong_secret.body.contains("guess"));
    let client_id = sim.config().client_id.clone();
    let wrong_scope = post_form(
        &sim,
        &token_path(&sim),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &third_refresh),
            ("scope", "https://org.crm.dynamics.com/user_impersonation"),
        ],
    )
    .await;
    assert_refused(
        &wrong_scope,
        400,
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' is not valid.",
    );
    let wrong_client = post_form(
        &sim,
        &token_path(&sim),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "someone-else"),
            ("refresh_token", &third_refresh),
            ("scope", &delegated_scope(&sim, true)),
        ],
    )
    .await;
    assert_refused(
        &wrong_client,
        400,
        "unauthorized_client",
        700016,
        "Application",
    );
    assert_eq!(refresh(&sim, &third_refresh, &[]).await.status, 200);

    // A token never issued.
    let forged = refresh(&sim, "1.AQforged", &[]).await;
    assert_refused(
        &forged,
        400,
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid.",
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_tokens_answer_invalid_grant() {
    let sim = start().await;
    let (_, refresh_token) = sign_in_person(&sim).await;
    let (_, other) = sign_in_person(&sim).await;
    sim.revoke_refresh_tokens();
    for token in [&refresh_token, &other] {
        let revoked = refresh(&sim, token, &[]).await;
        assert_refused(
            &revoked,
            400,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        );
        let description = revoked.json()["error_description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(description.contains(
            "and the TokensValidFrom date (before which tokens are not valid) for this user is '"
        ));
    }
    // Signing in again gives a refresh token that works.
    let (_, fresh) = sign_in_person(&sim).await;
    assert_eq!(refresh(&sim, &fresh, &[]).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_expire_after_90_days_unused() {
    let sim = start().await;
    let (_, kept) = sign_in_person(&sim).await;
    let (_, idle) = sign_in_person(&sim).await;
    // Used every 60 days, a refresh token chain lives on.
    sim.advance_clock(60 * DAY);
    let reply = refresh(&sim, &kept, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let kept = reply.json()["refresh_token"].as_str().unwrap().to_string();
    sim.advance_clock(30 * DAY);
    // 90 days unused.
    let expired = refresh(&sim, &idle, &[]).await;
    assert_refused(
        &expired,
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity. The token was issued on ",
    );
    assert!(
        expired.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("and was inactive for 90.00:00:00.")
    );
    assert_eq!(refresh(&sim, &kept, &[]).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_expire_on_the_simulator_clock() {
    let sim = start().await;
    let app = app_token(&sim).await;
    let (person, refresh_token) = sign_in_person(&sim).await;
    sim.advance_clock(Duration::from_secs(3590));
    for token in [&app, &person] {
        assert_eq!(
            get(&sim, "/api/data/v9.2/WhoAmI", Some(token)).await.status,
            200
        );
    }
    sim.advance_clock(Duration::from_secs(10));
    sim.clear_requests();
    for token in [&app, &person] {
        let expired = get(&sim, "/api/data/v9.2/WhoAmI", Some(token)).await;
        assert_eq!(expired.status, 401, "{}", expired.body);
        assert_eq!(expired.json()["error"]["code"], "0x80040220");
        let challenge = expired.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(
                "Bearer error=\"invalid_token\", error_description=\"The access token expired\", authorization_uri="
            ),
            "{challenge}"
        );
        // The same in a batch.
        let body = batch_body("b", &[get_part("WhoAmI", None)]);
        let batch = post_batch(
            &sim,
            Some(token),
            None,
            "multipart/mixed; boundary=b",
            &body,
        )
        .await;
        assert_eq!(batch.status, 401);
    }
    assert!(sim.requests().iter().all(|r| !r.authorized));

    // An unknown token is invalid, not expired; no token has no error code.
    let forged = get(&sim, "/api/data/v9.2/WhoAmI", Some("forged")).await;
    assert_eq!(forged.status, 401);
    assert!(forged.header("www-authenticate").unwrap().starts_with(
        "Bearer error=\"invalid_token\", error_description=\"The access token is invalid\""
    ));
    let anonymous = get(&sim, "/api/data/v9.2/WhoAmI", None).await;
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );

    // The refresh token outlives the access token; expire_tokens() expires
    // delegated access tokens too.
    let renewed = refresh(&sim, &refresh_token, &[]).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let access = renewed.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        get(&sim, "/api/data/v9.2/WhoAmI", Some(&access))
            .await
            .status,
        200
    );
    sim.expire_tokens();
    let expired = get(&sim, "/api/data/v9.2/WhoAmI", Some(&access)).await;
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("error_description=\"The access token expired\"")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_answers_the_person_or_the_application_user() {
    let sim = start().await;
    let data = dataset();
    let app = app_token(&sim).await;
    let (person, _) = sign_in_person(&sim).await;
    let as_app = who_am_i(&sim, &app).await;
    let as_person = who_am_i(&sim, &person).await;
    assert_eq!(as_app["UserId"], json!(data.application_user_id));
    assert_eq!(as_person["UserId"], json!(data.delegated_user_id));
    assert_ne!(data.application_user_id, data.delegated_user_id);
    let alice = data.user(&data.delegated_user_id).unwrap();
    assert_eq!(alice.fullname, "Alice Morgan");
    assert!(!alice.is_application_user);
    for body in [&as_app, &as_person] {
        assert_eq!(body["OrganizationId"], json!(data.organization_id));
        assert_eq!(body["BusinessUnitId"], json!(data.business_unit_id));
    }

    // In a batch as well.
    let body = batch_body("b", &[get_part("WhoAmI", None)]);
    let batch = post_batch(
        &sim,
        Some(&person),
        None,
        "multipart/mixed; boundary=b",
        &body,
    )
    .await;
    assert_eq!(batch.status, 200, "{}", batch.body);
    assert!(batch.body.contains(&data.delegated_user_id));
    assert!(!batch.body.contains(&data.application_user_id));

    // FetchXML's eq-userid compares with whoever signed in.
    let fetch = "<fetch aggregate='true'><entity name='account'><attribute name='accountid' aggregate='count' alias='n'/><filter><condition attribute='ownerid' operator='eq-userid'/></filter></entity></fetch>";
    let path = format!(
        "/api/data/v9.2/accounts?fetchXml={}",
        percent_encoding::utf8_percent_encode(fetch, percent_encoding::NON_ALPHANUMERIC)
    );
    let owned_by = |user: &str| {
        data.rows("account")
            .iter()
            .filter(|r| r.get("ownerid").and_then(Value::as_str) == Some(user))
            .count()
    };
    for (token, user) in [
        (&app, &data.application_user_id),
        (&person, &data.delegated_user_id),
    ] {
        let reply = get(&sim, &path, Some(token)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let expected = owned_by(user);
        assert!(expected > 0);
        assert_eq!(reply.json()["value"][0]["n"], json!(expected));
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_secrets_and_recorded_grant_types() {
    let sim = start().await;
    let app = app_token(&sim).await;
    let (user_code, device_code) = new_code(&sim, true).await;
    let pending = poll(&sim, &device_code).await;
    assert_eq!(pending.status, 400);
    sim.approve_device_code(&user_code);
    let tokens = poll(&sim, &device_code).await.json();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&sim, &first_refresh, &[]).await.json();
    let second_access = rotated["access_token"].as_str().unwrap().to_string();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_string();
    who_am_i(&sim, &second_access).await;
    let unsupported = post_form(
        &sim,
        &token_path(&sim),
        &[("grant_type", "password"), ("client_id", "x")],
    )
    .await;
    assert_refused(
        &unsupported,
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type 'password'.",
    );

    assert_eq!(
        sim.issued_secrets(),
        [
            app.clone(),
            device_code.clone(),
            access.clone(),
            first_refresh.clone(),
            second_access.clone(),
            second_refresh.clone()
        ]
    );
    let secrets = sim.issued_secrets();
    assert!(!secrets.contains(&sim.config().client_secret));

    let recorded = sim.requests();
    let grants: Vec<(&str, Option<&str>)> = recorded
        .iter()
        .map(|r| (r.path.as_str(), r.grant_type.as_deref()))
        .collect();
    let token_path = token_path(&sim);
    let devicecode_path = devicecode_path(&sim);
    assert_eq!(
        grants,
        [
            (token_path.as_str(), Some("client_credentials")),
            (devicecode_path.as_str(), None),
            (token_path.as_str(), Some(DEVICE_CODE_GRANT)),
            (token_path.as_str(), Some(DEVICE_CODE_GRANT)),
            (token_path.as_str(), Some("refresh_token")),
            ("/api/data/v9.2/WhoAmI", None),
            (token_path.as_str(), Some("password")),
        ]
    );
    assert_eq!(
        recorded.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 400, 200, 200, 200, 400]
    );
    assert!(recorded[5].authorized);

    // Nothing the simulator keeps for tests to look at shows a secret.
    let visible = format!("{recorded:?}{:?}{:?}", sim.device_codes(), sim.state.tokens);
    for secret in secrets.iter().chain([&sim.config().client_secret]) {
        assert!(!visible.contains(secret.as_str()), "a secret is visible");
    }
    sim.shutdown().await;
}
