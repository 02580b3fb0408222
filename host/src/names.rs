//! The contract's enums as stable kebab-case words, for the CLI, JSON and the
//! database.

use crate::bindings::{Aggregation, ColumnType, CurrencyChoice, ViewKind};

pub const AGGREGATIONS: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::CountValues,
    Aggregation::CountDistinct,
    Aggregation::Sum,
    Aggregation::Average,
    Aggregation::Min,
    Aggregation::Max,
];

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

pub fn parse_aggregation(text: &str) -> Option<Aggregation> {
    AGGREGATIONS
        .into_iter()
        .find(|a| aggregation_name(*a) == text)
}

pub fn column_type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::WholeNumber => "whole-number",
        ColumnType::DecimalNumber => "decimal-number",
        ColumnType::Money => "money",
        ColumnType::DateTime => "date-time",
        ColumnType::Text => "text",
        ColumnType::Boolean => "boolean",
        ColumnType::Choice => "choice",
        ColumnType::Lookup => "lookup",
        ColumnType::Identifier => "identifier",
        ColumnType::Other => "other",
    }
}

pub fn view_kind_name(kind: ViewKind) -> &'static str {
    match kind {
        ViewKind::System => "system",
        ViewKind::Personal => "personal",
    }
}

pub fn currency_name(currency: CurrencyChoice) -> &'static str {
    match currency {
        CurrencyChoice::Base => "base",
        CurrencyChoice::Transaction => "transaction",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_names_round_trip() {
        for aggregation in AGGREGATIONS {
            assert_eq!(
                parse_aggregation(aggregation_name(aggregation)),
                Some(aggregation)
            );
        }
        assert_eq!(parse_aggregation("median"), None);
    }
}
