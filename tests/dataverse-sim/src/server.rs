//! The HTTP server: the identity endpoints (token, device code, the device
//! login page) and the Web API on one loopback origin (GETs and `POST $batch`),
//! a record of every request with its answer's size, one-shot faults for
//! resilience tests, per-simulator changes to the data (edited or deleted views
//! and charts, deleted columns, extra rows), and sign-in controls (device code decisions, the
//! identity clock, revoked refresh tokens) through test hooks.

use crate::batch::{self, Part, PartAnswer};
use crate::data::{Db, Overlay, Row, dataset, format_guid};
use crate::errors::{ODataError, codes};
use crate::identity::{
    self, Caller, DEVICE_LOGIN_PATH, Decision, DeviceCodeInfo, SimConfig, TokenCheck, TokenStore,
    device_code_response, token_response,
};
use crate::odata::Preferences;
use crate::webapi::{self, API_PREFIX, ApiRequest};
use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The largest request body accepted (a `$batch` of long FetchXML queries).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, still percent-encoded, e.g. `/api/data/v9.2/appmodules`.
    pub path: String,
    /// The raw query string without `?` (empty when there is none).
    pub query: String,
    /// Whether it carried a bearer token that was issued here and not expired.
    pub authorized: bool,
    /// The status the simulator answered with (0 while the answer is pending).
    pub status: u16,
    /// Bytes of the answer's body (for a `$batch`, the whole multipart body;
    /// 0 while the answer is pending).
    pub response_bytes: usize,
    /// For a `POST` to the token endpoint, the form body's `grant_type`
    /// (`client_credentials`, `urn:ietf:params:oauth:grant-type:device_code`,
    /// `refresh_token`, ...); `None` for every other request. The rest of the
    /// body (secrets, tokens, codes) is never recorded.
    pub grant_type: Option<String>,
}

/// A failure the next Web API request meets instead of its answer (token
/// requests are not affected). Faults are used up one per request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An OData error with this status; `retry_after_seconds` adds `Retry-After`
    /// (Dataverse's service protection answers 429 with it).
    Status {
        status: u16,
        retry_after_seconds: Option<u64>,
    },
    /// A 502 with an HTML page, as a gateway in front of Dataverse sends.
    HtmlError,
    /// A 200 whose JSON body is cut off half-way.
    TruncatedBody,
    /// The normal answer, after a pause.
    Delay(Duration),
    /// A 200 carrying an HTML page: a proxy or captive portal answering in
    /// Dataverse's stead.
    HtmlOk,
    /// The answer's headers and the first bytes of its body, then the
    /// connection is dropped.
    ResetMidBody,
    /// The normal answer, but its FetchXML paging cookie is garbled (not the
    /// double-encoded XML Dataverse sends).
    BadPagingCookie,
}

#[derive(Default)]
struct RequestLog {
    entries: Vec<RecordedRequest>,
    /// Bumped by every clear, so an answer never updates a newer log's entry.
    generation: u64,
}

struct SimState {
    config: SimConfig,
    origin: String,
    tokens: TokenStore,
    requests: Mutex<RequestLog>,
    faults: Mutex<VecDeque<Fault>>,
    /// This simulator's changes to the sample data (test hooks).
    overlay: Mutex<Arc<Overlay>>,
    /// Requests being answered now, and the most seen at once: how a client's
    /// concurrency looks from the server.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// The same per bearer token (in flight, most at once): a client's
    /// connections each have their own token, so one connection's concurrency
    /// is told apart from another's on the same simulator.
    by_token: Mutex<HashMap<String, (usize, usize)>>,
    /// Added before every Web API answer, so concurrent clients overlap.
    latency: Mutex<Duration>,
}

impl SimState {
    /// The overlay as it is now; a request keeps answering from the snapshot it
    /// started with.
    fn overlay_snapshot(&self) -> Arc<Overlay> {
        Arc::clone(&lock(&self.overlay))
    }
}

/// The wall clock in Unix seconds, for the `modifiedon` of edited definitions;
/// a clock before 1970 counts as 1970 (the overlay still moves the time forward).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A simulator serving on a loopback port until shut down.
pub struct RunningSimulator {
    address: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSimulator {
    /// Binds `listen` (port 0 picks a free port) and serves in a spawned task. The
    /// sample data is built before this returns, so the first request is fast
    /// (except the bench table, built by the first query that reads it).
    pub async fn start(listen: SocketAddr, config: SimConfig) -> anyhow::Result<RunningSimulator> {
        tokio::task::spawn_blocking(dataset)
            .await
            .context("building the sample data")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let host = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let address = SocketAddr::new(host, bound.port());
        let state = Arc::new(SimState {
            config,
            origin: format!("http://{address}"),
            tokens: TokenStore::default(),
            requests: Mutex::new(RequestLog::default()),
            faults: Mutex::new(VecDeque::new()),
            overlay: Mutex::new(Arc::new(Overlay::default())),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            by_token: Mutex::new(HashMap::new()),
            latency: Mutex::new(Duration::ZERO),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(url = %state.origin, "Dataverse simulator listening");
        Ok(RunningSimulator {
            address,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the environment URL, and
    /// also the authority URL of the token endpoint.
    pub fn url(&self) -> String {
        self.state.origin.clone()
    }

    /// The address clients connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The credentials the simulator accepts.
    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).entries.clone()
    }

    pub fn clear_requests(&self) {
        let mut log = lock(&self.state.requests);
        log.entries.clear();
        log.generation += 1;
    }

    /// Makes every access token issued so far expired (refresh tokens still
    /// work: a client refreshes).
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// Moves the identity clock forward by `by`: access tokens, refresh tokens
    /// (90 days unused) and device codes (15 minutes) expire against it. Real
    /// time still passes too. The Web API's data is not affected.
    pub fn advance_clock(&self, by: Duration) {
        self.state.tokens.advance_clock(by);
    }

    /// Every device code issued so far, in issue order, with its state.
    pub fn device_codes(&self) -> Vec<DeviceCodeInfo> {
        self.state.tokens.device_codes()
    }

    /// The person ([`crate::Dataset::delegated_user_id`], Alice Morgan) signs in
    /// and approves the device code with `user_code` (case, spaces and dashes
    /// ignored); the client's next poll gets the tokens.
    ///
    /// # Panics
    /// If no device code has this user code, or it is not pending (approved,
    /// declined, expired or redeemed already).
    pub fn approve_device_code(&self, user_code: &str) {
        let user_id = dataset().delegated_user_id.clone();
        if let Err(message) = self
            .state
            .tokens
            .decide(user_code, Decision::Approve { user_id })
        {
            panic!("RunningSimulator::approve_device_code: {message}");
        }
    }

    /// The person declines the device code with `user_code`; the client's next
    /// poll answers `authorization_declined`.
    ///
    /// # Panics
    /// If no device code has this user code, or it is not pending.
    pub fn deny_device_code(&self, user_code: &str) {
        if let Err(message) = self.state.tokens.decide(user_code, Decision::Deny) {
            panic!("RunningSimulator::deny_device_code: {message}");
        }
    }

    /// Makes every device code not yet redeemed or declined expired; polls then
    /// answer `expired_token`.
    pub fn expire_device_codes(&self) {
        self.state.tokens.expire_device_codes();
    }

    /// Revokes every refresh token issued so far (as a password reset does);
    /// using one answers `invalid_grant` (AADSTS50173).
    pub fn revoke_refresh_tokens(&self) {
        self.state.tokens.revoke_refresh_tokens();
    }

    /// Every access token, refresh token and device code issued so far, in
    /// issue order: tests search logs and databases for them.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.tokens.issued_secrets()
    }

    /// Replaces the app registration's client secret, as when a secret expires
    /// and an admin adds a new one: the old secret answers `invalid_client`
    /// (AADSTS7000215) from now on. Access tokens already issued stay valid.
    pub fn replace_client_secret(&self, secret: &str) {
        self.state.tokens.replace_client_secret(secret);
    }

    /// Queues a fault for the next Web API request.
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
    }

    /// Drops the faults still queued and says how many there were: a test that
    /// queued more than a client could use up knows the fault lasted to the end.
    pub fn clear_faults(&self) -> usize {
        let mut faults = lock(&self.state.faults);
        let left = faults.len();
        faults.clear();
        left
    }

    /// Applies a change to this simulator's overlay; a misuse (unknown view,
    /// table or column) is a bug in the calling test and panics.
    fn change(&self, hook: &str, apply: impl FnOnce(&mut Overlay) -> Result<(), String>) {
        let mut overlay = lock(&self.state.overlay);
        if let Err(message) = apply(Arc::make_mut(&mut overlay)) {
            drop(overlay);
            panic!("RunningSimulator::{hook}: {message}");
        }
    }

    /// Replaces the given parts of a view's definition (`None` keeps a part) and
    /// moves its `modifiedon` strictly later. Only this simulator sees the change.
    ///
    /// # Panics
    /// If no view has this id.
    pub fn update_view(&self, id: &str, fetchxml: Option<&str>, layoutxml: Option<&str>) {
        let now = unix_now();
        self.change("update_view", |overlay| {
            overlay.update_view(dataset(), id, fetchxml, layoutxml, now)
        });
    }

    /// Deletes a view: it then answers 404 everywhere and leaves the listings.
    ///
    /// # Panics
    /// If no view has this id.
    pub fn delete_view(&self, id: &str) {
        self.change("delete_view", |overlay| overlay.delete_view(dataset(), id));
    }

    /// Replaces a chart's `datadescription` and moves its `modifiedon` strictly
    /// later (its `versionnumber` goes up too). Only this simulator sees the change.
    ///
    /// # Panics
    /// If no chart has this id.
    pub fn update_chart(&self, id: &str, datadescription: &str) {
        let now = unix_now();
        self.change("update_chart", |overlay| {
            overlay.update_chart(dataset(), id, datadescription, now)
        });
    }

    /// Deletes a chart: it then answers 404 and leaves the listings.
    ///
    /// # Panics
    /// If no chart has this id.
    pub fn delete_chart(&self, id: &str) {
        self.change("delete_chart", |overlay| {
            overlay.delete_chart(dataset(), id)
        });
    }

    /// Deletes a column (a money column with its `_base` twin): it leaves the
    /// metadata, and queries naming it fail as they do in Dataverse (FetchXML:
    /// 400 `0x80041103`).
    ///
    /// # Panics
    /// If the table or the column does not exist.
    pub fn delete_attribute(&self, entity: &str, attribute: &str) {
        self.change("delete_attribute", |overlay| {
            overlay.delete_attribute(dataset(), entity, attribute)
        });
    }

    /// Gives a view another name, as an admin renaming it in Dynamics 365
    /// would. Only this simulator sees the change.
    ///
    /// # Panics
    /// If no view has this id.
    pub fn rename_view(&self, id: &str, name: &str) {
        self.change("rename_view", |overlay| {
            overlay.rename_view(dataset(), id, name)
        });
    }

    /// Gives a view another id, as the same view has in another environment
    /// (a sandbox beside production). Only this simulator sees the change.
    ///
    /// # Panics
    /// If no view has this id.
    pub fn rekey_view(&self, id: &str, new_id: &str) {
        self.change("rekey_view", |overlay| {
            overlay.rekey_view(dataset(), id, new_id)
        });
    }

    /// Makes every Web API answer wait `latency` first (token answers do not).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.state.latency) = latency;
    }

    /// The most requests this simulator has answered at once.
    pub fn peak_concurrency(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// For each bearer token requests came with (valid or not), the most
    /// requests with it this simulator has answered at once; in no particular
    /// order. Requests without a token (sign-ins) are not counted.
    pub fn peak_concurrency_per_token(&self) -> Vec<usize> {
        lock(&self.state.by_token)
            .values()
            .map(|&(_, peak)| peak)
            .collect()
    }

    /// Adds rows to a table, visible to every query of this simulator. Rows use
    /// logical names, like [`Row`] (lookups as the referenced id, nulls absent).
    ///
    /// # Panics
    /// If the table does not exist.
    pub fn add_rows(&self, entity: &str, rows: Vec<Row>) {
        self.change("add_rows", |overlay| {
            overlay.add_rows(dataset(), entity, rows)
        });
    }

    /// Stops accepting requests and waits (briefly) for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            // Idle keep-alive connections would hold a graceful shutdown open.
            task.abort();
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn json_response(status: u16, body: &Value, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

const ODATA_JSON: &str = "application/json; odata.metadata=minimal";

/// A Web API answer before it becomes an HTTP response or a `$batch` part, so
/// both carry exactly the same status, headers and body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    fn odata(status: u16, body: &Value, preference_applied: Option<&str>) -> Answer {
        let mut headers = vec![
            ("Content-Type", ODATA_JSON.to_string()),
            ("OData-Version", "4.0".to_string()),
        ];
        if let Some(applied) = preference_applied {
            headers.push(("Preference-Applied", applied.to_string()));
        }
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn error(error: &ODataError) -> Answer {
        Answer::odata(error.status, &error.body(), None)
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }

    fn into_part(self) -> PartAnswer {
        PartAnswer {
            status: self.status,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            body: self.body,
        }
    }
}

fn error_response(error: &ODataError) -> Response {
    Answer::error(error).into_response()
}

/// An endpoint of the identity platform below `/{tenant}/oauth2/v2.0/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdentityEndpoint {
    Token,
    DeviceCode,
}

/// `/{tenant}/oauth2/v2.0/token` or `/{tenant}/oauth2/v2.0/devicecode` → the
/// tenant and the endpoint.
fn identity_endpoint(path: &str) -> Option<(&str, IdentityEndpoint)> {
    let rest = path.strip_prefix('/')?;
    let (tenant, rest) = rest.split_once('/')?;
    let endpoint = match rest {
        "oauth2/v2.0/token" => IdentityEndpoint::Token,
        "oauth2/v2.0/devicecode" => IdentityEndpoint::DeviceCode,
        _ => return None,
    };
    (!tenant.is_empty()).then_some((tenant, endpoint))
}

/// `/{tenant}/oauth2/v2.0/token` → the tenant.
fn token_tenant(path: &str) -> Option<&str> {
    match identity_endpoint(path)? {
        (tenant, IdentityEndpoint::Token) => Some(tenant),
        _ => None,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn preferences(headers: &HeaderMap) -> Preferences {
    Preferences::parse(
        headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Replaces the paging cookie of an answer with one that is not the
/// double-encoded XML Dataverse sends.
async fn garble_paging_cookie(response: Response) -> (Response, bool) {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return (Response::from_parts(parts, Body::empty()), false);
    };
    let bytes = collected.to_bytes();
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return (Response::from_parts(parts, Body::from(bytes)), false);
    };
    let Some(cookie) = answer.get_mut("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie") else {
        return (Response::from_parts(parts, Body::from(bytes)), false);
    };
    *cookie = json!(
        "<cookie pagenumber=\"2\" pagingcookie=\"%253cbroken%2520cookie\" istracking=\"False\" />"
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    (
        Response::from_parts(parts, Body::from(answer.to_string())),
        true,
    )
}

/// Counts a request as in flight until its answer is built.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request as in flight for its bearer token until its answer is built.
struct TokenInFlight<'a> {
    by_token: &'a Mutex<HashMap<String, (usize, usize)>>,
    token: String,
}

impl<'a> TokenInFlight<'a> {
    fn start(by_token: &'a Mutex<HashMap<String, (usize, usize)>>, token: &str) -> Self {
        let mut counts = lock(by_token);
        let (now, peak) = counts.entry(token.to_string()).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
        TokenInFlight {
            by_token,
            token: token.to_string(),
        }
    }
}

impl Drop for TokenInFlight<'_> {
    fn drop(&mut self) {
        if let Some((now, _)) = lock(self.by_token).get_mut(&self.token) {
            *now -= 1;
        }
    }
}

async fn handle(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let check = bearer(&headers).map(|t| state.tokens.check(t));
    let authorized = matches!(check, Some(TokenCheck::Valid(_)));
    let grant_type = (method == Method::POST && token_tenant(&path).is_some())
        .then(|| identity::grant_type_of(&body))
        .flatten();
    let now_in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(now_in_flight, Ordering::SeqCst);
    let _in_flight = InFlight(&state.in_flight);
    let _token_in_flight =
        bearer(&headers).map(|token| TokenInFlight::start(&state.by_token, token));
    // Recorded on arrival, so concurrent requests keep their arrival order; the
    // status is filled in once the answer is known.
    let slot = {
        let mut log = lock(&state.requests);
        log.entries.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone().unwrap_or_default(),
            authorized,
            status: 0,
            response_bytes: 0,
            grant_type,
        });
        (log.generation, log.entries.len() - 1)
    };
    let latency = *lock(&state.latency);
    if !latency.is_zero() && path.starts_with("/api/") {
        tokio::time::sleep(latency).await;
    }
    // This fault waits for the first answer that has a paging cookie to garble.
    let garble_cookie =
        path.starts_with("/api/") && lock(&state.faults).front() == Some(&Fault::BadPagingCookie);
    let response = route(
        &state,
        &method,
        &path,
        query.as_deref(),
        &headers,
        &body,
        check.as_ref(),
    )
    .await;
    let response = if garble_cookie {
        let (response, garbled) = garble_paging_cookie(response).await;
        if garbled {
            let mut faults = lock(&state.faults);
            if faults.front() == Some(&Fault::BadPagingCookie) {
                faults.pop_front();
            }
        }
        response
    } else {
        response
    };
    let response_bytes = response
        .body()
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut log = lock(&state.requests);
    if log.generation == slot.0
        && let Some(entry) = log.entries.get_mut(slot.1)
    {
        entry.status = response.status().as_u16();
        entry.response_bytes = response_bytes;
    }
    response
}

fn not_found(origin: &str, path: &str) -> Answer {
    Answer::odata(
        404,
        &json!({"error": {"code": "", "message": format!("No HTTP resource was found that matches the request URI '{origin}{path}'.")}}),
        None,
    )
}

/// Answers a GET of `path` (from `/`) the way a direct request is answered once
/// it is authorized: used for direct GETs and for every GET part of a batch.
fn answer_get(
    origin: &str,
    db: Db<'_>,
    path: &str,
    query: Option<&str>,
    preferences: &Preferences,
) -> Answer {
    let Some(api_path) = api_path(path) else {
        return not_found(origin, path);
    };
    let answer = webapi::get_in(
        db,
        &ApiRequest {
            base_url: origin,
            path: api_path,
            query,
            preferences,
        },
    );
    match answer {
        Ok(ok) => Answer::odata(ok.status, &ok.body, ok.preference_applied.as_deref()),
        Err(error) => Answer::error(&error),
    }
}

/// The path below the Web API root, if `path` is in the Web API.
fn api_path(path: &str) -> Option<&str> {
    let api_root = API_PREFIX.trim_end_matches('/');
    path.strip_prefix(API_PREFIX)
        .or_else(|| (path == api_root).then_some(""))
}

/// The 401 of a request without a valid access token. An expired or unknown
/// token adds RFC 6750's `error="invalid_token"` to the challenge.
fn unauthorized(state: &SimState, check: Option<&TokenCheck>) -> Response {
    let (message, error) = match check {
        Some(TokenCheck::Expired) => (
            "The access token expired; get a new one (refresh or sign in again).",
            Some("The access token expired"),
        ),
        Some(_) => (
            "The access token is invalid; sign in again.",
            Some("The access token is invalid"),
        ),
        None => (
            "The request has no access token; send 'Authorization: Bearer <token>'.",
            None,
        ),
    };
    let mut response = error_response(&ODataError::unauthorized(message));
    let error = error
        .map(|description| {
            format!("error=\"invalid_token\", error_description=\"{description}\", ")
        })
        .unwrap_or_default();
    let challenge = format!(
        "Bearer {error}authorization_uri={}/{}/oauth2/authorize, resource_id={}/",
        state.origin, state.config.tenant, state.origin
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The origin the client addressed (its `Host` header), which is what Dataverse
/// builds `@odata.context` and `@odata.nextLink` from: a client that reached the
/// simulator under another name must be able to follow the links it gets back.
fn addressed_origin(state: &SimState, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<axum::http::uri::Authority>().ok())
        .map_or_else(|| state.origin.clone(), |host| format!("http://{host}"))
}

fn internal_error(join_error: &tokio::task::JoinError) -> Response {
    tracing::error!(%join_error, "a Web API request failed");
    error_response(&ODataError::new(
        500,
        "0x80040216",
        "An unexpected error occurred.",
    ))
}

async fn route(
    state: &Arc<SimState>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    check: Option<&TokenCheck>,
) -> Response {
    if let Some((tenant, endpoint)) = identity_endpoint(path) {
        if method != Method::POST {
            return json_response(
                405,
                &json!({"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests."}),
                "application/json; charset=utf-8",
            );
        }
        let mut origins = vec![state.origin.clone()];
        let addressed = addressed_origin(state, headers);
        if addressed != state.origin {
            origins.push(addressed);
        }
        // Secrets in the body and the answer are never logged.
        let (status, answer) = match endpoint {
            IdentityEndpoint::Token => {
                token_response(&state.config, &state.tokens, tenant, body, &origins)
            }
            IdentityEndpoint::DeviceCode => {
                device_code_response(&state.config, &state.tokens, tenant, body, &origins)
            }
        };
        let mut response = json_response(status, &answer, "application/json; charset=utf-8");
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        return response;
    }
    if path == DEVICE_LOGIN_PATH {
        return device_login(state, method, body);
    }
    if let Some(count) = path.strip_prefix(TEST_BYTES_PREFIX)
        && method == Method::GET
    {
        return test_bytes(count, query);
    }
    let caller = match check {
        Some(TokenCheck::Valid(caller)) => Some(caller.clone()),
        _ => None,
    };
    let Some(api_path) = api_path(path) else {
        return not_found(&addressed_origin(state, headers), path).into_response();
    };
    // A fault replaces the whole answer, a batch's included. A garbled paging
    // cookie is not taken here: it waits for an answer with a cookie (`handle`).
    let fault = {
        let mut faults = lock(&state.faults);
        if faults.front() == Some(&Fault::BadPagingCookie) {
            None
        } else {
            faults.pop_front()
        }
    };
    if let Some(fault) = fault {
        match fault {
            Fault::Status {
                status,
                retry_after_seconds,
            } => {
                let error = match status {
                    429 => ODataError::new(
                        429,
                        "0x80072322",
                        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                    ),
                    _ => ODataError::new(status, "0x80040216", "An unexpected error occurred."),
                };
                let mut response = error_response(&error);
                if let Some(seconds) = retry_after_seconds {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                return response;
            }
            Fault::HtmlError => {
                let mut response = Response::new(Body::from(
                    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
                ));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                return response;
            }
            Fault::TruncatedBody => {
                let mut response = Response::new(Body::from("{\"@odata.context\":\"trunc"));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
                return response;
            }
            Fault::Delay(pause) => tokio::time::sleep(pause).await,
            Fault::HtmlOk => {
                let mut response = Response::new(Body::from(
                    "<html><head><title>Sign in</title></head><body>Please sign in to continue.</body></html>",
                ));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                return response;
            }
            Fault::ResetMidBody => {
                let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                    Ok(Bytes::from_static(b"{\"@odata.context\":\"")),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by the simulator",
                    )),
                ];
                let mut response =
                    Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(4096));
                return response;
            }
            // Handled around the answer, in `handle`.
            Fault::BadPagingCookie => {}
        }
    }
    if api_path == BATCH_SEGMENT {
        if method != Method::POST {
            let mut response = error_response(&ODataError::new(
                405,
                "0x80060888",
                "The $batch endpoint only accepts POST requests.",
            ));
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let Some(caller) = caller else {
            return unauthorized(state, check);
        };
        return batch(state, headers, body.clone(), caller).await;
    }
    if method != Method::GET {
        return error_response(&ODataError::not_implemented(
            "The simulator is read-only: only GET is implemented on the Web API.",
        ));
    }
    let Some(caller) = caller else {
        return unauthorized(state, check);
    };
    let preferences = preferences(headers);
    let origin = addressed_origin(state, headers);
    let overlay = state.overlay_snapshot();
    let path = path.to_string();
    let query = query.map(str::to_string);
    // Queries over the large tables take a while; keep them off the I/O threads.
    let answer = tokio::task::spawn_blocking(move || {
        answer_get(
            &origin,
            as_caller(Db::new(dataset(), &overlay), &caller),
            &path,
            query.as_deref(),
            &preferences,
        )
    })
    .await;
    match answer {
        Ok(answer) => answer.into_response(),
        Err(join_error) => internal_error(&join_error),
    }
}

/// `db` as seen by the signed-in `caller`: a person's delegated token acts as
/// that person (`WhoAmI`, `eq-userid`), an application token as the application
/// user.
fn as_caller<'a>(db: Db<'a>, caller: &'a Caller) -> Db<'a> {
    match caller {
        Caller::Application => db,
        Caller::User(user_id) => db.with_caller(user_id),
    }
}

/// Test hook, not Dataverse: `GET /test/bytes/{n}` answers `n` bytes of `a`
/// with a `Content-Length`; `GET /test/bytes/{n}?chunked=1` streams the same
/// body without one (chunked). For tests of clients' response size limits.
const TEST_BYTES_PREFIX: &str = "/test/bytes/";

/// The largest body [`test_bytes`] builds.
const TEST_BYTES_MAX: usize = 1 << 30;

fn test_bytes(count: &str, query: Option<&str>) -> Response {
    let Some(count) = count.parse().ok().filter(|n| *n <= TEST_BYTES_MAX) else {
        let mut response = Response::new(Body::from(format!(
            "/test/bytes/{{n}} needs a byte count of at most {TEST_BYTES_MAX}"
        )));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let body = Body::from(vec![b'a'; count]);
    let chunked = query.is_some_and(|q| q.split('&').any(|pair| pair == "chunked=1"));
    // A stream has no known length, so hyper sends it chunked.
    let mut response = Response::new(if chunked {
        Body::from_stream(body.into_data_stream())
    } else {
        body
    });
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// `GET`/`POST /devicelogin`: the page the device code message sends a person
/// to; approving signs in as [`crate::Dataset::delegated_user_id`].
fn device_login(state: &SimState, method: &Method, body: &Bytes) -> Response {
    let post = match *method {
        Method::GET => None,
        Method::POST => Some(body.as_ref()),
        _ => {
            let mut response = Response::new(Body::from("Method not allowed"));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return response;
        }
    };
    let data = dataset();
    let person = data
        .user(&data.delegated_user_id)
        .map(|u| u.fullname.as_str())
        .unwrap_or_default();
    let (status, page) =
        identity::device_login_page(&state.tokens, post, &data.delegated_user_id, person);
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The last segment of the batch endpoint, `/api/data/v9.2/$batch`.
const BATCH_SEGMENT: &str = "$batch";

/// Answers one part of a batch as the equivalent direct request is answered.
fn answer_part(origin: &str, db: Db<'_>, part: &Part) -> Answer {
    let Part::Request(request) = part else {
        return Answer::error(&ODataError::not_implemented(
            "The simulator does not implement change sets in $batch; send GET requests outside change sets.",
        ));
    };
    if !request.method.eq_ignore_ascii_case("GET") {
        return Answer::error(&ODataError::not_implemented(
            "The simulator is read-only: only GET is implemented on the Web API.",
        ));
    }
    let (path, query) = batch::resolve_target(&request.target);
    if api_path(&path) == Some(BATCH_SEGMENT) {
        return Answer::error(&ODataError::bad_request(
            codes::INVALID_ARGUMENT,
            "A batch request can't contain other batch requests.",
        ));
    }
    let preferences = Preferences::parse(request.header_values("prefer"));
    answer_get(origin, db, &path, query.as_deref(), &preferences)
}

/// `POST $batch`: runs the parts in order; without `odata.continue-on-error` it
/// stops at the first failing part and answers with that part alone, under its
/// status.
async fn batch(
    state: &Arc<SimState>,
    headers: &HeaderMap,
    body: Bytes,
    caller: Caller,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = batch::boundary(content_type) else {
        return error_response(&ODataError::bad_request(
            codes::INVALID_ARGUMENT,
            "The batch request must have Content-Type 'multipart/mixed' with a boundary, e.g. multipart/mixed; boundary=\"batch_<id>\".",
        ));
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error_response(&ODataError::bad_request(
            codes::INVALID_ARGUMENT,
            "The batch request body is not valid UTF-8.",
        ));
    };
    let parts = match batch::parse(&text, &boundary) {
        Ok(parts) => parts,
        Err(error) => return error_response(&error),
    };
    let continue_on_error = preferences(headers).continue_on_error;
    let origin = addressed_origin(state, headers);
    let overlay = state.overlay_snapshot();
    let answers = tokio::task::spawn_blocking(move || {
        let db = as_caller(Db::new(dataset(), &overlay), &caller);
        let mut answers = Vec::with_capacity(parts.len());
        for part in &parts {
            let answer = answer_part(&origin, db, part).into_part();
            if answer.failed() && !continue_on_error {
                // The batch answers with the failing part alone.
                return (answer.status, vec![answer]);
            }
            answers.push(answer);
        }
        (200, answers)
    })
    .await;
    let (status, answers) = match answers {
        Ok(done) => done,
        Err(join_error) => return internal_error(&join_error),
    };
    let boundary = format!(
        "batchresponse_{}",
        format_guid(fastrand::u64(..), fastrand::u64(..))
    );
    let mut response = Response::new(Body::from(batch::render(&boundary, &answers)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}")) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    response_headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    if continue_on_error {
        response_headers.insert(
            "Preference-Applied",
            HeaderValue::from_static("odata.continue-on-error"),
        );
    }
    response
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod identity_tests;
