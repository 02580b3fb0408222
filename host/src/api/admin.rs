//! Tenants and organizations, and the admins' integration switches.

use super::auth::Caller;
use super::{ApiState, Body, Problem};
use crate::goals::admin;
use crate::goals::tokens::Role;
use crate::render;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewName {
    /// Unique, 1 to 100 printable characters.
    #[schema(example = "Contoso")]
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    #[schema(example = true)]
    enabled: bool,
}

fn organization_json(org: &admin::Organization) -> Value {
    let mut json = render::organization(org);
    json["tenant_id"] = org.tenant_id.into();
    json
}

/// Create a tenant (platform admins); its integration starts switched off.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "admin", request_body = NewName,
    responses((status = 201, description = "The tenant: {id, name, integration_enabled}", body = Object)))]
pub async fn create_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    Body(body): Body<NewName>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    caller.require(Role::PlatformAdmin)?;
    let tenant = admin::create_tenant(&state.db, &body.name, state.clock.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(render::tenant(&tenant))))
}

/// The tenants the token reaches.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "admin",
    responses((status = 200, description = "Tenants", body = Object)))]
pub async fn list_tenants(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Value>, Problem> {
    let tenants = admin::tenants(&state.db).await?;
    Ok(axum::Json(Value::Array(
        tenants
            .iter()
            .filter(|t| caller.reaches_tenant(t.id))
            .map(render::tenant)
            .collect(),
    )))
}

/// The tenant admin's switch: the integration on or off for every
/// organization of the tenant.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/integration", tag = "admin",
    params(("tenant_id" = i64, Path)), request_body = Switch,
    responses((status = 200, description = "The tenant", body = Object)))]
pub async fn set_tenant_integration(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<i64>,
    Body(body): Body<Switch>,
) -> Result<axum::Json<Value>, Problem> {
    let tenant = caller.tenant(&state, tenant_id, Role::TenantAdmin).await?;
    let tenant = admin::set_tenant_integration(&state.db, &tenant.name, body.enabled).await?;
    Ok(axum::Json(render::tenant(&tenant)))
}

/// Create an organization in a tenant (tenant admins); its integration starts
/// switched off.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/organizations", tag = "admin",
    params(("tenant_id" = i64, Path)), request_body = NewName,
    responses((status = 201,
        description = "The organization: {id, name, tenant_id, integration_enabled, ...}",
        body = Object)))]
pub async fn create_organization(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<i64>,
    Body(body): Body<NewName>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    let tenant = caller.tenant(&state, tenant_id, Role::TenantAdmin).await?;
    let org =
        admin::create_organization(&state.db, &body.name, &tenant.name, state.clock.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(organization_json(&org))))
}

/// The organizations the token reaches.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "admin",
    responses((status = 200, description = "Organizations", body = Object)))]
pub async fn list_organizations(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Value>, Problem> {
    let organizations = admin::organizations(&state.db).await?;
    Ok(axum::Json(Value::Array(
        organizations
            .iter()
            .filter(|org| caller.reaches_organization(org))
            .map(organization_json)
            .collect(),
    )))
}

/// One organization, with whether its syncs run and why not.
#[utoipa::path(get, path = "/api/v1/organizations/{org_id}", tag = "admin",
    params(("org_id" = i64, Path)),
    responses((status = 200, description = "The organization", body = Object)))]
pub async fn get_organization(
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
) -> Result<axum::Json<Value>, Problem> {
    let org = caller.organization(&state, org_id, Role::Member).await?;
    Ok(axum::Json(organization_json(&org)))
}

/// The organization admin's switch (syncs run only when the tenant's is on too).
#[utoipa::path(put, path = "/api/v1/organizations/{org_id}/integration", tag = "admin",
    params(("org_id" = i64, Path)), request_body = Switch,
    responses((status = 200, description = "The organization", body = Object)))]
pub async fn set_organization_integration(
    State(state): State<ApiState>,
    caller: Caller,
    Path(org_id): Path<i64>,
    Body(body): Body<Switch>,
) -> Result<axum::Json<Value>, Problem> {
    let org = caller.organization(&state, org_id, Role::OrgAdmin).await?;
    let org = admin::set_organization_integration(&state.db, &org.name, body.enabled).await?;
    Ok(axum::Json(organization_json(&org)))
}
