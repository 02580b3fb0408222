//! The contract's enums as stable kebab-case words, for the CLI, JSON and the
//! database.

use crate::bindings::{
    Aggregation, ColumnType, CredentialKind, CurrencyChoice, SettingKind, ViewKind,
};

pub const AGGREGATIONS: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::CountValues,
    Aggregation::CountDistinct,
    Aggregation::Sum,
    Aggregation::Average,
    Aggregation::Min,
    Aggregation::Max,
];

/// A character a name may not hold: control characters, and the bidirectional
/// formatting marks that make a name display as something else (U+202E shows
/// "Sales\u{202E}gnp" as "Salespng").
pub fn hidden_character(text: &str) -> Option<char> {
    text.chars().find(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            )
    })
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

pub fn credential_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ClientSecret => "client-secret",
        CredentialKind::Certificate => "certificate",
        CredentialKind::User => "user",
        CredentialKind::ApiKey => "api-key",
    }
}

pub fn setting_kind_name(kind: SettingKind) -> &'static str {
    match kind {
        SettingKind::Text => "text",
        SettingKind::Endpoint => "endpoint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_not_hide_characters() {
        assert_eq!(hidden_character("Sales Hub – Europe"), None);
        assert_eq!(hidden_character("Sales\u{202E}gnp"), Some('\u{202E}'));
        assert_eq!(hidden_character("a\u{2067}b"), Some('\u{2067}'));
        assert_eq!(hidden_character("tab\there"), Some('\t'));
    }

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
