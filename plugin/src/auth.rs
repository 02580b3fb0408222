//! Signing in to the Microsoft identity platform, with the access token cached in
//! host storage until shortly before it expires.

use crate::connection::{Connection, Credential};
use crate::errors;
use crate::platform::{HttpRequest, HttpResponse, Platform};
use crate::types::{DeviceCode, Error, SignInStatus};
use serde::{Deserialize, Serialize};

/// A token is replaced this long before it expires, so a request never leaves with
/// a token that dies in flight.
const EXPIRY_MARGIN_SECONDS: u64 = 300;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    /// Present for delegated sign-ins that asked for `offline_access`.
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CachedToken {
    access_token: String,
    expires_at: u64,
}

/// A device-code sign-in waiting for the person.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    device_code: String,
    interval: u32,
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    user_code: String,
    device_code: String,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    expires_in: Option<u32>,
    #[serde(default)]
    interval: Option<u32>,
}

/// The base URL of the environment without a trailing slash.
pub fn environment_url(conn: &Connection) -> &str {
    conn.environment_url.trim_end_matches('/')
}

fn cache_key(conn: &Connection) -> String {
    format!("access-token {} {}", conn.client_id, environment_url(conn))
}

fn refresh_key(conn: &Connection) -> String {
    format!("refresh-token {} {}", conn.client_id, environment_url(conn))
}

fn pending_key(conn: &Connection) -> String {
    format!(
        "device-sign-in {} {}",
        conn.client_id,
        environment_url(conn)
    )
}

/// What a person's sign-in asks for: acting as the person in the environment, and
/// a refresh token so syncs keep working after the first hour.
fn delegated_scope(conn: &Connection) -> String {
    format!(
        "{}/user_impersonation offline_access",
        environment_url(conn)
    )
}

/// `<authority>/<tenant>/oauth2/v2.0/<endpoint>`, refusing a tenant that would
/// change the path.
fn identity_url(conn: &Connection, endpoint: &str) -> Result<String, Error> {
    let tenant = conn.tenant.trim();
    if tenant.is_empty()
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(Error::Invalid(format!(
            "tenant '{tenant}' is not a tenant id or domain name; use the directory (tenant) \
             id of the app registration"
        )));
    }
    Ok(format!(
        "{}/{tenant}/oauth2/v2.0/{endpoint}",
        conn.authority_url.trim_end_matches('/')
    ))
}

/// The request that gets a fresh access token: the client-credentials grant for a
/// service principal, the refresh-token grant for a person.
pub fn token_request(platform: &dyn Platform, conn: &Connection) -> Result<HttpRequest, Error> {
    let url = identity_url(conn, "token")?;
    let request = match &conn.credential {
        Credential::ClientSecret(secret) => {
            let scope = format!("{}/.default", environment_url(conn));
            HttpRequest::post_form(
                url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &conn.client_id),
                    ("client_secret", secret),
                    ("scope", &scope),
                ],
            )
        }
        Credential::User => {
            let refresh = platform
                .storage_get(&refresh_key(conn))
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Error::Unauthorized(
                        "nobody has signed in to this connection yet: its owner must sign in"
                            .to_string(),
                    )
                })?;
            HttpRequest::post_form(
                url,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &conn.client_id),
                    ("refresh_token", &refresh),
                    ("scope", &delegated_scope(conn)),
                ],
            )
        }
    };
    Ok(request.header("accept", "application/json"))
}

/// A cached token that is still good, if any.
pub fn cached_token(platform: &dyn Platform, conn: &Connection) -> Option<String> {
    let bytes = platform.storage_get(&cache_key(conn))?;
    let cached: CachedToken = serde_json::from_slice(&bytes).ok()?;
    (cached.expires_at > platform.now_unix_seconds() + EXPIRY_MARGIN_SECONDS)
        .then_some(cached.access_token)
}

pub fn forget_token(platform: &dyn Platform, conn: &Connection) {
    platform.storage_delete(&cache_key(conn));
}

/// Reads a token endpoint response: caches the access token and keeps the new
/// refresh token, replacing the one just used.
pub fn accept_token_response(
    platform: &dyn Platform,
    conn: &Connection,
    response: &HttpResponse,
) -> Result<String, Error> {
    if !(200..300).contains(&response.status) {
        return Err(errors::from_identity(
            response,
            &conn.client_id,
            &conn.tenant,
        ));
    }
    let token: TokenResponse = serde_json::from_slice(&response.body)
        .map_err(|e| errors::unexpected_body("token response", &e.to_string()))?;
    if let Some(refresh) = &token.refresh_token {
        platform.storage_set(&refresh_key(conn), refresh.as_bytes(), None);
    }
    // `expires_in` is a number in the v2 endpoint and a string in some v1 answers.
    let lifetime = match token.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3599);
    let cacheable_for = lifetime.saturating_sub(EXPIRY_MARGIN_SECONDS);
    if cacheable_for > 0 {
        let cached = CachedToken {
            access_token: token.access_token.clone(),
            expires_at: platform.now_unix_seconds().saturating_add(lifetime),
        };
        if let Ok(bytes) = serde_json::to_vec(&cached) {
            let ttl = u32::try_from(cacheable_for).unwrap_or(u32::MAX);
            platform.storage_set(&cache_key(conn), &bytes, Some(ttl));
        }
    }
    Ok(token.access_token)
}

/// Starts a device-code sign-in.
pub fn device_code_request(conn: &Connection) -> Result<HttpRequest, Error> {
    if !matches!(conn.credential, Credential::User) {
        return Err(Error::Invalid(
            "this connection signs in with a client secret, not as a person".to_string(),
        ));
    }
    let url = identity_url(conn, "devicecode")?;
    Ok(HttpRequest::post_form(
        url,
        &[
            ("client_id", &conn.client_id),
            ("scope", &delegated_scope(conn)),
        ],
    )
    .header("accept", "application/json"))
}

/// Reads the device-code answer and remembers the code for polling.
pub fn accept_device_code(
    platform: &dyn Platform,
    conn: &Connection,
    response: &HttpResponse,
) -> Result<DeviceCode, Error> {
    if !(200..300).contains(&response.status) {
        return Err(errors::from_identity(
            response,
            &conn.client_id,
            &conn.tenant,
        ));
    }
    let code: DeviceCodeResponse = serde_json::from_slice(&response.body)
        .map_err(|e| errors::unexpected_body("device code response", &e.to_string()))?;
    let expires_in = code.expires_in.unwrap_or(900);
    let interval = code.interval.unwrap_or(5).max(1);
    let pending = PendingSignIn {
        device_code: code.device_code,
        interval,
    };
    if let Ok(bytes) = serde_json::to_vec(&pending) {
        platform.storage_set(&pending_key(conn), &bytes, Some(expires_in));
    }
    Ok(DeviceCode {
        message: code.message.unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}.",
                code.verification_uri, code.user_code
            )
        }),
        user_code: code.user_code,
        verification_uri: code.verification_uri,
        expires_in_seconds: expires_in,
        interval_seconds: interval,
    })
}

/// One poll of a started device-code sign-in.
pub fn device_poll_request(
    platform: &dyn Platform,
    conn: &Connection,
) -> Result<HttpRequest, Error> {
    let pending: PendingSignIn = platform
        .storage_get(&pending_key(conn))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            Error::Unauthorized(
                "no sign-in is in progress, or its code expired: start the sign-in again"
                    .to_string(),
            )
        })?;
    let url = identity_url(conn, "token")?;
    Ok(HttpRequest::post_form(
        url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &conn.client_id),
            ("device_code", &pending.device_code),
        ],
    )
    .header("accept", "application/json"))
}

#[derive(Deserialize)]
struct IdentityError {
    #[serde(default)]
    error: String,
}

/// Reads a poll's answer: still pending, or signed in (the tokens are kept).
pub fn accept_device_poll(
    platform: &dyn Platform,
    conn: &Connection,
    response: &HttpResponse,
) -> Result<SignInStatus, Error> {
    if response.status == 400
        && let Ok(error) = serde_json::from_slice::<IdentityError>(&response.body)
        && matches!(error.error.as_str(), "authorization_pending" | "slow_down")
    {
        return Ok(SignInStatus::Pending);
    }
    let outcome = accept_token_response(platform, conn, response);
    // Success or final failure: the code is of no further use.
    platform.storage_delete(&pending_key(conn));
    outcome.map(|_| SignInStatus::Complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fake::FakePlatform;

    fn connection() -> Connection {
        Connection {
            id: "c1".into(),
            environment_url: "https://org.crm.dynamics.com/".into(),
            authority_url: "https://login.microsoftonline.com".into(),
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "app-1".into(),
            credential: Credential::ClientSecret("s3cr+t&".into()),
        }
    }

    #[test]
    fn token_request_uses_the_environment_scope_and_encodes_the_secret() {
        let request = token_request(&FakePlatform::default(), &connection()).unwrap();
        assert_eq!(
            request.url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let body = String::from_utf8(request.body).unwrap();
        assert!(body.contains("grant_type=client_credentials"));
        assert!(body.contains("client_secret=s3cr%2Bt%26"));
        assert!(body.contains("scope=https%3A%2F%2Forg.crm.dynamics.com%2F.default"));
    }

    #[test]
    fn tenant_must_be_a_plain_name() {
        let mut conn = connection();
        conn.tenant = "x/../y".into();
        assert!(matches!(
            token_request(&FakePlatform::default(), &conn),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn tokens_are_cached_until_shortly_before_expiry() {
        let platform = FakePlatform::default();
        let conn = connection();
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body: br#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}"#.to_vec(),
        };
        assert_eq!(
            accept_token_response(&platform, &conn, &response).unwrap(),
            "tok"
        );
        assert_eq!(cached_token(&platform, &conn).as_deref(), Some("tok"));
        let (_, ttl) = platform.storage.borrow().values().next().cloned().unwrap();
        assert_eq!(ttl, Some(3599 - 300));
        forget_token(&platform, &conn);
        assert_eq!(cached_token(&platform, &conn), None);
    }

    #[test]
    fn nearly_expired_cached_token_is_not_used() {
        let platform = FakePlatform::default();
        let conn = connection();
        let stale = CachedToken {
            access_token: "old".into(),
            expires_at: platform.now_unix_seconds() + 60,
        };
        platform.storage_set(
            &cache_key(&conn),
            &serde_json::to_vec(&stale).unwrap(),
            None,
        );
        assert_eq!(cached_token(&platform, &conn), None);
    }
}
