//! `/metrics` in the Prometheus text format: counters this process keeps (its
//! syncs, its API requests) and gauges read from the database when scraped
//! (due and running links, the scheduler's lag, open alerts), which every
//! host sharing the database reports alike.

use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::goals::sync::SyncRun;
use crate::params;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
    status: u16,
}

pub struct Metrics {
    registry: Registry,
    syncs: Family<Outcome, Counter>,
    sync_seconds: Histogram,
    environment_requests: Counter,
    environment_bytes: Counter,
    throttles: Counter,
    api_requests: Family<Route, Counter>,
    api_seconds: Histogram,
    due_links: Gauge,
    running_links: Gauge,
    scheduler_lag_seconds: Gauge,
    open_alerts: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("goals");
        let syncs = Family::<Outcome, Counter>::default();
        registry.register(
            "syncs",
            "Syncs this host recorded, by outcome (success, failure, interrupted)",
            syncs.clone(),
        );
        // 10 ms to about 10 minutes.
        let sync_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "sync_duration_seconds",
            "How long this host's syncs took, waiting for a slot excluded",
            sync_seconds.clone(),
        );
        let environment_requests = Counter::default();
        registry.register(
            "environment_requests",
            "HTTP requests syncs sent to environments",
            environment_requests.clone(),
        );
        let environment_bytes = Counter::default();
        registry.register(
            "environment_received_bytes",
            "Response bytes syncs received from environments",
            environment_bytes.clone(),
        );
        let throttles = Counter::default();
        registry.register(
            "throttles",
            "Syncs an environment asked to wait (HTTP 429, Retry-After)",
            throttles.clone(),
        );
        let api_requests = Family::<Route, Counter>::default();
        registry.register(
            "api_requests",
            "API requests, by method, route and status",
            api_requests.clone(),
        );
        let api_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "api_request_duration_seconds",
            "How long API requests took",
            api_seconds.clone(),
        );
        let due_links = Gauge::default();
        registry.register(
            "due_links",
            "Active links due now, over every host",
            due_links.clone(),
        );
        let running_links = Gauge::default();
        registry.register(
            "running_links",
            "Links being synced now, over every host",
            running_links.clone(),
        );
        let scheduler_lag_seconds = Gauge::default();
        registry.register(
            "scheduler_lag_seconds",
            "Now minus the due time of the oldest due link (0 when none is due)",
            scheduler_lag_seconds.clone(),
        );
        let open_alerts = Gauge::default();
        registry.register("open_alerts", "Open alerts", open_alerts.clone());
        Metrics {
            registry,
            syncs,
            sync_seconds,
            environment_requests,
            environment_bytes,
            throttles,
            api_requests,
            api_seconds,
            due_links,
            running_links,
            scheduler_lag_seconds,
            open_alerts,
        }
    }

    /// Counts a sync this host recorded.
    pub fn sync_recorded(&self, run: &SyncRun, took: Duration) {
        self.syncs
            .get_or_create(&Outcome {
                outcome: run.status.clone(),
            })
            .inc();
        self.sync_seconds.observe(took.as_secs_f64());
        let count = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
        self.environment_requests.inc_by(count(run.requests));
        self.environment_bytes.inc_by(count(run.bytes));
        if run.error_kind.as_deref() == Some("throttled") {
            self.throttles.inc();
        }
    }

    pub fn request_served(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.api_requests
            .get_or_create(&Route {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.api_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition, with the database's gauges read now.
    pub async fn render(&self, db: &Database, now: Timestamp) -> Result<String, DbError> {
        let (due, oldest, running, alerts) = db
            .run(move |sql| {
                let (due, oldest) = sql.query_row(
                    "SELECT count(*), min(next_run_at) FROM metric_links
                     WHERE state = 'active' AND next_run_at <= ?1 AND running_since IS NULL",
                    params![now],
                    |r| Ok((r.get::<i64>(0)?, r.get::<Option<i64>>(1)?)),
                )?;
                let running = sql.query_row(
                    "SELECT count(*) FROM metric_links WHERE running_since IS NOT NULL",
                    params![],
                    |r| r.get::<i64>(0),
                )?;
                let alerts = sql.query_row(
                    "SELECT count(*) FROM alerts WHERE closed_at IS NULL",
                    params![],
                    |r| r.get::<i64>(0),
                )?;
                Ok((due, oldest, running, alerts))
            })
            .await?;
        self.due_links.set(due);
        self.running_links.set(running);
        self.scheduler_lag_seconds
            .set(oldest.map_or(0, |at| (now - at).max(0)));
        self.open_alerts.set(alerts);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        Ok(text)
    }
}
