//! A Key Result as people and scripts see it: the details popover, its runs,
//! and their JSON. Shared by the CLI and the demo.

use crate::connections::{self, ConnectionRecord};
use crate::db::Database;
use crate::goals::admin;
use crate::goals::clock::{self, Timestamp};
use crate::goals::keyresults::{self, ItemKind, KeyResult, Link, LinkState};
use crate::goals::progress::{self};
use crate::goals::sync::{self, SyncRun};
use crate::names::{aggregation_name, currency_name, view_kind_name};
use crate::render::{self, Report};
use serde_json::{Value, json};

/// What the integration details popover shows for a Key Result or Project;
/// its JSON names the item by its kind (`key_result` or `project`).
pub async fn details(db: &Database, now: Timestamp, key_result_id: i64) -> anyhow::Result<Report> {
    let kr = keyresults::get_by_id(db, key_result_id).await?;
    let org = admin::organization_by_id(db, kr.organization_id).await?;
    let link = keyresults::link(db, kr.id).await?;
    let mut text = vec![
        format!(
            "{} {}: {} (owner {})",
            kr.kind.noun(),
            kr.id,
            kr.title,
            kr.owner
        ),
        format!("  organization    {} (tenant {})", org.name, org.tenant),
        format!("  {}", value_line(&kr)),
        format!(
            "  range           {} → {} ({})",
            progress::format_value(kr.start, kr.unit, kr.currency_code.as_deref()),
            progress::format_value(kr.target, kr.unit, kr.currency_code.as_deref()),
            kr.direction.as_str()
        ),
    ];
    if let Some(parent_id) = kr.parent_id {
        let parent = keyresults::get_by_id(db, parent_id)
            .await
            .map(|parent| format!("Key Result {parent_id}: {}", parent.title))
            .unwrap_or_else(|_| format!("Key Result {parent_id}"));
        text.push(format!("  parent          {parent}"));
    }
    if let Some(due) = &kr.due_date {
        text.push(format!("  due             {due}"));
    }
    if kr.period.is_set() {
        text.push(format!(
            "  period          {} → {}",
            kr.period.start.as_deref().unwrap_or("…"),
            kr.period.end.as_deref().unwrap_or("…")
        ));
    }
    if kr.current_source.as_deref() == Some("check-in") {
        text.push(format!(
            "  check-in        {}",
            check_in_note(kr.kind, link.as_ref())
        ));
    }
    let Some(link) = link else {
        text.push("  not linked to a metric".to_string());
        return Ok(Report {
            text: text.join("\n"),
            json: json!({
                kr.kind.json_key(): kr_json(&kr),
                "organization": org.name,
                "link": Value::Null,
                "last_run": Value::Null,
                "stale": false,
            }),
        });
    };
    let conn = connections::get_by_id(db, &link.metric.connection_id).await?;
    let mut last_run = sync::history(db, kr.id, 1, None).await?.into_iter().next();
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
    let backfilled = sync::backfilled_points(db, kr.id).await?;
    let m = &link.metric;
    text.extend([
        "link".to_string(),
        format!("  integration     {}", conn.integration),
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
    ]);
    if let Some(chart) = &m.chart {
        text.push(format!(
            "  chart           {} ({}), measure {}{}",
            chart.name,
            view_kind_name(chart.kind),
            chart.measure,
            match &chart.category {
                Some(category) => format!(", only category {category}"),
                None => String::new(),
            }
        ));
    }
    text.extend([
        format!(
            "  period on       {}",
            match (&m.period_column, kr.period.is_set()) {
                (Some(column), true) => format!("{column}: only rows dated within the period"),
                (Some(column), false) => format!("{column}, but no period is set: every row"),
                (None, _) => "none: every row of the view".to_string(),
            }
        ),
        format!(
            "  history         {}",
            match backfilled {
                0 => "from the syncs".to_string(),
                points => format!(
                    "{points} points back-filled when linked: today's rows by creation date \
                     (rows deleted or edited since cannot be seen), then the syncs"
                ),
            }
        ),
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
            kr.kind.json_key(): kr_json(&kr),
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

pub fn state_text(link: &Link, stopped: Option<&str>) -> String {
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

pub fn next_sync_text(link: &Link, stopped: Option<&str>, now: Timestamp) -> String {
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

pub fn check_in_note(kind: ItemKind, link: Option<&Link>) -> String {
    match link {
        Some(link) if link.state == LinkState::Paused => {
            "the link is paused, so the value stays until it is resumed".to_string()
        }
        Some(link) => format!(
            "the next sync ({}) will replace it; pause the link (`goals-host {} pause`) to keep it",
            clock::format(link.next_run_at),
            kind.command()
        ),
        None => "not linked, so the value stays".to_string(),
    }
}

pub fn value_text(kr: &KeyResult) -> String {
    kr.current_value
        .map(|v| progress::format_value(v, kr.unit, kr.currency_code.as_deref()))
        .unwrap_or_else(|| "-".to_string())
}

pub fn raw_progress(kr: &KeyResult) -> Option<f64> {
    kr.current_value
        .and_then(|v| progress::raw_percent(kr.start, kr.target, v, kr.direction))
}

pub fn progress_text(kr: &KeyResult) -> String {
    match raw_progress(kr) {
        Some(raw) => format!("{:.1}%", progress::display_percent(raw)),
        None => "-".to_string(),
    }
}

pub fn value_line(kr: &KeyResult) -> String {
    let raw = raw_progress(kr)
        .map(|raw| format!(" (raw {raw:.1}%)"))
        .unwrap_or_default();
    format!(
        "value           {}   progress {}{raw}",
        value_text(kr),
        progress_text(kr)
    )
}

pub fn error_text(run: &SyncRun) -> String {
    match (&run.error_kind, &run.error_message) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(kind), None) => kind.clone(),
        _ => String::new(),
    }
}

pub fn run_text(run: &SyncRun) -> String {
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
        "kind": kr.kind.as_str(),
        "title": kr.title,
        "owner": kr.owner,
        "parent_id": kr.parent_id,
        "due_date": kr.due_date,
        "period_start": kr.period.start,
        "period_end": kr.period.end,
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
pub fn link_json(
    link: &Link,
    conn: Option<&ConnectionRecord>,
    stopped: Option<&str>,
    currency: Option<&str>,
) -> Value {
    let m = &link.metric;
    json!({
        "connection_id": m.connection_id,
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
        "period_column": m.period_column,
        "chart": m.chart.as_ref().map(|chart| json!({
            "id": chart.id,
            "name": chart.name,
            "kind": view_kind_name(chart.kind),
            "measure": chart.measure,
            "category": chart.category,
        })),
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
        "backfilled": run.backfilled,
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
