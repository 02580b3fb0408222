//! Loading an integration component and calling it, one fresh store per call.

use crate::artifact;
use crate::bindings::v0_1::{self, down, up};
use crate::bindings::{
    App, Chart, ChartSelection, Column, Connection, DateWindow, DeviceCode, Entity, Error,
    Identity, Integration, IntegrationPre, Measurement, MetricSpec, PluginInfo, SignInStatus, View,
    ViewRef,
};
use crate::bindings::{v0_2, v0_3};
use crate::limits::{Limit, Limits};
use crate::outbound::{
    OutboundHooks, OutboundPolicy, Resolve, SystemResolver, Traffic, TrafficReading,
};
use crate::state::{HostState, LogObserver, PluginStore, Scope};
use anyhow::Context;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

/// What one call acts on: a connection of the application, narrowed to what
/// the engine needs. The credential in `connection` leaves the application's
/// keeping only for the duration of the call.
#[derive(Clone)]
pub struct CallTarget {
    /// The id of the integration whose component serves the call.
    pub integration: String,
    /// The connection as the plugin sees it; its id scopes the plugin's storage.
    pub connection: Connection,
    /// Where the plugin may send requests (`scheme://host[:port]`).
    pub origins: Vec<String>,
    /// Whether loopback addresses are allowed (a local test service).
    pub allow_loopback: bool,
}

/// Why a plugin call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with one of the contract's errors.
    #[error("{}: {}", error_kind(.error), error_message(.error))]
    Plugin { error: Error },
    /// The plugin trapped or could not be instantiated.
    #[error("the plugin failed: {0:#}")]
    Trap(anyhow::Error),
    /// The call reached one of the host's limits and was stopped.
    #[error("{0}")]
    HostLimit(String),
    /// The host refused requests of the call (an address outside the policy, a
    /// response over --response-limit): the host's doing, never the
    /// environment's, so it says nothing about the view or column.
    #[error("the host refused a request: {}", .refusals.join("; "))]
    Refused { refusals: Vec<String> },
    /// The connection's integration is not loaded on this host.
    #[error("{0}")]
    NoIntegration(String),
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

/// A compiled component, ready to instantiate, by the contract version it was
/// built against.
#[derive(Clone)]
enum Pre {
    Current(IntegrationPre<HostState>),
    V0_3(v0_3::IntegrationPre<HostState>),
    V0_2(v0_2::IntegrationPre<HostState>),
    V0_1(v0_1::IntegrationPre<HostState>),
}

/// One instance, and the connection in the form its version takes.
enum Bound<'a> {
    Current(&'a Integration, &'a Connection),
    V0_3(&'a v0_3::Integration, &'a Connection),
    V0_2(&'a v0_2::Integration, &'a Connection),
    V0_1(&'a v0_1::Integration, v0_1::types::Connection),
}

/// An instance of either version.
enum Instance {
    Current(Integration),
    V0_3(v0_3::Integration),
    V0_2(v0_2::Integration),
    V0_1(v0_1::Integration),
}

pub struct PluginRuntime {
    pre: Pre,
    store: Arc<dyn PluginStore>,
    info: PluginInfo,
    limits: Arc<Limits>,
    /// Bounds the instances alive at once to the pool's size.
    slots: Option<Arc<Semaphore>>,
    pooled: bool,
    resolver: Arc<dyn Resolve>,
    traffic: Arc<Traffic>,
    observer: Option<LogObserver>,
}

/// How often the engine's epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances the engine's epoch until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
}

/// Core instances, memories and tables one component may use from the pool,
/// generous next to what `wasm32-wasip2` components need (the plugin: three core
/// instances, one memory, two tables).
const CORE_INSTANCES_PER_SLOT: u32 = 8;
const MEMORIES_PER_SLOT: u32 = 2;
const TABLES_PER_SLOT: u32 = 4;

/// The engine, with instances from a pre-reserved pool when the limits ask for
/// one and the OS grants the address space; otherwise allocated on demand.
fn engine_for(limits: &Limits) -> anyhow::Result<(Engine, bool)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines: a plugin stuck computing is interrupted at the next tick.
    config.epoch_interruption(true);
    if limits.instance_slots > 0 {
        let slots = limits.instance_slots;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_memories(slots.saturating_mul(MEMORIES_PER_SLOT))
            .total_tables(slots.saturating_mul(TABLES_PER_SLOT))
            .total_stacks(slots)
            .max_memory_size(limits.memory_bytes);
        let mut pooled = config.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(error) => tracing::warn!(
                "no instance pool ({error:#}); allocating plugin instances on demand"
            ),
        }
    }
    Ok((Engine::new(&config).map_err(anyhow::Error::from)?, false))
}

/// The contract versions this host loads, newest first.
pub const CONTRACT_VERSIONS: [&str; 4] = [
    "goals:integration@0.4.0",
    "goals:integration@0.3.0",
    "goals:integration@0.2.0",
    "goals:integration@0.1.0",
];

type CallFuture<'a, R> =
    Pin<Box<dyn Future<Output = wasmtime::Result<Result<R, Error>>> + Send + 'a>>;

impl PluginRuntime {
    /// Compiles the component (`name` says which in messages), links the host's
    /// capabilities and asks the plugin to describe itself. With `cache_dir`, the
    /// compiled component is kept there and reused by later starts (see
    /// [`crate::artifact`]).
    pub async fn load(
        bytes: &[u8],
        name: &str,
        store: Arc<dyn PluginStore>,
        limits: Limits,
        cache_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<PluginRuntime> {
        let (engine, pooled) = engine_for(&limits)?;
        start_epoch_ticker(&engine);
        let (component, origin) = artifact::load(&engine, bytes, cache_dir)
            .with_context(|| format!("compiling {name}"))?;
        tracing::info!(
            "{name}: {origin:?}, instances {}",
            if pooled { "pooled" } else { "on demand" }
        );
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        // The world's WASI imports are linked above, by wasmtime's own
        // implementations; only the host's interfaces come from the bindings.
        {
            use crate::bindings::v0_4::goals::integration::{deadline, log, storage, types};
            types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            storage::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            deadline::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
        }
        {
            use crate::bindings::v0_3::goals::integration::{deadline, log, storage};
            storage::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            deadline::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
        }
        {
            use crate::bindings::v0_2::goals::integration::{deadline, log, storage};
            storage::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            deadline::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
            log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
                .map_err(anyhow::Error::from)?;
        }
        v0_1::Integration::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| {
            state
        })
        .map_err(anyhow::Error::from)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{name} imports what this host does not give; it must be a component of \
                     the integration world of {}",
                    CONTRACT_VERSIONS.join(" or ")
                )
            })?;
        let pre = match IntegrationPre::new(instance_pre.clone()) {
            Ok(current) => Pre::Current(current),
            Err(current_error) => {
                if let Ok(pre) = v0_3::IntegrationPre::new(instance_pre.clone()) {
                    Pre::V0_3(pre)
                } else if let Ok(pre) = v0_2::IntegrationPre::new(instance_pre.clone()) {
                    Pre::V0_2(pre)
                } else if let Ok(pre) = v0_1::IntegrationPre::new(instance_pre) {
                    Pre::V0_1(pre)
                } else {
                    return Err(anyhow::Error::from(current_error).context(format!(
                        "{name} does not export the integration world of {}",
                        CONTRACT_VERSIONS.join(" or ")
                    )));
                }
            }
        };
        let mut runtime = PluginRuntime {
            pre,
            store,
            info: PluginInfo {
                id: String::new(),
                name: String::new(),
                version: String::new(),
                settings: Vec::new(),
                credentials: Vec::new(),
                default_sync_interval_seconds: 3600,
                min_sync_interval_seconds: 0,
                max_concurrent_per_connection: 1,
                aggregations: Vec::new(),
            },
            slots: (limits.instance_slots > 0)
                .then(|| Arc::new(Semaphore::new(limits.instance_slots as usize))),
            pooled,
            limits: Arc::new(limits),
            resolver: Arc::new(SystemResolver),
            traffic: Arc::default(),
            observer: None,
        };
        // `describe` needs no connection: no origins, storage under an empty id.
        let (mut store, plugin, _slot) = runtime
            .instantiate(OutboundPolicy::deny_all(), "")
            .await
            .map_err(|e| anyhow::anyhow!("instantiating the plugin: {e}"))?;
        runtime.info = describe(&mut store, &plugin)
            .await
            .map_err(anyhow::Error::from)
            .context("calling describe")?;
        if runtime.info.id.trim().is_empty() {
            anyhow::bail!("{name} describes itself without an id");
        }
        Ok(runtime)
    }

    /// The same compiled plugin over another store: no recompilation.
    pub fn with_store(&self, store: Arc<dyn PluginStore>) -> PluginRuntime {
        PluginRuntime {
            pre: self.pre.clone(),
            store,
            info: self.info.clone(),
            limits: Arc::clone(&self.limits),
            slots: self.slots.clone(),
            pooled: self.pooled,
            resolver: Arc::clone(&self.resolver),
            traffic: Arc::clone(&self.traffic),
            observer: self.observer.clone(),
        }
    }

    /// The same compiled plugin under other limits.
    pub fn with_limits(&self, limits: Limits) -> PluginRuntime {
        PluginRuntime {
            pre: self.pre.clone(),
            store: Arc::clone(&self.store),
            info: self.info.clone(),
            limits: Arc::new(limits),
            slots: self.slots.clone(),
            pooled: self.pooled,
            resolver: Arc::clone(&self.resolver),
            traffic: Arc::clone(&self.traffic),
            observer: self.observer.clone(),
        }
    }

    /// The same compiled plugin, its requests' host names resolved by `resolver`.
    pub fn with_resolver(&self, resolver: Arc<dyn Resolve>) -> PluginRuntime {
        PluginRuntime {
            pre: self.pre.clone(),
            store: Arc::clone(&self.store),
            info: self.info.clone(),
            limits: Arc::clone(&self.limits),
            slots: self.slots.clone(),
            pooled: self.pooled,
            resolver,
            traffic: Arc::clone(&self.traffic),
            observer: self.observer.clone(),
        }
    }

    /// The same runtime, telling `observer` of each info line the plugin writes.
    pub fn observed_by(mut self, observer: LogObserver) -> PluginRuntime {
        self.observer = Some(observer);
        self
    }

    /// Requests and bytes of every call of this runtime so far.
    pub fn traffic(&self) -> TrafficReading {
        self.traffic.reading()
    }

    /// Whether instances come from the pre-reserved pool.
    pub fn pooled(&self) -> bool {
        self.pooled
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh instance answering `describe`: the cost of one call without I/O.
    pub async fn describe_now(&self) -> Result<PluginInfo, CallError> {
        let (mut store, plugin, _slot) = self.instantiate(OutboundPolicy::deny_all(), "").await?;
        describe(&mut store, &plugin)
            .await
            .map_err(|e| self.trap(&store, anyhow::Error::from(e)))
    }

    pub async fn list_apps(&self, target: &CallTarget) -> Result<Vec<App>, CallError> {
        self.call(target, |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_apps(store, conn)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_apps(store, conn)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_apps(store, conn)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_discovery()
                        .call_list_apps(store, &conn)
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    pub async fn list_entities(
        &self,
        target: &CallTarget,
        app: &str,
    ) -> Result<Vec<Entity>, CallError> {
        let app = app.to_string();
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_entities(store, conn, &app)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_entities(store, conn, &app)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_entities(store, conn, &app)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_discovery()
                        .call_list_entities(store, &conn, &app)
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    pub async fn list_views(
        &self,
        target: &CallTarget,
        entity: &str,
        search: Option<&str>,
    ) -> Result<Vec<View>, CallError> {
        let (entity, search) = (entity.to_string(), search.map(str::to_string));
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_views(store, conn, &entity, search.as_deref())
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_views(store, conn, &entity, search.as_deref())
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_views(store, conn, &entity, search.as_deref())
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_discovery()
                        .call_list_views(store, &conn, &entity, search.as_deref())
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    pub async fn list_columns(
        &self,
        target: &CallTarget,
        entity: &str,
        view: &ViewRef,
    ) -> Result<Vec<Column>, CallError> {
        let (entity, view) = (entity.to_string(), view.clone());
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_columns(store, conn, &entity, &view)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_columns(store, conn, &entity, &view)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_columns(store, conn, &entity, &view)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_discovery()
                        .call_list_columns(store, &conn, &entity, &down(view))
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    /// The charts of `entity`; a component older than 0.4 has none.
    pub async fn list_charts(
        &self,
        target: &CallTarget,
        entity: &str,
    ) -> Result<Vec<Chart>, CallError> {
        if !matches!(self.pre, Pre::Current(_)) {
            return Ok(Vec::new());
        }
        let entity = entity.to_string();
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_discovery()
                            .call_list_charts(store, conn, &entity)
                            .await
                    }
                    Bound::V0_3(..) | Bound::V0_2(..) | Bound::V0_1(..) => Ok(Ok(Vec::new())),
                }
            })
        })
        .await
    }

    /// Measures `spec` over all of the view's rows.
    pub async fn fetch_and_aggregate(
        &self,
        target: &CallTarget,
        spec: &MetricSpec,
    ) -> Result<Measurement, CallError> {
        self.fetch_and_aggregate_within(target, spec, &[], None)
            .await
    }

    /// Measures `spec` over the rows within every one of `windows`, as the
    /// measure of `chart` when given. A component older than the contract
    /// that added windows (0.3) or charts (0.4) is not asked for them.
    pub async fn fetch_and_aggregate_within(
        &self,
        target: &CallTarget,
        spec: &MetricSpec,
        windows: &[DateWindow],
        chart: Option<&ChartSelection>,
    ) -> Result<Measurement, CallError> {
        let older = |what: &str| CallError::Plugin {
            error: Error::Invalid(format!(
                "{} was built against an older contract than {}, which cannot {what}; \
                 rebuild it, or link without it",
                self.info.name, CONTRACT_VERSIONS[0]
            )),
        };
        if !windows.is_empty() && matches!(self.pre, Pre::V0_2(_) | Pre::V0_1(_)) {
            return Err(older("limit a metric to a period"));
        }
        if chart.is_some() && !matches!(self.pre, Pre::Current(_)) {
            return Err(older("measure a chart"));
        }
        let (spec, windows, chart) = (spec.clone(), windows.to_vec(), chart.cloned());
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_metrics()
                            .call_fetch_and_aggregate(store, conn, &spec, &windows, chart.as_ref())
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_metrics()
                            .call_fetch_and_aggregate(store, conn, &spec, &windows)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_metrics()
                            .call_fetch_and_aggregate(store, conn, &spec)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_metrics()
                        .call_fetch_and_aggregate(store, &conn, &down(spec))
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    /// Measures `spec` once per point window (see the contract's
    /// `fetch-series`): in one call of a 0.4 component, point by point with an
    /// older one. The first measurement carries the cost of the whole series.
    pub async fn fetch_series(
        &self,
        target: &CallTarget,
        spec: &MetricSpec,
        windows: &[DateWindow],
        chart: Option<&ChartSelection>,
        points: &[DateWindow],
    ) -> Result<Vec<Measurement>, CallError> {
        if !matches!(self.pre, Pre::Current(_)) {
            let mut measured = Vec::with_capacity(points.len());
            for point in points {
                let mut within = windows.to_vec();
                within.push(point.clone());
                measured.push(
                    self.fetch_and_aggregate_within(target, spec, &within, chart)
                        .await?,
                );
            }
            let (requests, bytes) = measured.iter().fold((0u32, 0u64), |(r, b), m| {
                (
                    r.saturating_add(m.requests),
                    b.saturating_add(m.bytes_received),
                )
            });
            for (index, measurement) in measured.iter_mut().enumerate() {
                (measurement.requests, measurement.bytes_received) = if index == 0 {
                    (requests, bytes)
                } else {
                    (0, 0)
                };
            }
            return Ok(measured);
        }
        let (spec, windows, chart, points) = (
            spec.clone(),
            windows.to_vec(),
            chart.cloned(),
            points.to_vec(),
        );
        self.call(target, move |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_metrics()
                            .call_fetch_series(
                                store,
                                conn,
                                &spec,
                                &windows,
                                chart.as_ref(),
                                &points,
                            )
                            .await
                    }
                    // Measured point by point above; never bound here.
                    Bound::V0_3(..) | Bound::V0_2(..) | Bound::V0_1(..) => Ok(Err(Error::Invalid(
                        "a series needs a 0.4 component".to_string(),
                    ))),
                }
            })
        })
        .await
    }

    pub async fn start_device_sign_in(&self, target: &CallTarget) -> Result<DeviceCode, CallError> {
        self.call(target, |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_start_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_start_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_start_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_sign_in()
                        .call_start_device_sign_in(store, &conn)
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    pub async fn poll_device_sign_in(
        &self,
        target: &CallTarget,
    ) -> Result<SignInStatus, CallError> {
        self.call(target, |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_poll_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_poll_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_poll_device_sign_in(store, conn)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_sign_in()
                        .call_poll_device_sign_in(store, &conn)
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    pub async fn who_am_i(&self, target: &CallTarget) -> Result<Identity, CallError> {
        self.call(target, |target, store| {
            Box::pin(async move {
                match target {
                    Bound::Current(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_who_am_i(store, conn)
                            .await
                    }
                    Bound::V0_2(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_who_am_i(store, conn)
                            .await
                    }
                    Bound::V0_3(plugin, conn) => {
                        plugin
                            .goals_integration_sign_in()
                            .call_who_am_i(store, conn)
                            .await
                    }
                    Bound::V0_1(plugin, conn) => plugin
                        .goals_integration_sign_in()
                        .call_who_am_i(store, &conn)
                        .await
                        .map(up),
                }
            })
        })
        .await
    }

    /// One call: a fresh store with the connection's outbound policy, storage
    /// scope and limits; the whole call, waiting included, under the deadline.
    async fn call<R>(
        &self,
        target: &CallTarget,
        invoke: impl for<'a> FnOnce(Bound<'a>, &'a mut Store<HostState>) -> CallFuture<'a, R>,
    ) -> Result<R, CallError> {
        let wit = &target.connection;
        let policy = OutboundPolicy::new(&target.origins, target.allow_loopback);
        let (mut store, plugin, _slot) = self.instantiate(policy, &wit.id).await?;
        let target = match &plugin {
            Instance::Current(plugin) => Bound::Current(plugin, wit),
            Instance::V0_3(plugin) => Bound::V0_3(plugin, wit),
            Instance::V0_2(plugin) => Bound::V0_2(plugin, wit),
            Instance::V0_1(plugin) => Bound::V0_1(
                plugin,
                v0_1::connection(wit).map_err(|error| CallError::Plugin { error })?,
            ),
        };
        // The very deadline the plugin reads through its `deadline` import: a
        // plugin planning its waits by it must not be stopped before it.
        let deadline = tokio::time::Instant::from_std(store.data().deadline());
        let result = tokio::time::timeout_at(deadline, invoke(target, &mut store)).await;
        match result {
            Ok(result) => self.outcome(&store, result),
            Err(_) => Err(CallError::HostLimit(
                self.limits.describe(Limit::CallTimeout),
            )),
        }
    }

    async fn instantiate(
        &self,
        policy: OutboundPolicy,
        connection_id: &str,
    ) -> Result<(Store<HostState>, Instance, Option<OwnedSemaphorePermit>), CallError> {
        // Held as long as the store lives: the pool has no room for more.
        let slot = match &self.slots {
            Some(slots) => Some(Arc::clone(slots).acquire_owned().await.map_err(|_| {
                CallError::Trap(anyhow::anyhow!("the plugin runtime is shutting down"))
            })?),
            None => None,
        };
        let deadline = Instant::now() + self.limits.call_timeout;
        let state = HostState::new(
            OutboundHooks::new(
                policy,
                self.limits.response_body_bytes,
                Arc::clone(&self.resolver),
                Arc::clone(&self.traffic),
            ),
            Arc::clone(&self.store),
            Scope {
                integration: self.info.id.clone(),
                connection_id: connection_id.to_string(),
            },
            Arc::clone(&self.limits),
            deadline,
        )
        .observed_by(self.observer.clone());
        let engine = match &self.pre {
            Pre::Current(pre) => pre.engine(),
            Pre::V0_3(pre) => pre.engine(),
            Pre::V0_2(pre) => pre.engine(),
            Pre::V0_1(pre) => pre.engine(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        // Each tick yields to the runtime (so the deadline's timer can fire while
        // the plugin computes) and interrupts the plugin once the deadline passed.
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let plugin = match &self.pre {
            Pre::Current(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Instance::Current),
            Pre::V0_3(pre) => pre.instantiate_async(&mut store).await.map(Instance::V0_3),
            Pre::V0_2(pre) => pre.instantiate_async(&mut store).await.map(Instance::V0_2),
            Pre::V0_1(pre) => pre.instantiate_async(&mut store).await.map(Instance::V0_1),
        }
        .map_err(|e| self.trap(&store, anyhow::Error::from(e)))?;
        Ok((store, plugin, slot))
    }

    /// Explains a trap by the limit that caused it, when one did.
    fn trap(&self, store: &Store<HostState>, error: anyhow::Error) -> CallError {
        if store.data().memory.refused {
            CallError::HostLimit(self.limits.describe(Limit::Memory))
        } else if error
            .downcast_ref::<wasmtime::Trap>()
            .is_some_and(|trap| *trap == wasmtime::Trap::Interrupt)
        {
            CallError::HostLimit(self.limits.describe(Limit::CallTimeout))
        } else {
            CallError::Trap(error)
        }
    }

    fn outcome<T>(
        &self,
        store: &Store<HostState>,
        result: wasmtime::Result<Result<T, Error>>,
    ) -> Result<T, CallError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                let refusals = store.data().hooks.refusals();
                // Whatever the plugin made of a request the host refused (a denial,
                // a broken stream, a missing answer), the cause is the host's.
                if refusals.is_empty() {
                    Err(CallError::Plugin { error })
                } else {
                    Err(CallError::Refused { refusals })
                }
            }
            Err(trap) => Err(self.trap(store, anyhow::Error::from(trap))),
        }
    }
}

/// Asks an instance of either version to describe itself.
async fn describe(store: &mut Store<HostState>, plugin: &Instance) -> wasmtime::Result<PluginInfo> {
    match plugin {
        Instance::Current(plugin) => plugin.call_describe(store).await,
        Instance::V0_3(plugin) => plugin.call_describe(store).await,
        Instance::V0_2(plugin) => plugin.call_describe(store).await,
        Instance::V0_1(plugin) => plugin.call_describe(store).await.map(v0_1::plugin_info),
    }
}
