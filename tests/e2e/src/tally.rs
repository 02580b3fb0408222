//! The service of the second test integration (`tests/tally`): a few canned
//! JSON answers behind an API key and a workspace header, on a loopback port.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const API_KEY: &str = "tally-key-5d1f";
pub const WORKSPACE: &str = "growth";

/// Cards of the "Open cards" filter: 3 + 5 + 8 points, one without points.
pub const OPEN_POINTS: f64 = 16.0;

#[derive(Clone, Default)]
struct Shared {
    requests: Arc<Mutex<Vec<String>>>,
}

pub struct TallyService {
    address: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl TallyService {
    pub async fn start() -> TallyService {
        let shared = Shared::default();
        let app = Router::new()
            .route(
                "/me",
                get(|| async { axum::Json(json!({ "id": "user-7" })) }),
            )
            .route(
                "/boards",
                get(|| async { axum::Json(json!([{ "id": "b1", "name": "Roadmap" }])) }),
            )
            .route(
                "/filters",
                get(|| async {
                    axum::Json(json!([
                        { "id": "f-open", "name": "Open cards" },
                        { "id": "f-done", "name": "Done cards" },
                    ]))
                }),
            )
            .route("/filters/{id}/cards", get(cards))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the Tally service");
        let address = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TallyService {
            address,
            shared,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for TallyService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Records the request and refuses a wrong key or workspace.
async fn guard(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(request.uri().path().to_string());
    }
    let header = |headers: &HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let headers = request.headers();
    if header(headers, "x-api-key").as_deref() != Some(API_KEY) {
        return (StatusCode::UNAUTHORIZED, "bad key").into_response();
    }
    if header(headers, "x-workspace").as_deref() != Some(WORKSPACE) {
        return (StatusCode::FORBIDDEN, "no such workspace").into_response();
    }
    next.run(request).await
}

async fn cards(Path(id): Path<String>) -> Response {
    let cards: Value = match id.as_str() {
        "f-open" => json!([
            { "title": "Search", "points": 3 },
            { "title": "Export", "points": 5 },
            { "title": "Billing", "points": 8 },
            { "title": "Spike" },
        ]),
        "f-done" => json!([{ "title": "Login", "points": 2 }]),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    axum::Json(cards).into_response()
}
