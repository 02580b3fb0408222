//! Charts as metric sources: Dataverse's system and personal visualizations,
//! listed with their measures and category, and a chosen measure turned into
//! what the metric pipeline (`metrics`) measures.
//!
//! A chart is drawn over whichever view it is shown with: the view decides the
//! rows, the chart the aggregate and the grouping. So a chart's measure is
//! measured as a metric of the view whose column and aggregation are the
//! measure's, narrowed to the rows of one category when one is chosen. The
//! chart's definition is cached like a view's and checked in the same `$batch`
//! as the view, so measuring a chart's measure costs no extra request.

use crate::cache;
use crate::client::Session;
use crate::errors;
use crate::metadata::{self, Collection};
use crate::metrics::aggregation_name;
use crate::odata;
use crate::platform::{HttpResponse, Level};
use crate::types::{
    Aggregation, Chart, ChartCategory, ChartMeasure, ChartSelection, DateGrouping, Error,
    MetricSpec, ViewKind,
};
use crate::xml::{Element, XmlError};
use serde::{Deserialize, Serialize};

mod category;

use category::category_filter;
pub use category::{CategoryFilter, day_span};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChartError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the data description has no <fetch> with a named <entity>")]
    NoFetch,
}

/// What a chart's `datadescription` says: the table it aggregates, the
/// measures it plots and what its categories are.
#[derive(Debug, Clone, PartialEq)]
pub struct DataDescription {
    pub entity: String,
    /// Only measures over the table's own columns; may be empty.
    pub measures: Vec<ChartMeasure>,
    pub category: Option<ChartCategory>,
}

impl DataDescription {
    /// Reads Microsoft's "visualization data description" document.
    pub fn parse(xml: &str) -> Result<DataDescription, ChartError> {
        let root = Element::parse(xml)?;
        let fetch = std::iter::once(&root)
            .chain(root.descendants())
            .find(|e| e.name == "fetch")
            .ok_or(ChartError::NoFetch)?;
        let entity = fetch
            .elements()
            .find(|e| e.name == "entity")
            .ok_or(ChartError::NoFetch)?;
        let name = entity
            .attr("name")
            .filter(|name| odata::is_logical_name(name))
            .ok_or(ChartError::NoFetch)?;
        // Only the entity's own attributes: a measure or a grouping over a joined
        // table is not a column of the view's table, which is all a metric reads.
        let attributes: Vec<&Element> = entity
            .elements()
            .filter(|e| e.name == "attribute")
            .collect();
        let mut aggregates: Vec<ChartMeasure> = Vec::new();
        for measure in attributes.iter().filter_map(|a| measure(a)) {
            // A measure is chosen by its alias, so only the first of a name counts.
            if !aggregates.iter().any(|m| m.alias == measure.alias) {
                aggregates.push(measure);
            }
        }

        let mut plotted: Vec<&str> = Vec::new();
        for collection in root
            .descendants()
            .into_iter()
            .filter(|e| e.name == "categorycollection")
        {
            for alias in collection
                .descendants()
                .into_iter()
                .filter(|e| e.name == "measure")
                .filter_map(|e| e.attr("alias"))
            {
                if !plotted.contains(&alias) {
                    plotted.push(alias);
                }
            }
        }
        let measures = if plotted.is_empty() {
            aggregates
        } else {
            plotted
                .iter()
                .filter_map(|alias| aggregates.iter().find(|m| m.alias == *alias).cloned())
                .collect()
        };

        let category = attributes
            .iter()
            .find(|a| a.attr("groupby").is_some_and(is_true))
            .and_then(|a| {
                let column = a.attr("name").filter(|n| odata::is_logical_name(n))?;
                Some(ChartCategory {
                    column: column.to_string(),
                    date_grouping: a.attr("dategrouping").and_then(date_grouping),
                })
            });
        Ok(DataDescription {
            entity: name.to_string(),
            measures,
            category,
        })
    }
}

fn is_true(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value == "1"
}

/// An aggregate attribute of the chart's fetch as a measure; `None` for one the
/// metric pipeline cannot compute alike.
fn measure(attribute: &Element) -> Option<ChartMeasure> {
    let alias = attribute.attr("alias").filter(|a| !a.trim().is_empty())?;
    let column = attribute
        .attr("name")
        .filter(|n| odata::is_logical_name(n))?;
    let distinct = attribute.attr("distinct").is_some_and(is_true);
    let aggregation = match (
        attribute.attr("aggregate")?.to_ascii_lowercase().as_str(),
        distinct,
    ) {
        ("count" | "countcolumn", true) => Aggregation::CountDistinct,
        ("count", false) => Aggregation::Count,
        ("countcolumn", false) => Aggregation::CountValues,
        ("sum", false) => Aggregation::Sum,
        ("avg", false) => Aggregation::Average,
        // The extremes of distinct values are the extremes of all values.
        ("min", _) => Aggregation::Min,
        ("max", _) => Aggregation::Max,
        _ => return None,
    };
    Some(ChartMeasure {
        alias: alias.to_string(),
        column: column.to_string(),
        aggregation,
    })
}

fn date_grouping(text: &str) -> Option<DateGrouping> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "day" => DateGrouping::Day,
        "week" => DateGrouping::Week,
        "month" => DateGrouping::Month,
        "quarter" => DateGrouping::Quarter,
        "year" => DateGrouping::Year,
        "fiscal-period" => DateGrouping::FiscalPeriod,
        "fiscal-year" => DateGrouping::FiscalYear,
        _ => return None,
    })
}

fn grouping_name(grouping: DateGrouping) -> &'static str {
    match grouping {
        DateGrouping::Day => "day",
        DateGrouping::Week => "week",
        DateGrouping::Month => "month",
        DateGrouping::Quarter => "quarter",
        DateGrouping::Year => "year",
        DateGrouping::FiscalPeriod => "fiscal period",
        DateGrouping::FiscalYear => "fiscal year",
    }
}

/// The entity set and key column of a kind of chart.
fn chart_set(kind: ViewKind) -> (&'static str, &'static str) {
    match kind {
        ViewKind::System => ("savedqueryvisualizations", "savedqueryvisualizationid"),
        ViewKind::Personal => ("userqueryvisualizations", "userqueryvisualizationid"),
    }
}

#[derive(Deserialize)]
struct ChartRecord {
    #[serde(default)]
    savedqueryvisualizationid: Option<String>,
    #[serde(default)]
    userqueryvisualizationid: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    datadescription: Option<String>,
}

/// System charts and personal charts of an entity, each by name. A chart that
/// cannot be measured is left out with a warning, so that it does not hide the
/// others.
pub fn list_charts(session: &mut Session, entity: &str) -> Result<Vec<Chart>, Error> {
    metadata::require_logical_name(entity, "entity")?;
    let filter = format!("primaryentitytypecode eq {}", odata::string_literal(entity));
    let mut charts = Vec::new();
    for kind in [ViewKind::System, ViewKind::Personal] {
        let (set, key) = chart_set(kind);
        let path = format!(
            "{set}?{}",
            odata::query(&[
                ("$select", &format!("{key},name,datadescription")),
                ("$filter", &filter),
                ("$orderby", "name"),
            ])
        );
        let found: Collection<ChartRecord> =
            session.get_json(&path, &format!("charts of '{entity}'"))?;
        for record in found.value {
            let Some(id) = record
                .savedqueryvisualizationid
                .or(record.userqueryvisualizationid)
            else {
                continue;
            };
            let name = record.name.unwrap_or_else(|| id.clone());
            match measurable(entity, record.datadescription.as_deref()) {
                Ok(description) => charts.push(Chart {
                    id,
                    name,
                    kind,
                    measures: description.measures,
                    category: description.category,
                }),
                Err(reason) => session.platform().log(
                    Level::Warn,
                    &format!("chart '{name}' ({id}) of '{entity}' is left out: {reason}"),
                ),
            }
        }
    }
    Ok(charts)
}

/// The description of a chart that has something to measure, or why not.
fn measurable(entity: &str, data_description: Option<&str>) -> Result<DataDescription, String> {
    let xml = data_description
        .filter(|d| !d.trim().is_empty())
        .ok_or("it has no data description (a web resource draws it)")?;
    let description = DataDescription::parse(xml)
        .map_err(|e| format!("its data description cannot be read ({e})"))?;
    if description.entity != entity {
        return Err(format!(
            "its data description queries '{}', not '{entity}'",
            description.entity
        ));
    }
    if description.measures.is_empty() {
        return Err(format!("it has no measure over a column of '{entity}'"));
    }
    Ok(description)
}

/// A chart's definition as it is cached: checked against `modifiedon` on every
/// measurement, like a view's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartDefinition {
    pub name: String,
    /// The chart's table (`primaryentitytypecode`).
    pub entity: String,
    pub data_description: String,
    pub modified_on: Option<String>,
}

#[derive(Deserialize)]
struct DefinitionRecord {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    primaryentitytypecode: Option<String>,
    #[serde(default)]
    datadescription: Option<String>,
    #[serde(default)]
    modifiedon: Option<String>,
}

fn chart_path(selection: &ChartSelection, select: &str) -> Result<String, Error> {
    let (set, _) = chart_set(selection.chart_kind);
    metadata::definition_path(set, &selection.chart_id, select, "chart")
}

/// The cheap read that tells whether a chart still exists and since when it is
/// unchanged.
pub fn check_path(selection: &ChartSelection) -> Result<String, Error> {
    chart_path(selection, "modifiedon")
}

fn chart_key(selection: &ChartSelection) -> String {
    let kind = match selection.chart_kind {
        ViewKind::System => "system",
        ViewKind::Personal => "personal",
    };
    format!("chart {kind} {}", selection.chart_id)
}

pub fn forget_chart(session: &Session, selection: &ChartSelection) {
    cache::forget(session.platform(), &chart_key(selection));
}

/// The chart's definition, read from Dataverse.
pub fn chart_definition(
    session: &mut Session,
    selection: &ChartSelection,
) -> Result<ChartDefinition, Error> {
    let path = chart_path(
        selection,
        "name,primaryentitytypecode,datadescription,modifiedon",
    )?;
    let record: DefinitionRecord =
        session.get_json(&path, &format!("chart {}", selection.chart_id))?;
    let name = record.name.unwrap_or_else(|| selection.chart_id.clone());
    let data_description = record
        .datadescription
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "chart '{name}' has no data description (a web resource draws it), so it \
                 cannot be measured; choose another chart"
            ))
        })?;
    Ok(ChartDefinition {
        name,
        entity: record.primaryentitytypecode.unwrap_or_default(),
        data_description,
        modified_on: record.modifiedon,
    })
}

/// The chart's definition from the cache when present; callers check it is
/// still current (see [`check_path`] and [`is_current`]).
pub fn cached_chart_definition(
    session: &mut Session,
    selection: &ChartSelection,
) -> Result<ChartDefinition, Error> {
    let key = chart_key(selection);
    if let Some(cached) = cache::get::<ChartDefinition>(session.platform(), &key) {
        return Ok(cached);
    }
    let definition = chart_definition(session, selection)?;
    cache::put(
        session.platform(),
        &key,
        &definition,
        cache::METADATA_TTL_SECONDS,
    );
    Ok(definition)
}

/// Whether the cached definition is still the chart's, from the answer to
/// [`check_path`]; a stale definition is forgotten, to be read again. A deleted
/// chart is `not-found`.
pub fn is_current(
    session: &Session,
    selection: &ChartSelection,
    definition: &ChartDefinition,
    answer: Option<HttpResponse>,
) -> Result<bool, Error> {
    let answer = answer.ok_or_else(|| errors::unexpected_body("batch answer", "no chart check"))?;
    match answer.status {
        404 => {
            forget_chart(session, selection);
            Err(Error::NotFound(format!(
                "chart '{}' was deleted in Dynamics 365; choose another chart",
                definition.name
            )))
        }
        200..=299 => {
            let current = metadata::modified_on(&answer.body) == definition.modified_on;
            if !current {
                forget_chart(session, selection);
            }
            Ok(current)
        }
        _ => Err(errors::from_dataverse(
            &answer,
            &format!("chart '{}'", definition.name),
        )),
    }
}

/// Checks `selection` against the chart as it is now (its table, and the
/// measure `spec` was linked with) and returns the chart's definition with the
/// condition of the chosen category, if any.
pub fn resolve(
    session: &mut Session,
    spec: &MetricSpec,
    selection: &ChartSelection,
) -> Result<(ChartDefinition, Option<CategoryFilter>), Error> {
    let chart = cached_chart_definition(session, selection)?;
    if chart.entity != spec.entity {
        return Err(Error::NotFound(format!(
            "chart '{}' is a chart of '{}', not of '{}'; choose a chart of '{}'",
            chart.name, chart.entity, spec.entity, spec.entity
        )));
    }
    let description = DataDescription::parse(&chart.data_description).map_err(|e| {
        Error::Invalid(format!(
            "the data description of chart '{}' cannot be read ({e}); choose another chart",
            chart.name
        ))
    })?;
    if description.entity != chart.entity {
        return Err(Error::Invalid(format!(
            "the data description of chart '{}' queries '{}', not its table '{}'; choose \
             another chart",
            chart.name, description.entity, chart.entity
        )));
    }
    let measure = description
        .measures
        .iter()
        .find(|m| m.alias == selection.measure)
        .ok_or_else(|| {
            let aliases: Vec<String> = description
                .measures
                .iter()
                .map(|m| format!("'{}'", m.alias))
                .collect();
            Error::NotFound(format!(
                "chart '{}' has no measure '{}' any more (its measures: {}); link the chart again",
                chart.name,
                selection.measure,
                if aliases.is_empty() {
                    "none".to_string()
                } else {
                    aliases.join(", ")
                }
            ))
        })?;
    if measure.column != spec.column || measure.aggregation != spec.aggregation {
        return Err(Error::NotFound(format!(
            "the measure '{}' of chart '{}' changed (now {} of {}); link the chart again",
            measure.alias,
            chart.name,
            aggregation_name(measure.aggregation),
            measure.column
        )));
    }
    let filter = match &selection.category {
        None => None,
        Some(value) => {
            let category = description.category.as_ref().ok_or_else(|| {
                Error::Invalid(format!(
                    "chart '{}' has no categories; measure it without a category",
                    chart.name
                ))
            })?;
            Some(category_filter(session, &chart, category, value)?)
        }
    };
    Ok((chart, filter))
}

#[cfg(test)]
mod tests;
