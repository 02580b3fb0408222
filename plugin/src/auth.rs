//! Signing in to the Microsoft identity platform, with the access token cached in
//! host storage until shortly before it expires.

use crate::errors;
use crate::platform::{HttpRequest, HttpResponse, Platform};
use crate::types::{Connection, Credential, Error};
use serde::{Deserialize, Serialize};

/// A token is replaced this long before it expires, so a request never leaves with
/// a token that dies in flight.
const EXPIRY_MARGIN_SECONDS: u64 = 300;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct CachedToken {
    access_token: String,
    expires_at: u64,
}

/// The base URL of the environment without a trailing slash.
pub fn environment_url(conn: &Connection) -> &str {
    conn.environment_url.trim_end_matches('/')
}

fn cache_key(conn: &Connection) -> String {
    format!("access-token {} {}", conn.client_id, environment_url(conn))
}

/// The client-credentials token request for the connection's environment.
pub fn token_request(conn: &Connection) -> Result<HttpRequest, Error> {
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
    let Credential::ClientSecret(secret) = &conn.credential;
    let url = format!(
        "{}/{tenant}/oauth2/v2.0/token",
        conn.authority_url.trim_end_matches('/')
    );
    let scope = format!("{}/.default", environment_url(conn));
    Ok(HttpRequest::post_form(
        url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &conn.client_id),
            ("client_secret", secret),
            ("scope", &scope),
        ],
    )
    .header("accept", "application/json"))
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

/// Reads a token endpoint response, caching a successful token.
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
            expires_at: platform.now_unix_seconds() + lifetime,
        };
        if let Ok(bytes) = serde_json::to_vec(&cached) {
            let ttl = u32::try_from(cacheable_for).unwrap_or(u32::MAX);
            platform.storage_set(&cache_key(conn), &bytes, Some(ttl));
        }
    }
    Ok(token.access_token)
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
        let request = token_request(&connection()).unwrap();
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
        assert!(matches!(token_request(&conn), Err(Error::Invalid(_))));
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
