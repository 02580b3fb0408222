//! Connections of an organization, the wizard's discovery steps (apps,
//! entities, views, columns) and the preview of a metric.

use super::auth::Caller;
use super::{ApiState, Body, Problem};
use crate::bindings::{DateWindow, MetricSpec, ViewKind, ViewRef};
use crate::cli::{AggregationArg, CurrencyArg};
use crate::connections::{self, NewConnection, Secret, SignIn};
use crate::engine::Engine;
use crate::goals::linking::{self, WantedMeasure};
use crate::goals::tokens::Role;
use crate::render;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use clap::ValueEnum;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The secret material of a connection; never echoed, logged or stored unsealed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    /// An application's client secret (a service principal's sign-in).
    client_secret: Option<String>,
    /// An API key, for integrations that sign in with one.
    api_key: Option<String>,
}

impl SecretBody {
    fn parts(self) -> Result<(SignIn, Secret), Problem> {
        match (self.client_secret, self.api_key) {
            (Some(secret), None) => Ok((SignIn::ClientSecret, Secret::new(secret))),
            (None, Some(key)) => Ok((SignIn::ApiKey, Secret::new(key))),
            _ => Err(Problem::new(
                "invalid-input",
                "secret needs exactly one of client_secret or api_key",
            )),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectionBody {
    /// Unique within the organization.
    #[schema(example = "Contoso")]
    name: String,
    /// The integration's id [default: the Dynamics 365 integration].
    integration: Option<String>,
    /// The integration's settings by key; for Dynamics 365: environment_url,
    /// tenant, client_id and optionally authority_url.
    #[schema(example = json!({"environment_url": "https://contoso.crm.dynamics.com",
        "tenant": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001"}))]
    settings: BTreeMap<String, String>,
    /// The secret material; leave it out for a person's sign-in (device
    /// code), then POST .../sign-in.
    secret: Option<SecretBody>,
    /// Allow plain HTTP and loopback addresses: simulators and tests only.
    #[serde(default)]
    allow_loopback: bool,
}

pub(super) fn parse_choice<T: ValueEnum>(what: &str, text: &str) -> Result<T, Problem> {
    T::from_str(text, false).map_err(|_| {
        let allowed: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        Problem::new(
            "invalid-input",
            format!("{what} '{text}' is not one of: {}", allowed.join(", ")),
        )
    })
}

/// The measure a request names: a column and an aggregation, or a chart's.
pub(super) fn wanted_measure(
    column: Option<&str>,
    aggregation: Option<&str>,
    chart: Option<&str>,
    chart_measure: Option<&str>,
    chart_category: Option<&str>,
) -> Result<WantedMeasure, Problem> {
    let aggregation = aggregation
        .map(|text| parse_choice::<AggregationArg>("aggregation", text))
        .transpose()?;
    WantedMeasure::from_parts(
        column,
        aggregation.map(Into::into),
        chart,
        chart_measure,
        chart_category,
    )?
    .ok_or_else(|| {
        Problem::new(
            "invalid-input",
            "give column and aggregation, or a chart (with chart_measure when it has several)",
        )
    })
}

pub(super) fn view_kind(text: Option<&str>) -> Result<ViewKind, Problem> {
    match text.unwrap_or("system") {
        "system" => Ok(ViewKind::System),
        "personal" => Ok(ViewKind::Personal),
        other => Err(Problem::new(
            "invalid-input",
            format!("view_kind '{other}' is not one of: system, personal"),
        )),
    }
}

/// The integrations this host runs, the default first: what each declares
/// (the settings a connection takes, its credentials, sync intervals,
/// aggregations), so a form for a new connection can be built from it.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "connections",
    responses((status = 200,
        description = "[{id, name, version, settings: [{key, label, help, kind, required, default}], credentials, ...}]",
        body = Object)))]
pub async fn list_integrations(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<axum::Json<Value>, Problem> {
    Ok(axum::Json(Value::Array(
        state
            .engine
            .all()
            .map(|runtime| render::info(runtime.info()).json)
            .collect(),
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    /// Why, for the people whose Key Results stop.
    #[schema(example = "the app registration is being rotated")]
    reason: Option<String>,
}

/// Stop every sync through a connection (organization admins); its Key Results
/// say why until it is enabled again.
#[utoipa::path(post, path = "/api/v1/connections/{id}/disable", tag = "connections",
    params(("id" = String, Path)), request_body = DisableBody,
    responses((status = 200, description = "The connection", body = Object)))]
pub async fn disable_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DisableBody>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    crate::connecting::disable(&state.db, &record, body.reason.as_deref()).await?;
    let record = connections::get_by_id(&state.db, &record.id).await?;
    Ok(axum::Json(render::connection(&record)))
}

/// Let a disabled connection sync again (organization admins); its links that
/// waited run at once.
#[utoipa::path(post, path = "/api/v1/connections/{id}/enable", tag = "connections",
    params(("id" = String, Path)),
    responses((status = 200, description = "The connection", body = Object)))]
pub async fn enable_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    if record.status != connections::Status::Disabled {
        return Err(Problem::new(
            "invalid-input",
            format!(
                "connection '{}' is not disabled (it is {}); nothing to enable",
                record.name,
                record.status.as_str()
            ),
        ));
    }
    crate::connecting::usable_again(&state.db, &record, state.clock.now()).await?;
    let record = connections::get_by_id(&state.db, &record.id).await?;
    Ok(axum::Json(render::connection(&record)))
}

/// The organization's connections (members see them to pick one).
#[utoipa::path(get, path = "/api/v1/organizations/{org_id}/connections", tag = "connections",
    params(("org_id" = i64, Path)),
    responses((status = 200, description = "Connections, without secrets", body = Object)))]
pub async fn list_connections(
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let org = caller.organization(&state, org_id, Role::Member).await?;
    let list = connections::list(&state.db, Some(&org.name)).await?;
    Ok(axum::Json(render::connections(&list).json))
}

/// Add a connection (organization admins) after signing in with its
/// credentials: a wrong secret, tenant or client id is said now and nothing is
/// saved.
#[utoipa::path(post, path = "/api/v1/organizations/{org_id}/connections", tag = "connections",
    params(("org_id" = i64, Path)), request_body = NewConnectionBody,
    responses((status = 201, description = "The connection: {id, name, status, ...}", body = Object)))]
pub async fn add_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Body(body): Body<NewConnectionBody>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    let org = caller.organization(&state, org_id, Role::OrgAdmin).await?;
    let (sign_in, secret) = match body.secret {
        None => (SignIn::DeviceCode, None),
        Some(secret) => {
            let (sign_in, secret) = secret.parts()?;
            (sign_in, Some(secret))
        }
    };
    let info = state.engine.get(body.integration.as_deref())?.info();
    let new = NewConnection {
        organization: org.name.clone(),
        added_by: caller
            .0
            .user
            .clone()
            .unwrap_or_else(|| format!("token {}", caller.0.id)),
        name: body.name,
        integration: info.id.clone(),
        settings: body.settings.into_iter().collect(),
        sign_in,
        secret,
        allow_loopback: body.allow_loopback,
    };
    let (record, identity) =
        crate::connecting::add(&state.db, state.engine.as_ref(), info, new, Some("")).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(render::connection_added(&record, identity.as_ref())),
    ))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path)),
    responses((status = 200, description = "The connection, without secrets", body = Object)))]
pub async fn get_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    Ok(axum::Json(render::connection(&record)))
}

/// Remove a connection and what the integration stored for it (organization
/// admins); refused while Key Results are linked to it.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path)),
    responses((status = 200, description = "The removed connection", body = Object)))]
pub async fn delete_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    let removed = connections::remove(&state.db, &record.name, Some(&record.organization)).await?;
    Ok(axum::Json(render::connection(&removed)))
}

/// Sign in with the saved credentials and say as whom.
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections",
    params(("id" = String, Path)),
    responses((status = 200, description = "{connection, url, user_id, environment_id, details}", body = Object)))]
pub async fn test_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    let _slot = state.connection_slot(&record).await;
    let identity = state.engine.who_am_i(&record).await?;
    Ok(axum::Json(render::identity(&record, &identity)))
}

/// The environment's apps.
#[utoipa::path(get, path = "/api/v1/connections/{id}/apps", tag = "discovery",
    params(("id" = String, Path)),
    responses((status = 200, description = "Apps: [{id, name, ...}]", body = Object)))]
pub async fn list_apps(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let _slot = state.connection_slot(&record).await;
    Ok(axum::Json(
        render::apps(&state.engine.list_apps(&record).await?).json,
    ))
}

/// The entities of an app's site map.
#[utoipa::path(get, path = "/api/v1/connections/{id}/apps/{app_id}/entities", tag = "discovery",
    params(("id" = String, Path), ("app_id" = String, Path)),
    responses((status = 200, description = "Entities: [{logical_name, name}]", body = Object)))]
pub async fn list_entities(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, app_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let _slot = state.connection_slot(&record).await;
    Ok(axum::Json(
        render::entities(&state.engine.list_entities(&record, &app_id).await?).json,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewSearch {
    /// Words of the view's name, in any case.
    search: Option<String>,
}

/// The entity's views, searched by name.
#[utoipa::path(get, path = "/api/v1/connections/{id}/entities/{entity}/views", tag = "discovery",
    params(("id" = String, Path), ("entity" = String, Path), ViewSearch),
    responses((status = 200, description = "Views: [{id, name, kind, ...}]", body = Object)))]
pub async fn list_views(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, entity)): Path<(String, String)>,
    Query(query): Query<ViewSearch>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let _slot = state.connection_slot(&record).await;
    let views = state
        .engine
        .list_views(&record, &entity, query.search.as_deref())
        .await?;
    Ok(axum::Json(render::views(&views).json))
}

/// The entity's charts, each a measure (or several) over whichever view it is
/// shown with.
#[utoipa::path(get, path = "/api/v1/connections/{id}/entities/{entity}/charts", tag = "discovery",
    params(("id" = String, Path), ("entity" = String, Path)),
    responses((status = 200,
        description = "Charts: [{id, name, kind, measures: [{alias, column, aggregation}], \
                       category: {column, date_grouping} | null}]",
        body = Object)))]
pub async fn list_charts(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, entity)): Path<(String, String)>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let _slot = state.connection_slot(&record).await;
    let charts = state.engine.list_charts(&record, &entity).await?;
    Ok(axum::Json(render::charts(&charts).json))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewKindQuery {
    /// `system` (default) or `personal`.
    kind: Option<String>,
}

/// The view's columns, with the aggregations each allows.
#[utoipa::path(get, path = "/api/v1/connections/{id}/entities/{entity}/views/{view_id}/columns",
    tag = "discovery",
    params(("id" = String, Path), ("entity" = String, Path), ("view_id" = String, Path), ViewKindQuery),
    responses((status = 200, description = "Columns: [{name, display_name, type, aggregations}]", body = Object)))]
pub async fn list_columns(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, entity, view_id)): Path<(String, String, String)>,
    Query(query): Query<ViewKindQuery>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let view = ViewRef {
        id: view_id,
        kind: view_kind(query.kind.as_deref())?,
    };
    let _slot = state.connection_slot(&record).await;
    let columns = state.engine.list_columns(&record, &entity, &view).await?;
    Ok(axum::Json(render::columns(&columns).json))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementBody {
    #[schema(example = "opportunity")]
    entity: String,
    #[schema(example = "00000000-0000-0000-00aa-000010003001")]
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
    /// A chart of the entity (its id or name): its measure over the view's rows.
    chart: Option<String>,
    /// The chart's measure (its alias), when it has several.
    chart_measure: Option<String>,
    /// Only the rows of one of the chart's categories ("Won", "2024-03").
    chart_category: Option<String>,
    /// `base` (default) or `transaction`.
    currency_mode: Option<String>,
    /// Count only the rows dated within a period (a Key Result's), as a link
    /// with `period_column` does.
    period: Option<PeriodBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodBody {
    /// A date column of the view's table.
    #[schema(example = "estimatedclosedate")]
    column: String,
    /// The first day counted, YYYY-MM-DD.
    #[schema(example = "2024-01-01")]
    first_day: Option<String>,
    /// The last day counted, YYYY-MM-DD, included.
    #[schema(example = "2024-03-31")]
    last_day: Option<String>,
}

/// Preview a metric: its value now, with the evidence (records, requests,
/// bytes, the query sent).
#[utoipa::path(post, path = "/api/v1/connections/{id}/measurements", tag = "discovery",
    params(("id" = String, Path)), request_body = MeasurementBody,
    responses((status = 200,
        description = "{value, value_type, records, currency, requests, bytes_received, query}",
        body = Object)))]
pub async fn measure(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<MeasurementBody>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::Member).await?;
    let currency: CurrencyArg = parse_choice(
        "currency_mode",
        body.currency_mode.as_deref().unwrap_or("base"),
    )?;
    let measure = wanted_measure(
        body.column.as_deref(),
        body.aggregation.as_deref(),
        body.chart.as_deref(),
        body.chart_measure.as_deref(),
        body.chart_category.as_deref(),
    )?;
    let _slot = state.connection_slot(&record).await;
    let (column, aggregation, chart) =
        linking::measured_as(state.engine.as_ref(), &record, &body.entity, &measure).await?;
    let spec = MetricSpec {
        entity: body.entity,
        view: ViewRef {
            id: body.view_id,
            kind: view_kind(body.view_kind.as_deref())?,
        },
        column,
        aggregation,
        currency: currency.into(),
    };
    let window = body.period.map(|period| DateWindow {
        column: period.column,
        first_day: period.first_day,
        last_day: period.last_day,
    });
    let measured = state
        .engine
        .fetch_and_aggregate_within(&record, &spec, window.as_slice(), chart.as_ref())
        .await?;
    Ok(axum::Json(render::measurement(&measured, true).json))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    /// A new secret, for a service principal's connection; leave it out for a
    /// person's (device code).
    secret: Option<SecretBody>,
}

/// Sign a connection in again (organization admins). With a new secret: it is
/// tried first and replaces the stored one only if it works. For a person's
/// connection: a device code to show the person, then poll GET .../sign-in.
#[utoipa::path(post, path = "/api/v1/connections/{id}/sign-in", tag = "connections",
    params(("id" = String, Path)), request_body = SignInBody,
    responses(
        (status = 200, description = "Signed in with the new secret: {status: \"complete\", connection}", body = Object),
        (status = 202, description = "A person's sign-in started: {status: \"pending\", user_code, verification_uri, message, expires_in_seconds, interval_seconds}", body = Object)
    ))]
pub async fn start_sign_in(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SignInBody>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    let now = state.clock.now();
    match (record.sign_in, body.secret) {
        (SignIn::DeviceCode, None) => {
            // A sign-in sealed under a lost key is of no use any more.
            connections::forget_unreadable_storage(&state.db, &record.id).await?;
            let record = connections::get_by_id(&state.db, &record.id).await?;
            let code = state.engine.start_device_sign_in(&record).await?;
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "status": "pending",
                    "user_code": code.user_code,
                    "verification_uri": code.verification_uri,
                    "message": code.message,
                    "expires_in_seconds": code.expires_in_seconds,
                    "interval_seconds": code.interval_seconds,
                })),
            ))
        }
        (SignIn::DeviceCode, Some(_)) => Err(Problem::new(
            "invalid-input",
            format!(
                "connection '{}' signs in as a person: leave out secret and show the person \
                 the device code",
                record.name
            ),
        )),
        (_, None) => Err(Problem::new(
            "invalid-input",
            format!(
                "connection '{}' signs in with {}: give secret",
                record.name,
                record.sign_in.as_str()
            ),
        )),
        (kind, Some(secret)) => {
            let (given, secret) = secret.parts()?;
            if given != kind {
                return Err(Problem::new(
                    "invalid-input",
                    format!(
                        "connection '{}' signs in with {}, not {}",
                        record.name,
                        kind.as_str(),
                        given.as_str()
                    ),
                ));
            }
            crate::connecting::replace_secret(&state.db, state.engine.as_ref(), &record, &secret)
                .await?;
            crate::connecting::usable_again(&state.db, &record, now).await?;
            let record = connections::get_by_id(&state.db, &record.id).await?;
            Ok((
                StatusCode::OK,
                axum::Json(
                    json!({ "status": "complete", "connection": render::connection(&record) }),
                ),
            ))
        }
    }
}

/// How a person's sign-in stands: pending until the person enters the code,
/// then complete (the connection works and its links resume).
#[utoipa::path(get, path = "/api/v1/connections/{id}/sign-in", tag = "connections",
    params(("id" = String, Path)),
    responses((status = 200, description = "{status: pending|complete, connection?}", body = Object)))]
pub async fn poll_sign_in(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Problem> {
    let record = caller.connection(&state, &id, Role::OrgAdmin).await?;
    match state.engine.poll_device_sign_in(&record).await? {
        crate::bindings::SignInStatus::Pending => Ok(axum::Json(json!({ "status": "pending" }))),
        crate::bindings::SignInStatus::Complete => {
            let identity = state.engine.who_am_i(&record).await?;
            crate::connecting::usable_again(&state.db, &record, state.clock.now()).await?;
            let record = connections::get_by_id(&state.db, &record.id).await?;
            Ok(axum::Json(json!({
                "status": "complete",
                "user_id": identity.user_id,
                "connection": render::connection(&record),
            })))
        }
    }
}
