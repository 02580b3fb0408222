//! `goals-host serve`'s HTTP API: the platform's faces (the web front end, its
//! back end) reach every step of the seed flow here, versioned under `/api/v1`,
//! JSON in and out, errors as problem documents. The OpenAPI document is
//! generated from the handlers that serve it, so it cannot drift from them.

mod admin;
mod auth;
mod connections;
mod items;
mod keyresults;
pub mod metrics;
mod ops;
mod problem;
mod projects;

pub use problem::Problem;

use crate::db::Database;
use crate::goals::clock::Clock;
use crate::goals::sync::Syncer;
use crate::integrations::Integrations;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted: every body of this API is a small form.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What every handler shares.
pub struct Shared {
    pub db: Database,
    pub engine: Arc<Integrations>,
    pub syncer: Arc<Syncer>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Whether this process's scheduler is running (false with --no-scheduler
    /// and once it stopped).
    pub scheduler_running: Arc<AtomicBool>,
    /// Whether this process runs a scheduler at all.
    pub scheduler_expected: bool,
}

pub type ApiState = Arc<Shared>;

impl Shared {
    /// The state of an API over `db` and `engine`, with a syncer (at most
    /// `per_connection` syncs at once per connection) whose every run the
    /// metrics count. `scheduler` says whether this process runs one, which
    /// /readyz then expects to be running.
    pub fn new(
        db: Database,
        engine: Arc<Integrations>,
        clock: Arc<dyn Clock>,
        per_connection: usize,
        scheduler: bool,
    ) -> ApiState {
        let metrics = Arc::new(metrics::Metrics::new());
        let observed = Arc::clone(&metrics);
        let syncer = Syncer::new(
            db.clone(),
            engine.clone(),
            Arc::clone(&clock),
            per_connection,
        )
        .with_observer(Arc::new(move |run, took| observed.sync_recorded(run, took)));
        Arc::new(Shared {
            db,
            engine,
            syncer: Arc::new(syncer),
            clock,
            metrics,
            scheduler_running: Arc::new(AtomicBool::new(false)),
            scheduler_expected: scheduler,
        })
    }
}

impl Shared {
    /// One of the connection's slots, held while a request calls its
    /// environment: the wizard's and the console's calls count against the
    /// connection's limit (Dataverse's per-user concurrency) with the
    /// scheduler's syncs. Hold it only around the calls: a sync takes its own.
    pub async fn connection_slot(
        &self,
        record: &crate::connections::ConnectionRecord,
    ) -> Option<crate::goals::sync::ConnectionSlot> {
        self.syncer
            .connection_slot(&record.id, &record.integration)
            .await
    }
}

/// A JSON request body; a malformed one is a 400 problem naming what is wrong.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, Problem> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Body(value))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Goals host API",
        description = "The Goals platform's integration host: tenants and organizations, \
            connections to environments, discovery, Key Results linked to metrics, syncs and \
            alerts. Every /api/v1 request carries `Authorization: Bearer TOKEN` \
            (`goals-host token create`); errors are RFC 9457 problem documents with a `kind`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes with the OpenAPI document that describes them.
pub fn routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::set_tenant_integration))
        .routes(routes!(admin::create_organization))
        .routes(routes!(admin::list_organizations))
        .routes(routes!(admin::get_organization))
        .routes(routes!(admin::set_organization_integration))
        .routes(routes!(
            connections::list_connections,
            connections::add_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::list_integrations))
        .routes(routes!(connections::test_connection))
        .routes(routes!(connections::disable_connection))
        .routes(routes!(connections::enable_connection))
        .routes(routes!(
            connections::start_sign_in,
            connections::poll_sign_in
        ))
        .routes(routes!(connections::list_apps))
        .routes(routes!(connections::list_entities))
        .routes(routes!(connections::list_views))
        .routes(routes!(connections::list_columns))
        .routes(routes!(connections::list_charts))
        .routes(routes!(connections::measure))
        .routes(routes!(
            keyresults::list_key_results,
            keyresults::create_key_result
        ))
        .routes(routes!(
            keyresults::get_key_result,
            keyresults::update_key_result,
            keyresults::delete_key_result
        ))
        .routes(routes!(keyresults::link, keyresults::unlink))
        .routes(routes!(keyresults::pause))
        .routes(routes!(keyresults::resume))
        .routes(routes!(keyresults::sync_now))
        .routes(routes!(keyresults::check_in))
        .routes(routes!(keyresults::history))
        .routes(routes!(projects::list_projects, projects::create_project))
        .routes(routes!(
            projects::get_project,
            projects::update_project,
            projects::delete_project
        ))
        .routes(routes!(projects::link_project, projects::unlink_project))
        .routes(routes!(projects::pause_project))
        .routes(routes!(projects::resume_project))
        .routes(routes!(projects::sync_project))
        .routes(routes!(projects::check_in_project))
        .routes(routes!(projects::project_history))
        .routes(routes!(items::alerts))
        .routes(routes!(ops::openapi))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts()
}

/// The whole service: the API, its document, the operations endpoints, the
/// body limit and the per-request metrics and log line.
pub fn app(state: ApiState) -> Router {
    let (router, document) = routes();
    let document = Arc::new(document);
    router
        .merge(crate::console::routes())
        .layer(axum::Extension(document))
        .fallback(ops::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            ops::observe,
        ))
        .with_state(state)
}
