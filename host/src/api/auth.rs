//! Who is calling and what they may reach. Every `/api/v1` request carries a
//! bearer token; its role says what it may do and its tenant or organization
//! where. An id outside that scope is "not found", never "forbidden", so a
//! token cannot learn what exists elsewhere.

use super::{ApiState, Problem};
use crate::connections::{self, ConnectionRecord};
use crate::goals::admin::{self, Organization, Tenant};
use crate::goals::keyresults::{self, ItemKind, KeyResult};
use crate::goals::tokens::{self, Role, Token};
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// The token of the request, checked against the database.
pub struct Caller(pub Token);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let presented = match bearer {
            Some(token) => token,
            None => {
                // The console's session: its cookie, and on a request that
                // changes something, the header a cross-site page cannot send.
                let token = crate::console::cookie(&parts.headers, crate::console::SESSION_COOKIE)
                    .ok_or_else(|| {
                        Problem::new(
                            "unauthenticated",
                            "this request needs `Authorization: Bearer TOKEN`; create a token \
                             with `goals-host token create`",
                        )
                    })?;
                let reads_only = matches!(parts.method, Method::GET | Method::HEAD);
                if !reads_only && !parts.headers.contains_key(crate::console::CSRF_HEADER) {
                    return Err(Problem::new(
                        "forbidden",
                        format!(
                            "a console request that changes something carries the {} header",
                            crate::console::CSRF_HEADER
                        ),
                    ));
                }
                token
            }
        };
        match tokens::authenticate(&state.db, presented).await? {
            Some(token) => Ok(Caller(token)),
            None => Err(Problem::new(
                "unauthenticated",
                "the bearer token is not known or was revoked; create one with \
                 `goals-host token create`",
            )),
        }
    }
}

impl Caller {
    /// Refuses callers whose role is narrower than `needed`.
    pub fn require(&self, needed: Role) -> Result<(), Problem> {
        if self.0.role <= needed {
            Ok(())
        } else {
            Err(Problem::new(
                "forbidden",
                format!(
                    "a {} token may not do this: it needs a {} token or wider",
                    self.0.role.as_str(),
                    needed.as_str()
                ),
            ))
        }
    }

    pub fn reaches_tenant(&self, tenant_id: i64) -> bool {
        self.0.role == Role::PlatformAdmin || self.0.tenant_id == Some(tenant_id)
    }

    pub fn reaches_organization(&self, organization: &Organization) -> bool {
        match self.0.role {
            Role::PlatformAdmin => true,
            Role::TenantAdmin => self.0.tenant_id == Some(organization.tenant_id),
            Role::OrgAdmin | Role::Member => self.0.organization_id == Some(organization.id),
        }
    }

    /// The tenant `id`, when the caller reaches it with at least `needed`.
    pub async fn tenant(&self, state: &ApiState, id: i64, needed: Role) -> Result<Tenant, Problem> {
        let tenant = admin::tenants(&state.db)
            .await?
            .into_iter()
            .find(|t| t.id == id && self.reaches_tenant(t.id))
            .ok_or_else(|| Problem::not_found("tenant", id))?;
        self.require(needed)?;
        Ok(tenant)
    }

    /// The organization `id`, when the caller reaches it with at least
    /// `needed`. Here and below only "does not exist" becomes a
    /// 404: a storage failure stays a server error, not a false "not found".
    pub async fn organization(
        &self,
        state: &ApiState,
        id: i64,
        needed: Role,
    ) -> Result<Organization, Problem> {
        let organization = admin::organization_by_id(&state.db, id)
            .await
            .map_err(|error| match error {
                admin::AdminError::NotFound { .. } => Problem::not_found("organization", id),
                other => other.into(),
            })?;
        if !self.reaches_organization(&organization) {
            return Err(Problem::not_found("organization", id));
        }
        self.require(needed)?;
        Ok(organization)
    }

    pub async fn connection(
        &self,
        state: &ApiState,
        id: &str,
        needed: Role,
    ) -> Result<ConnectionRecord, Problem> {
        let record = connections::get_by_id(&state.db, id)
            .await
            .map_err(|error| match error {
                connections::ConnectionError::NotFound { .. } => {
                    Problem::not_found("connection", id)
                }
                other => other.into(),
            })?;
        self.organization(state, record.organization_id, needed)
            .await
            .map_err(|problem| match problem.kind.as_str() {
                "not-found" => Problem::not_found("connection", id),
                _ => problem,
            })?;
        Ok(record)
    }

    /// A Key Result or Project of `kind` the caller may act on with `needed`;
    /// another kind's id, like one out of scope, is not found.
    pub async fn item(
        &self,
        state: &ApiState,
        id: i64,
        kind: ItemKind,
        needed: Role,
    ) -> Result<KeyResult, Problem> {
        let not_found = || Problem::not_found(kind.noun(), id);
        let item = keyresults::get_by_id(&state.db, id)
            .await
            .map_err(|error| match error {
                keyresults::KeyResultError::NoSuchId(_) => not_found(),
                other => other.into(),
            })?;
        if item.kind != kind {
            return Err(not_found());
        }
        self.organization(state, item.organization_id, needed)
            .await
            .map_err(|problem| match problem.kind.as_str() {
                "not-found" => not_found(),
                _ => problem,
            })?;
        Ok(item)
    }
}
