//! `goals-host kr ...`: Key Results, their links, Sync now, details and history.

mod args;
mod wizard;

pub use args::{
    DirectionArg, ItemCommand, ItemFields, KrCommand, LinkArgs, ProjectCommand, UnitArg,
};

use super::Context;
use super::failure::{CommandFailed, UsageError};
use crate::connections::{self, ConnectionRecord};
use crate::engine::Engine;
use crate::goals::admin;
use crate::goals::backfill;
use crate::goals::clock;
use crate::goals::keyresults::{self, ItemKind, KeyResult, LinkState, NewKeyResult, Period, Scope};
use crate::goals::linking::{self, Wanted, WantedMeasure};
use crate::goals::progress::{Direction, Unit};
use crate::goals::sync::{self, SyncError, SyncRun, Syncer, Trigger};
use crate::outbound::TrafficReading;
use crate::render::keyresult::{
    check_in_note, details, error_text, kr_json, link_json, progress_text, run_json, run_text,
    value_line, value_text,
};
use crate::render::{self, Report, table};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::sync::Arc;

pub async fn run_kr(context: &Context<'_>, command: &KrCommand) -> anyhow::Result<Report> {
    match command {
        KrCommand::Create(fields) => create(context, ItemKind::KeyResult, fields, None, None).await,
        KrCommand::Item(command) => run(context, ItemKind::KeyResult, command).await,
    }
}

pub async fn run_project(
    context: &Context<'_>,
    command: &ProjectCommand,
) -> anyhow::Result<Report> {
    match command {
        ProjectCommand::Create {
            fields,
            parent,
            due_date,
        } => {
            create(
                context,
                ItemKind::Project,
                fields,
                parent.as_deref(),
                due_date.clone(),
            )
            .await
        }
        ProjectCommand::Item(command) => run(context, ItemKind::Project, command).await,
    }
}

async fn create(
    context: &Context<'_>,
    kind: ItemKind,
    fields: &ItemFields,
    parent: Option<&str>,
    due_date: Option<String>,
) -> anyhow::Result<Report> {
    let db = &context.db;
    let org = admin::organization(db, context.cli.org()).await?;
    let parent_id = match parent {
        Some(reference) => Some(
            keyresults::find(
                db,
                ItemKind::KeyResult,
                reference,
                Scope {
                    organization: Some((org.id, &org.name)),
                },
            )
            .await?
            .id,
        ),
        None => None,
    };
    let item = keyresults::create(
        db,
        NewKeyResult {
            kind,
            organization_id: org.id,
            parent_id,
            due_date,
            period: Period {
                start: fields.period_start.clone(),
                end: fields.period_end.clone(),
            },
            title: fields.title.clone(),
            owner: fields.owner.clone(),
            unit: match fields.unit {
                UnitArg::Number => Unit::Number,
                UnitArg::Percent => Unit::Percent,
                UnitArg::Currency => Unit::Currency,
            },
            currency_code: fields.currency_code.clone(),
            start: fields.start,
            target: fields.target,
            direction: match fields.direction {
                DirectionArg::Increase => Direction::Increase,
                DirectionArg::Decrease => Direction::Decrease,
            },
        },
        context.clock.now(),
    )
    .await?;
    Ok(Report {
        text: format!("created {} {} '{}'", kind.noun(), item.id, item.title),
        json: kr_json(&item),
    })
}

/// The commands Key Results and Projects share.
async fn run(
    context: &Context<'_>,
    kind: ItemKind,
    command: &ItemCommand,
) -> anyhow::Result<Report> {
    let db = &context.db;
    let now = context.clock.now();
    let noun = kind.noun();
    let key = kind.json_key();
    match command {
        ItemCommand::List => {
            let org_id = match &context.cli.org {
                Some(name) => Some(admin::organization(db, name).await?.id),
                None => None,
            };
            let krs = keyresults::list(db, kind, org_id).await?;
            let organizations: std::collections::HashMap<i64, String> = admin::organizations(db)
                .await?
                .into_iter()
                .map(|o| (o.id, o.name))
                .collect();
            let org_name = |kr: &KeyResult| {
                organizations
                    .get(&kr.organization_id)
                    .cloned()
                    .unwrap_or_default()
            };
            // Projects add the Key Result they serve and when they are due.
            let projects = kind == ItemKind::Project;
            let mut headers = vec!["ID", "ORGANIZATION", "TITLE", "OWNER"];
            if projects {
                headers.extend(["PARENT", "DUE"]);
            }
            headers.extend(["VALUE", "PROGRESS"]);
            Ok(Report {
                text: table(
                    &headers,
                    &krs.iter()
                        .map(|kr| {
                            let mut row = vec![
                                kr.id.to_string(),
                                org_name(kr),
                                kr.title.clone(),
                                kr.owner.clone(),
                            ];
                            if projects {
                                row.push(kr.parent_id.map(|id| id.to_string()).unwrap_or_default());
                                row.push(kr.due_date.clone().unwrap_or_default());
                            }
                            row.extend([value_text(kr), progress_text(kr)]);
                            row
                        })
                        .collect::<Vec<_>>(),
                ),
                json: Value::Array(
                    krs.iter()
                        .map(|kr| {
                            let mut json = kr_json(kr);
                            json["organization"] = json!(org_name(kr));
                            json
                        })
                        .collect(),
                ),
            })
        }
        ItemCommand::Link(args) => link(context, kind, args).await,
        ItemCommand::Unlink { kr } => {
            let kr = find(context, kind, kr).await?;
            keyresults::unlink(db, kr.id, now).await?;
            Ok(Report {
                text: format!("{noun} {} is no longer linked; its value stays", kr.id),
                json: kr_json(&kr),
            })
        }
        ItemCommand::Pause { kr } | ItemCommand::Resume { kr } => {
            let paused = matches!(command, ItemCommand::Pause { .. });
            let kr = find(context, kind, kr).await?;
            let broken = keyresults::link(db, kr.id)
                .await?
                .is_some_and(|link| link.state == LinkState::Broken);
            if broken && !paused {
                return recheck(context, &kr).await;
            }
            let link = keyresults::set_paused(db, kr.id, paused, now).await?;
            Ok(Report {
                text: format!(
                    "{noun} {}: link {}",
                    kr.id,
                    if paused {
                        "paused"
                    } else {
                        "resumed; the next sync runs at once"
                    }
                ),
                json: link_json(&link, None, None, None),
            })
        }
        ItemCommand::Checkin { kr, value } => {
            let kr = find(context, kind, kr).await?;
            let kr = keyresults::check_in(db, kr.id, *value, now).await?;
            let link = keyresults::link(db, kr.id).await?;
            Ok(Report {
                text: format!(
                    "{noun} {} checked in at {}; {}",
                    kr.id,
                    value_text(&kr),
                    check_in_note(kind, link.as_ref())
                ),
                json: kr_json(&kr),
            })
        }
        ItemCommand::Sync { kr, force } => {
            let kr = find(context, kind, kr).await?;
            if !force && let Some(until) = sync::throttled_until(db, kr.id, now).await? {
                return Err(SyncError::Throttled {
                    kind,
                    key_result: kr.id,
                    until,
                }
                .into());
            }
            context
                .progress
                .step(format!("syncing {noun} {} '{}'", kr.id, kr.title));
            let syncer = syncer(context, context.engine().await?, usize::MAX);
            let run = syncer.sync(kr.id, Trigger::Manual).await?;
            let kr = keyresults::get_by_id(db, kr.id).await?;
            ran(
                &run,
                Report {
                    text: format!("{}\n{}", run_text(&run), value_line(&kr)),
                    json: json!({ "run": run_json(&run), key: kr_json(&kr) }),
                },
            )
        }
        ItemCommand::Show { kr } => {
            let kr = find(context, kind, kr).await?;
            details(db, now, kr.id).await
        }
        ItemCommand::History { kr, limit } => {
            let kr = find(context, kind, kr).await?;
            let runs = sync::history(db, kr.id, *limit, None).await?;
            Ok(Report {
                text: table(
                    &[
                        "RUN", "TRIGGER", "STARTED", "STATUS", "VALUE", "RECORDS", "REQUESTS",
                        "ERROR",
                    ],
                    &runs
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.to_string(),
                                r.trigger.clone(),
                                clock::format(r.started_at),
                                r.status.clone(),
                                r.value.map(render::format_number).unwrap_or_default(),
                                r.records.map(|n| n.to_string()).unwrap_or_default(),
                                r.requests.map(|n| n.to_string()).unwrap_or_default(),
                                error_text(r),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
                json: Value::Array(runs.iter().map(run_json).collect()),
            })
        }
    }
}

/// The item of `kind` a command names, inside `--org` when it is given.
async fn find(context: &Context<'_>, kind: ItemKind, reference: &str) -> anyhow::Result<KeyResult> {
    let kr = match &context.cli.org {
        Some(name) => {
            let org = admin::organization(&context.db, name).await?;
            keyresults::find(
                &context.db,
                kind,
                reference,
                Scope {
                    organization: Some((org.id, &org.name)),
                },
            )
            .await?
        }
        None => keyresults::find(&context.db, kind, reference, Scope::ALL).await?,
    };
    Ok(kr)
}

/// `kr resume` of a broken link: a sync now decides. If the view and column are
/// there again the link is active; if not it stays broken and says why.
async fn recheck(context: &Context<'_>, kr: &KeyResult) -> anyhow::Result<Report> {
    keyresults::reactivate(&context.db, kr.id, context.clock.now()).await?;
    let syncer = syncer(context, context.engine().await?, usize::MAX);
    let run = syncer.sync_new_link(kr.id).await?;
    let link = keyresults::link(&context.db, kr.id).await?.ok_or(
        keyresults::KeyResultError::NotLinked {
            kind: kr.kind,
            id: kr.id,
        },
    )?;
    let report = Report {
        text: match link.state {
            LinkState::Active if run.status == "success" => format!(
                "{} {}: the view and column are there again; link resumed\n{}",
                kr.kind.noun(),
                kr.id,
                run_text(&run)
            ),
            _ => format!(
                "{} {}: link still {}: {}",
                kr.kind.noun(),
                kr.id,
                link.state.as_str(),
                link.state_reason.clone().unwrap_or_else(|| format!(
                    "see `goals-host {} show {}`",
                    kr.kind.command(),
                    kr.id
                ))
            ),
        },
        json: link_json(&link, None, None, run.currency.as_deref()),
    };
    ran(&run, report)
}

/// A sync ran: its report, or, when the run failed, the same report as a failed
/// command (exit code and `error` beside the run).
fn ran(run: &SyncRun, report: Report) -> anyhow::Result<Report> {
    if run.status == "success" {
        return Ok(report);
    }
    let kind = run.error_kind.as_deref().unwrap_or("sync-failed");
    let message = run
        .error_message
        .clone()
        .unwrap_or_else(|| format!("the sync ended {}", run.status));
    Err(CommandFailed::new(report, kind, &message).into())
}

pub fn syncer(context: &Context<'_>, runtime: Arc<dyn Engine>, per_connection: usize) -> Syncer {
    Syncer::new(
        context.db.clone(),
        runtime,
        Arc::clone(&context.clock),
        per_connection,
    )
}

async fn link(context: &Context<'_>, kind: ItemKind, args: &LinkArgs) -> anyhow::Result<Report> {
    let db = &context.db;
    let kr = find(context, kind, &args.kr).await?;
    let org = admin::organization_by_id(db, kr.organization_id).await?;
    if let Some(reason) = org.disabled_reason() {
        return Err(SyncError::Disabled(format!("{reason}; nothing was linked")).into());
    }
    let existing = keyresults::link(db, kr.id).await?;
    let runtime = context.engine().await?;
    let before = runtime.traffic();
    let flags_given = [
        &args.app,
        &args.entity,
        &args.view,
        &args.column,
        &args.chart,
    ]
    .iter()
    .any(|f| f.is_some())
        || args.aggregation.is_some();

    // `kr link KR --connection OTHER` on a linked Key Result: the same metric from
    // another connection of the organization.
    if let (Some(existing), Some(name), false, false) =
        (&existing, &args.connection, flags_given, args.interactive)
    {
        let conn = connections::get(db, name, Some(&org.name)).await?;
        let current = &existing.metric;
        let wanted = |app: &str, view: &str| Wanted {
            app: app.to_string(),
            entity: current.entity.clone(),
            view: view.to_string(),
            measure: match &current.chart {
                None => WantedMeasure::Column {
                    column: current.column.clone(),
                    aggregation: current.aggregation,
                },
                Some(chart) => WantedMeasure::Chart {
                    chart: if view == current.view.id {
                        chart.id.clone()
                    } else {
                        chart.name.clone()
                    },
                    measure: Some(chart.measure.clone()),
                    category: chart.category.clone(),
                },
            },
            currency: current.currency,
            window: kr.period.window(current.period_column.as_deref()),
        };
        // Another environment (a sandbox beside production) has its own ids for
        // the same app and view: look them up by id first, then by name.
        let chosen = match linking::choose(
            &runtime,
            &conn,
            &wanted(&current.app_id, &current.view.id),
        )
        .await
        {
            Ok(chosen) => chosen,
            Err(by_id) => linking::choose(
                &runtime,
                &conn,
                &wanted(&current.app_name, &current.view_name),
            )
            .await
            .with_context(|| {
                format!(
                    "connection '{}' has neither app/view ids nor an app '{}' with a view '{}' (by id: {by_id:#})",
                    conn.name, current.app_name, current.view_name
                )
            })?,
        };
        linking::save(
            db,
            &kr,
            &chosen,
            existing.interval_seconds,
            context.clock.now(),
        )
        .await?;
        return saved(
            context,
            runtime,
            &kr,
            &conn,
            chosen.preview,
            before,
            "moved to",
        )
        .await;
    }

    let window = linking::window_for(&kr, args.period_column.as_deref())?;
    let measure = WantedMeasure::from_parts(
        args.column.as_deref(),
        args.aggregation.map(Into::into),
        args.chart.as_deref(),
        args.measure.as_deref(),
        args.category.as_deref(),
    )?;
    let complete = args.connection.is_some()
        && args.app.is_some()
        && args.entity.is_some()
        && args.view.is_some();
    let (conn, chosen) = if let (true, Some(measure), false) = (complete, measure, args.interactive)
    {
        let conn = connections::get(
            db,
            args.connection.as_deref().unwrap_or_default(),
            Some(&org.name),
        )
        .await?;
        let wanted = Wanted {
            app: args.app.clone().unwrap_or_default(),
            entity: args.entity.clone().unwrap_or_default(),
            view: args.view.clone().unwrap_or_default(),
            measure,
            currency: args.currency.into(),
            window: window.clone(),
        };
        let chosen = linking::choose(&runtime, &conn, &wanted).await?;
        (conn, chosen)
    } else if std::io::stdin().is_terminal() || args.interactive {
        // The wizard's prompts own the terminal.
        context.progress.finish();
        match wizard::run(db, &runtime, &org.name, args, &kr.period, window.as_ref()).await? {
            Some(picked) => picked,
            None => {
                return Ok(Report {
                    text: "nothing saved".to_string(),
                    json: json!({ "saved": false }),
                });
            }
        }
    } else {
        return Err(UsageError(format!(
            "give --connection, --app, --entity, --view, and --column with --aggregation or \
             --chart, or run \
             `goals-host {} link {}` in a terminal for the wizard",
            kind.command(),
            kr.id
        ))
        .into());
    };
    let interval = linking::interval_for(runtime.info(&conn)?, &conn, args.interval)?;
    let link = linking::save(db, &kr, &chosen, interval, context.clock.now()).await?;
    let backfilled = if kr.period.start.is_some() && !args.no_backfill {
        context.progress.step(format!(
            "back-filling the history from {}",
            args.backfill_column
        ));
        Some(
            backfill::backfill(
                db,
                runtime.as_ref(),
                &conn,
                &kr,
                &link,
                &args.backfill_column,
                context.clock.now(),
            )
            .await?,
        )
    } else {
        None
    };
    let mut report = saved(
        context,
        runtime,
        &kr,
        &conn,
        chosen.preview,
        before,
        "linked to",
    )
    .await;
    if let (Some(done), Ok(report)) = (&backfilled, report.as_mut()) {
        report.text.push_str(&format!(
            "\nhistory back-filled from {}: {} points ({} requests)",
            done.column, done.points, done.requests
        ));
        report.json["backfill"] = backfill_json(done);
    }
    report
}

fn backfill_json(done: &backfill::Backfilled) -> Value {
    json!({ "column": done.column, "points": done.points, "requests": done.requests })
}

/// After a link is saved: the first sync, through the scheduler's path, gives the
/// Key Result its value.
async fn saved(
    context: &Context<'_>,
    runtime: Arc<dyn Engine>,
    kr: &KeyResult,
    conn: &ConnectionRecord,
    mut preview: crate::bindings::Measurement,
    before: TrafficReading,
    verb: &str,
) -> anyhow::Result<Report> {
    // The preview's evidence is every request made to choose and measure the
    // metric, the look-ups of app, entity, view and column included.
    super::count_everything(&mut preview, &runtime, before);
    let syncer = syncer(context, runtime, usize::MAX);
    let run = syncer.sync_new_link(kr.id).await?;
    let kr = keyresults::get_by_id(&context.db, kr.id).await?;
    ran(
        &run,
        Report {
            text: format!(
                "preview: {} ({} records)\n{} {} {verb} connection '{}'\n{}\n{}",
                render::value_text(&preview.value),
                preview.records,
                kr.kind.noun(),
                kr.id,
                conn.name,
                run_text(&run),
                value_line(&kr)
            ),
            json: json!({
                "preview": render::measurement(&preview, true).json,
                "run": run_json(&run),
                kr.kind.json_key(): kr_json(&kr),
            }),
        },
    )
}
