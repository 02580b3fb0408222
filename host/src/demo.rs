//! `goals-host demo`: the seed's flow (connection → app → entity → view → column →
//! aggregation → value) against the built-in Dataverse simulator, in a throwaway
//! data directory.

use crate::bindings::{Aggregation, CurrencyChoice, MetricSpec, ViewRef};
use crate::connections::{self, NewConnection, Secret};
use crate::db::Database;
use crate::render::{self, Report, aggregation_name};
use crate::resolve;
use crate::runtime::{PluginRuntime, PluginSource};
use anyhow::Context;
use dataverse_sim::{RunningSimulator, SimConfig};
use serde_json::{Value, json};
use std::time::Instant;

/// The choices the demo makes at each step, as a person would in the wizard.
const APP: &str = "Sales Hub";
const ENTITY: &str = "opportunity";
const VIEW_SEARCH: &str = "open";
const VIEW: &str = "Open Opportunities";
const COLUMN: &str = "estimatedvalue";
const AGGREGATION: Aggregation = Aggregation::Sum;

/// More metrics measured at the end: (entity, view, column, aggregation).
const MORE: [(&str, &str, &str, Aggregation); 3] = [
    ("lead", "Hot Leads", "fullname", Aggregation::Count),
    (
        "opportunity",
        "Won Opportunities",
        "actualvalue",
        Aggregation::Average,
    ),
    (
        "opportunity",
        "Open Opportunities",
        "estimatedclosedate",
        Aggregation::Min,
    ),
];

struct Steps {
    text: Vec<String>,
    json: Vec<Value>,
}

impl Steps {
    fn push(&mut self, step: &str, detail: String, json: Value) {
        self.text
            .push(format!("{:>2}. {step:<12} {detail}", self.json.len() + 1));
        self.json.push(json!({ "step": step, "result": json }));
    }
}

pub async fn run(plugin: PluginSource) -> anyhow::Result<Report> {
    let started = Instant::now();
    let sim_config = SimConfig::default();
    let simulator = RunningSimulator::start(([127, 0, 0, 1], 0).into(), sim_config.clone())
        .await
        .context("starting the Dataverse simulator")?;
    let data_dir = tempfile::Builder::new()
        .prefix("goals-demo-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let result = walk(&plugin, &simulator, &sim_config, data_dir.path(), started).await;
    simulator.shutdown().await;
    result
}

async fn walk(
    plugin: &PluginSource,
    simulator: &RunningSimulator,
    sim_config: &SimConfig,
    data_dir: &std::path::Path,
    started: Instant,
) -> anyhow::Result<Report> {
    let db = Database::open(data_dir)?;
    let runtime = PluginRuntime::load(plugin, db.clone()).await?;
    let mut steps = Steps {
        text: vec![format!(
            "{} {} against the Dataverse simulator at {}",
            runtime.info().name,
            runtime.info().version,
            simulator.url()
        )],
        json: Vec::new(),
    };

    let conn = connections::add(
        &db,
        NewConnection {
            name: "Contoso (simulated)".to_string(),
            environment_url: simulator.url(),
            authority_url: Some(simulator.url()),
            tenant: sim_config.tenant.clone(),
            client_id: sim_config.client_id.clone(),
            client_secret: Secret::new(sim_config.client_secret.clone()),
            allow_loopback: true,
        },
    )
    .await?;
    steps.push(
        "connection",
        format!("'{}' → {}", conn.name, conn.environment_url),
        render::connection(&conn),
    );

    let apps = runtime.list_apps(&conn).await?;
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    steps.push(
        "app",
        format!("{} → {APP}", names.join(", ")),
        render::apps(&apps).json,
    );
    let app = resolve::pick(apps, APP, "app", |a| &a.id, |a| &a.name)?;

    let entities = runtime.list_entities(&conn, &app.id).await?;
    let names: Vec<&str> = entities.iter().map(|e| e.display_name.as_str()).collect();
    steps.push(
        "entity",
        format!("{} → {ENTITY}", names.join(", ")),
        render::entities(&entities).json,
    );

    let views = runtime.list_views(&conn, ENTITY, Some(VIEW_SEARCH)).await?;
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    steps.push(
        "view",
        format!("search '{VIEW_SEARCH}': {} → {VIEW}", names.join(", ")),
        render::views(&views).json,
    );
    let view = resolve::pick(views, VIEW, "view", |v| &v.id, |v| &v.name)?;
    let view = ViewRef {
        id: view.id,
        kind: view.kind,
    };

    let columns = runtime.list_columns(&conn, ENTITY, &view).await?;
    let names: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                c.display_name,
                render::column_type_name(c.column_type)
            )
        })
        .collect();
    steps.push(
        "column",
        format!("{} → {COLUMN}", names.join(", ")),
        render::columns(&columns).json,
    );
    let column = resolve::pick(columns, COLUMN, "column", |c| &c.name, |c| &c.display_name)?;
    let offered: Vec<&str> = column
        .aggregations
        .iter()
        .map(|a| aggregation_name(*a))
        .collect();
    steps.push(
        "aggregation",
        format!("{} → {}", offered.join(", "), aggregation_name(AGGREGATION)),
        json!(aggregation_name(AGGREGATION)),
    );

    let spec = MetricSpec {
        entity: ENTITY.to_string(),
        view,
        column: column.name.clone(),
        aggregation: AGGREGATION,
        currency: CurrencyChoice::Base,
    };
    let measured_at = Instant::now();
    let measurement = runtime.fetch_and_aggregate(&conn, &spec).await?;
    let elapsed = measured_at.elapsed();
    steps.push(
        "value",
        format!(
            "{} over {} records, {} requests, {} bytes received, {} ms",
            render::value_text(&measurement.value),
            measurement.records,
            measurement.requests,
            measurement.bytes_received,
            elapsed.as_millis()
        ),
        render::measurement(&measurement).json,
    );

    let mut more_text = vec![
        String::new(),
        "More metrics of the same connection:".to_string(),
    ];
    let mut more_json = Vec::new();
    for (entity, view_name, column, aggregation) in MORE {
        let views = runtime.list_views(&conn, entity, Some(view_name)).await?;
        let view = resolve::pick(views, view_name, "view", |v| &v.id, |v| &v.name)?;
        let spec = MetricSpec {
            entity: entity.to_string(),
            view: ViewRef {
                id: view.id,
                kind: view.kind,
            },
            column: column.to_string(),
            aggregation,
            currency: CurrencyChoice::Base,
        };
        let measurement = runtime.fetch_and_aggregate(&conn, &spec).await?;
        more_text.push(format!(
            "    {:<8} of {column} in '{view_name}': {} ({} records)",
            aggregation_name(aggregation),
            render::value_text(&measurement.value),
            measurement.records
        ));
        more_json.push(json!({
            "entity": entity,
            "view": view_name,
            "column": column,
            "aggregation": aggregation_name(aggregation),
            "measurement": render::measurement(&measurement).json,
        }));
    }

    let total = started.elapsed();
    let mut text = steps.text;
    text.extend(more_text);
    text.push(format!("\ndemo finished in {} ms", total.as_millis()));
    Ok(Report {
        text: text.join("\n"),
        json: json!({
            "simulator": simulator.url(),
            "steps": steps.json,
            "more": more_json,
            "elapsed_ms": total.as_millis() as u64,
        }),
    })
}
