//! Measuring a metric: the view's query rewritten into one aggregate FetchXML
//! query that Dataverse computes itself.

use crate::client::Session;
use crate::fetchxml::{self, ColumnRef, ViewQuery};
use crate::metadata::{self, Collection};
use crate::types::{
    Aggregation, ColumnType, CurrencyChoice, Error, Measurement, MetricSpec, MetricValue,
};
use crate::{layout, odata};
use serde_json::{Map, Value};

pub fn fetch_and_aggregate(session: &mut Session, spec: &MetricSpec) -> Result<Measurement, Error> {
    let view = metadata::view_definition(session, &spec.entity, &spec.view)?;
    let cells = layout::cell_names(&view.layout_xml).map_err(|e| {
        Error::Invalid(format!(
            "the layout of view '{}' cannot be read ({e})",
            view.name
        ))
    })?;
    if !cells.contains(&spec.column) {
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

    let entity = metadata::entity_definition(session, &view.entity)?;
    let attribute = metadata::attribute_definitions(session, &owner_entity, &[&column.attribute])?
        .into_iter()
        .find(|a| a.logical_name == column.attribute)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "column '{}' no longer exists in table '{owner_entity}'; choose the column again",
                spec.column
            ))
        })?;
    let column_type = attribute.column_type();
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

    let mut aggregated = column.clone();
    let money_total = column_type == ColumnType::Money
        && !matches!(
            spec.aggregation,
            Aggregation::Count | Aggregation::CountValues | Aggregation::CountDistinct
        );
    if money_total {
        if spec.currency == CurrencyChoice::Transaction {
            return Err(Error::Invalid(format!(
                "column '{}' can only be aggregated in the organization's base currency for \
                 now; choose the base currency",
                spec.column
            )));
        }
        // Rows may carry different currencies; each money column has a `_base` twin
        // converted to the organization's base currency at the row's exchange rate.
        aggregated.attribute = format!("{}_base", column.attribute);
    }

    let primary_id = entity.primary_id_attribute.as_deref().unwrap_or_default();
    let entity_set = entity.entity_set_name.as_deref().unwrap_or_default();
    let fetch = query
        .aggregate(&aggregated, spec.aggregation, primary_id)
        .map_err(|e| Error::Invalid(format!("view '{}' cannot be aggregated: {e}", view.name)))?;
    let path = format!("{entity_set}?{}", odata::query(&[("fetchXml", &fetch)]));
    let result: Collection<Map<String, Value>> =
        session.get_json(&path, &format!("view '{}'", view.name))?;
    let row = result.value.into_iter().next().unwrap_or_default();

    let value = match row.get(fetchxml::VALUE_ALIAS).filter(|v| !v.is_null()) {
        // Counting and summing nothing gives zero; averages and extremes of nothing
        // do not exist.
        None => match spec.aggregation {
            Aggregation::Average | Aggregation::Min | Aggregation::Max => None,
            _ => Some(MetricValue::Number(0.0)),
        },
        Some(Value::String(text))
            if column_type == ColumnType::DateTime
                && matches!(spec.aggregation, Aggregation::Min | Aggregation::Max) =>
        {
            Some(MetricValue::DateTime(text.clone()))
        }
        Some(raw) => Some(MetricValue::Number(as_number(raw).ok_or_else(|| {
            crate::errors::unexpected_body("aggregate result", "the value is not a number")
        })?)),
    };
    let rows_alias = if spec.aggregation == Aggregation::Count {
        fetchxml::VALUE_ALIAS
    } else {
        fetchxml::ROWS_ALIAS
    };
    let rows = row.get(rows_alias).and_then(as_number).unwrap_or(0.0);
    Ok(Measurement {
        value,
        records: rows.max(0.0) as u64,
        currency: None,
        requests: session.requests(),
        bytes_received: session.bytes_received(),
        query: fetch,
    })
}

/// A numeric aggregate; tolerant of numbers sent as strings.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
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
