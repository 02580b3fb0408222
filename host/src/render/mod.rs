//! Presenting plugin results to people (text) and programs (JSON).

pub mod keyresult;

use crate::bindings::{
    App, Chart, ChartMeasure, Column, DateGrouping, Entity, Identity, Measurement, MetricValue,
    PluginInfo, View,
};
use crate::connections::{ConnectionRecord, SignIn};
use serde_json::{Value, json};

/// A command's result in both forms.
pub struct Report {
    pub text: String,
    pub json: Value,
}

pub use crate::names::{
    aggregation_name, column_type_name, credential_name, setting_kind_name, view_kind_name,
};

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A tenant in JSON, for the CLI and the API.
pub fn tenant(tenant: &crate::goals::admin::Tenant) -> Value {
    json!({ "id": tenant.id, "name": tenant.name, "integration_enabled": tenant.integration_enabled })
}

/// An organization in JSON, for the CLI and the API.
pub fn organization(org: &crate::goals::admin::Organization) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "tenant": org.tenant,
        "integration_enabled": org.integration_enabled,
        "tenant_integration_enabled": org.tenant_integration_enabled,
        "syncs_run": org.disabled_reason().is_none(),
        "disabled_reason": org.disabled_reason(),
    })
}

pub fn connection(record: &ConnectionRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "organization": record.organization,
        "added_by": record.added_by,
        "status": record.status.as_str(),
        "status_reason": record.status_reason,
        "integration": record.integration,
        "sign_in": match record.sign_in {
            SignIn::ClientSecret => "secret",
            SignIn::DeviceCode => "device",
            SignIn::ApiKey => "api-key",
            SignIn::Certificate => "certificate",
        },
        "url": record.url(),
        "settings": record
            .settings
            .iter()
            .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
            .collect::<serde_json::Map<_, _>>(),
        "origins": record.origins,
        "allow_loopback": record.allow_loopback,
        "created_at": crate::goals::clock::json(record.created_at),
    })
}

pub fn connections(records: &[ConnectionRecord]) -> Report {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.organization.clone(),
                c.status.as_str().to_string(),
                c.integration.clone(),
                c.url().to_string(),
            ]
        })
        .collect();
    Report {
        text: if records.is_empty() {
            "no connections; add one with `goals-host connection add`".to_string()
        } else {
            table(
                &["NAME", "ORGANIZATION", "STATUS", "INTEGRATION", "URL"],
                &rows,
            )
        },
        json: Value::Array(records.iter().map(connection).collect()),
    }
}

pub fn info(info: &PluginInfo) -> Report {
    let aggregations: Vec<&str> = info
        .aggregations
        .iter()
        .map(|a| aggregation_name(*a))
        .collect();
    let credentials: Vec<&str> = info
        .credentials
        .iter()
        .map(|c| credential_name(*c))
        .collect();
    let settings: Vec<String> = info
        .settings
        .iter()
        .map(|s| {
            let need = match (&s.default_value, s.required) {
                (Some(default), _) => format!("default {default}"),
                (None, true) => "required".to_string(),
                (None, false) => "optional".to_string(),
            };
            format!("{} ({}, {need})", s.key, setting_kind_name(s.kind))
        })
        .collect();
    Report {
        text: format!(
            "{} {} ({})
sync interval       {} s (at least {} s)
concurrency limit   {} per \
             connection
aggregations        {}
settings            {}
credentials         {}",
            info.name,
            info.version,
            info.id,
            info.default_sync_interval_seconds,
            info.min_sync_interval_seconds,
            info.max_concurrent_per_connection,
            aggregations.join(", "),
            settings.join(", "),
            credentials.join(", ")
        ),
        json: json!({
            "id": info.id,
            "name": info.name,
            "version": info.version,
            "default_sync_interval_seconds": info.default_sync_interval_seconds,
            "min_sync_interval_seconds": info.min_sync_interval_seconds,
            "max_concurrent_per_connection": info.max_concurrent_per_connection,
            "aggregations": aggregations,
            "settings": info.settings.iter().map(|s| json!({
                "key": s.key,
                "label": s.label,
                "help": s.help,
                "kind": setting_kind_name(s.kind),
                "required": s.required,
                "default": s.default_value,
            })).collect::<Vec<_>>(),
            "credentials": credentials,
        }),
    }
}

/// A connection just added, with whom its credentials signed in as (null when
/// they were not tried).
pub fn connection_added(record: &ConnectionRecord, identity: Option<&Identity>) -> Value {
    let mut json = connection(record);
    json["verified_as"] = match identity {
        Some(identity) => json!({
            "user_id": identity.user_id,
            "environment_id": identity.environment_id,
        }),
        None => Value::Null,
    };
    json
}

/// Whom a connection reaches as (`connection test`, `POST .../test`).
pub fn identity(record: &ConnectionRecord, identity: &Identity) -> Value {
    json!({
        "connection": record.name,
        "url": record.url(),
        "user_id": identity.user_id,
        "environment_id": identity.environment_id,
        "details": identity
            .details
            .iter()
            .map(|(label, value)| json!({"label": label, "value": value}))
            .collect::<Vec<_>>(),
    })
}

/// `" (organization …, business unit …)"`: what an identity tells besides the user.
pub fn identity_facts(identity: &Identity) -> String {
    let facts: Vec<String> = identity
        .environment_id
        .iter()
        .map(|id| format!("environment {id}"))
        .chain(
            identity
                .details
                .iter()
                .map(|(label, value)| format!("{} {value}", label.to_lowercase())),
        )
        .collect();
    if facts.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.join(", "))
    }
}

pub fn apps(apps: &[App]) -> Report {
    Report {
        text: table(
            &["NAME", "UNIQUE NAME", "ID"],
            &apps
                .iter()
                .map(|a| vec![a.name.clone(), a.unique_name.clone(), a.id.clone()])
                .collect::<Vec<_>>(),
        ),
        json: Value::Array(
            apps.iter()
                .map(|a| {
                    json!({
                        "id": a.id,
                        "name": a.name,
                        "unique_name": a.unique_name,
                        "description": a.description,
                    })
                })
                .collect(),
        ),
    }
}

pub fn entities(entities: &[Entity]) -> Report {
    Report {
        text: table(
            &["LOGICAL NAME", "DISPLAY NAME"],
            &entities
                .iter()
                .map(|e| vec![e.logical_name.clone(), e.display_name.clone()])
                .collect::<Vec<_>>(),
        ),
        json: Value::Array(
            entities
                .iter()
                .map(|e| json!({ "logical_name": e.logical_name, "name": e.display_name }))
                .collect(),
        ),
    }
}

pub fn views(views: &[View]) -> Report {
    Report {
        text: if views.is_empty() {
            "no views match".to_string()
        } else {
            table(
                &["NAME", "KIND", "DEFAULT", "ID"],
                &views
                    .iter()
                    .map(|v| {
                        vec![
                            v.name.clone(),
                            view_kind_name(v.kind).to_string(),
                            if v.is_default { "yes" } else { "" }.to_string(),
                            v.id.clone(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        },
        json: Value::Array(
            views
                .iter()
                .map(|v| {
                    json!({
                        "id": v.id,
                        "name": v.name,
                        "kind": view_kind_name(v.kind),
                        "is_default": v.is_default,
                    })
                })
                .collect(),
        ),
    }
}

pub fn charts(charts: &[Chart]) -> Report {
    let measure_text = |m: &ChartMeasure| {
        format!(
            "{} = {} of {}",
            m.alias,
            aggregation_name(m.aggregation),
            m.column
        )
    };
    let category_text = |chart: &Chart| match &chart.category {
        None => String::new(),
        Some(c) => match c.date_grouping {
            None => c.column.clone(),
            Some(grouping) => format!("{} by {}", c.column, date_grouping_name(grouping)),
        },
    };
    Report {
        text: if charts.is_empty() {
            "no charts".to_string()
        } else {
            table(
                &["NAME", "KIND", "MEASURES", "CATEGORY", "ID"],
                &charts
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            view_kind_name(c.kind).to_string(),
                            c.measures
                                .iter()
                                .map(measure_text)
                                .collect::<Vec<_>>()
                                .join("; "),
                            category_text(c),
                            c.id.clone(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        },
        json: Value::Array(
            charts
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "name": c.name,
                        "kind": view_kind_name(c.kind),
                        "measures": c.measures.iter().map(|m| json!({
                            "alias": m.alias,
                            "column": m.column,
                            "aggregation": aggregation_name(m.aggregation),
                        })).collect::<Vec<_>>(),
                        "category": c.category.as_ref().map(|category| json!({
                            "column": category.column,
                            "date_grouping": category.date_grouping.map(date_grouping_name),
                        })),
                    })
                })
                .collect(),
        ),
    }
}

/// How a chart groups dates, as the CLI and the API write it.
pub fn date_grouping_name(grouping: DateGrouping) -> &'static str {
    match grouping {
        DateGrouping::Day => "day",
        DateGrouping::Week => "week",
        DateGrouping::Month => "month",
        DateGrouping::Quarter => "quarter",
        DateGrouping::Year => "year",
        DateGrouping::FiscalPeriod => "fiscal-period",
        DateGrouping::FiscalYear => "fiscal-year",
    }
}

pub fn columns(columns: &[Column]) -> Report {
    let names = |c: &Column| -> Vec<&'static str> {
        c.aggregations
            .iter()
            .map(|a| aggregation_name(*a))
            .collect()
    };
    Report {
        text: table(
            &["NAME", "DISPLAY NAME", "TYPE", "AGGREGATIONS"],
            &columns
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.display_name.clone(),
                        column_type_name(c.column_type).to_string(),
                        names(c).join(", "),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        json: Value::Array(
            columns
                .iter()
                .map(|c| {
                    json!({
                        // A column is identified by its cell name (`attribute`
                        // or `alias.attribute`), which `--column` takes.
                        "logical_name": c.name,
                        "name": c.display_name,
                        "type": column_type_name(c.column_type),
                        "aggregations": names(c),
                    })
                })
                .collect(),
        ),
    }
}

pub fn value_text(value: &Option<MetricValue>) -> String {
    match value {
        Some(MetricValue::Number(n)) => format_number(*n),
        Some(MetricValue::DateTime(text)) => text.clone(),
        None => "no value (the column is empty in every row)".to_string(),
    }
}

pub use crate::numbers::{format_number, format_number_fixed};

/// A measurement; the query it ran is in the JSON always, in the text only when
/// asked for (`-v`): FetchXML is for auditing, not for reading every time.
pub fn measurement(m: &Measurement, show_query: bool) -> Report {
    let value = match &m.value {
        Some(MetricValue::Number(n)) => json!(n),
        Some(MetricValue::DateTime(text)) => json!(text),
        None => Value::Null,
    };
    let value_type = match &m.value {
        Some(MetricValue::Number(_)) => "number",
        Some(MetricValue::DateTime(_)) => "date-time",
        None => "none",
    };
    Report {
        text: {
            let mut text = format!(
                "value      {}\ncurrency   {}\nrecords    {}\nrequests   {}\nreceived   {} bytes",
                value_text(&m.value),
                m.currency
                    .as_deref()
                    .unwrap_or("none (not an amount of money)"),
                m.records,
                m.requests,
                m.bytes_received,
            );
            if show_query {
                text.push_str(&format!(
                    "\nquery      {}",
                    m.query.replace('\n', "\n           ")
                ));
            }
            text
        },
        json: json!({
            "value": value,
            "value_type": value_type,
            "currency": m.currency,
            "records": m.records,
            "requests": m.requests,
            "bytes_received": m.bytes_received,
            "query": m.query,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "".into()]],
        );
        assert_eq!(text, "A    BB\nxxx  y\nz");
    }
}
