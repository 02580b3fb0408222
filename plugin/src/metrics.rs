//! Measuring a metric exactly, in as few requests as Dataverse allows.
//!
//! The view's FetchXML becomes aggregate queries that Dataverse computes itself.
//! They go out in one `$batch` together with a check that the view (and, for a
//! chart's measure, the chart: see `charts`) is unchanged, so a scheduled sync
//! of an unchanged metric costs one request once metadata is cached. A view
//! over Dataverse's 50,000-row aggregate limit is split into disjoint
//! `createdon` ranges whose aggregates are combined; the split is kept for the
//! next sync. What cannot be aggregated on the server (a distinct count over
//! the limit) is read page by page.

use crate::aggregate::{Extreme, Partial};
use crate::cache;
use crate::charts::{self, ChartDefinition};
use crate::client::Session;
use crate::errors;
use crate::fetchxml::{ColumnRef, Function, Join, MetricQuery, ViewQuery};
use crate::metadata::{self, Collection, ViewDefinition};
use crate::paging::{self, PageRead};
use crate::platform::{HttpResponse, Level};
use crate::split::SplitPlan;
use crate::types::{
    Aggregation, ChartSelection, ColumnType, CurrencyChoice, DateWindow, Error, Measurement,
    MetricSpec,
};
use crate::{layout, odata};
use serde_json::{Map, Value};

mod series;

pub use series::fetch_series;

/// Pieces a view over the aggregate limit is first split into.
const FIRST_SPLIT: u32 = 4;

/// Rounds of splitting before falling back to reading pages.
const MAX_SPLIT_ROUNDS: usize = 8;

/// A view split into more parts than this is read page by page instead.
const MAX_PARTS: usize = 64;

/// How long a split plan is kept; data grows slowly, and a part that outgrows the
/// limit is split again on the spot.
const SPLIT_TTL_SECONDS: u32 = 7 * 24 * 3600;

/// Why a measurement must start over.
enum Failure {
    Error(Error),
    /// The view or the chart changed since its definition was cached; the
    /// stale definition is already forgotten.
    Stale,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Error(error)
    }
}

/// Measures `spec` over the view's rows, only those within every one of
/// `windows`, and with `chart` only those of its category (the chart's measure
/// is `spec`'s column and aggregation).
pub fn fetch_and_aggregate(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
) -> Result<Measurement, Error> {
    match measure(session, spec, windows, chart) {
        Err(Failure::Stale) => match measure(session, spec, windows, chart) {
            Err(Failure::Stale) => Err(Error::Upstream(format!(
                "the {} changed twice while it was being measured; the sync will be retried",
                if chart.is_some() {
                    "view or the chart"
                } else {
                    "view"
                }
            ))),
            Err(Failure::Error(error)) => Err(error),
            Ok(measurement) => Ok(measurement),
        },
        Err(Failure::Error(error)) => Err(error),
        Ok(measurement) => Ok(measurement),
    }
}

/// Everything decided before querying: which rows, which column, which functions.
struct Plan {
    view: ViewDefinition,
    /// The chart whose measure this is, checked with the view on every sync.
    chart: Option<ChartDefinition>,
    query: MetricQuery,
    /// The column aggregated (a money column's `_base` twin for the base currency).
    target: ColumnRef,
    column_type: ColumnType,
    entity_set: String,
    primary_id: String,
    functions: Vec<Function>,
    currency: Currency,
}

enum Currency {
    /// Not a money amount.
    None,
    /// The organization's base currency, by ISO code.
    Base(String),
    /// The rows' own currency, which must be the same in every row.
    Transaction,
}

fn measure(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
) -> Result<Measurement, Failure> {
    let plan = prepare(session, spec, windows, chart)?;
    let check_path = metadata::view_check_path(&spec.view)?;
    let chart_check = chart.map(charts::check_path).transpose()?;
    let split_key = split_key(spec, &plan);
    let mut split: Option<SplitPlan> = cache::get(session.platform(), &split_key);

    for _ in 0..MAX_SPLIT_ROUNDS {
        if split.is_some() && spec.aggregation == Aggregation::CountDistinct {
            break; // distinct counts of parts do not add up
        }
        let parts = match &split {
            None => vec![None],
            Some(split) if split.len() > MAX_PARTS => break,
            Some(split) => split.parts().into_iter().map(Some).collect(),
        };
        if parts.len() > 1 {
            session.platform().log(
                Level::Info,
                &format!(
                    "the view is over the aggregate limit: aggregating it in {} parts",
                    parts.len()
                ),
            );
        }
        let queries = parts
            .iter()
            .map(|part| {
                plan.query.aggregate(
                    &plan.target,
                    &plan.functions,
                    &plan.primary_id,
                    part.as_ref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::Invalid(format!(
                    "view '{}' cannot be aggregated: {e}",
                    plan.view.name
                ))
            })?;

        let mut paths = vec![check_path.clone()];
        paths.extend(chart_check.iter().cloned());
        if matches!(plan.currency, Currency::Transaction) {
            paths.push(fetch_path(&plan.entity_set, &currency_probe(&plan)?));
        }
        paths.extend(queries.iter().map(|q| fetch_path(&plan.entity_set, q)));
        let mut answers = session
            .batch(&paths, &format!("view '{}'", plan.view.name))?
            .into_iter();

        check_definitions(session, spec, chart, &plan, &mut answers)?;
        let currency = match plan.currency {
            Currency::None => None,
            Currency::Base(ref code) => Some(code.clone()),
            Currency::Transaction => transaction_currency(session, &plan, answers.next())?,
        };

        let mut total = Partial::default();
        let mut over_limit = Vec::new();
        for (index, answer) in answers.enumerate() {
            if errors::is_aggregate_limit(&answer) {
                over_limit.push(index);
            } else if (200..300).contains(&answer.status) {
                total.merge(partial(&answer, &plan.view.name)?);
            } else {
                return Err(
                    errors::from_dataverse(&answer, &format!("view '{}'", plan.view.name)).into(),
                );
            }
        }
        if over_limit.is_empty() {
            if let Some(split) = &split {
                cache::put(session.platform(), &split_key, split, SPLIT_TTL_SECONDS);
            }
            return Ok(measurement(
                session,
                spec,
                &total,
                currency,
                queries.join("\n"),
            ));
        }
        if spec.aggregation == Aggregation::CountDistinct {
            break;
        }
        split = match split {
            None => match split_bounds(session, &plan)? {
                Some(bounds) => Some(bounds),
                None => break,
            },
            Some(mut split) => {
                // From the end, so earlier indices stay valid as parts are inserted;
                // each part over the limit becomes four, converging in few rounds.
                let all_split = over_limit.iter().rev().all(|&index| {
                    split.split(index) && {
                        split.split(index + 1);
                        split.split(index);
                        true
                    }
                });
                if !all_split {
                    break;
                }
                Some(split)
            }
        };
    }
    read_pages(session, spec, &plan)
}

/// Where the split of a view over the aggregate limit is kept, per version of
/// the view.
fn split_key(spec: &MetricSpec, plan: &Plan) -> String {
    format!(
        "split {} {}",
        spec.view.id,
        plan.view.modified_on.as_deref().unwrap_or_default()
    )
}

/// Reads the answers to the view's check and the chart's (when measuring a
/// chart), the first of a batch.
fn check_definitions(
    session: &Session,
    spec: &MetricSpec,
    chart: Option<&ChartSelection>,
    plan: &Plan,
    answers: &mut impl Iterator<Item = HttpResponse>,
) -> Result<(), Failure> {
    let view_current = check_view(session, spec, &plan.view, answers.next());
    // Both checks are read before either fails, so that a view and a chart
    // changed together are both re-read by the one retry.
    let chart_current = match (chart, &plan.chart) {
        (Some(selection), Some(definition)) => {
            charts::is_current(session, selection, definition, answers.next())
        }
        _ => Ok(true),
    };
    view_current?;
    if !chart_current? {
        return Err(Failure::Stale);
    }
    Ok(())
}

fn prepare(
    session: &mut Session,
    spec: &MetricSpec,
    windows: &[DateWindow],
    chart: Option<&ChartSelection>,
) -> Result<Plan, Error> {
    let view = metadata::cached_view_definition(session, &spec.entity, &spec.view)?;
    let chart = chart
        .map(|selection| charts::resolve(session, spec, selection))
        .transpose()?;
    let cells = layout::cell_names(&view.layout_xml).map_err(|e| {
        Error::Invalid(format!(
            "the layout of view '{}' cannot be read ({e})",
            view.name
        ))
    })?;
    // A chart aggregates a column of the view's table whether the view shows it
    // or not.
    if chart.is_none() && !cells.contains(&spec.column) {
        return Err(Error::NotFound(format!(
            "column '{}' is no longer in view '{}': it was removed or renamed; choose the \
             column again",
            spec.column, view.name
        )));
    }
    let query = ViewQuery::parse(&view.fetch_xml).map_err(|e| {
        Error::Invalid(format!(
            "the query of view '{}' cannot be read ({e})",
            view.name
        ))
    })?;
    let column = ColumnRef::from_cell(&spec.column);
    let owner_entity = match &column.alias {
        None => view.entity.clone(),
        Some(alias) => query
            .linked_entity(alias)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "view '{}' no longer joins the table of column '{}'; choose the column again",
                    view.name, spec.column
                ))
            })?,
    };
    metadata::require_logical_name(&column.attribute, "column")?;
    let table = metadata::table_info(session, &view.entity)?;
    let info =
        metadata::column_info(session, &owner_entity, &column.attribute)?.ok_or_else(|| {
            Error::NotFound(format!(
                "column '{}' no longer exists in table '{owner_entity}'; choose the column again",
                spec.column
            ))
        })?;
    let column_type = info.column_type();
    let allowed = metadata::aggregations_for(column_type);
    if !allowed.contains(&spec.aggregation) {
        return Err(Error::Invalid(format!(
            "{} cannot be computed on column '{}' of type {}; it allows {}",
            aggregation_name(spec.aggregation),
            spec.column,
            type_name(column_type),
            allowed
                .iter()
                .map(|a| aggregation_name(*a))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    let money = column_type == ColumnType::Money;
    let amount = money
        && !matches!(
            spec.aggregation,
            Aggregation::Count | Aggregation::CountValues | Aggregation::CountDistinct
        );
    // A money column's base-currency twin (`estimatedvalue_base`, which views
    // show as "(Base)") already holds base amounts: it is aggregated as it is.
    let base_twin = money && info.attribute_of.is_some();
    let in_base = |column: &ColumnRef| {
        if base_twin {
            column.clone()
        } else {
            column.with_attribute(&format!("{}_base", column.attribute))
        }
    };
    let (target, currency) = match (amount, spec.currency) {
        // Distinct amounts are told apart in the base currency, where 100 USD and
        // 100 EUR are two amounts; the count itself has no currency.
        (false, _) if money && spec.aggregation == Aggregation::CountDistinct => {
            (in_base(&column), Currency::None)
        }
        (false, _) => (column.clone(), Currency::None),
        // Rows may carry different currencies; each money column has a `_base` twin
        // converted to the base currency at the row's exchange rate.
        (true, CurrencyChoice::Base) => (
            in_base(&column),
            Currency::Base(metadata::base_currency_code(session)?),
        ),
        // A base twin's amounts are in the base currency, whatever the rows' own.
        (true, CurrencyChoice::Transaction) if base_twin => (
            column.clone(),
            Currency::Base(metadata::base_currency_code(session)?),
        ),
        (true, CurrencyChoice::Transaction) => (column.clone(), Currency::Transaction),
    };

    // A join matches at most one row when it is joined on the joined table's key.
    let mut to_one_joins = Vec::new();
    for join in query.joins() {
        metadata::require_logical_name(&join.entity, "entity")?;
        if metadata::table_info(session, &join.entity)?.primary_id_attribute == join.from {
            to_one_joins.push(join);
        }
    }
    let mut shown: Vec<&str> = cells
        .iter()
        .filter_map(|cell| cell.split_once('.').map(|(alias, _)| alias))
        .collect();
    if let Some(alias) = &column.alias {
        shown.push(alias);
    }
    let to_one = |join: &Join| to_one_joins.contains(join);
    let mut metric_query = query
        .metric_query(&shown, &to_one)
        .map_err(|e| Error::Invalid(format!("view '{}' cannot be aggregated: {e}", view.name)))?;
    for window in windows {
        check_window(session, &view, window)?;
        metric_query.within(
            &window.column,
            window.first_day.as_deref(),
            window.last_day.as_deref(),
        );
    }
    let chart = chart.map(|(definition, category)| {
        if let Some(category) = category {
            category.apply(&mut metric_query);
        }
        definition
    });

    let functions = match spec.aggregation {
        Aggregation::Count => vec![Function::Count],
        Aggregation::CountValues => vec![Function::CountColumn, Function::Count],
        Aggregation::CountDistinct => vec![Function::CountDistinct, Function::Count],
        Aggregation::Sum => vec![Function::Sum, Function::Count],
        Aggregation::Average => vec![Function::Sum, Function::CountColumn, Function::Count],
        Aggregation::Min => vec![Function::Min, Function::Count],
        Aggregation::Max => vec![Function::Max, Function::Count],
    };
    Ok(Plan {
        view,
        chart,
        query: metric_query,
        target,
        column_type,
        entity_set: table.entity_set_name,
        primary_id: table.primary_id_attribute,
        functions,
        currency,
    })
}

/// A window names a date column of the view's own table and whole days.
fn check_window(
    session: &mut Session,
    view: &ViewDefinition,
    window: &DateWindow,
) -> Result<(), Error> {
    metadata::require_logical_name(&window.column, "column")?;
    for day in [&window.first_day, &window.last_day].into_iter().flatten() {
        if !is_calendar_day(day) {
            return Err(Error::Invalid(format!(
                "the period's day '{day}' is not a date written YYYY-MM-DD"
            )));
        }
    }
    if let (Some(first), Some(last)) = (&window.first_day, &window.last_day)
        && first > last
    {
        return Err(Error::Invalid(format!(
            "the period starts on {first}, after its last day {last}"
        )));
    }
    match metadata::column_info(session, &view.entity, &window.column)? {
        None => Err(Error::NotFound(format!(
            "the period's column '{}' does not exist in table '{}'; choose another date column",
            window.column, view.entity
        ))),
        Some(info) if info.column_type() != ColumnType::DateTime => Err(Error::Invalid(format!(
            "the period's column '{}' is not a date, so a period cannot apply to it; choose a \
             date column",
            window.column
        ))),
        Some(_) => Ok(()),
    }
}

/// YYYY-MM-DD with a month and a day that exist in that month.
pub(crate) fn is_calendar_day(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes[range.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| text[range].parse::<u32>().ok())
            .flatten()
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    days_in_month(year, month).is_some_and(|days| (1..=days).contains(&day))
}

/// Days of a month of the Gregorian calendar; `None` for a month that does not
/// exist.
pub(crate) fn days_in_month(year: u32, month: u32) -> Option<u32> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

fn fetch_path(entity_set: &str, fetch: &str) -> String {
    format!("{entity_set}?{}", odata::query(&[("fetchXml", fetch)]))
}

fn currency_probe(plan: &Plan) -> Result<String, Error> {
    plan.query
        .distinct_values(&plan.target, "transactioncurrencyid")
        .map_err(|e| {
            Error::Invalid(format!(
                "view '{}' cannot be aggregated: {e}",
                plan.view.name
            ))
        })
}

/// Fails when the view is gone, or changed since its definition was cached
/// (which is then forgotten).
fn check_view(
    session: &Session,
    spec: &MetricSpec,
    view: &ViewDefinition,
    answer: Option<HttpResponse>,
) -> Result<(), Failure> {
    let answer = answer.ok_or_else(|| errors::unexpected_body("batch answer", "no view check"))?;
    match answer.status {
        404 => {
            metadata::forget_view(session, &spec.view);
            Err(Error::NotFound(format!(
                "view '{}' was deleted in Dataverse; choose another view",
                view.name
            ))
            .into())
        }
        200..=299 => {
            if metadata::modified_on(&answer.body) == view.modified_on {
                Ok(())
            } else {
                metadata::forget_view(session, &spec.view);
                Err(Failure::Stale)
            }
        }
        _ => Err(errors::from_dataverse(&answer, &format!("view '{}'", view.name)).into()),
    }
}

/// The one currency of the rows, by ISO code; an error when they mix currencies.
fn transaction_currency(
    session: &mut Session,
    plan: &Plan,
    answer: Option<HttpResponse>,
) -> Result<Option<String>, Error> {
    let answer =
        answer.ok_or_else(|| errors::unexpected_body("batch answer", "no currency probe"))?;
    if !(200..300).contains(&answer.status) {
        return Err(errors::from_dataverse(
            &answer,
            &format!("view '{}'", plan.view.name),
        ));
    }
    let rows: Collection<Map<String, Value>> = serde_json::from_slice(&answer.body)
        .map_err(|e| errors::unexpected_body("currency probe", &e.to_string()))?;
    let key = paging::value_key(&plan.target.with_attribute("transactioncurrencyid"), true);
    let mut ids: Vec<&str> = rows
        .value
        .iter()
        .filter_map(|row| row.get(&key).and_then(Value::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Ok(None),
        [id] => Ok(Some(metadata::currency_code(session, id)?)),
        _ => Err(Error::Invalid(format!(
            "the rows of view '{}' are in more than one currency, so their amounts cannot be \
             added in a transaction currency; use the base currency",
            plan.view.name
        ))),
    }
}

/// The view's earliest and latest `createdon`, split into [`FIRST_SPLIT`] parts;
/// `None` when the view cannot be split by date.
fn split_bounds(session: &mut Session, plan: &Plan) -> Result<Option<SplitPlan>, Error> {
    let paths = [false, true]
        .map(|descending| fetch_path(&plan.entity_set, &plan.query.first_created(descending)));
    let answers = session.batch(&paths, &format!("view '{}'", plan.view.name))?;
    let mut bounds = Vec::with_capacity(2);
    for answer in &answers {
        if !(200..300).contains(&answer.status) {
            // No `createdon` on this table: it cannot be split by date.
            return Ok(None);
        }
        let rows: Collection<Map<String, Value>> = serde_json::from_slice(&answer.body)
            .map_err(|e| errors::unexpected_body("first row", &e.to_string()))?;
        match rows
            .value
            .first()
            .and_then(|row| row.get(crate::split::SPLIT_ATTRIBUTE))
            .and_then(Value::as_str)
        {
            Some(created) => bounds.push(created.to_string()),
            None => return Ok(None),
        }
    }
    match bounds.as_slice() {
        [first, last] => Ok(SplitPlan::new(first, last, FIRST_SPLIT).ok()),
        _ => Ok(None),
    }
}

fn read_pages(
    session: &mut Session,
    spec: &MetricSpec,
    plan: &Plan,
) -> Result<Measurement, Failure> {
    let value_key = paging::value_key(&plan.target, plan.column_type == ColumnType::Lookup);
    let currency = match &plan.currency {
        Currency::None => None,
        Currency::Base(code) => Some(code.clone()),
        Currency::Transaction => {
            let probe = currency_probe(plan)?;
            let answer = session.get(&fetch_path(&plan.entity_set, &probe), "view")?;
            transaction_currency(session, plan, Some(answer))?
        }
    };
    let (total, query) = paging::read(
        session,
        &PageRead {
            query: &plan.query,
            entity_set: &plan.entity_set,
            primary_id: &plan.primary_id,
            column: &plan.target,
            value_key: &value_key,
            aggregation: spec.aggregation,
        },
    )?;
    Ok(measurement(session, spec, &total, currency, query))
}

/// One part's aggregates from its answer.
fn partial(answer: &HttpResponse, view: &str) -> Result<Partial, Error> {
    let rows: Collection<Map<String, Value>> =
        serde_json::from_slice(&answer.body).map_err(|e| {
            errors::unexpected_body(&format!("aggregate of view '{view}'"), &e.to_string())
        })?;
    let row = rows.value.into_iter().next().unwrap_or_default();
    let count = |function: Function| -> Result<u64, Error> {
        match row.get(function.alias()) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => match Extreme::from_json(value) {
                // Beyond 2^53 a float no longer holds a whole count exactly.
                Some(Extreme::Number(n))
                    if (0.0..=9_007_199_254_740_992.0).contains(&n) && n.fract() == 0.0 =>
                {
                    Ok(n as u64)
                }
                _ => Err(errors::unexpected_body(
                    "aggregate",
                    "a count is not a whole number of rows",
                )),
            },
        }
    };
    let sum = match row.get(Function::Sum.alias()) {
        None | Some(Value::Null) => 0.0,
        Some(value) => match Extreme::from_json(value) {
            Some(Extreme::Number(n)) => n,
            _ => {
                return Err(errors::unexpected_body(
                    "aggregate",
                    "a sum is not a number",
                ));
            }
        },
    };
    Ok(Partial {
        rows: count(Function::Count)?,
        values: count(Function::CountColumn)?,
        sum,
        min: row.get(Function::Min.alias()).and_then(Extreme::from_json),
        max: row.get(Function::Max.alias()).and_then(Extreme::from_json),
        distinct: count(Function::CountDistinct)?,
    })
}

fn measurement(
    session: &Session,
    spec: &MetricSpec,
    total: &Partial,
    currency: Option<String>,
    query: String,
) -> Measurement {
    Measurement {
        value: total.value(spec.aggregation),
        records: total.rows,
        currency,
        requests: session.requests(),
        bytes_received: session.bytes_received(),
        query,
    }
}

pub fn aggregation_name(aggregation: Aggregation) -> &'static str {
    match aggregation {
        Aggregation::Count => "count",
        Aggregation::CountValues => "count-values",
        Aggregation::CountDistinct => "count-distinct",
        Aggregation::Sum => "sum",
        Aggregation::Average => "average",
        Aggregation::Min => "min",
        Aggregation::Max => "max",
    }
}

pub fn type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::WholeNumber => "whole number",
        ColumnType::DecimalNumber => "decimal number",
        ColumnType::Money => "money",
        ColumnType::DateTime => "date and time",
        ColumnType::Text => "text",
        ColumnType::Boolean => "yes/no",
        ColumnType::Choice => "choice",
        ColumnType::Lookup => "lookup",
        ColumnType::Identifier => "unique identifier",
        ColumnType::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::is_calendar_day;

    #[test]
    fn period_days_are_calendar_days() {
        for day in ["2024-02-29", "2023-12-31", "2000-02-29"] {
            assert!(is_calendar_day(day), "{day}");
        }
        for day in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-4-01",
            "24-04-01x",
            "2024/04/01",
            "",
        ] {
            assert!(!is_calendar_day(day), "{day}");
        }
    }
}
