//! What operators and load balancers use: liveness, readiness, metrics, the
//! OpenAPI document, and the per-request metrics and log line.

use super::{ApiState, Problem};
use crate::params;
use axum::Extension;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(document.as_ref().clone())
}

/// Alive: the process answers. No token needed.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is alive", body = Object)))]
pub async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready: the database answers, the integrations are loaded and the scheduler
/// runs (unless started with --no-scheduler). No token needed.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Object),
        (status = 503, description = "Not ready; `checks` says what is not", body = Object)
    ))]
pub async fn readyz(State(state): State<ApiState>) -> Result<axum::Json<Value>, Problem> {
    let database = state
        .db
        .run(|sql| Ok(sql.query_row("SELECT 1", params![], |r| r.get::<i64>(0))?))
        .await
        .is_ok();
    let plugins = state.engine.get(None).is_ok();
    let scheduler = !state.scheduler_expected || state.scheduler_running.load(Ordering::Relaxed);
    let checks = json!({ "database": database, "plugins": plugins, "scheduler": scheduler });
    if database && plugins && scheduler {
        Ok(axum::Json(json!({ "status": "ready", "checks": checks })))
    } else {
        Err(Problem::new("unavailable", "not ready: see `checks`").with("checks", checks))
    }
}

/// Prometheus metrics, text format. No token needed.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<ApiState>) -> Result<Response, Problem> {
    let text = state.metrics.render(&state.db, state.clock.now()).await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

pub async fn no_route(request: Request) -> Problem {
    Problem::new(
        "not-found",
        format!(
            "no route {} {}; GET /api/v1/openapi.json lists them",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Counts each request by its route (the pattern, not the ids in it) and
/// logs one line for it; never a header, so never a token.
pub async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request_served(&method, &route, status, took);
    tracing::info!(
        target: "goals_host::api",
        method,
        route,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
