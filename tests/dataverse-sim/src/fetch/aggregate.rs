//! Aggregate FetchXML (`aggregate="true"`): one answer row with a value per alias.

use super::exec::Tuple;
use super::parse::{AggregateFn, Query, Selected};
use crate::data::{AttributeType, Row};
use crate::errors::ODataError;
use crate::format::{
    format_datetime, format_decimal, format_integer, format_money, iso_from_unix, parse_datetime,
    round_to,
};
use crate::odata::FORMATTED_VALUE;
use crate::present::Presenter;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// Dataverse's limit on the rows an aggregate query may cover.
pub const AGGREGATE_LIMIT: usize = 50_000;

/// The aggregate row for the tuples a query matched.
pub fn aggregate(
    query: &Query<'_>,
    tuples: &[Tuple<'_>],
    presenter: &Presenter<'_>,
) -> Result<Map<String, Value>, ODataError> {
    // A per-query limit can only lower the standard one.
    let limit = query
        .aggregate_limit
        .map_or(AGGREGATE_LIMIT, |l| l.min(AGGREGATE_LIMIT));
    if tuples.len() > limit {
        return Err(ODataError::aggregate_limit());
    }
    let mut out = Map::new();
    for (index, node) in query.nodes.iter().enumerate() {
        for selected in &node.selected {
            let (Some(function), Some(alias)) = (selected.aggregate, selected.alias.as_deref())
            else {
                continue;
            };
            let values: Vec<&Value> = tuples
                .iter()
                .filter_map(|t| t[index])
                .filter_map(|row: &Row| row.get(&selected.attribute.logical_name))
                .filter(|v| !v.is_null())
                .collect();
            let Some(value) = compute(function, selected, tuples.len(), values) else {
                // Sums, averages and extremes of nothing are null, and nulls are omitted.
                continue;
            };
            if presenter.annotations.includes(FORMATTED_VALUE)
                && let Some(text) = formatted(function, selected, &value, presenter)
            {
                out.insert(format!("{alias}@{FORMATTED_VALUE}"), json!(text));
            }
            out.insert(alias.to_string(), value);
        }
    }
    Ok(out)
}

/// A key under which equal values (text without regard to case) collapse.
fn distinct_key(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_lowercase(),
        Value::Number(n) => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn compute(
    function: AggregateFn,
    selected: &Selected<'_>,
    rows: usize,
    mut values: Vec<&Value>,
) -> Option<Value> {
    if selected.distinct && function != AggregateFn::Count {
        let mut seen = HashSet::new();
        values.retain(|v| seen.insert(distinct_key(v)));
    }
    let kind = selected.attribute.attribute_type;
    match function {
        AggregateFn::Count => Some(json!(rows)),
        AggregateFn::CountColumn => Some(json!(values.len())),
        AggregateFn::Sum | AggregateFn::Avg => {
            let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
            if numbers.is_empty() {
                return None;
            }
            let total: f64 = numbers.iter().sum();
            if function == AggregateFn::Avg {
                return Some(json!(total / numbers.len() as f64));
            }
            if kind.is_integral() {
                let sum: i64 = values.iter().filter_map(|v| v.as_i64()).sum();
                Some(json!(sum))
            } else if kind == AttributeType::Money {
                Some(json!(round_to(total, 2)))
            } else {
                Some(json!(round_to(total, 10)))
            }
        }
        AggregateFn::Min | AggregateFn::Max => {
            let pick_max = function == AggregateFn::Max;
            if kind == AttributeType::DateTime {
                let times = values
                    .iter()
                    .filter_map(|v| v.as_str().and_then(parse_datetime));
                let best = if pick_max { times.max() } else { times.min() };
                return best.map(|t| json!(iso_from_unix(t)));
            }
            values
                .into_iter()
                .filter(|v| v.as_f64().is_some())
                .reduce(|best, v| {
                    let better = match (v.as_f64(), best.as_f64()) {
                        (Some(a), Some(b)) => (a > b) == pick_max && a != b,
                        _ => false,
                    };
                    if better { v } else { best }
                })
                .cloned()
        }
    }
}

fn formatted(
    function: AggregateFn,
    selected: &Selected<'_>,
    value: &Value,
    presenter: &Presenter<'_>,
) -> Option<String> {
    let kind = selected.attribute.attribute_type;
    match function {
        AggregateFn::Count | AggregateFn::CountColumn => value.as_i64().map(format_integer),
        _ if kind == AttributeType::DateTime => value.as_str().and_then(format_datetime),
        _ if kind == AttributeType::Money => {
            // Totals over rows of several currencies are shown in the base currency.
            let symbol = presenter
                .data
                .base_currency()
                .map(|c| c.symbol.as_str())
                .unwrap_or("");
            value.as_f64().map(|v| format_money(v, symbol))
        }
        _ if kind.is_integral() => value.as_f64().map(|v| format_integer(v.round() as i64)),
        _ => value.as_f64().map(|v| format_decimal(v, 2)),
    }
}
