//! `goals-host kr ...`: Key Results, their links, Sync now, details and history.

use super::failure::{CommandFailed, UsageError};
use super::{AggregationArg, Context, CurrencyArg, wizard};
use crate::connections::{self, ConnectionRecord};
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::admin;
use crate::goals::clock::{self, Timestamp};
use crate::goals::keyresults::{self, KeyResult, Link, LinkState, NewKeyResult, Scope};
use crate::goals::linking::{self, Wanted};
use crate::goals::progress::{self, Direction, Unit};
use crate::goals::sync::{self, SyncError, SyncRun, Syncer, Trigger};
use crate::names::{aggregation_name, currency_name, view_kind_name};
use crate::outbound::TrafficReading;
use crate::render::{self, Report, table};
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UnitArg {
    /// A plain number, e.g. a count of leads
    Number,
    /// A percentage
    Percent,
    /// An amount of money, in the currency of --currency-code
    Currency,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    /// Progress as the value rises from start to target
    Increase,
    /// Progress as the value falls from start to target
    Decrease,
}

#[derive(Debug, Subcommand)]
pub enum KrCommand {
    /// Create a Key Result in the organization (--org)
    #[command(after_long_help = "Examples:
  goals-host kr create --title 'Work hot leads' --owner ana --start 0 --target 50
  goals-host --org Sales kr create --title 'Open pipeline' --owner ana \\
    --unit currency --currency-code USD --start 0 --target 5000000
  goals-host kr create --title 'Open cases' --owner ben --start 120 --target 30 \\
    --direction decrease")]
    Create {
        /// Title: 1 to 200 characters, unique in the organization
        #[arg(long)]
        title: String,
        /// Who owns the Key Result (any name, for the record)
        #[arg(long)]
        owner: String,
        /// What the value is: a plain number, a percentage or an amount of money
        #[arg(long, value_enum, default_value_t = UnitArg::Number)]
        unit: UnitArg,
        /// ISO code of a currency Key Result, e.g. EUR
        #[arg(long)]
        currency_code: Option<String>,
        /// Value at the start: 0% progress
        #[arg(long, allow_negative_numbers = true)]
        start: f64,
        /// Value to reach: 100% progress (not equal to --start)
        #[arg(long, allow_negative_numbers = true)]
        target: f64,
        /// Whether progress means the value going up or down from --start
        #[arg(long, value_enum, default_value_t = DirectionArg::Increase)]
        direction: DirectionArg,
    },
    /// List Key Results (of --org when given)
    List,
    /// Link a Key Result to a metric: with every flag, or as a wizard in a terminal.
    /// With only --connection on a linked Key Result, move it to that connection.
    #[command(after_long_help = "Examples:
  goals-host kr link 1 --connection Contoso --app 'Sales Hub' --entity opportunity \\
    --view 'Open Opportunities' --column estimatedvalue --aggregation sum --interval 1h
  goals-host kr link 'Work hot leads' --connection Contoso --app 'Sales Hub' \\
    --entity lead --view 'Hot Leads' --column fullname --aggregation count
  goals-host kr link 1                                      # the wizard asks each step
  goals-host kr link 1 --connection Contoso --interactive   # the wizard, from that connection
  goals-host kr link 1 --connection Sandbox                 # move a linked Key Result there")]
    Link(LinkArgs),
    /// Remove the Key Result's link; its value stays
    #[command(after_long_help = "Examples:
  goals-host kr unlink 1")]
    Unlink {
        /// Key Result: its id or exact title
        kr: String,
    },
    /// Stop scheduled syncs of the Key Result's link
    #[command(after_long_help = "Examples:
  goals-host kr pause 'Work hot leads'")]
    Pause {
        /// Key Result: its id or exact title
        kr: String,
    },
    /// Resume scheduled syncs (the next runs at once); a broken link is checked
    /// again first and resumes only if its view and column are there
    #[command(after_long_help = "Examples:
  goals-host kr resume 'Work hot leads'")]
    Resume {
        /// Key Result: its id or exact title
        kr: String,
    },
    /// Record a value by hand; the next sync replaces it unless the link is paused
    #[command(after_long_help = "Examples:
  goals-host kr pause 1
  goals-host kr checkin 1 42")]
    Checkin {
        /// Key Result: its id or exact title
        kr: String,
        /// The value, in the Key Result's unit (e.g. 42, or 1250000 for money)
        #[arg(allow_negative_numbers = true)]
        value: f64,
    },
    /// Sync now, through the same path as the scheduler; inside a throttle
    /// window Dataverse asked for, it says until when and sends nothing
    #[command(after_long_help = "Examples:
  goals-host kr sync 1
  goals-host --org Sales kr sync 'Open pipeline' --json")]
    Sync {
        /// Key Result: its id or exact title
        kr: String,
        /// Send even while Dataverse's Retry-After asks to wait
        #[arg(long)]
        force: bool,
    },
    /// What the integration details popover shows
    #[command(after_long_help = "Examples:
  goals-host kr show 1
  goals-host kr show 'Work hot leads' --json")]
    Show {
        /// Key Result: its id or exact title
        kr: String,
    },
    /// The Key Result's sync runs, newest first
    #[command(after_long_help = "Examples:
  goals-host kr history 1
  goals-host kr history 'Work hot leads' --limit 5 --json")]
    History {
        /// Key Result: its id or exact title
        kr: String,
        /// How many runs to show, newest first
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Key Result: its id or exact title
    pub kr: String,
    /// Connection: its exact name, in the Key Result's organization
    #[arg(long)]
    pub connection: Option<String>,
    /// App: its id, unique name or display name (any case), as `apps` lists
    #[arg(long)]
    pub app: Option<String>,
    /// Table: its logical name (e.g. opportunity) or display name, as `entities` lists
    #[arg(long)]
    pub entity: Option<String>,
    /// View: its id or name (any case), as `views` lists
    #[arg(long)]
    pub view: Option<String>,
    /// Column: its name as `columns` lists (e.g. estimatedvalue, or alias.attribute for a joined table)
    #[arg(long)]
    pub column: Option<String>,
    /// How the column's values are reduced to one number; `columns` lists those it allows
    #[arg(long, value_enum)]
    pub aggregation: Option<AggregationArg>,
    /// Currency of money results (a column that is not money ignores it)
    #[arg(long, value_enum, default_value_t = CurrencyArg::Base)]
    pub currency: CurrencyArg,
    /// Time between syncs: 1h, 30m, 90s or plain seconds, from 1 s to 31 days
    /// [default: the integration's, hourly]
    #[arg(long, value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Option<i64>,
    /// Run the wizard even when flags are given
    #[arg(long)]
    pub interactive: bool,
}

pub async fn run(context: &Context<'_>, command: &KrCommand) -> anyhow::Result<Report> {
    let db = &context.db;
    let now = context.clock.now();
    match command {
        KrCommand::Create {
            title,
            owner,
            unit,
            currency_code,
            start,
            target,
            direction,
        } => {
            let org = admin::organization(db, context.cli.org()).await?;
            let kr = keyresults::create(
                db,
                NewKeyResult {
                    organization_id: org.id,
                    title: title.clone(),
                    owner: owner.clone(),
                    unit: match unit {
                        UnitArg::Number => Unit::Number,
                        UnitArg::Percent => Unit::Percent,
                        UnitArg::Currency => Unit::Currency,
                    },
                    currency_code: currency_code.clone(),
                    start: *start,
                    target: *target,
                    direction: match direction {
                        DirectionArg::Increase => Direction::Increase,
                        DirectionArg::Decrease => Direction::Decrease,
                    },
                },
                now,
            )
            .await?;
            Ok(Report {
                text: format!("created Key Result {} '{}'", kr.id, kr.title),
                json: kr_json(&kr),
            })
        }
        KrCommand::List => {
            let org_id = match &context.cli.org {
                Some(name) => Some(admin::organization(db, name).await?.id),
                None => None,
            };
            let krs = keyresults::list(db, org_id).await?;
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
            Ok(Report {
                text: table(
                    &["ID", "ORGANIZATION", "TITLE", "OWNER", "VALUE", "PROGRESS"],
                    &krs.iter()
                        .map(|kr| {
                            vec![
                                kr.id.to_string(),
                                org_name(kr),
                                kr.title.clone(),
                                kr.owner.clone(),
                                value_text(kr),
                                progress_text(kr),
                            ]
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
        KrCommand::Link(args) => link(context, args).await,
        KrCommand::Unlink { kr } => {
            let kr = find(context, kr).await?;
            keyresults::unlink(db, kr.id, now).await?;
            Ok(Report {
                text: format!("Key Result {} is no longer linked; its value stays", kr.id),
                json: kr_json(&kr),
            })
        }
        KrCommand::Pause { kr } | KrCommand::Resume { kr } => {
            let paused = matches!(command, KrCommand::Pause { .. });
            let kr = find(context, kr).await?;
            let broken = keyresults::link(db, kr.id)
                .await?
                .is_some_and(|link| link.state == LinkState::Broken);
            if broken && !paused {
                return recheck(context, &kr).await;
            }
            let link = keyresults::set_paused(db, kr.id, paused, now).await?;
            Ok(Report {
                text: format!(
                    "Key Result {}: link {}",
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
        KrCommand::Checkin { kr, value } => {
            let kr = find(context, kr).await?;
            let kr = keyresults::check_in(db, kr.id, *value, now).await?;
            let link = keyresults::link(db, kr.id).await?;
            Ok(Report {
                text: format!(
                    "Key Result {} checked in at {}; {}",
                    kr.id,
                    value_text(&kr),
                    check_in_note(link.as_ref())
                ),
                json: kr_json(&kr),
            })
        }
        KrCommand::Sync { kr, force } => {
            let kr = find(context, kr).await?;
            if !force && let Some(until) = sync::throttled_until(db, kr.id, now).await? {
                return Err(SyncError::Throttled {
                    key_result: kr.id,
                    until,
                }
                .into());
            }
            context
                .progress
                .step(format!("syncing Key Result {} '{}'", kr.id, kr.title));
            let syncer = syncer(context, context.engine().await?, usize::MAX);
            let run = syncer.sync(kr.id, Trigger::Manual).await?;
            let kr = keyresults::get_by_id(db, kr.id).await?;
            ran(
                &run,
                Report {
                    text: format!("{}\n{}", run_text(&run), value_line(&kr)),
                    json: json!({ "run": run_json(&run), "key_result": kr_json(&kr) }),
                },
            )
        }
        KrCommand::Show { kr } => {
            let kr = find(context, kr).await?;
            details(db, now, kr.id).await
        }
        KrCommand::History { kr, limit } => {
            let kr = find(context, kr).await?;
            let runs = sync::history(db, kr.id, *limit).await?;
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

/// `--interval`: a humantime duration (`1h`, `30m`, `1h 30m`) or plain seconds,
/// within 1 s and 31 days.
pub fn parse_interval(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let seconds = match text.parse::<i64>() {
        Ok(seconds) => seconds,
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 1h, 30m or 3600"))
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))?,
    };
    if !(1..=keyresults::MAX_INTERVAL_SECONDS).contains(&seconds) {
        return Err(format!(
            "the interval must be between 1 second and 31 days, not {text}"
        ));
    }
    Ok(seconds)
}

/// The Key Result a command names, inside `--org` when it is given.
async fn find(context: &Context<'_>, reference: &str) -> anyhow::Result<KeyResult> {
    let kr = match &context.cli.org {
        Some(name) => {
            let org = admin::organization(&context.db, name).await?;
            keyresults::find(
                &context.db,
                reference,
                Scope {
                    organization: Some((org.id, &org.name)),
                },
            )
            .await?
        }
        None => keyresults::find(&context.db, reference, Scope::ALL).await?,
    };
    Ok(kr)
}

/// `kr resume` of a broken link: a sync now decides. If the view and column are
/// there again the link is active; if not it stays broken and says why.
async fn recheck(context: &Context<'_>, kr: &KeyResult) -> anyhow::Result<Report> {
    keyresults::reactivate(&context.db, kr.id, context.clock.now()).await?;
    let syncer = syncer(context, context.engine().await?, usize::MAX);
    let run = syncer.sync(kr.id, Trigger::Manual).await?;
    let link = keyresults::link(&context.db, kr.id)
        .await?
        .ok_or(keyresults::KeyResultError::NotLinked(kr.id))?;
    let report = Report {
        text: match link.state {
            LinkState::Active if run.status == "success" => format!(
                "Key Result {}: the view and column are there again; link resumed\n{}",
                kr.id,
                run_text(&run)
            ),
            _ => format!(
                "Key Result {}: link still {}: {}",
                kr.id,
                link.state.as_str(),
                link.state_reason
                    .as_deref()
                    .unwrap_or("see `goals-host kr show`")
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

async fn link(context: &Context<'_>, args: &LinkArgs) -> anyhow::Result<Report> {
    let db = &context.db;
    let kr = find(context, &args.kr).await?;
    let org = admin::organization_by_id(db, kr.organization_id).await?;
    if let Some(reason) = org.disabled_reason() {
        return Err(SyncError::Disabled(format!("{reason}; nothing was linked")).into());
    }
    let existing = keyresults::link(db, kr.id).await?;
    let runtime = context.engine().await?;
    let before = runtime.traffic();
    let flags_given = [&args.app, &args.entity, &args.view, &args.column]
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
            column: current.column.clone(),
            aggregation: current.aggregation,
            currency: current.currency,
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

    let complete = args.connection.is_some()
        && args.app.is_some()
        && args.entity.is_some()
        && args.view.is_some()
        && args.column.is_some()
        && args.aggregation.is_some();
    let (conn, chosen) = if complete && !args.interactive {
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
            column: args.column.clone().unwrap_or_default(),
            aggregation: args
                .aggregation
                .map(Into::into)
                .unwrap_or(crate::bindings::Aggregation::Count),
            currency: args.currency.into(),
        };
        let chosen = linking::choose(&runtime, &conn, &wanted).await?;
        (conn, chosen)
    } else if std::io::stdin().is_terminal() || args.interactive {
        // The wizard's prompts own the terminal.
        context.progress.finish();
        match wizard::run(db, &runtime, &org.name, args).await? {
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
            "give --connection, --app, --entity, --view, --column and --aggregation, or run \
             `goals-host kr link {}` in a terminal for the wizard",
            kr.id
        ))
        .into());
    };
    // The interval the connection's integration suggests, unless one was given.
    let interval = match args.interval {
        Some(interval) => interval,
        None => i64::from(runtime.info(&conn)?.default_sync_interval_seconds),
    };
    linking::save(db, &kr, &chosen, interval, context.clock.now()).await?;
    saved(
        context,
        runtime,
        &kr,
        &conn,
        chosen.preview,
        before,
        "linked to",
    )
    .await
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
    let run = syncer.sync(kr.id, Trigger::Manual).await?;
    let kr = keyresults::get_by_id(&context.db, kr.id).await?;
    ran(
        &run,
        Report {
            text: format!(
                "preview: {} ({} records)\nKey Result {} {verb} connection '{}'\n{}\n{}",
                render::value_text(&preview.value),
                preview.records,
                kr.id,
                conn.name,
                run_text(&run),
                value_line(&kr)
            ),
            json: json!({
                "preview": render::measurement(&preview, true).json,
                "run": run_json(&run),
                "key_result": kr_json(&kr),
            }),
        },
    )
}

/// What the integration details popover shows for a Key Result.
pub async fn details(db: &Database, now: Timestamp, key_result_id: i64) -> anyhow::Result<Report> {
    let kr = keyresults::get_by_id(db, key_result_id).await?;
    let org = admin::organization_by_id(db, kr.organization_id).await?;
    let link = keyresults::link(db, kr.id).await?;
    let mut text = vec![
        format!("Key Result {}: {} (owner {})", kr.id, kr.title, kr.owner),
        format!("  organization    {} (tenant {})", org.name, org.tenant),
        format!("  {}", value_line(&kr)),
        format!(
            "  range           {} → {} ({})",
            progress::format_value(kr.start, kr.unit, kr.currency_code.as_deref()),
            progress::format_value(kr.target, kr.unit, kr.currency_code.as_deref()),
            kr.direction.as_str()
        ),
    ];
    if kr.current_source.as_deref() == Some("check-in") {
        text.push(format!(
            "  check-in        {}",
            check_in_note(link.as_ref())
        ));
    }
    let Some(link) = link else {
        text.push("  not linked to a metric".to_string());
        return Ok(Report {
            text: text.join("\n"),
            json: json!({
                "key_result": kr_json(&kr),
                "organization": org.name,
                "link": Value::Null,
                "last_run": Value::Null,
                "stale": false,
            }),
        });
    };
    let conn = connections::get_by_id(db, &link.metric.connection_id).await?;
    let mut last_run = sync::history(db, kr.id, 1).await?.into_iter().next();
    // A run still marked running whose process is gone was interrupted: the
    // next sync (scheduled or Sync now) takes its link over and runs it again.
    if let Some(run) = &mut last_run
        && run.status == "running"
        && !run
            .owner
            .as_deref()
            .is_some_and(|owner| db.lease().is_alive(owner))
    {
        run.status = "interrupted".to_string();
    }
    let stopped = org.disabled_reason().or_else(|| match conn.status {
        connections::Status::Ok => None,
        connections::Status::NeedsSignIn => Some(format!(
            "connection '{}' needs sign-in: {}; fix: {}",
            conn.name,
            conn.status_reason
                .as_deref()
                .unwrap_or("its credential was refused"),
            conn.sign_in_command()
        )),
        connections::Status::Disabled => Some(format!(
            "connection '{}' is disabled: {}",
            conn.name,
            conn.status_reason
                .as_deref()
                .unwrap_or("an admin can enable it again")
        )),
    });
    let measured_currency = sync::last_success(db, kr.id)
        .await?
        .and_then(|run| run.currency);
    let stale = is_stale(&link, now);
    let m = &link.metric;
    text.extend([
        "Dynamics 365 link".to_string(),
        format!("  connection      {} ({})", conn.name, conn.status.as_str()),
        format!("  app             {}", m.app_name),
        format!("  entity          {} ({})", m.entity_name, m.entity),
        format!(
            "  view            {} ({})",
            m.view_name,
            view_kind_name(m.view.kind)
        ),
        format!("  column          {} ({})", m.column_display, m.column),
        format!("  aggregation     {}", aggregation_name(m.aggregation)),
        format!(
            "  currency        {}",
            match &measured_currency {
                Some(code) => format!("{code} ({} currency)", currency_name(m.currency)),
                None => "none (not an amount of money)".to_string(),
            }
        ),
        format!(
            "  state           {}",
            state_text(&link, stopped.as_deref())
        ),
        format!(
            "  interval        {}",
            humantime::format_duration(std::time::Duration::from_secs(
                link.interval_seconds.max(0) as u64
            ))
        ),
        format!(
            "  last success    {}",
            link.last_success_at
                .map(clock::format)
                .unwrap_or_else(|| "never".to_string())
        ),
        format!(
            "  last attempt    {}",
            last_run
                .as_ref()
                .map(run_text)
                .unwrap_or_else(|| "none".to_string())
        ),
        format!(
            "  next sync       {}",
            next_sync_text(&link, stopped.as_deref(), now)
        ),
        format!(
            "  stale           {}",
            if stale {
                "yes: no successful sync for more than two intervals"
            } else {
                "no"
            }
        ),
    ]);
    Ok(Report {
        text: text.join("\n"),
        json: json!({
            "key_result": kr_json(&kr),
            "organization": org.name,
            "link": link_json(&link, Some(&conn), stopped.as_deref(), measured_currency.as_deref()),
            "last_run": last_run.as_ref().map(run_json),
            "stale": stale,
        }),
    })
}

/// No successful sync for more than two intervals.
pub fn is_stale(link: &Link, now: Timestamp) -> bool {
    now.saturating_sub(link.last_success_at.unwrap_or(link.created_at))
        > link.interval_seconds.saturating_mul(2)
}

fn state_text(link: &Link, stopped: Option<&str>) -> String {
    match (link.state, stopped) {
        (LinkState::Broken, _) => format!(
            "broken: {}",
            link.state_reason.as_deref().unwrap_or("relink")
        ),
        (LinkState::Paused, _) => "paused".to_string(),
        (LinkState::Active, Some(reason)) => format!("stopped: {reason}"),
        (LinkState::Active, None) if link.failures > 0 => {
            format!("active, retrying after {} failure(s)", link.failures)
        }
        (LinkState::Active, None) => "active".to_string(),
    }
}

fn next_sync_text(link: &Link, stopped: Option<&str>, now: Timestamp) -> String {
    if link.state != LinkState::Active || stopped.is_some() {
        "none until the problem above is fixed".to_string()
    } else if link.next_run_at <= now {
        format!(
            "due since {} (the scheduler, `goals-host run`, runs it)",
            clock::format(link.next_run_at)
        )
    } else {
        clock::format(link.next_run_at)
    }
}

fn check_in_note(link: Option<&Link>) -> String {
    match link {
        Some(link) if link.state == LinkState::Paused => {
            "the link is paused, so the value stays until it is resumed".to_string()
        }
        Some(link) => format!(
            "the next sync ({}) will replace it; pause the link (`goals-host kr pause`) to keep it",
            clock::format(link.next_run_at)
        ),
        None => "not linked, so the value stays".to_string(),
    }
}

fn value_text(kr: &KeyResult) -> String {
    kr.current_value
        .map(|v| progress::format_value(v, kr.unit, kr.currency_code.as_deref()))
        .unwrap_or_else(|| "-".to_string())
}

fn raw_progress(kr: &KeyResult) -> Option<f64> {
    kr.current_value
        .and_then(|v| progress::raw_percent(kr.start, kr.target, v, kr.direction))
}

fn progress_text(kr: &KeyResult) -> String {
    match raw_progress(kr) {
        Some(raw) => format!("{:.1}%", progress::display_percent(raw)),
        None => "-".to_string(),
    }
}

fn value_line(kr: &KeyResult) -> String {
    let raw = raw_progress(kr)
        .map(|raw| format!(" (raw {raw:.1}%)"))
        .unwrap_or_default();
    format!(
        "value           {}   progress {}{raw}",
        value_text(kr),
        progress_text(kr)
    )
}

fn error_text(run: &SyncRun) -> String {
    match (&run.error_kind, &run.error_message) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(kind), None) => kind.clone(),
        _ => String::new(),
    }
}

fn run_text(run: &SyncRun) -> String {
    let outcome = match run.status.as_str() {
        "success" => format!(
            "success, value {}",
            run.value
                .map(render::format_number)
                .unwrap_or_else(|| "none".to_string())
        ),
        other => format!("{other}: {}", error_text(run)),
    };
    format!(
        "{} sync at {}: {outcome}",
        run.trigger,
        clock::format(run.started_at)
    )
}

pub fn kr_json(kr: &KeyResult) -> Value {
    let raw = raw_progress(kr);
    json!({
        "id": kr.id,
        "title": kr.title,
        "owner": kr.owner,
        "unit": kr.unit.as_str(),
        "currency": kr.currency_code,
        "start": kr.start,
        "target": kr.target,
        "direction": kr.direction.as_str(),
        "current_value": kr.current_value,
        "current_source": kr.current_source,
        "current_at": clock::json_opt(kr.current_at),
        "progress_percent": raw.map(progress::display_percent),
        "progress_raw_percent": raw,
    })
}

/// `currency` is the ISO code of the amounts the link measures (none for a
/// metric that is not money); `currency_mode` says how they are converted.
fn link_json(
    link: &Link,
    conn: Option<&ConnectionRecord>,
    stopped: Option<&str>,
    currency: Option<&str>,
) -> Value {
    let m = &link.metric;
    json!({
        "connection": conn.map(|c| c.name.clone()),
        "connection_status": conn.map(|c| c.status.as_str()),
        "app_id": m.app_id,
        "app_name": m.app_name,
        "entity_logical_name": m.entity,
        "entity_name": m.entity_name,
        "view_id": m.view.id,
        "view_name": m.view_name,
        "view_kind": view_kind_name(m.view.kind),
        "column_logical_name": m.column,
        "column_name": m.column_display,
        "aggregation": aggregation_name(m.aggregation),
        "currency": currency,
        "currency_mode": currency_name(m.currency),
        "state": link.state.as_str(),
        "state_reason": link.state_reason,
        "stopped_because": stopped,
        "interval_seconds": link.interval_seconds,
        "next_run_at": clock::json(link.next_run_at),
        "failures": link.failures,
        "last_success_at": clock::json_opt(link.last_success_at),
        "last_attempt_at": clock::json_opt(link.last_attempt_at),
    })
}

pub fn run_json(run: &SyncRun) -> Value {
    json!({
        "id": run.id,
        "trigger": run.trigger,
        "started_at": clock::json(run.started_at),
        "finished_at": clock::json_opt(run.finished_at),
        "status": run.status,
        "value": run.value,
        "currency": run.currency,
        "records": run.records,
        "requests": run.requests,
        "bytes_received": run.bytes,
        "error_kind": run.error_kind,
        "error_message": run.error_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(parse_interval("1h"), Ok(3600));
        assert_eq!(parse_interval("30m"), Ok(1800));
        assert_eq!(parse_interval("3600s"), Ok(3600));
        assert_eq!(parse_interval("90"), Ok(90));
        assert_eq!(parse_interval("1h 30m"), Ok(5400));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("32days").is_err());
        assert!(parse_interval("9223372036854775807").is_err());
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
