//! The handlers Key Results and Projects share (one linkable-item model):
//! create, change, link to a metric, Sync now, the details popover, history;
//! and the organization's alerts. `keyresults.rs` and `projects.rs` route them.

use super::auth::Caller;
use super::connections::parse_choice;
use super::{ApiState, Body, Problem};
use crate::cli::CurrencyArg;
use crate::connections;
use crate::engine::Engine;
use crate::goals::alerts;
use crate::goals::backfill;
use crate::goals::clock;
use crate::goals::keyresults::{self, ItemKind, KeyResult, LinkState, NewKeyResult};
use crate::goals::linking::{self, Wanted};
use crate::goals::progress::{Direction, Unit};
use crate::goals::sync::{self, SyncError, Trigger};
use crate::goals::tokens::Role;
use crate::render::keyresult::{details, kr_json, link_json, run_json};
use crate::render::{self};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItemBody {
    #[schema(example = "Grow the open pipeline")]
    title: String,
    #[schema(example = "ana@contoso.com")]
    owner: String,
    /// number, percent or currency.
    #[schema(example = "currency")]
    unit: String,
    /// ISO 4217 code, for a currency Key Result only.
    #[schema(example = "USD")]
    currency: Option<String>,
    #[schema(example = 0.0)]
    start: f64,
    #[schema(example = 1000000.0)]
    target: f64,
    /// increase (default) or decrease.
    #[schema(example = "increase")]
    direction: Option<String>,
    /// A Project's Key Result, in the same organization (Projects only).
    parent_id: Option<i64>,
    /// A Project's due date, YYYY-MM-DD (Projects only).
    due_date: Option<String>,
    /// First day of the period a link may limit the metric to, YYYY-MM-DD.
    #[schema(example = "2024-01-01")]
    period_start: Option<String>,
    /// Last day of the period, YYYY-MM-DD, included.
    #[schema(example = "2024-03-31")]
    period_end: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    #[schema(example = "Grow the open pipeline to 2M")]
    title: Option<String>,
    owner: Option<String>,
    start: Option<f64>,
    #[schema(example = 2000000.0)]
    target: Option<f64>,
    direction: Option<String>,
    /// A Project's Key Result (Projects only).
    parent_id: Option<i64>,
    /// A Project's due date, YYYY-MM-DD (Projects only).
    due_date: Option<String>,
    /// First day of the period a link may limit the metric to, YYYY-MM-DD.
    #[schema(example = "2024-01-01")]
    period_start: Option<String>,
    /// Last day of the period, YYYY-MM-DD, included.
    #[schema(example = "2024-03-31")]
    period_end: Option<String>,
}

fn unit(text: &str) -> Result<Unit, Problem> {
    Unit::parse(text).ok_or_else(|| {
        Problem::new(
            "invalid-input",
            format!("unit '{text}' is not one of: number, percent, currency"),
        )
    })
}

fn direction(text: &str) -> Result<Direction, Problem> {
    Direction::parse(text).ok_or_else(|| {
        Problem::new(
            "invalid-input",
            format!("direction '{text}' is not one of: increase, decrease"),
        )
    })
}

/// The organization's Key Results with their values and progress, and for
/// each linked one what its icon and badges show: everything a list needs in
/// one request.
pub(super) async fn list(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let org = caller.organization(&state, org_id, Role::Member).await?;
    let krs = keyresults::list(&state.db, kind, Some(org.id)).await?;
    let links: std::collections::HashMap<i64, keyresults::Link> =
        keyresults::links_of_organization(&state.db, org.id)
            .await?
            .into_iter()
            .map(|link| (link.key_result_id, link))
            .collect();
    let connections: std::collections::HashMap<String, connections::ConnectionRecord> =
        connections::list(&state.db, Some(&org.name))
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
    let now = state.clock.now();
    let listed = krs
        .iter()
        .map(|kr| {
            let mut json = kr_json(kr);
            json["link"] = match links.get(&kr.id) {
                None => Value::Null,
                Some(link) => {
                    let conn = connections.get(&link.metric.connection_id);
                    json!({
                        "state": link.state.as_str(),
                        "state_reason": link.state_reason,
                        "connection_id": link.metric.connection_id,
                        "connection": conn.map(|c| c.name.clone()),
                        "connection_status": conn.map(|c| c.status.as_str()),
                        "integration": conn.map(|c| c.integration.clone()),
                        "stale": crate::render::keyresult::is_stale(link, now),
                        "last_success_at": clock::json_opt(link.last_success_at),
                        "next_run_at": clock::json(link.next_run_at),
                    })
                }
            };
            json
        })
        .collect();
    Ok(axum::Json(Value::Array(listed)))
}

/// Create a Key Result in the organization.
pub(super) async fn create(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Body(body): Body<NewItemBody>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    let org = caller.organization(&state, org_id, Role::Member).await?;
    let kr = keyresults::create(
        &state.db,
        NewKeyResult {
            kind,
            organization_id: org.id,
            parent_id: body.parent_id,
            due_date: body.due_date,
            period: keyresults::Period {
                start: body.period_start,
                end: body.period_end,
            },
            title: body.title,
            owner: body.owner,
            unit: unit(&body.unit)?,
            currency_code: body.currency,
            start: body.start,
            target: body.target,
            direction: direction(body.direction.as_deref().unwrap_or("increase"))?,
        },
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(kr_json(&kr))))
}

/// The details popover: value, progress, the link with names, status, last
/// success, last attempt, next sync and whether the value is stale.
pub(super) async fn get(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    Ok(axum::Json(
        details(&state.db, state.clock.now(), kr.id).await?.json,
    ))
}

/// Change a Key Result's title, owner, start, target or direction.
pub(super) async fn update(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(patch): Body<ItemPatch>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let new_direction = patch.direction.as_deref().map(direction).transpose()?;
    let kr = keyresults::update(&state.db, kr.id, |fields| {
        if let Some(title) = patch.title {
            fields.title = title;
        }
        if let Some(owner) = patch.owner {
            fields.owner = owner;
        }
        if let Some(start) = patch.start {
            fields.start = start;
        }
        if let Some(target) = patch.target {
            fields.target = target;
        }
        if let Some(direction) = new_direction {
            fields.direction = direction;
        }
        if let Some(parent_id) = patch.parent_id {
            fields.parent_id = Some(parent_id);
        }
        if let Some(due_date) = patch.due_date {
            fields.due_date = Some(due_date);
        }
        if let Some(start) = patch.period_start {
            fields.period.start = Some(start);
        }
        if let Some(end) = patch.period_end {
            fields.period.end = Some(end);
        }
    })
    .await?;
    Ok(axum::Json(kr_json(&kr)))
}

/// Delete a Key Result with its link and history.
pub(super) async fn delete(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let gone = keyresults::delete(&state.db, kr.id, state.clock.now()).await?;
    Ok(axum::Json(kr_json(&gone)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// A connection of the Key Result's organization.
    #[schema(example = "d9de32e643cf56abc8f7d4839b8a368c")]
    connection_id: String,
    /// The app's id (or its unique name).
    #[schema(example = "a862561e-9090-5459-5331-863c45360abc")]
    app_id: String,
    #[schema(example = "opportunity")]
    entity: String,
    #[schema(example = "fcf735c1-fec3-22d4-c659-43523409172b")]
    view_id: String,
    /// `system` (default) or `personal`.
    view_kind: Option<String>,
    /// The column measured; leave it out for a chart's measure.
    #[schema(example = "estimatedvalue")]
    column: Option<String>,
    /// count, count-values, count-distinct, sum, average, min or max; leave it
    /// out for a chart's measure.
    #[schema(example = "sum")]
    aggregation: Option<String>,
    /// A chart of the entity (its id or name): its measure over the view's
    /// rows, instead of `column` and `aggregation`.
    #[schema(example = "Pipeline by Status Reason")]
    chart: Option<String>,
    /// The chart's measure (its alias), when it has several.
    #[schema(example = "sum_estimatedvalue")]
    chart_measure: Option<String>,
    /// Only the rows of one of the chart's categories ("Won", "2024-03").
    #[schema(example = "Won")]
    chart_category: Option<String>,
    /// `base` (default) or `transaction`.
    currency_mode: Option<String>,
    /// Seconds between syncs [default: the integration's, hourly for Dynamics 365].
    interval_seconds: Option<i64>,
    /// A date column of the view's table: only rows dated within the item's
    /// period count.
    #[schema(example = "estimatedclosedate")]
    period_column: Option<String>,
    /// Back-fill the history from the period's start (default: true, when the
    /// item has a period start).
    backfill: Option<bool>,
    /// The date column to back-fill from [default: createdon].
    #[schema(example = "createdon")]
    backfill_column: Option<String>,
}

/// Link the Key Result to a metric: the choice is checked against the live
/// lists, measured, saved and synced once.
pub(super) async fn link(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<LinkBody>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let record = caller
        .connection(&state, &body.connection_id, Role::Member)
        .await?;
    if record.organization_id != kr.organization_id {
        return Err(Problem::not_found("connection", &body.connection_id));
    }
    let org = crate::goals::admin::organization_by_id(&state.db, kr.organization_id).await?;
    if let Some(reason) = org.disabled_reason() {
        return Err(SyncError::Disabled(format!("{reason}; nothing was linked")).into());
    }
    let currency: CurrencyArg = parse_choice(
        "currency_mode",
        body.currency_mode.as_deref().unwrap_or("base"),
    )?;
    let measure = super::connections::wanted_measure(
        body.column.as_deref(),
        body.aggregation.as_deref(),
        body.chart.as_deref(),
        body.chart_measure.as_deref(),
        body.chart_category.as_deref(),
    )?;
    let wanted = Wanted {
        app: body.app_id,
        entity: body.entity,
        view: body.view_id,
        measure,
        currency: currency.into(),
        window: linking::window_for(&kr, body.period_column.as_deref())?,
    };
    let engine: &dyn Engine = state.engine.as_ref();
    // The slot is given back before the first sync, which takes its own.
    let slot = state.connection_slot(&record).await;
    let chosen = linking::choose(engine, &record, &wanted).await?;
    drop(slot);
    if let Some(kind) = &body.view_kind
        && super::connections::view_kind(Some(kind))? != chosen.metric.view.kind
    {
        return Err(Problem::new(
            "invalid-input",
            format!("view {} is not a {kind} view", chosen.metric.view.id),
        ));
    }
    let interval = linking::interval_for(engine.info(&record)?, &record, body.interval_seconds)?;
    let saved = linking::save(&state.db, &kr, &chosen, interval, state.clock.now()).await?;
    let mut extra = json!({ "preview": render::measurement(&chosen.preview, true).json });
    if kr.period.start.is_some() && body.backfill.unwrap_or(true) {
        let column = body
            .backfill_column
            .as_deref()
            .unwrap_or(backfill::DEFAULT_COLUMN);
        let slot = state.connection_slot(&record).await;
        let done = backfill::backfill(
            &state.db,
            engine,
            &record,
            &kr,
            &saved,
            column,
            state.clock.now(),
        )
        .await?;
        drop(slot);
        extra["backfill"] =
            json!({ "column": done.column, "points": done.points, "requests": done.requests });
    }
    let run = state.syncer.sync_new_link(kr.id).await?;
    extra["run"] = run_json(&run);
    linked(&state, kr.id, extra).await
}

/// The link as saved, beside `extra`, with the Key Result as it is now.
async fn linked(state: &ApiState, id: i64, mut extra: Value) -> Result<axum::Json<Value>, Problem> {
    let kr = keyresults::get_by_id(&state.db, id).await?;
    let link = keyresults::link(&state.db, id)
        .await?
        .ok_or(keyresults::KeyResultError::NotLinked { kind: kr.kind, id })?;
    let conn = connections::get_by_id(&state.db, &link.metric.connection_id)
        .await
        .ok();
    extra["link"] = link_json(&link, conn.as_ref(), None, None);
    extra[kr.kind.json_key()] = kr_json(&kr);
    Ok(axum::Json(extra))
}

/// Unlink: the value stays, syncs stop.
pub(super) async fn unlink(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    keyresults::unlink(&state.db, kr.id, state.clock.now()).await?;
    Ok(axum::Json(kr_json(&kr)))
}

/// Pause the link's scheduled syncs.
pub(super) async fn pause(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    keyresults::set_paused(&state.db, kr.id, true, state.clock.now()).await?;
    linked(&state, kr.id, json!({})).await
}

/// Resume the link: the next sync runs at once. A broken link is checked by a
/// sync now, and stays broken (saying why) if its view or column is still gone.
pub(super) async fn resume(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let broken = keyresults::link(&state.db, kr.id)
        .await?
        .is_some_and(|link| link.state == LinkState::Broken);
    if broken {
        keyresults::reactivate(&state.db, kr.id, state.clock.now()).await?;
        let run = state.syncer.sync_new_link(kr.id).await?;
        return linked(&state, kr.id, json!({ "run": run_json(&run) })).await;
    }
    keyresults::set_paused(&state.db, kr.id, false, state.clock.now()).await?;
    linked(&state, kr.id, json!({})).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInBody {
    /// The value, in the Key Result's unit (1250000 for money).
    #[schema(example = 42.0)]
    value: f64,
}

/// Record a value by hand (progress "manually"); a linked Key Result's next
/// sync replaces it unless the link is paused.
pub(super) async fn check_in(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<CheckInBody>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let kr = keyresults::check_in(&state.db, kr.id, body.value, state.clock.now()).await?;
    Ok(axum::Json(kr_json(&kr)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncOptions {
    /// Send even while the environment asked to wait (a throttle), as
    /// `kr sync --force` does.
    force: Option<bool>,
}

/// Sync now, through the scheduler's path: one sync per link at a time, on
/// every host; a sync already running is a 409 problem with its start time.
/// While the environment asked to wait, it is a 429 problem with
/// `Retry-After` and nothing is sent (unless `force=true`).
pub(super) async fn sync_now(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(options): Query<SyncOptions>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let now = state.clock.now();
    if !options.force.unwrap_or(false)
        && let Some(until) = sync::throttled_until(&state.db, kr.id, now).await?
    {
        let error = SyncError::Throttled {
            kind,
            key_result: kr.id,
            until,
        };
        return Err(Problem::from(error)
            .with("throttled_until", clock::json(until))
            .with("retry_after_seconds", json!((until - now).max(1))));
    }
    let run = match state.syncer.sync(kr.id, Trigger::Manual).await {
        Ok(run) => run,
        Err(error @ SyncError::AlreadyRunning { since, .. }) => {
            return Err(Problem::from(error).with("running_since", clock::json(since)));
        }
        Err(error) => return Err(error.into()),
    };
    let kr: KeyResult = keyresults::get_by_id(&state.db, kr.id).await?;
    Ok(axum::Json(
        json!({ "run": run_json(&run), kind.json_key(): kr_json(&kr) }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Runs per page, 1 to 500 [default: 50].
    limit: Option<usize>,
    /// Only runs older than this run id: the `next_before` of the previous page.
    before: Option<i64>,
}

/// The Key Result's sync runs, newest first, a page at a time.
pub(super) async fn history(
    kind: ItemKind,
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<axum::Json<Value>, Problem> {
    let kr = caller.item(&state, id, kind, Role::Member).await?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::new(
            "invalid-input",
            format!("limit {limit} is not between 1 and 500"),
        ));
    }
    let runs = sync::history(&state.db, kr.id, limit, page.before).await?;
    let next_before = if runs.len() == limit {
        runs.last().map(|run| run.id)
    } else {
        None
    };
    Ok(axum::Json(json!({
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

/// The organization's open alerts: connections needing sign-in, broken links,
/// stale Key Results.
#[utoipa::path(get, path = "/api/v1/organizations/{org_id}/alerts", tag = "key-results",
    params(("org_id" = i64, Path)),
    responses((status = 200, description = "Alerts: [{id, kind, subject, message, opened_at}]", body = Object)))]
pub async fn alerts(
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let org = caller.organization(&state, org_id, Role::Member).await?;
    let now = state.clock.now();
    alerts::open_stale(&state.db, now).await?;
    let listed = alerts::open_of_organization(&state.db, org.id)
        .await?
        .iter()
        .map(|alert| {
            json!({
                "id": alert.id,
                "kind": alert.kind,
                "subject": alert.subject,
                "message": alert.message,
                "opened_at": clock::json(alert.opened_at),
            })
        })
        .collect();
    Ok(axum::Json(Value::Array(listed)))
}
