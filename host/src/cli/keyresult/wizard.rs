//! The interactive link wizard: connection → app → entity → view (searched by
//! name) → column → aggregation, each a pick list fetched live from the plugin,
//! then a preview of the value before anything is saved. The column step also
//! offers the measures of the table's charts (then a category instead of an
//! aggregation). Steps given as flags are not asked again.

use super::args::LinkArgs;
use crate::bindings::{
    Aggregation, Chart, ChartMeasure, Column, ColumnType, CurrencyChoice, DateWindow, ViewRef,
};
use crate::connections::{self, ConnectionRecord};
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::keyresults::{ChartChoice, Period};
use crate::goals::linking::{self, Chosen, Pieces};
use crate::names::{aggregation_name, column_type_name, view_kind_name};
use crate::render;
use crate::resolve;
use anyhow::Context as _;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, FuzzySelect, Input};

fn pick(theme: &ColorfulTheme, prompt: &str, items: &[String]) -> anyhow::Result<usize> {
    anyhow::ensure!(!items.is_empty(), "nothing to choose from for {prompt}");
    FuzzySelect::with_theme(theme)
        .with_prompt(prompt)
        .items(items)
        .default(0)
        .interact()
        .with_context(|| format!("reading the choice of {prompt}"))
}

/// What the column step picked: one of the view's columns, or a chart's measure.
enum Picked {
    Column(Column),
    Chart(Chart, ChartMeasure),
}

/// Walks the steps; `None` when the person declines to save.
pub async fn run(
    db: &Database,
    runtime: &dyn Engine,
    organization: &str,
    args: &LinkArgs,
    period: &Period,
    window: Option<&DateWindow>,
) -> anyhow::Result<Option<(ConnectionRecord, Chosen)>> {
    let theme = ColorfulTheme::default();

    let conn = match &args.connection {
        Some(name) => connections::get(db, name, Some(organization)).await?,
        None => {
            let mut all = connections::list(db, Some(organization)).await?;
            let names: Vec<String> = all
                .iter()
                .map(|c| format!("{} ({})", c.name, c.url()))
                .collect();
            all.swap_remove(pick(&theme, "Connection", &names)?)
        }
    };

    let mut apps = runtime.list_apps(&conn).await?;
    let app = match &args.app {
        Some(wanted) => resolve::pick_app(apps, wanted)?,
        None => {
            let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
            apps.swap_remove(pick(&theme, "App", &names)?)
        }
    };

    let mut entities = runtime.list_entities(&conn, &app.id).await?;
    let entity = match &args.entity {
        Some(wanted) => linking::find_entity(&app, entities, wanted)?,
        None => {
            let names: Vec<String> = entities
                .iter()
                .map(|e| format!("{} ({})", e.display_name, e.logical_name))
                .collect();
            entities.swap_remove(pick(&theme, "Entity", &names)?)
        }
    };

    let view = match &args.view {
        Some(wanted) => resolve::view(runtime, &conn, &entity.logical_name, wanted).await?,
        None => loop {
            let search: String = Input::with_theme(&theme)
                .with_prompt("Search views by name (empty for all)")
                .allow_empty(true)
                .interact_text()
                .context("reading the view search")?;
            let search = search.trim();
            let mut views = runtime
                .list_views(
                    &conn,
                    &entity.logical_name,
                    (!search.is_empty()).then_some(search),
                )
                .await?;
            if views.is_empty() {
                eprintln!("No view of {} matches '{search}'.", entity.display_name);
                continue;
            }
            let names: Vec<String> = views
                .iter()
                .map(|v| format!("{} ({})", v.name, view_kind_name(v.kind)))
                .collect();
            break views.swap_remove(pick(&theme, "View", &names)?);
        },
    };

    let mut columns = runtime
        .list_columns(
            &conn,
            &entity.logical_name,
            &ViewRef {
                id: view.id.clone(),
                kind: view.kind,
            },
        )
        .await?;
    // The view's own date columns, which the item's period may apply to.
    let date_columns: Vec<(String, String)> = columns
        .iter()
        .filter(|c| c.column_type == ColumnType::DateTime && !c.name.contains('.'))
        .map(|c| (c.name.clone(), c.display_name.clone()))
        .collect();
    let picked = match (&args.chart, &args.column) {
        (Some(wanted), _) => {
            let (chart, measure) = linking::find_chart_measure(
                runtime,
                &conn,
                &entity.logical_name,
                wanted,
                args.measure.as_deref(),
            )
            .await?;
            Picked::Chart(chart, measure)
        }
        (None, Some(wanted)) => {
            Picked::Column(linking::find_column(&view, columns.clone(), wanted)?)
        }
        (None, None) => {
            let charts = runtime.list_charts(&conn, &entity.logical_name).await?;
            let mut measures: Vec<(Chart, ChartMeasure)> = charts
                .iter()
                .flat_map(|chart| chart.measures.iter().map(|m| (chart.clone(), m.clone())))
                .collect();
            let mut names: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}, {})",
                        c.display_name,
                        c.name,
                        column_type_name(c.column_type)
                    )
                })
                .collect();
            names.extend(measures.iter().map(|(chart, m)| {
                format!(
                    "chart '{}': {} of {} ({})",
                    chart.name,
                    aggregation_name(m.aggregation),
                    m.column,
                    m.alias
                )
            }));
            let at = pick(&theme, "Column", &names)?;
            if at < columns.len() {
                Picked::Column(columns.swap_remove(at))
            } else {
                let (chart, measure) = measures.swap_remove(at - columns.len());
                Picked::Chart(chart, measure)
            }
        }
    };

    let (column, aggregation, chart) = match picked {
        Picked::Column(column) => {
            let aggregation = match args.aggregation {
                Some(given) => given.into(),
                None => pick_aggregation(&theme, &column)?,
            };
            (column, aggregation, None)
        }
        Picked::Chart(chart, measure) => {
            let category = match (&args.category, &chart.category) {
                (Some(given), _) => Some(given.clone()),
                (None, Some(category)) if args.chart.is_none() => {
                    let given: String = Input::with_theme(&theme)
                        .with_prompt(format!(
                            "Only one category of {} (empty for every row)",
                            category.column
                        ))
                        .allow_empty(true)
                        .interact_text()
                        .context("reading the category")?;
                    Some(given.trim().to_string()).filter(|given| !given.is_empty())
                }
                _ => None,
            };
            let column = linking::chart_column(&columns, &measure);
            let aggregation = measure.aggregation;
            (
                column,
                aggregation,
                Some(ChartChoice::of(chart, measure, category)),
            )
        }
    };
    let amount = column.column_type == ColumnType::Money
        && matches!(
            aggregation,
            Aggregation::Sum | Aggregation::Average | Aggregation::Min | Aggregation::Max
        );
    let currency = if amount && args.aggregation.is_none() && chart.is_none() {
        let choices = [
            "organization's base currency".to_string(),
            "the rows' own currency (all rows must share it)".to_string(),
        ];
        match pick(&theme, "Currency", &choices)? {
            0 => CurrencyChoice::Base,
            _ => CurrencyChoice::Transaction,
        }
    } else {
        args.currency.into()
    };

    // With a period and no --period-column, ask which date it applies to.
    let asked =
        match window {
            None if period.is_set() && !date_columns.is_empty() => {
                let span = format!(
                    "{} → {}",
                    period.start.as_deref().unwrap_or("…"),
                    period.end.as_deref().unwrap_or("…")
                );
                let mut choices = vec!["every row of the view (no period)".to_string()];
                choices.extend(date_columns.iter().map(|(name, display)| {
                    format!("rows whose {display} ({name}) is within {span}")
                }));
                match pick(&theme, "Period", &choices)? {
                    0 => None,
                    at => period.window(date_columns.get(at - 1).map(|(name, _)| name.as_str())),
                }
            }
            _ => None,
        };
    let window = window.or(asked.as_ref());

    let chosen = linking::preview(
        runtime,
        &conn,
        Pieces {
            app: &app,
            entity: &entity,
            view: &view,
            column: &column,
        },
        aggregation,
        currency,
        window,
        chart.clone(),
    )
    .await?;
    let of_chart = chart
        .map(|chart| match chart.category {
            Some(category) => format!(" (chart '{}', category {category})", chart.name),
            None => format!(" (chart '{}')", chart.name),
        })
        .unwrap_or_default();
    eprintln!(
        "Preview: {} of {}{of_chart} in '{}' = {}{} ({} records)",
        aggregation_name(aggregation),
        column.display_name,
        view.name,
        render::value_text(&chosen.preview.value),
        chosen
            .preview
            .currency
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default(),
        chosen.preview.records
    );
    let save = Confirm::with_theme(&theme)
        .with_prompt("Save this link?")
        .default(true)
        .interact()
        .context("reading the confirmation")?;
    Ok(save.then_some((conn, chosen)))
}

/// Asks for an aggregation of `column`; a Key Result's value is a number, so a
/// date column only offers counts.
fn pick_aggregation(theme: &ColorfulTheme, column: &Column) -> anyhow::Result<Aggregation> {
    let usable: Vec<Aggregation> = column
        .aggregations
        .iter()
        .copied()
        .filter(|a| {
            column.column_type != ColumnType::DateTime
                || matches!(
                    a,
                    Aggregation::Count | Aggregation::CountValues | Aggregation::CountDistinct
                )
        })
        .collect();
    let names: Vec<String> = usable
        .iter()
        .map(|a| aggregation_name(*a).to_string())
        .collect();
    Ok(usable[pick(theme, "Aggregation", &names)?])
}
