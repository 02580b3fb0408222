//! The Key Results' routes, as the OpenAPI document describes them; the
//! handlers are shared with Projects (`items.rs`).

use super::auth::Caller;
use super::items::{self, CheckInBody, ItemPatch, LinkBody, NewItemBody, Page, SyncOptions};
use super::{ApiState, Body, Problem};
use crate::goals::keyresults::ItemKind;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::Value;

/// The organization's Key Results with their values and progress, and for
/// each linked one what its icon and badges show: everything a list needs in
/// one request.
#[utoipa::path(get, path = "/api/v1/organizations/{org_id}/key-results", tag = "key-results",
    params(("org_id" = i64, Path)),
    responses((status = 200,
        description = "Key Results, each with `link`: null or {state, state_reason, connection, \
            connection_id, connection_status, integration, stale, last_success_at, next_run_at}",
        body = Object)))]
pub async fn list_key_results(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::list(ItemKind::KeyResult, state, caller, path).await
}

/// Create a Key Result in the organization.
#[utoipa::path(post, path = "/api/v1/organizations/{org_id}/key-results", tag = "key-results",
    params(("org_id" = i64, Path)), request_body = NewItemBody,
    responses((status = 201, description = "The Key Result: {id, title, ...}", body = Object)))]
pub async fn create_key_result(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    body: Body<NewItemBody>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    items::create(ItemKind::KeyResult, state, caller, path, body).await
}

/// The details popover: value, progress, the link with names, status, last
/// success, last attempt, next sync and whether the value is stale.
#[utoipa::path(get, path = "/api/v1/key-results/{id}", tag = "key-results",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The Key Result's details", body = Object)))]
pub async fn get_key_result(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::get(ItemKind::KeyResult, state, caller, path).await
}

/// Change a Key Result's title, owner, start, target or direction.
#[utoipa::path(patch, path = "/api/v1/key-results/{id}", tag = "key-results",
    params(("id" = i64, Path)), request_body = ItemPatch,
    responses((status = 200, description = "The Key Result", body = Object)))]
pub async fn update_key_result(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    body: Body<ItemPatch>,
) -> Result<axum::Json<Value>, Problem> {
    items::update(ItemKind::KeyResult, state, caller, path, body).await
}

/// Delete a Key Result with its link and history.
#[utoipa::path(delete, path = "/api/v1/key-results/{id}", tag = "key-results",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The deleted Key Result", body = Object)))]
pub async fn delete_key_result(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::delete(ItemKind::KeyResult, state, caller, path).await
}

/// Link the Key Result to a metric: the choice is checked against the live
/// lists, measured, saved and synced once.
#[utoipa::path(put, path = "/api/v1/key-results/{id}/link", tag = "key-results",
    params(("id" = i64, Path)), request_body = LinkBody,
    responses((status = 200, description = "{link, preview, run, key_result}", body = Object)))]
pub async fn link(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    body: Body<LinkBody>,
) -> Result<axum::Json<Value>, Problem> {
    items::link(ItemKind::KeyResult, state, caller, path, body).await
}

/// Unlink: the value stays, syncs stop.
#[utoipa::path(delete, path = "/api/v1/key-results/{id}/link", tag = "key-results",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The Key Result", body = Object)))]
pub async fn unlink(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::unlink(ItemKind::KeyResult, state, caller, path).await
}

/// Pause the link's scheduled syncs.
#[utoipa::path(post, path = "/api/v1/key-results/{id}/link/pause", tag = "key-results",
    params(("id" = i64, Path)),
    responses((status = 200, description = "{link, key_result}", body = Object)))]
pub async fn pause(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::pause(ItemKind::KeyResult, state, caller, path).await
}

/// Resume the link: the next sync runs at once. A broken link is checked by a
/// sync now, and stays broken (saying why) if its view or column is still gone.
#[utoipa::path(post, path = "/api/v1/key-results/{id}/link/resume", tag = "key-results",
    params(("id" = i64, Path)),
    responses((status = 200, description = "{link, key_result, run?}", body = Object)))]
pub async fn resume(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    items::resume(ItemKind::KeyResult, state, caller, path).await
}

/// Record a value by hand (progress "manually"); a linked Key Result's next
/// sync replaces it unless the link is paused.
#[utoipa::path(post, path = "/api/v1/key-results/{id}/check-in", tag = "key-results",
    params(("id" = i64, Path)), request_body = CheckInBody,
    responses((status = 200, description = "The Key Result", body = Object)))]
pub async fn check_in(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    body: Body<CheckInBody>,
) -> Result<axum::Json<Value>, Problem> {
    items::check_in(ItemKind::KeyResult, state, caller, path, body).await
}

/// Sync now, through the scheduler's path: one sync per link at a time, on
/// every host; a sync already running is a 409 problem with its start time.
/// While the environment asked to wait, it is a 429 problem with
/// `Retry-After` and nothing is sent (unless `force=true`).
#[utoipa::path(post, path = "/api/v1/key-results/{id}/sync", tag = "key-results",
    params(("id" = i64, Path), SyncOptions),
    responses(
        (status = 200, description = "{run, key_result}: the run, succeeded or failed", body = Object),
        (status = 409, description = "A sync is running (`running_since`), or nothing is linked", body = Object),
        (status = 429, description = "Throttled until `throttled_until` (`retry_after_seconds`)", body = Object)
    ))]
pub async fn sync_now(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    query: Query<SyncOptions>,
) -> Result<axum::Json<Value>, Problem> {
    items::sync_now(ItemKind::KeyResult, state, caller, path, query).await
}

/// The Key Result's sync runs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/key-results/{id}/history", tag = "key-results",
    params(("id" = i64, Path), Page),
    responses((status = 200, description = "{runs, next_before}", body = Object)))]
pub async fn history(
    state: State<ApiState>,
    caller: Caller,
    path: Path<i64>,
    query: Query<Page>,
) -> Result<axum::Json<Value>, Problem> {
    items::history(ItemKind::KeyResult, state, caller, path, query).await
}
