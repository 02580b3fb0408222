//! The Microsoft identity platform's token endpoint, client-credentials grant only
//! (`POST /{tenant}/oauth2/v2.0/token`), answering in the documented shapes.

use crate::format::iso_from_unix;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Who may sign in, and for how long tokens live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The tenant id or domain in the token URL.
    pub tenant: String,
    /// The app registration's client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime_seconds: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenant: "sim-tenant".to_string(),
            client_id: "00000000-0000-0000-0000-00000000c11e".to_string(),
            client_secret: "sim-secret".to_string(),
            token_lifetime_seconds: 3599,
        }
    }
}

/// Issued access tokens and when they expire.
#[derive(Debug, Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, Instant>>,
}

impl TokenStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a new opaque token valid for `lifetime`.
    pub fn issue(&self, lifetime: Duration) -> String {
        let token: String = (0..64).map(|_| fastrand::alphanumeric()).collect();
        self.lock().insert(token.clone(), Instant::now() + lifetime);
        token
    }

    /// Whether `token` was issued here and has not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        self.lock()
            .get(token)
            .is_some_and(|expiry| *expiry > Instant::now())
    }

    /// Makes every issued token expired.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for expiry in self.lock().values_mut() {
            *expiry = now;
        }
    }
}

fn random_guid() -> String {
    crate::data::format_guid(fastrand::u64(..), fastrand::u64(..))
}

/// `2016-01-09 02:02:12Z`, the identity platform's timestamp form.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    iso_from_unix(now).replace('T', " ")
}

/// An error answer: status and body.
fn refusal(status: u16, error: &str, code: u32, description: &str) -> (u16, Value) {
    let trace = random_guid();
    let correlation = random_guid();
    let timestamp = timestamp();
    (
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// Answers a token request. `origins` are the environment URLs the request may
/// name in its scope (`<origin>/.default`), e.g. `http://127.0.0.1:8080`.
pub fn token_response(
    config: &SimConfig,
    store: &TokenStore,
    tenant: &str,
    form_body: &[u8],
    origins: &[String],
) -> (u16, Value) {
    let form: HashMap<String, String> = form_urlencoded::parse(form_body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if !tenant.eq_ignore_ascii_case(&config.tenant) {
        return refusal(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    let Some(grant_type) = field("grant_type") else {
        return refusal(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    if grant_type != "client_credentials" {
        return refusal(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = field("client_id") else {
        return refusal(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if !client_id.eq_ignore_ascii_case(&config.client_id) {
        return refusal(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let Some(secret) = field("client_secret") else {
        return refusal(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    if secret != config.client_secret {
        return refusal(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                config.client_id
            ),
        );
    }
    let Some(scope) = field("scope") else {
        return refusal(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let scope_ok = origins.iter().any(|origin| {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let scope = scope.to_ascii_lowercase();
        scope == format!("{origin}/.default") || scope == format!("{origin}//.default")
    });
    if !scope_ok {
        return refusal(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }
    let lifetime = config.token_lifetime_seconds;
    let token = store.issue(Duration::from_secs(lifetime));
    (
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:4000";

    fn request(tenant: &str, body: &str) -> (u16, Value, TokenStore) {
        let store = TokenStore::default();
        let (status, value) = token_response(
            &SimConfig::default(),
            &store,
            tenant,
            body.as_bytes(),
            &[ORIGIN.to_string()],
        );
        (status, value, store)
    }

    fn body(client_id: &str, secret: &str, scope: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .finish()
    }

    const CLIENT: &str = "00000000-0000-0000-0000-00000000c11e";

    #[test]
    fn issues_a_token_remembered_until_expired() {
        let (status, value, store) = request(
            "sim-tenant",
            &body(CLIENT, "sim-secret", "http://127.0.0.1:4000/.default"),
        );
        assert_eq!(status, 200, "{value}");
        assert_eq!(value["token_type"], "Bearer");
        assert_eq!(value["expires_in"], 3599);
        assert_eq!(value["ext_expires_in"], 3599);
        let token = value["access_token"].as_str().unwrap();
        assert!(store.is_valid(token));
        assert!(!store.is_valid("forged"));
        store.expire_all();
        assert!(!store.is_valid(token));
        // The environment URL may carry a trailing slash before /.default.
        let (status, _, _) = request(
            "SIM-TENANT",
            &body(CLIENT, "sim-secret", "http://127.0.0.1:4000//.default"),
        );
        assert_eq!(status, 200);
    }

    fn refused(tenant: &str, body: &str) -> (u16, String, String, Value) {
        let (status, value, _) = request(tenant, body);
        (
            status,
            value["error"].as_str().unwrap().to_string(),
            value["error_description"].as_str().unwrap().to_string(),
            value,
        )
    }

    #[test]
    fn refusals_follow_the_documented_shape() {
        let scope = "http://127.0.0.1:4000/.default";
        let (status, error, description, value) =
            refused("other", &body(CLIENT, "sim-secret", scope));
        assert_eq!((status, error.as_str()), (400, "invalid_request"));
        assert!(description.starts_with("AADSTS90002: Tenant 'other' not found."));
        assert!(description.contains("\r\nTrace ID: "));
        assert!(description.contains("\r\nCorrelation ID: "));
        assert_eq!(value["error_codes"], json!([90002]));
        assert_eq!(value["trace_id"].as_str().map(str::len), Some(36));

        let (status, error, description, _) =
            refused("sim-tenant", &body("someone", "sim-secret", scope));
        assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
        assert!(description.starts_with(
            "AADSTS700016: Application with identifier 'someone' was not found in the directory 'sim-tenant'."
        ));

        let (status, error, description, value) =
            refused("sim-tenant", &body(CLIENT, "guess", scope));
        assert_eq!((status, error.as_str()), (401, "invalid_client"));
        assert!(description.starts_with("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID"));
        assert!(
            !value.to_string().contains("guess"),
            "the secret is never echoed"
        );

        let (status, error, description, _) = refused(
            "sim-tenant",
            &body(
                CLIENT,
                "sim-secret",
                "https://org.crm.dynamics.com/.default",
            ),
        );
        assert_eq!((status, error.as_str()), (400, "invalid_scope"));
        assert!(description.starts_with(
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
        ));

        let (status, error, description, _) =
            refused("sim-tenant", "grant_type=password&client_id=x");
        assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
        assert!(description.starts_with("AADSTS70003:"));
    }

    #[test]
    fn secrets_with_reserved_characters_arrive_decoded() {
        let store = TokenStore::default();
        let config = SimConfig {
            client_secret: "s3cr+t&=x y".into(),
            ..SimConfig::default()
        };
        let (status, _) = token_response(
            &config,
            &store,
            "sim-tenant",
            body(CLIENT, "s3cr+t&=x y", "http://127.0.0.1:4000/.default").as_bytes(),
            &[ORIGIN.to_string()],
        );
        assert_eq!(status, 200);
    }
}
