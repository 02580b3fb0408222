//! The HTTP server: the token endpoint and the Web API on one loopback origin,
//! a record of every request, and one-shot faults for resilience tests.

use crate::data::dataset;
use crate::errors::ODataError;
use crate::identity::{SimConfig, TokenStore, token_response};
use crate::odata::Preferences;
use crate::webapi::{self, API_PREFIX, ApiRequest};
use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
    /// sample data is built before this returns, so the first request is fast.
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
        });
        let app = Router::new()
            .fallback(handle)
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

    /// Makes every token issued so far expired.
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// Queues a fault for the next Web API request.
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
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

fn odata_response(status: u16, body: &Value, preference_applied: Option<&str>) -> Response {
    let mut response = json_response(status, body, ODATA_JSON);
    let headers = response.headers_mut();
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Some(applied) = preference_applied.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert("Preference-Applied", applied);
    }
    response
}

fn error_response(error: &ODataError) -> Response {
    odata_response(error.status, &error.body(), None)
}

/// `/{tenant}/oauth2/v2.0/token` → the tenant.
fn token_tenant(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (tenant, rest) = rest.split_once('/')?;
    (rest == "oauth2/v2.0/token" && !tenant.is_empty()).then_some(tenant)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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
    let authorized = bearer(&headers).is_some_and(|t| state.tokens.is_valid(t));
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
        });
        (log.generation, log.entries.len() - 1)
    };
    let response = route(
        &state,
        &method,
        &path,
        query.as_deref(),
        &headers,
        &body,
        authorized,
    )
    .await;
    let mut log = lock(&state.requests);
    if log.generation == slot.0
        && let Some(entry) = log.entries.get_mut(slot.1)
    {
        entry.status = response.status().as_u16();
    }
    response
}

async fn route(
    state: &Arc<SimState>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    authorized: bool,
) -> Response {
    if let Some(tenant) = token_tenant(path) {
        if method != Method::POST {
            return json_response(
                405,
                &json!({"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests."}),
                "application/json; charset=utf-8",
            );
        }
        let mut origins = vec![state.origin.clone()];
        if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            origins.push(format!("http://{host}"));
        }
        // The secret in the body is never logged.
        let (status, answer) = token_response(&state.config, &state.tokens, tenant, body, &origins);
        let mut response = json_response(status, &answer, "application/json; charset=utf-8");
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        return response;
    }
    let api_root = API_PREFIX.trim_end_matches('/');
    let Some(api_path) = path
        .strip_prefix(API_PREFIX)
        .or_else(|| (path == api_root).then_some(""))
    else {
        return odata_response(
            404,
            &json!({"error": {"code": "", "message": format!("No HTTP resource was found that matches the request URI '{}{path}'.", state.origin)}}),
            None,
        );
    };
    let fault = lock(&state.faults).pop_front();
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
        }
    }
    if method != Method::GET {
        return error_response(&ODataError::not_implemented(
            "The simulator is read-only: only GET is implemented on the Web API.",
        ));
    }
    if !authorized {
        let message = if bearer(headers).is_some() {
            "The access token is invalid or has expired; sign in again."
        } else {
            "The request has no access token; send 'Authorization: Bearer <token>'."
        };
        let mut response = error_response(&ODataError::unauthorized(message));
        let challenge = format!(
            "Bearer authorization_uri={}/{}/oauth2/authorize, resource_id={}/",
            state.origin, state.config.tenant, state.origin
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }
    let preferences = Preferences::parse(
        headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let origin = state.origin.clone();
    let api_path = api_path.to_string();
    let query = query.map(str::to_string);
    // Queries over the large tables take a while; keep them off the I/O threads.
    let answer = tokio::task::spawn_blocking(move || {
        webapi::get(
            dataset(),
            &ApiRequest {
                base_url: &origin,
                path: &api_path,
                query: query.as_deref(),
                preferences: &preferences,
            },
        )
    })
    .await;
    match answer {
        Ok(Ok(ok)) => odata_response(ok.status, &ok.body, ok.preference_applied.as_deref()),
        Ok(Err(error)) => error_response(&error),
        Err(join_error) => {
            tracing::error!(%join_error, "a Web API request failed");
            error_response(&ODataError::new(
                500,
                "0x80040216",
                "An unexpected error occurred.",
            ))
        }
    }
}

#[cfg(test)]
mod tests;
