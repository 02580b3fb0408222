//! Choosing the metric a Key Result follows: connection → app → entity → view →
//! column → aggregation, each checked against what the plugin offers, then a
//! preview of the value before the link is saved.

use crate::bindings::{
    Aggregation, App, Chart, ChartMeasure, ChartSelection, Column, ColumnType, CurrencyChoice,
    DateWindow, Entity, Measurement, MetricSpec, MetricValue, PluginInfo, View, ViewRef,
};
use crate::connections::ConnectionRecord;
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::clock::Timestamp;
use crate::goals::keyresults::{self, ChartChoice, KeyResult, Link, MetricChoice};
use crate::goals::progress::Unit;
use crate::names::aggregation_name;
use crate::resolve;

/// What a person typed for each step (ids or exact names).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub app: String,
    pub entity: String,
    pub view: String,
    pub measure: WantedMeasure,
    pub currency: CurrencyChoice,
    /// The item's period on a date column of the view, if the link applies it.
    pub window: Option<DateWindow>,
}

/// What is measured over the view's rows: a column, or a chart's measure.
#[derive(Debug, Clone)]
pub enum WantedMeasure {
    Column {
        column: String,
        aggregation: Aggregation,
    },
    Chart {
        /// Its id or name (any case).
        chart: String,
        /// The measure's alias; may be left out when the chart has one measure.
        measure: Option<String>,
        /// Only the rows of this category ("Won", "2024-03").
        category: Option<String>,
    },
}

impl WantedMeasure {
    /// What a face was given: a chart (with its measure and category), or a
    /// column and an aggregation; `None` while neither is complete.
    pub fn from_parts(
        column: Option<&str>,
        aggregation: Option<Aggregation>,
        chart: Option<&str>,
        measure: Option<&str>,
        category: Option<&str>,
    ) -> Result<Option<WantedMeasure>, LinkError> {
        match (chart, column, aggregation) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(LinkError::ChartAndColumn),
            (Some(chart), None, None) => Ok(Some(WantedMeasure::Chart {
                chart: chart.to_string(),
                measure: measure.map(str::to_string),
                category: category.map(str::to_string),
            })),
            (None, ..) if measure.is_some() || category.is_some() => {
                Err(LinkError::ChartPartWithoutChart)
            }
            (None, Some(column), Some(aggregation)) => Ok(Some(WantedMeasure::Column {
                column: column.to_string(),
                aggregation,
            })),
            (None, ..) => Ok(None),
        }
    }
}

/// The window a link of `item` applies its period to: on `period_column` when
/// one is given, which needs the item to have a period.
pub fn window_for(
    item: &KeyResult,
    period_column: Option<&str>,
) -> Result<Option<DateWindow>, LinkError> {
    if let Some(column) = period_column
        && !item.period.is_set()
    {
        return Err(LinkError::NoPeriod {
            item: format!("{} '{}'", item.kind.noun(), item.title),
            column: column.to_string(),
            command: item.kind.command(),
        });
    }
    Ok(item.period.window(period_column))
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(
        "{item} has no period to apply to column '{column}'; give it one (`goals-host {command} \
         create ... --period-start 2024-01-01 --period-end 2024-03-31`, or the API's \
         period_start and period_end), or link without a period column"
    )]
    NoPeriod {
        item: String,
        column: String,
        command: &'static str,
    },
    #[error(
        "an interval of {interval} s is shorter than {integration} allows ({minimum} s at least, \
         to stay within the service's limits); give --interval {minimum} or longer"
    )]
    TooFrequent {
        interval: i64,
        integration: String,
        minimum: i64,
    },
    #[error("app '{app}' has no entity '{wanted}'; its entities: {}", .available.join(", "))]
    NoEntity {
        app: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error(
        "table '{entity}' has no chart '{wanted}'; its charts: {}",
        if .available.is_empty() { "none".to_string() } else { .available.join(", ") }
    )]
    NoChart {
        entity: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("chart '{chart}' has no measure '{wanted}'; its measures: {}", .available.join(", "))]
    NoMeasure {
        chart: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error(
        "chart '{chart}' has several measures; choose one with --measure (the API's \
         chart_measure): {}",
        .available.join(", ")
    )]
    MeasureNeeded {
        chart: String,
        available: Vec<String>,
    },
    #[error(
        "a chart's measure is measured as the chart defines it: give a chart (--chart, the \
         API's chart) or a column and an aggregation, not both"
    )]
    ChartAndColumn,
    #[error(
        "a measure or a category belongs to a chart: give the chart too (--chart, the API's \
         chart), or leave them out"
    )]
    ChartPartWithoutChart,
    #[error("view '{view}' has no column '{wanted}'; its columns: {}", .available.join(", "))]
    NoColumn {
        view: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{aggregation} does not apply to column '{column}'; it allows {}", .allowed.join(", "))]
    Aggregation {
        column: String,
        aggregation: &'static str,
        allowed: Vec<&'static str>,
    },
    #[error(
        "the metric is in {metric} ({mode}) but Key Result '{key_result}' is in {key_result_currency}; \
         link a view whose rows are all in {key_result_currency} with --currency transaction, or \
         create the Key Result in {metric}"
    )]
    CurrencyMismatch {
        metric: String,
        mode: &'static str,
        key_result: String,
        key_result_currency: String,
    },
    #[error(
        "Key Result '{key_result}' is an amount in {key_result_currency}, but the {aggregation} of \
         column '{column}' is not an amount of money; choose a money column, or a number Key Result"
    )]
    NotMoney {
        key_result: String,
        key_result_currency: String,
        aggregation: &'static str,
        column: String,
    },
    #[error(
        "the {aggregation} of column '{column}' is a date, and a Key Result's value must be a number; choose a count instead"
    )]
    NotANumber {
        column: String,
        aggregation: &'static str,
    },
}

pub fn find_entity(app: &App, entities: Vec<Entity>, wanted: &str) -> Result<Entity, LinkError> {
    let available: Vec<String> = entities.iter().map(|e| e.logical_name.clone()).collect();
    let lowercase = wanted.trim().to_lowercase();
    entities
        .into_iter()
        .find(|e| e.logical_name == lowercase || e.display_name.to_lowercase() == lowercase)
        .ok_or_else(|| LinkError::NoEntity {
            app: app.name.clone(),
            wanted: wanted.to_string(),
            available,
        })
}

pub fn find_column(view: &View, columns: Vec<Column>, wanted: &str) -> Result<Column, LinkError> {
    let available: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    columns
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(wanted.trim()) || c.display_name == wanted)
        .ok_or_else(|| LinkError::NoColumn {
            view: view.name.clone(),
            wanted: wanted.to_string(),
            available,
        })
}

/// The chart named by id or name (any case).
pub fn find_chart(entity: &str, charts: Vec<Chart>, wanted: &str) -> Result<Chart, LinkError> {
    let wanted = wanted.trim();
    let available: Vec<String> = charts.iter().map(|c| c.name.clone()).collect();
    charts
        .into_iter()
        .find(|c| c.id.eq_ignore_ascii_case(wanted) || c.name.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| LinkError::NoChart {
            entity: entity.to_string(),
            wanted: wanted.to_string(),
            available,
        })
}

/// The measure named by alias, or the chart's only one.
pub fn find_measure(chart: &Chart, wanted: Option<&str>) -> Result<ChartMeasure, LinkError> {
    let available = || chart.measures.iter().map(|m| m.alias.clone()).collect();
    match (wanted.map(str::trim), chart.measures.as_slice()) {
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(LinkError::MeasureNeeded {
            chart: chart.name.clone(),
            available: available(),
        }),
        (Some(wanted), measures) => measures
            .iter()
            .find(|m| m.alias.eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| LinkError::NoMeasure {
                chart: chart.name.clone(),
                wanted: wanted.to_string(),
                available: available(),
            }),
    }
}

/// A chart of `entity` and one of its measures, looked up live by what a
/// person typed.
pub async fn find_chart_measure(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    entity: &str,
    chart: &str,
    measure: Option<&str>,
) -> anyhow::Result<(Chart, ChartMeasure)> {
    let charts = runtime.list_charts(conn, entity).await?;
    let chart = find_chart(entity, charts, chart)?;
    let measure = find_measure(&chart, measure)?;
    Ok((chart, measure))
}

/// What `wanted` measures of `entity`: its column and aggregation, and the
/// chart selection when it is a chart's measure (as the chart defines it now).
pub async fn measured_as(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    entity: &str,
    wanted: &WantedMeasure,
) -> anyhow::Result<(String, Aggregation, Option<ChartSelection>)> {
    Ok(match wanted {
        WantedMeasure::Column {
            column,
            aggregation,
        } => (column.clone(), *aggregation, None),
        WantedMeasure::Chart {
            chart,
            measure,
            category,
        } => {
            let (chart, measure) =
                find_chart_measure(runtime, conn, entity, chart, measure.as_deref()).await?;
            let (column, aggregation) = (measure.column.clone(), measure.aggregation);
            let selection = ChartChoice::of(chart, measure, category.clone()).selection();
            (column, aggregation, Some(selection))
        }
    })
}

/// The column a chart's measure aggregates, as the view names it when the
/// view shows it (a chart's measure need not be one of the view's columns);
/// its one aggregation is the measure's.
pub fn chart_column(columns: &[Column], measure: &ChartMeasure) -> Column {
    let shown = columns.iter().find(|c| c.name == measure.column).cloned();
    Column {
        aggregations: vec![measure.aggregation],
        ..shown.unwrap_or_else(|| Column {
            name: measure.column.clone(),
            display_name: measure.column.clone(),
            column_type: ColumnType::Other,
            aggregations: Vec::new(),
        })
    }
}

pub fn check_aggregation(column: &Column, aggregation: Aggregation) -> Result<(), LinkError> {
    if column.aggregations.contains(&aggregation) {
        Ok(())
    } else {
        Err(LinkError::Aggregation {
            column: column.name.clone(),
            aggregation: aggregation_name(aggregation),
            allowed: column
                .aggregations
                .iter()
                .map(|a| aggregation_name(*a))
                .collect(),
        })
    }
}

/// Saves the chosen metric as the Key Result's link, due at once. A metric
/// whose amounts are in another currency than the Key Result's is refused here,
/// whichever face links it: a total in USD must never be shown as euros.
pub async fn save(
    db: &Database,
    kr: &KeyResult,
    chosen: &Chosen,
    interval_seconds: i64,
    now: Timestamp,
) -> anyhow::Result<Link> {
    check_currency(kr, chosen)?;
    Ok(keyresults::save_link(db, kr.id, chosen.metric.clone(), interval_seconds, now).await?)
}

/// The interval a new link syncs at: the one asked for, else the one its
/// integration suggests, checked against the integration's minimum.
pub fn interval_for(
    integration: &PluginInfo,
    conn: &ConnectionRecord,
    asked: Option<i64>,
) -> Result<i64, LinkError> {
    let interval = asked.unwrap_or(i64::from(integration.default_sync_interval_seconds));
    check_interval(integration, conn, interval)?;
    Ok(interval)
}

/// The interval a link may sync at: no shorter than its integration's minimum.
/// A connection to a simulator (added with --allow-loopback, for tests and
/// demos) protects no real service, so it may sync as often as a test needs.
pub fn check_interval(
    integration: &PluginInfo,
    conn: &ConnectionRecord,
    interval_seconds: i64,
) -> Result<(), LinkError> {
    let minimum = i64::from(integration.min_sync_interval_seconds);
    if interval_seconds < minimum && !conn.allow_loopback {
        return Err(LinkError::TooFrequent {
            interval: interval_seconds,
            integration: integration.name.clone(),
            minimum,
        });
    }
    Ok(())
}

fn check_currency(kr: &KeyResult, chosen: &Chosen) -> Result<(), LinkError> {
    let (Unit::Currency, Some(wanted)) = (kr.unit, kr.currency_code.as_deref()) else {
        return Ok(());
    };
    match chosen.preview.currency.as_deref() {
        Some(metric) if metric.eq_ignore_ascii_case(wanted) => Ok(()),
        Some(metric) => Err(LinkError::CurrencyMismatch {
            metric: metric.to_string(),
            mode: match chosen.metric.currency {
                CurrencyChoice::Base => "the organization's base currency",
                CurrencyChoice::Transaction => "the rows' transaction currency",
            },
            key_result: kr.title.clone(),
            key_result_currency: wanted.to_string(),
        }),
        None => Err(LinkError::NotMoney {
            key_result: kr.title.clone(),
            key_result_currency: wanted.to_string(),
            aggregation: aggregation_name(chosen.metric.aggregation),
            column: chosen.metric.column.clone(),
        }),
    }
}

/// The chosen metric, and its value measured now.
pub struct Chosen {
    pub metric: MetricChoice,
    pub preview: Measurement,
}

/// The pieces picked so far.
pub struct Pieces<'a> {
    pub app: &'a App,
    pub entity: &'a Entity,
    pub view: &'a View,
    pub column: &'a Column,
}

/// Measures the metric the pieces describe and refuses what cannot be a Key
/// Result's value.
pub async fn preview(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    pieces: Pieces<'_>,
    aggregation: Aggregation,
    currency: CurrencyChoice,
    window: Option<&DateWindow>,
    chart: Option<ChartChoice>,
) -> anyhow::Result<Chosen> {
    let Pieces {
        app,
        entity,
        view,
        column,
    } = pieces;
    check_aggregation(column, aggregation)?;
    let view_ref = ViewRef {
        id: view.id.clone(),
        kind: view.kind,
    };
    let spec = MetricSpec {
        entity: entity.logical_name.clone(),
        view: view_ref.clone(),
        column: column.name.clone(),
        aggregation,
        currency,
    };
    let metric = MetricChoice {
        connection_id: conn.id.clone(),
        app_id: app.id.clone(),
        app_name: app.name.clone(),
        entity: entity.logical_name.clone(),
        entity_name: entity.display_name.clone(),
        view: view_ref,
        view_name: view.name.clone(),
        column: column.name.clone(),
        column_display: column.display_name.clone(),
        aggregation,
        currency,
        period_column: window.map(|w| w.column.clone()),
        chart,
    };
    let measurement = runtime
        .fetch_and_aggregate_within(
            conn,
            &spec,
            window.map(std::slice::from_ref).unwrap_or_default(),
            metric.chart_selection().as_ref(),
        )
        .await?;
    if matches!(measurement.value, Some(MetricValue::DateTime(_))) {
        return Err(LinkError::NotANumber {
            column: column.name.clone(),
            aggregation: aggregation_name(aggregation),
        }
        .into());
    }
    Ok(Chosen {
        metric,
        preview: measurement,
    })
}

/// Every step from what was typed, checked against the live lists.
pub async fn choose(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    wanted: &Wanted,
) -> anyhow::Result<Chosen> {
    let app = resolve::app(runtime, conn, &wanted.app).await?;
    let entities = runtime.list_entities(conn, &app.id).await?;
    let entity = find_entity(&app, entities, &wanted.entity)?;
    let view = resolve::view(runtime, conn, &entity.logical_name, &wanted.view).await?;
    let columns = runtime
        .list_columns(
            conn,
            &entity.logical_name,
            &ViewRef {
                id: view.id.clone(),
                kind: view.kind,
            },
        )
        .await?;
    let (column, aggregation, chart) = match &wanted.measure {
        WantedMeasure::Column {
            column,
            aggregation,
        } => (find_column(&view, columns, column)?, *aggregation, None),
        WantedMeasure::Chart {
            chart,
            measure,
            category,
        } => {
            let (chart, measure) = find_chart_measure(
                runtime,
                conn,
                &entity.logical_name,
                chart,
                measure.as_deref(),
            )
            .await?;
            let column = chart_column(&columns, &measure);
            let aggregation = measure.aggregation;
            (
                column,
                aggregation,
                Some(ChartChoice::of(chart, measure, category.clone())),
            )
        }
    };
    preview(
        runtime,
        conn,
        Pieces {
            app: &app,
            entity: &entity,
            view: &view,
            column: &column,
        },
        aggregation,
        wanted.currency,
        wanted.window.as_ref(),
        chart,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::CredentialKind;
    use crate::connections::{SignIn, Status};

    fn integration(minimum: u32) -> PluginInfo {
        PluginInfo {
            id: "test.crm".to_string(),
            name: "Test CRM".to_string(),
            version: "1.0.0".to_string(),
            settings: Vec::new(),
            credentials: vec![CredentialKind::ClientSecret],
            default_sync_interval_seconds: 3600,
            min_sync_interval_seconds: minimum,
            max_concurrent_per_connection: 1,
            aggregations: Vec::new(),
        }
    }

    fn connection(allow_loopback: bool) -> ConnectionRecord {
        ConnectionRecord {
            id: "c".to_string(),
            organization_id: 1,
            organization: "default".to_string(),
            added_by: String::new(),
            status: Status::Ok,
            status_reason: None,
            name: "crm".to_string(),
            integration: "test.crm".to_string(),
            settings: Vec::new(),
            origins: Vec::new(),
            sign_in: SignIn::ClientSecret,
            secret: None,
            key_lost: false,
            allow_loopback,
            created_at: 0,
        }
    }

    #[test]
    fn an_interval_below_the_integrations_minimum_is_refused_naming_it() {
        let refused = check_interval(&integration(300), &connection(false), 60).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("60 s")
                && message.contains("Test CRM")
                && message.contains("--interval 300"),
            "{message}"
        );
        assert!(check_interval(&integration(300), &connection(false), 300).is_ok());
        assert!(check_interval(&integration(0), &connection(false), 1).is_ok());
        // A simulator's connection may sync as often as a test needs.
        assert!(check_interval(&integration(300), &connection(true), 1).is_ok());
    }
}
