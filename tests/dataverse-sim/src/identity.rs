//! The Microsoft identity platform's v2 endpoints as a Dataverse client meets
//! them, answering in the documented shapes:
//!
//! - the token endpoint (`POST /{tenant}/oauth2/v2.0/token`) with the
//!   client-credentials grant (an application), the device code grant and the
//!   refresh token grant (a person, delegated);
//! - the device authorization endpoint (`POST /{tenant}/oauth2/v2.0/devicecode`)
//!   and the page a person approves a code on (`/devicelogin`).
//!
//! Access tokens, refresh tokens and device codes expire against the
//! simulator's clock, which tests move forward ([`TokenStore::advance_clock`]).
//! Nothing here logs or prints a secret, and no [`Debug`] output shows one.

use crate::format::iso_from_unix;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
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
    /// `expires_in` of issued access tokens.
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

/// The `grant_type` of the device code grant (RFC 8628).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// `expires_in` of a device code: the person has 15 minutes to sign in.
pub const DEVICE_CODE_LIFETIME_SECONDS: u64 = 900;
/// `interval` of a device code: seconds between polls.
pub const DEVICE_CODE_INTERVAL_SECONDS: u64 = 5;
/// How long a refresh token lives unused (Entra's inactivity limit: 90 days).
pub const REFRESH_TOKEN_LIFETIME_SECONDS: u64 = 90 * 24 * 3600;
/// The path of the page a person enters a user code on.
pub const DEVICE_LOGIN_PATH: &str = "/devicelogin";

/// Scopes a delegated request may name besides `<environment>/user_impersonation`.
const OPENID_SCOPES: [&str; 3] = ["offline_access", "openid", "profile"];
/// The characters of user codes: no 0/O or 1/I to confuse a person typing.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Whom an access token signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A client-credentials token: the application user.
    Application,
    /// A delegated token: the person with this `systemuserid`.
    User(String),
}

/// What a bearer token is worth on the Web API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Issued here and not expired.
    Valid(Caller),
    /// Issued here, but expired on the simulator's clock.
    Expired,
    /// Never issued here.
    Unknown,
}

/// Where a device code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodeState {
    /// Waiting for the person; polls answer `authorization_pending`.
    Pending,
    /// The person approved; the next poll gets the tokens.
    Approved,
    /// The person declined; polls answer `authorization_declined`.
    Denied,
    /// `expires_in` passed before the tokens were fetched; polls answer
    /// `expired_token`.
    Expired,
    /// The tokens were fetched; later polls answer `invalid_grant`.
    Redeemed,
}

/// A device code as a test sees it (without the device code itself, a secret;
/// see [`TokenStore::issued_secrets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeInfo {
    /// The code shown to the person, e.g. `YZMYLD4K`.
    pub user_code: String,
    pub state: DeviceCodeState,
    /// The `scope` the device authorization request named, as sent.
    pub scope: String,
    /// The `client_id` of the device authorization request.
    pub client_id: String,
}

struct AccessToken {
    expires: Instant,
    caller: Caller,
}

#[derive(Clone, Copy)]
enum RefreshState {
    Active,
    /// Exchanged for new tokens at this Unix time (simulator clock).
    Used(i64),
    /// Revoked by [`TokenStore::revoke_refresh_tokens`] at this Unix time.
    Revoked(i64),
}

struct RefreshToken {
    user_id: String,
    issued: Instant,
    issued_unix: i64,
    state: RefreshState,
}

#[derive(Clone)]
enum DeviceProgress {
    Pending,
    Approved {
        user_id: String,
    },
    Denied,
    /// Expired by [`TokenStore::expire_device_codes`], whatever the clock says.
    Expired,
    Redeemed,
}

struct DeviceCode {
    device_code: String,
    user_code: String,
    client_id: String,
    scope: String,
    /// The resource scope, `<environment>/user_impersonation`, as requested.
    resource_scope: String,
    /// Whether `offline_access` was requested (a refresh token is issued).
    offline: bool,
    expires: Instant,
    progress: DeviceProgress,
}

impl DeviceCode {
    fn state(&self, now: Instant) -> DeviceCodeState {
        match self.progress {
            DeviceProgress::Denied => DeviceCodeState::Denied,
            DeviceProgress::Redeemed => DeviceCodeState::Redeemed,
            DeviceProgress::Expired => DeviceCodeState::Expired,
            _ if self.expires <= now => DeviceCodeState::Expired,
            DeviceProgress::Pending => DeviceCodeState::Pending,
            DeviceProgress::Approved { .. } => DeviceCodeState::Approved,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// How far the simulator's clock is ahead of real time.
    offset: Duration,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    devices: Vec<DeviceCode>,
    /// Every access token, refresh token and device code, in issue order.
    issued: Vec<String>,
    /// The app registration's client secret since [`TokenStore::replace_client_secret`]
    /// (before it, the configured one).
    client_secret: Option<String>,
}

impl Inner {
    /// Now on the simulator's clock.
    fn now(&self) -> Instant {
        let real = Instant::now();
        real.checked_add(self.offset).unwrap_or(real)
    }

    /// Unix seconds now on the simulator's clock.
    fn now_unix(&self) -> i64 {
        let real = SystemTime::now();
        real.checked_add(self.offset)
            .unwrap_or(real)
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    fn issue_access(&mut self, caller: Caller, lifetime: Duration) -> String {
        let token = random_text(64, false);
        let now = self.now();
        let expires = now.checked_add(lifetime).unwrap_or(now);
        self.access
            .insert(token.clone(), AccessToken { expires, caller });
        self.issued.push(token.clone());
        token
    }

    fn issue_refresh(&mut self, user_id: &str) -> String {
        let token = format!("1.AQ{}", random_text(200, true));
        let entry = RefreshToken {
            user_id: user_id.to_string(),
            issued: self.now(),
            issued_unix: self.now_unix(),
            state: RefreshState::Active,
        };
        self.refresh.insert(token.clone(), entry);
        self.issued.push(token.clone());
        token
    }

    fn device_by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceCode> {
        let wanted = normalize_user_code(user_code);
        self.devices.iter_mut().find(|d| d.user_code == wanted)
    }
}

/// What the person does with a device code at the verification page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Signs in as the user with this `systemuserid` and consents.
    Approve { user_id: String },
    /// Declines.
    Deny,
}

/// Issued tokens and device codes, and the simulator's clock they expire by.
#[derive(Default)]
pub struct TokenStore {
    inner: Mutex<Inner>,
}

impl fmt::Debug for TokenStore {
    /// Counts only: tokens and codes are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("TokenStore")
            .field("clock_offset", &inner.offset)
            .field("access_tokens", &inner.access.len())
            .field("refresh_tokens", &inner.refresh.len())
            .field("device_codes", &inner.devices.len())
            .finish()
    }
}

impl TokenStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps themselves intact.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a new opaque application (client-credentials) access token valid
    /// for `lifetime` on the simulator's clock.
    pub fn issue(&self, lifetime: Duration) -> String {
        self.lock().issue_access(Caller::Application, lifetime)
    }

    /// Issues a new opaque access token for `caller`.
    pub fn issue_for(&self, caller: Caller, lifetime: Duration) -> String {
        self.lock().issue_access(caller, lifetime)
    }

    /// Whether `token` was issued here and has not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        matches!(self.check(token), TokenCheck::Valid(_))
    }

    /// Whether `token` is a valid access token, and whom it signs in as.
    pub fn check(&self, token: &str) -> TokenCheck {
        let inner = self.lock();
        match inner.access.get(token) {
            None => TokenCheck::Unknown,
            Some(access) if access.expires > inner.now() => {
                TokenCheck::Valid(access.caller.clone())
            }
            Some(_) => TokenCheck::Expired,
        }
    }

    /// Makes every access token issued so far expired (refresh tokens and
    /// device codes are not affected).
    pub fn expire_all(&self) {
        let mut inner = self.lock();
        let now = inner.now();
        for access in inner.access.values_mut() {
            access.expires = now;
        }
    }

    /// Moves the simulator's clock forward by `by` (real time passes too).
    pub fn advance_clock(&self, by: Duration) {
        let mut inner = self.lock();
        inner.offset = inner.offset.saturating_add(by);
    }

    /// Unix seconds now on the simulator's clock.
    pub fn now_unix(&self) -> i64 {
        self.lock().now_unix()
    }

    /// Every device code issued so far, in issue order.
    pub fn device_codes(&self) -> Vec<DeviceCodeInfo> {
        let inner = self.lock();
        let now = inner.now();
        inner
            .devices
            .iter()
            .map(|d| DeviceCodeInfo {
                user_code: d.user_code.clone(),
                state: d.state(now),
                scope: d.scope.clone(),
                client_id: d.client_id.clone(),
            })
            .collect()
    }

    /// Records the person's decision on the device code with `user_code`
    /// (compared ignoring case, spaces and dashes). Only a pending code can be
    /// decided; otherwise the error says why.
    pub fn decide(&self, user_code: &str, decision: Decision) -> Result<(), String> {
        let mut inner = self.lock();
        let now = inner.now();
        let Some(device) = inner.device_by_user_code(user_code) else {
            return Err(format!("no device code has the user code '{user_code}'"));
        };
        match device.state(now) {
            DeviceCodeState::Pending => {}
            state => {
                return Err(format!(
                    "the device code with user code '{}' is {state:?}, not pending",
                    device.user_code
                ));
            }
        }
        device.progress = match decision {
            Decision::Approve { user_id } => DeviceProgress::Approved { user_id },
            Decision::Deny => DeviceProgress::Denied,
        };
        Ok(())
    }

    /// Makes every device code not yet redeemed or declined expired.
    pub fn expire_device_codes(&self) {
        for device in &mut self.lock().devices {
            if matches!(
                device.progress,
                DeviceProgress::Pending | DeviceProgress::Approved { .. }
            ) {
                device.progress = DeviceProgress::Expired;
            }
        }
    }

    /// Revokes every refresh token issued so far, as a password reset or an
    /// administrator's "revoke sessions" does.
    pub fn revoke_refresh_tokens(&self) {
        let mut inner = self.lock();
        let now = inner.now_unix();
        for token in inner.refresh.values_mut() {
            if matches!(token.state, RefreshState::Active) {
                token.state = RefreshState::Revoked(now);
            }
        }
    }

    /// Every access token, refresh token and device code issued so far.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Replaces the app registration's client secret (as when a secret expires
    /// and an admin adds a new one): the previous secret is refused from now on
    /// (AADSTS7000215). Tokens already issued stay valid.
    pub fn replace_client_secret(&self, secret: &str) {
        self.lock().client_secret = Some(secret.to_string());
    }

    /// Whether `presented` is the app registration's current client secret.
    fn is_client_secret(&self, config: &SimConfig, presented: &str) -> bool {
        let inner = self.lock();
        presented
            == inner
                .client_secret
                .as_deref()
                .unwrap_or(&config.client_secret)
    }
}

/// `length` random characters: letters and digits, and with `url_safe` also
/// `-` and `_` (as in Entra's refresh tokens and device codes).
fn random_text(length: usize, url_safe: bool) -> String {
    (0..length)
        .map(|_| {
            if url_safe && fastrand::u8(..32) == 0 {
                if fastrand::bool() { '-' } else { '_' }
            } else {
                fastrand::alphanumeric()
            }
        })
        .collect()
}

fn random_user_code() -> String {
    (0..8)
        .map(|_| char::from(USER_CODE_ALPHABET[fastrand::usize(..USER_CODE_ALPHABET.len())]))
        .collect()
}

/// A user code as typed by a person: any case, maybe with spaces or dashes.
fn normalize_user_code(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn random_guid() -> String {
    crate::data::format_guid(fastrand::u64(..), fastrand::u64(..))
}

/// `2016-01-09 02:02:12Z`, the identity platform's timestamp form.
fn timestamp(unix: i64) -> String {
    iso_from_unix(unix).replace('T', " ")
}

/// `2023-03-15T09:12:07.0000000Z`, the form dates take inside AADSTS messages.
fn aadsts_date(unix: i64) -> String {
    iso_from_unix(unix).replace('Z', ".0000000Z")
}

/// An error answer: status and body, in the documented shape
/// (`shared/design/dataverse-examples/08b`, `08c`).
fn refusal(now_unix: i64, status: u16, error: &str, code: u32, description: &str) -> (u16, Value) {
    let trace = random_guid();
    let correlation = random_guid();
    let timestamp = timestamp(now_unix);
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

/// The fields of a form body; an empty value counts as missing.
struct Form(HashMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The `grant_type` of a token request's form body, for the request log (the
/// only field of the body that is not possibly a secret).
pub fn grant_type_of(form_body: &[u8]) -> Option<String> {
    form_urlencoded::parse(form_body)
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned())
}

/// One token or device authorization request being answered.
struct Exchange<'a> {
    config: &'a SimConfig,
    store: &'a TokenStore,
    tenant: &'a str,
    form: Form,
    origins: &'a [String],
    now_unix: i64,
}

type Answer = (u16, Value);

impl Exchange<'_> {
    fn refuse(&self, status: u16, error: &str, code: u32, description: &str) -> Answer {
        refusal(self.now_unix, status, error, code, description)
    }

    fn missing(&self, parameter: &str) -> Answer {
        self.refuse(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn field(&self, name: &str) -> Result<&str, Answer> {
        self.form.get(name).ok_or_else(|| self.missing(name))
    }

    fn check_tenant(&self) -> Result<(), Answer> {
        if self.tenant.eq_ignore_ascii_case(&self.config.tenant) {
            return Ok(());
        }
        Err(self.refuse(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
                self.tenant
            ),
        ))
    }

    /// The `client_id`, which must be the app registration's.
    fn check_client(&self) -> Result<(), Answer> {
        let client_id = self.field("client_id")?;
        if client_id.eq_ignore_ascii_case(&self.config.client_id) {
            return Ok(());
        }
        Err(self.refuse(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                self.tenant
            ),
        ))
    }

    fn wrong_secret(&self) -> Answer {
        self.refuse(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                self.config.client_id
            ),
        )
    }

    fn invalid_scope(&self, scope: &str) -> Answer {
        self.refuse(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    /// Whether `scope` is `<environment>/<name>` for one of the origins.
    fn is_resource_scope(&self, scope: &str, name: &str) -> bool {
        let scope = scope.to_ascii_lowercase();
        self.origins.iter().any(|origin| {
            let origin = origin.trim_end_matches('/').to_ascii_lowercase();
            scope == format!("{origin}/{name}") || scope == format!("{origin}//{name}")
        })
    }

    /// The delegated `scope`: `<environment>/user_impersonation`, optionally
    /// with `offline_access`, `openid` and `profile`. Answers the resource scope
    /// as sent and whether `offline_access` was asked.
    fn delegated_scope(&self) -> Result<(String, bool), Answer> {
        let scope = self.field("scope")?;
        let mut resource = None;
        let mut offline = false;
        for item in scope.split_whitespace() {
            if self.is_resource_scope(item, "user_impersonation") {
                resource.get_or_insert_with(|| item.to_string());
            } else if OPENID_SCOPES.iter().any(|s| item.eq_ignore_ascii_case(s)) {
                offline |= item.eq_ignore_ascii_case("offline_access");
            } else {
                return Err(self.invalid_scope(item));
            }
        }
        match resource {
            Some(resource) => Ok((resource, offline)),
            None => Err(self.invalid_scope(scope)),
        }
    }

    fn client_credentials(&self) -> Answer {
        if let Err(refused) = self.check_client() {
            return refused;
        }
        let Some(secret) = self.form.get("client_secret") else {
            return self.refuse(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        };
        if !self.store.is_client_secret(self.config, secret) {
            return self.wrong_secret();
        }
        let scope = match self.field("scope") {
            Ok(scope) => scope,
            Err(refused) => return refused,
        };
        if !self.is_resource_scope(scope, ".default") {
            return self.invalid_scope(scope);
        }
        let lifetime = self.config.token_lifetime_seconds;
        let token = self.store.issue(Duration::from_secs(lifetime));
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

    /// The answer with a person's new access token, and with `offline` a new
    /// refresh token.
    fn delegated_tokens(
        &self,
        inner: &mut Inner,
        user_id: &str,
        resource_scope: &str,
        offline: bool,
    ) -> Answer {
        let lifetime = self.config.token_lifetime_seconds;
        let access = inner.issue_access(
            Caller::User(user_id.to_string()),
            Duration::from_secs(lifetime),
        );
        let mut body = Map::new();
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("scope".into(), json!(resource_scope));
        body.insert("expires_in".into(), json!(lifetime));
        body.insert("ext_expires_in".into(), json!(lifetime));
        body.insert("access_token".into(), json!(access));
        if offline {
            body.insert("refresh_token".into(), json!(inner.issue_refresh(user_id)));
        }
        (200, Value::Object(body))
    }

    /// Polling with `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
    fn device_code(&self) -> Answer {
        if let Err(refused) = self.check_client() {
            return refused;
        }
        let device_code = match self.field("device_code") {
            Ok(code) => code,
            Err(refused) => return refused,
        };
        let mut inner = self.store.lock();
        let now = inner.now();
        let Some(index) = inner
            .devices
            .iter()
            .position(|d| d.device_code == device_code)
        else {
            // Entra's table names `bad_verification_code` for this; what it sends
            // for a code it never issued is `invalid_grant`.
            return self.refuse(
                400,
                "invalid_grant",
                70000,
                "The provided value for the input parameter 'device_code' is not valid. Provided grant is invalid or malformed.",
            );
        };
        let device = &mut inner.devices[index];
        let state = device.state(now);
        if state == DeviceCodeState::Approved
            && let DeviceProgress::Approved { user_id } = &device.progress
        {
            let user_id = user_id.clone();
            let resource_scope = device.resource_scope.clone();
            let offline = device.offline;
            device.progress = DeviceProgress::Redeemed;
            return self.delegated_tokens(&mut inner, &user_id, &resource_scope, offline);
        }
        match state {
            DeviceCodeState::Pending | DeviceCodeState::Approved => self.refuse(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ),
            DeviceCodeState::Denied => self.refuse(
                400,
                "authorization_declined",
                70000,
                "The request was denied because one or more scopes requested are unauthorized or expired. The user must first sign in and grant the client application access to the requested scope.",
            ),
            DeviceCodeState::Expired => {
                self.refuse(400, "expired_token", 70019, "Verification code expired.")
            }
            DeviceCodeState::Redeemed => self.refuse(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ),
        }
    }

    /// `grant_type=refresh_token`.
    ///
    /// Stricter than Entra on purpose: Entra leaves a refresh token usable after
    /// it was exchanged ("You're expected to discard the old refresh token"); here
    /// it is spent at once and answers `invalid_grant` (AADSTS50173) afterwards,
    /// so a client that does not store the new refresh token every time fails its
    /// next refresh in tests instead of months later in production.
    fn refresh_token(&self) -> Answer {
        if let Err(refused) = self.check_client() {
            return refused;
        }
        // A public client sends no secret; a confidential one may.
        if let Some(secret) = self.form.get("client_secret")
            && !self.store.is_client_secret(self.config, secret)
        {
            return self.wrong_secret();
        }
        let presented = match self.field("refresh_token") {
            Ok(token) => token,
            Err(refused) => return refused,
        };
        let (resource_scope, _) = match self.delegated_scope() {
            Ok(scope) => scope,
            Err(refused) => return refused,
        };
        let mut inner = self.store.lock();
        let now = inner.now();
        let now_unix = inner.now_unix();
        let Some(token) = inner.refresh.get_mut(presented) else {
            return self.refuse(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            );
        };
        let revoked = |valid_from: i64, issued: i64| {
            self.refuse(
                400,
                "invalid_grant",
                50173,
                &format!(
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                    aadsts_date(issued),
                    aadsts_date(valid_from)
                ),
            )
        };
        match token.state {
            RefreshState::Used(at) | RefreshState::Revoked(at) => {
                return revoked(at, token.issued_unix);
            }
            RefreshState::Active => {}
        }
        let lifetime = Duration::from_secs(REFRESH_TOKEN_LIFETIME_SECONDS);
        if token
            .issued
            .checked_add(lifetime)
            .is_none_or(|end| end <= now)
        {
            let days = REFRESH_TOKEN_LIFETIME_SECONDS / 86_400;
            return self.refuse(
                400,
                "invalid_grant",
                700082,
                &format!(
                    "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {days}.00:00:00.",
                    aadsts_date(token.issued_unix)
                ),
            );
        }
        token.state = RefreshState::Used(now_unix);
        let user_id = token.user_id.clone();
        // The grant came with offline_access, so a new refresh token always
        // comes back, whatever this request's scope says.
        self.delegated_tokens(&mut inner, &user_id, &resource_scope, true)
    }

    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    fn device_authorization(&self) -> Answer {
        if let Err(refused) = self.check_client() {
            return refused;
        }
        let (resource_scope, offline) = match self.delegated_scope() {
            Ok(scope) => scope,
            Err(refused) => return refused,
        };
        let scope = self.form.get("scope").unwrap_or_default().to_string();
        let client_id = self.form.get("client_id").unwrap_or_default().to_string();
        let verification_uri = format!(
            "{}{DEVICE_LOGIN_PATH}",
            self.origins.first().map(String::as_str).unwrap_or_default()
        );
        let mut inner = self.store.lock();
        let user_code = loop {
            let code = random_user_code();
            if !inner.devices.iter().any(|d| d.user_code == code) {
                break code;
            }
        };
        let device_code = format!("DAQABIQEAAAD{}", random_text(180, true));
        let now = inner.now();
        let lifetime = Duration::from_secs(DEVICE_CODE_LIFETIME_SECONDS);
        inner.devices.push(DeviceCode {
            device_code: device_code.clone(),
            user_code: user_code.clone(),
            client_id,
            scope,
            resource_scope,
            offline,
            expires: now.checked_add(lifetime).unwrap_or(now),
            progress: DeviceProgress::Pending,
        });
        inner.issued.push(device_code.clone());
        (
            200,
            json!({
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification_uri,
                "expires_in": DEVICE_CODE_LIFETIME_SECONDS,
                "interval": DEVICE_CODE_INTERVAL_SECONDS,
                "message": format!(
                    "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
                ),
            }),
        )
    }
}

fn exchange<'a>(
    config: &'a SimConfig,
    store: &'a TokenStore,
    tenant: &'a str,
    form_body: &[u8],
    origins: &'a [String],
) -> Exchange<'a> {
    Exchange {
        config,
        store,
        tenant,
        form: Form::parse(form_body),
        origins,
        now_unix: store.now_unix(),
    }
}

/// Answers a token request (`POST /{tenant}/oauth2/v2.0/token`): the
/// client-credentials, device code and refresh token grants. `origins` are the
/// environment URLs the request may name in its scope (`<origin>/.default`,
/// `<origin>/user_impersonation`), e.g. `http://127.0.0.1:8080`.
pub fn token_response(
    config: &SimConfig,
    store: &TokenStore,
    tenant: &str,
    form_body: &[u8],
    origins: &[String],
) -> (u16, Value) {
    let exchange = exchange(config, store, tenant, form_body, origins);
    if let Err(refused) = exchange.check_tenant() {
        return refused;
    }
    let grant_type = match exchange.field("grant_type") {
        Ok(grant_type) => grant_type,
        Err(refused) => return refused,
    };
    match grant_type {
        "client_credentials" => exchange.client_credentials(),
        DEVICE_CODE_GRANT => exchange.device_code(),
        "refresh_token" => exchange.refresh_token(),
        other => exchange.refuse(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

/// Answers a device authorization request (`POST /{tenant}/oauth2/v2.0/devicecode`).
/// The verification URI is `<first origin>/devicelogin`.
pub fn device_code_response(
    config: &SimConfig,
    store: &TokenStore,
    tenant: &str,
    form_body: &[u8],
    origins: &[String],
) -> (u16, Value) {
    let exchange = exchange(config, store, tenant, form_body, origins);
    if let Err(refused) = exchange.check_tenant() {
        return refused;
    }
    exchange.device_authorization()
}

/// The verification page: `GET` shows a form for the user code, `POST` (form
/// fields `user_code` and `action=approve|deny`) signs `person` in (or declines)
/// for that code. Answers the status and an HTML page; the page never repeats
/// what was typed.
pub fn device_login_page(
    store: &TokenStore,
    post: Option<&[u8]>,
    person_id: &str,
    person_name: &str,
) -> (u16, String) {
    let page = |title: &str, text: &str, form: bool| {
        let form = if form {
            "<form method=\"post\" action=\"/devicelogin\"><label>Code <input name=\"user_code\" autofocus></label> <button name=\"action\" value=\"approve\">Sign in</button> <button name=\"action\" value=\"deny\">Cancel</button></form>"
        } else {
            ""
        };
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{form}</body></html>"
        )
    };
    let escaped_name = person_name
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let Some(body) = post else {
        return (
            200,
            page(
                "Enter code",
                &format!(
                    "Enter the code displayed on your app or device to sign in as {escaped_name}."
                ),
                true,
            ),
        );
    };
    let form = Form::parse(body);
    let decision = match form.get("action") {
        Some("deny") => Decision::Deny,
        _ => Decision::Approve {
            user_id: person_id.to_string(),
        },
    };
    let denied = decision == Decision::Deny;
    let Some(user_code) = form.get("user_code") else {
        return (
            400,
            page(
                "Enter code",
                "Enter the code displayed on your app or device.",
                true,
            ),
        );
    };
    match store.decide(user_code, decision) {
        Ok(()) if denied => (
            200,
            page(
                "Sign-in canceled",
                "You have declined to sign in to the application on your device. You may now close this window.",
                false,
            ),
        ),
        Ok(()) => (
            200,
            page(
                "Signed in",
                &format!(
                    "You have signed in to the application on your device as {escaped_name}. You may now close this window."
                ),
                false,
            ),
        ),
        Err(_) => (
            400,
            page(
                "Enter code",
                "That code didn't work. Check the code and try again, or ask the app for a new code.",
                true,
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
