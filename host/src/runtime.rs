//! Loading an integration component and calling it, one fresh store per call.

use crate::bindings::{
    App, Column, Connection, Credential, DeviceCode, Entity, Error, Identity, Integration,
    IntegrationPre, Measurement, MetricSpec, PluginInfo, SignInStatus, View, ViewRef,
};
use crate::connections::{ConnectionRecord, SignIn};
use crate::db::Database;
use crate::outbound::{OutboundHooks, OutboundPolicy};
use crate::state::{HostState, PluginStorage};
use anyhow::Context;
use std::path::PathBuf;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

/// The Dynamics 365 plugin built from this workspace by the build script.
pub static EMBEDDED_PLUGIN: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dynamics365_plugin.wasm"));

/// Where the component comes from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    Embedded,
    File(PathBuf),
}

/// Why a plugin call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with one of the contract's errors.
    #[error("{}{}", plugin_error_text(.error), refusal_text(.refusals))]
    Plugin {
        error: Error,
        /// Requests the host refused during the call, with the reasons.
        refusals: Vec<String>,
    },
    /// The plugin trapped or could not be instantiated.
    #[error("the plugin failed: {0:#}")]
    Trap(anyhow::Error),
}

/// The case of a contract error as a stable, kebab-case word.
pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Unauthorized(_) => "unauthorized",
        Error::NotFound(_) => "not-found",
        Error::Throttled(_) => "throttled",
        Error::Invalid(_) => "invalid",
        Error::Limit(_) => "limit",
        Error::Upstream(_) => "upstream",
    }
}

pub fn error_message(error: &Error) -> &str {
    match error {
        Error::Unauthorized(m)
        | Error::NotFound(m)
        | Error::Invalid(m)
        | Error::Limit(m)
        | Error::Upstream(m) => m,
        Error::Throttled(throttle) => &throttle.message,
    }
}

fn plugin_error_text(error: &Error) -> String {
    format!("{}: {}", error_kind(error), error_message(error))
}

fn refusal_text(refusals: &[String]) -> String {
    if refusals.is_empty() {
        String::new()
    } else {
        format!(" [host: {}]", refusals.join("; "))
    }
}

pub struct PluginRuntime {
    pre: IntegrationPre<HostState>,
    db: Database,
    info: PluginInfo,
}

impl PluginRuntime {
    /// Compiles the component, links the host's capabilities and asks the plugin
    /// to describe itself.
    pub async fn load(source: &PluginSource, db: Database) -> anyhow::Result<PluginRuntime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let component = match source {
            PluginSource::Embedded => Component::new(&engine, EMBEDDED_PLUGIN)
                .map_err(anyhow::Error::from)
                .context("compiling the embedded plugin")?,
            PluginSource::File(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading the plugin {}", path.display()))?;
                Component::new(&engine, bytes)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("compiling the plugin {}", path.display()))?
            }
        };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        Integration::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component does not fit the goals:integration world")?;
        let pre = IntegrationPre::new(instance_pre).map_err(anyhow::Error::from)?;

        // `describe` needs no connection: no origins, storage under an empty id.
        let state = HostState::new(
            OutboundHooks::new(OutboundPolicy::deny_all()),
            PluginStorage::new(db.clone(), "", ""),
        );
        let mut store = Store::new(pre.engine(), state);
        let plugin = pre
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .context("instantiating the plugin")?;
        let info = plugin
            .call_describe(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .context("calling describe")?;
        Ok(PluginRuntime { pre, db, info })
    }

    /// The same compiled plugin over another database: no recompilation.
    pub fn with_database(&self, db: Database) -> PluginRuntime {
        PluginRuntime {
            pre: self.pre.clone(),
            db,
            info: self.info.clone(),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub async fn list_apps(&self, conn: &ConnectionRecord) -> Result<Vec<App>, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_discovery()
            .call_list_apps(&mut store, &wit_connection(conn)?)
            .await;
        outcome(&store, result)
    }

    pub async fn list_entities(
        &self,
        conn: &ConnectionRecord,
        app: &str,
    ) -> Result<Vec<Entity>, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_discovery()
            .call_list_entities(&mut store, &wit_connection(conn)?, app)
            .await;
        outcome(&store, result)
    }

    pub async fn list_views(
        &self,
        conn: &ConnectionRecord,
        entity: &str,
        search: Option<&str>,
    ) -> Result<Vec<View>, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_discovery()
            .call_list_views(&mut store, &wit_connection(conn)?, entity, search)
            .await;
        outcome(&store, result)
    }

    pub async fn list_columns(
        &self,
        conn: &ConnectionRecord,
        entity: &str,
        view: &ViewRef,
    ) -> Result<Vec<Column>, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_discovery()
            .call_list_columns(&mut store, &wit_connection(conn)?, entity, view)
            .await;
        outcome(&store, result)
    }

    pub async fn fetch_and_aggregate(
        &self,
        conn: &ConnectionRecord,
        spec: &MetricSpec,
    ) -> Result<Measurement, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_metrics()
            .call_fetch_and_aggregate(&mut store, &wit_connection(conn)?, spec)
            .await;
        outcome(&store, result)
    }

    pub async fn start_device_sign_in(
        &self,
        conn: &ConnectionRecord,
    ) -> Result<DeviceCode, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_sign_in()
            .call_start_device_sign_in(&mut store, &wit_connection(conn)?)
            .await;
        outcome(&store, result)
    }

    pub async fn poll_device_sign_in(
        &self,
        conn: &ConnectionRecord,
    ) -> Result<SignInStatus, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_sign_in()
            .call_poll_device_sign_in(&mut store, &wit_connection(conn)?)
            .await;
        outcome(&store, result)
    }

    pub async fn who_am_i(&self, conn: &ConnectionRecord) -> Result<Identity, CallError> {
        let (mut store, plugin) = self.instantiate(conn).await?;
        let result = plugin
            .goals_integration_sign_in()
            .call_who_am_i(&mut store, &wit_connection(conn)?)
            .await;
        outcome(&store, result)
    }

    async fn instantiate(
        &self,
        conn: &ConnectionRecord,
    ) -> Result<(Store<HostState>, Integration), CallError> {
        let state = HostState::new(
            OutboundHooks::new(OutboundPolicy::for_connection(conn)),
            PluginStorage::new(self.db.clone(), &self.info.name, &conn.id),
        );
        let mut store = Store::new(self.pre.engine(), state);
        let plugin = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CallError::Trap(anyhow::Error::from(e)))?;
        Ok((store, plugin))
    }
}

fn outcome<T>(
    store: &Store<HostState>,
    result: wasmtime::Result<Result<T, Error>>,
) -> Result<T, CallError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let refusals = store.data().hooks.refusals();
            // A request the host refused can surface in the plugin as a broken
            // stream rather than a denial; the host knows better, and retrying
            // cannot help.
            let error = match error {
                Error::Upstream(message) if !refusals.is_empty() => Error::Invalid(message),
                other => other,
            };
            Err(CallError::Plugin { error, refusals })
        }
        Err(trap) => Err(CallError::Trap(anyhow::Error::from(trap))),
    }
}

/// The connection as the plugin sees it. The secret leaves the host's keeping only
/// here, for the duration of one call.
fn wit_connection(conn: &ConnectionRecord) -> Result<Connection, CallError> {
    let credential = match (conn.sign_in, &conn.client_secret) {
        (SignIn::DeviceCode, _) => Credential::User,
        (SignIn::ClientSecret, Some(secret)) => {
            Credential::ClientSecret(secret.expose().to_string())
        }
        (SignIn::ClientSecret, None) => {
            return Err(CallError::Plugin {
                error: Error::Unauthorized(crate::connections::UNREADABLE_SECRET.to_string()),
                refusals: Vec::new(),
            });
        }
    };
    Ok(Connection {
        id: conn.id.clone(),
        environment_url: conn.environment_url.clone(),
        authority_url: conn.authority_url.clone(),
        tenant: conn.tenant.clone(),
        client_id: conn.client_id.clone(),
        credential,
    })
}
