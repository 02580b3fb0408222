//! `goals-host demo`: the seed's whole flow against the built-in Dataverse
//! simulator, in a throwaway data directory — admins enable the integration, a
//! connection is added, a person walks connection → app → entity → view → column →
//! aggregation, two Key Results are linked, the scheduler syncs them over a few
//! accelerated hours while the data changes, and the details popover is shown.

use crate::bindings::{Aggregation, CurrencyChoice, ViewRef};
use crate::connections::{self, NewConnection, Secret, SignIn};
use crate::db::Database;

use crate::goals::admin;
use crate::goals::clock::{Clock, ManualClock, SystemClock};
use crate::goals::keyresults::{self, ItemKind, NewKeyResult};
use crate::goals::linking::{self, Pieces, Wanted, WantedMeasure};
use crate::goals::progress::{Direction, Unit};
use crate::goals::scheduler::Scheduler;
use crate::goals::sync::Syncer;
use crate::render::keyresult::details;
use crate::render::{self, Report, aggregation_name};
use crate::resolve;
use crate::runtime::PluginSource;
use anyhow::Context;
use dataverse_sim::{Row, RunningSimulator, SimConfig, dataset};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The choices a person makes in the wizard.
const APP: &str = "Sales Hub";
const ENTITY: &str = "opportunity";
const VIEW_SEARCH: &str = "open";
const VIEW: &str = "Open Opportunities";
const COLUMN: &str = "estimatedvalue";
const AGGREGATION: Aggregation = Aggregation::Sum;

/// Hours the scheduler runs for, accelerated.
const HOURS: i64 = 3;

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

/// The demo; with `serve`, its data then stays served at that address in the
/// console until Ctrl-C.
pub async fn run(plugin: PluginSource, serve: Option<&str>) -> anyhow::Result<Report> {
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
    let result = match (result, serve) {
        (Ok(report), Some(listen)) => served(&plugin, data_dir.path(), listen, report).await,
        (result, _) => result,
    };
    simulator.shutdown().await;
    result
}

/// Serves the demo's data directory in the console (no scheduler: the demo's
/// clock ran hours ahead) until Ctrl-C or SIGTERM.
async fn served(
    plugin: &PluginSource,
    data_dir: &std::path::Path,
    listen: &str,
    report: Report,
) -> anyhow::Result<Report> {
    use std::io::Write;
    let stop_requested = crate::cli::StopSignal::install();
    let db = Database::open(data_dir)?;
    let engine = Arc::new(crate::integrations::Integrations::new(vec![
        crate::runtime::load(plugin, db.clone()).await?,
    ]));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (token, _) = crate::goals::tokens::create(
        &db,
        crate::goals::tokens::Role::PlatformAdmin,
        crate::goals::tokens::NewToken::default(),
        clock.now(),
    )
    .await?;
    let state = crate::api::Shared::new(db, engine, clock, usize::MAX, false);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (choose another with --listen)"))?;
    let address = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{address}")?;
        writeln!(out, "{}\n", report.text)?;
        writeln!(
            out,
            "The demo's data is served at http://{address}/ until Ctrl-C. Sign in with this \
             platform admin's token (it works for this demo only):\n{token}"
        )?;
        out.flush()?;
    }
    axum::serve(listener, crate::api::app(state))
        .with_graceful_shutdown(stop_requested.wait())
        .await
        .context("serving the console")?;
    Ok(Report {
        text: "stopped".to_string(),
        json: report.json,
    })
}

/// A connection to the Dataverse simulator at `url` as the Dynamics 365
/// integration declares its settings, signed in with the simulator's service
/// principal, in the default organization.
pub fn simulator_connection(url: &str, config: &SimConfig, name: &str) -> NewConnection {
    let setting = |key: &str, value: &str| (key.to_string(), value.to_string());
    NewConnection {
        organization: connections::DEFAULT_ORGANIZATION.to_string(),
        added_by: "demo".to_string(),
        name: name.to_string(),
        integration: "microsoft.dynamics365".to_string(),
        settings: vec![
            setting("environment_url", url),
            setting("tenant", &config.tenant),
            setting("client_id", &config.client_id),
            setting("authority_url", url),
        ],
        sign_in: SignIn::ClientSecret,
        secret: Some(Secret::new(config.client_secret.clone())),
        allow_loopback: true,
    }
}

async fn walk(
    plugin: &PluginSource,
    simulator: &RunningSimulator,
    sim_config: &SimConfig,
    data_dir: &std::path::Path,
    started: Instant,
) -> anyhow::Result<Report> {
    let db = Database::open(data_dir)?;
    let runtime = Arc::new(crate::runtime::load(plugin, db.clone()).await?);
    let clock = ManualClock::new(SystemClock.now());
    let mut steps = Steps {
        text: vec![format!(
            "{} {} against the Dataverse simulator at {}",
            runtime.info().name,
            runtime.info().version,
            simulator.url()
        )],
        json: Vec::new(),
    };

    admin::create_tenant(&db, "Contoso", clock.now()).await?;
    admin::create_organization(&db, "Contoso Sales", "Contoso", clock.now()).await?;
    admin::set_tenant_integration(&db, "Contoso", true).await?;
    let org = admin::set_organization_integration(&db, "Contoso Sales", true).await?;
    steps.push(
        "enable",
        "tenant 'Contoso' switched the integration on; organization 'Contoso Sales' enabled it"
            .to_string(),
        json!({ "tenant": org.tenant, "organization": org.name }),
    );

    let mut new = simulator_connection(&simulator.url(), sim_config, "Contoso CRM (simulated)");
    new.organization = org.name.clone();
    new.added_by = "admin@contoso.example".to_string();
    let conn = connections::add(&db, runtime.info(), new).await?;
    steps.push(
        "connection",
        format!("'{}' → {}", conn.name, conn.url()),
        render::connection(&conn),
    );

    let apps = crate::engine::Engine::list_apps(&*runtime, &conn).await?;
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    steps.push(
        "app",
        format!("{} → {APP}", names.join(", ")),
        render::apps(&apps).json,
    );
    let app = resolve::pick(apps, APP, "app", |a| &a.id, |a| &a.name)?;

    let entities = crate::engine::Engine::list_entities(&*runtime, &conn, &app.id).await?;
    let names: Vec<&str> = entities.iter().map(|e| e.display_name.as_str()).collect();
    steps.push(
        "entity",
        format!("{} → {ENTITY}", names.join(", ")),
        render::entities(&entities).json,
    );
    let entity = linking::find_entity(&app, entities, ENTITY)?;

    let views =
        crate::engine::Engine::list_views(&*runtime, &conn, ENTITY, Some(VIEW_SEARCH)).await?;
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    steps.push(
        "view",
        format!("search '{VIEW_SEARCH}': {} → {VIEW}", names.join(", ")),
        render::views(&views).json,
    );
    let view = resolve::pick(views, VIEW, "view", |v| &v.id, |v| &v.name)?;

    let columns = crate::engine::Engine::list_columns(
        &*runtime,
        &conn,
        ENTITY,
        &ViewRef {
            id: view.id.clone(),
            kind: view.kind,
        },
    )
    .await?;
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
    let column = linking::find_column(&view, columns, COLUMN)?;
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

    let measured_at = Instant::now();
    let pipeline = linking::preview(
        &runtime,
        &conn,
        Pieces {
            app: &app,
            entity: &entity,
            view: &view,
            column: &column,
        },
        AGGREGATION,
        CurrencyChoice::Base,
        None,
        None,
    )
    .await?;
    let measurement = &pipeline.preview;
    steps.push(
        "value",
        format!(
            "{} {} over {} records, {} requests, {} bytes received, {} ms",
            render::value_text(&measurement.value),
            measurement.currency.as_deref().unwrap_or_default(),
            measurement.records,
            measurement.requests,
            measurement.bytes_received,
            measured_at.elapsed().as_millis()
        ),
        render::measurement(measurement, true).json,
    );

    // Two Key Results, linked and then synced by the scheduler.
    let interval = i64::from(runtime.info().default_sync_interval_seconds);
    let pipeline_kr = keyresults::create(
        &db,
        NewKeyResult {
            kind: ItemKind::KeyResult,
            parent_id: None,
            due_date: None,
            period: Default::default(),
            organization_id: org.id,
            title: "Grow the open pipeline to 300M".to_string(),
            owner: "ana@contoso.example".to_string(),
            unit: Unit::Currency,
            currency_code: measurement.currency.clone(),
            start: 0.0,
            target: 300_000_000.0,
            direction: Direction::Increase,
        },
        clock.now(),
    )
    .await?;
    keyresults::save_link(&db, pipeline_kr.id, pipeline.metric, interval, clock.now()).await?;
    let qualified_kr = keyresults::create(
        &db,
        NewKeyResult {
            kind: ItemKind::KeyResult,
            parent_id: None,
            due_date: None,
            period: Default::default(),
            organization_id: org.id,
            title: "Qualify 5,000 leads".to_string(),
            owner: "ben@contoso.example".to_string(),
            unit: Unit::Number,
            currency_code: None,
            start: 4_000.0,
            target: 5_000.0,
            direction: Direction::Increase,
        },
        clock.now(),
    )
    .await?;
    let qualified = linking::choose(&runtime, &conn, &leads_in("Qualified Leads")).await?;
    keyresults::save_link(
        &db,
        qualified_kr.id,
        qualified.metric,
        interval,
        clock.now(),
    )
    .await?;
    steps.push(
        "link",
        format!(
            "Key Result {} ← sum of {COLUMN} in '{VIEW}'; Key Result {} ← count of 'Qualified Leads'",
            pipeline_kr.id, qualified_kr.id
        ),
        json!([pipeline_kr.id, qualified_kr.id]),
    );

    // A Project under the leads Key Result, synced with them.
    let webinar = keyresults::create(
        &db,
        NewKeyResult {
            kind: ItemKind::Project,
            parent_id: Some(qualified_kr.id),
            due_date: Some("2027-03-31".to_string()),
            period: Default::default(),
            organization_id: org.id,
            title: "Partner webinar: 6,000 hot leads".to_string(),
            owner: "ben@contoso.example".to_string(),
            unit: Unit::Number,
            currency_code: None,
            start: 0.0,
            target: 6_000.0,
            direction: Direction::Increase,
        },
        clock.now(),
    )
    .await?;
    let hot = linking::choose(&runtime, &conn, &leads_in("Hot Leads")).await?;
    keyresults::save_link(&db, webinar.id, hot.metric, interval, clock.now()).await?;
    steps.push(
        "project",
        format!(
            "Project {} (under Key Result {}, due 2027-03-31) ← count of 'Hot Leads'",
            webinar.id, qualified_kr.id
        ),
        json!(webinar.id),
    );

    let syncer = Arc::new(Syncer::new(
        db.clone(),
        runtime.clone(),
        Arc::new(clock.clone()),
        usize::MAX,
    ));
    let scheduler = Scheduler::new(syncer, 8);
    let mut hours = Vec::new();
    for hour in 0..=HOURS {
        if hour > 0 {
            // Sales happen between syncs: new open deals and qualified leads.
            simulator.add_rows("opportunity", new_opportunities(hour));
            simulator.add_rows("lead", new_qualified_leads(hour));
            clock.advance(interval + interval / 10);
        }
        let round = scheduler.run_due().await?;
        let pipeline = keyresults::get_by_id(&db, pipeline_kr.id).await?;
        let qualified = keyresults::get_by_id(&db, qualified_kr.id).await?;
        let line = format!(
            "hour {hour}: {} sync(s); pipeline {} · qualified leads {}",
            round.succeeded,
            pipeline
                .current_value
                .map(render::format_number)
                .unwrap_or_default(),
            qualified
                .current_value
                .map(render::format_number)
                .unwrap_or_default(),
        );
        hours.push(json!({
            "hour": hour,
            "synced": round.succeeded,
            "pipeline": pipeline.current_value,
            "qualified_leads": qualified.current_value,
        }));
        steps.text.push(format!("    {line}"));
    }
    steps.push(
        "scheduler",
        format!("ran {HOURS} accelerated hours (above)"),
        Value::Array(hours),
    );

    let shown = details(&db, clock.now(), pipeline_kr.id).await?;
    steps.push("details", String::new(), shown.json);
    steps.text.push(shown.text);

    let total = started.elapsed();
    steps
        .text
        .push(format!("\ndemo finished in {} ms", total.as_millis()));
    Ok(Report {
        text: steps.text.join("\n"),
        json: json!({
            "simulator": simulator.url(),
            "steps": steps.json,
            "elapsed_ms": total.as_millis() as u64,
        }),
    })
}

/// The count of the Sales Hub's leads in `view`.
fn leads_in(view: &str) -> Wanted {
    Wanted {
        app: APP.to_string(),
        entity: "lead".to_string(),
        view: view.to_string(),
        measure: WantedMeasure::Column {
            column: "fullname".to_string(),
            aggregation: Aggregation::Count,
        },
        currency: CurrencyChoice::Base,
        window: None,
    }
}

/// Deterministic new rows, shaped like the simulator's own.
fn new_opportunities(hour: i64) -> Vec<Row> {
    let base = dataset()
        .rows("opportunity")
        .first()
        .cloned()
        .unwrap_or_default();
    (0..25)
        .map(|i| {
            let mut row = base.clone();
            row.insert(
                "opportunityid".into(),
                json!(format!("0000000{hour}-0000-4000-8000-{i:012}")),
            );
            row.insert("name".into(), json!(format!("New deal {hour}-{i}")));
            row.insert("statecode".into(), json!(0));
            row.insert("estimatedvalue".into(), json!(250_000.0));
            row.insert("estimatedvalue_base".into(), json!(250_000.0));
            row
        })
        .collect()
}

fn new_qualified_leads(hour: i64) -> Vec<Row> {
    (0..120)
        .map(|i| {
            let mut row = Row::new();
            row.insert(
                "leadid".into(),
                json!(format!("1000000{hour}-0000-4000-8000-{i:012}")),
            );
            row.insert("fullname".into(), json!(format!("Lead {hour}-{i}")));
            row.insert("statecode".into(), json!(1));
            row
        })
        .collect()
}
