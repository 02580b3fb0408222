//! A chart's category as people write it ("Won", "2024-03") turned into the
//! condition that keeps that category's rows.

use super::{ChartDefinition, grouping_name};
use crate::client::Session;
use crate::fetchxml::MetricQuery;
use crate::metadata::{self, ChoiceOption};
use crate::types::{ChartCategory, ColumnType, DateGrouping, Error};
use crate::{metrics, odata};

/// Which of the view's rows a chart's category keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum CategoryFilter {
    /// A date column within the days the category spans, both included.
    Days {
        column: String,
        first: String,
        last: String,
    },
    /// A column equal to a value, as FetchXML writes it.
    Equals { column: String, value: String },
}

impl CategoryFilter {
    pub fn apply(&self, query: &mut MetricQuery) {
        match self {
            CategoryFilter::Days {
                column,
                first,
                last,
            } => query.within(column, Some(first), Some(last)),
            CategoryFilter::Equals { column, value } => query.equals(column, value),
        }
    }
}

/// The condition that keeps the rows of the category people call `value`.
pub(super) fn category_filter(
    session: &mut Session,
    chart: &ChartDefinition,
    category: &ChartCategory,
    value: &str,
) -> Result<CategoryFilter, Error> {
    let column = &category.column;
    let info = metadata::column_info(session, &chart.entity, column)?.ok_or_else(|| {
        Error::NotFound(format!(
            "the category column '{column}' of chart '{}' no longer exists in table '{}'; \
             link the chart again",
            chart.name, chart.entity
        ))
    })?;
    let trimmed = value.trim();
    let equals = |value: String| CategoryFilter::Equals {
        column: column.clone(),
        value,
    };
    let filter = match info.column_type() {
        ColumnType::DateTime => {
            let grouping = category.date_grouping.ok_or_else(|| {
                Error::Invalid(format!(
                    "chart '{}' groups its categories by the exact time of '{column}', so a \
                     category of it cannot be chosen; measure the chart without a category",
                    chart.name
                ))
            })?;
            let (first, last) = day_span(trimmed, grouping, &chart.name)?;
            CategoryFilter::Days {
                column: column.clone(),
                first,
                last,
            }
        }
        ColumnType::Choice => {
            let options = metadata::choice_options(session, &chart.entity, column, &info)?;
            equals(choice_value(&options, trimmed, column, &chart.name)?.to_string())
        }
        ColumnType::Boolean => equals(
            boolean_value(trimmed)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "'{value}' is not a yes/no value; the category column '{column}' of \
                         chart '{}' takes true or false",
                        chart.name
                    ))
                })?
                .to_string(),
        ),
        ColumnType::Lookup | ColumnType::Identifier => {
            if !odata::is_guid(trimmed) {
                return Err(Error::Invalid(format!(
                    "'{value}' is not a GUID; the category column '{column}' of chart '{}' \
                     takes the id of a row",
                    chart.name
                )));
            }
            equals(trimmed.to_string())
        }
        ColumnType::WholeNumber if trimmed.parse::<i64>().is_err() => {
            return Err(not_a_number(value, "a whole number", column, &chart.name));
        }
        ColumnType::DecimalNumber | ColumnType::Money
            if !trimmed.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            return Err(not_a_number(value, "a number", column, &chart.name));
        }
        ColumnType::WholeNumber | ColumnType::DecimalNumber | ColumnType::Money => {
            equals(trimmed.to_string())
        }
        // Text is compared as written: surrounding spaces may be part of it.
        ColumnType::Text | ColumnType::Other => equals(value.to_string()),
    };
    Ok(filter)
}

fn not_a_number(value: &str, what: &str, column: &str, chart: &str) -> Error {
    Error::Invalid(format!(
        "'{value}' is not {what}, which the category column '{column}' of chart '{chart}' holds"
    ))
}

/// FetchXML's value of a yes/no category.
fn boolean_value(value: &str) -> Option<&'static str> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some("1"),
        "false" | "no" | "0" => Some("0"),
        _ => None,
    }
}

/// The number of the option people call `value`: one of its labels (in any
/// case), or its number.
fn choice_value(
    options: &[ChoiceOption],
    value: &str,
    column: &str,
    chart: &str,
) -> Result<i64, Error> {
    let wanted = value.to_lowercase();
    let by_label = options
        .iter()
        .find(|o| o.labels.iter().any(|l| l.to_lowercase() == wanted));
    let by_number = || {
        let number = value.parse::<i64>().ok()?;
        options.iter().find(|o| o.value == number)
    };
    match by_label.or_else(by_number) {
        Some(option) => Ok(option.value),
        None => Err(Error::Invalid(format!(
            "'{value}' is not a value of the category column '{column}' of chart '{chart}'; \
             choose one of: {}",
            options
                .iter()
                .map(ChoiceOption::label)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The first and last day of the date category written `value`, in the form
/// `grouping` calls for.
pub fn day_span(
    value: &str,
    grouping: DateGrouping,
    chart: &str,
) -> Result<(String, String), Error> {
    let malformed = |form: &str| {
        Error::Invalid(format!(
            "'{value}' is not {form}, as chart '{chart}' groups its dates by {}",
            grouping_name(grouping)
        ))
    };
    let month_span = |year: u32, first: u32, last: u32| -> Option<(String, String)> {
        let days = metrics::days_in_month(year, last)?;
        Some((
            format!("{year:04}-{first:02}-01"),
            format!("{year:04}-{last:02}-{days:02}"),
        ))
    };
    let span = match grouping {
        DateGrouping::Day => {
            return if metrics::is_calendar_day(value) {
                Ok((value.to_string(), value.to_string()))
            } else {
                Err(malformed("a day written YYYY-MM-DD"))
            };
        }
        DateGrouping::Month => value
            .split_once('-')
            .and_then(|(year, month)| Some((four_digits(year)?, two_digits(month)?)))
            .and_then(|(year, month)| month_span(year, month, month))
            .ok_or_else(|| malformed("a month written YYYY-MM"))?,
        DateGrouping::Quarter => value
            .split_once('-')
            .and_then(|(year, quarter)| {
                let quarter = quarter
                    .strip_prefix(['Q', 'q'])
                    .filter(|n| n.len() == 1)?
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=4).contains(n))?;
                month_span(four_digits(year)?, quarter * 3 - 2, quarter * 3)
            })
            .ok_or_else(|| malformed("a quarter written YYYY-Qn (n from 1 to 4)"))?,
        DateGrouping::Year => four_digits(value)
            .and_then(|year| month_span(year, 1, 12))
            .ok_or_else(|| malformed("a year written YYYY"))?,
        DateGrouping::Week | DateGrouping::FiscalPeriod | DateGrouping::FiscalYear => {
            // Weeks start on a day the environment's settings decide, and fiscal
            // periods follow its fiscal calendar: neither can be told from here.
            return Err(Error::Invalid(format!(
                "chart '{chart}' groups its dates by {}, and a category of such a chart cannot \
                 be chosen; measure the chart without a category",
                grouping_name(grouping)
            )));
        }
    };
    Ok(span)
}

fn four_digits(text: &str) -> Option<u32> {
    digits(text, 4).filter(|year| *year >= 1)
}

fn two_digits(text: &str) -> Option<u32> {
    digits(text, 2).filter(|month| (1..=12).contains(month))
}

fn digits(text: &str, count: usize) -> Option<u32> {
    (text.len() == count && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn days(value: &str, grouping: DateGrouping) -> Result<(String, String), Error> {
        day_span(value, grouping, "Leads by month")
    }

    fn span(first: &str, last: &str) -> Result<(String, String), Error> {
        Ok((first.to_string(), last.to_string()))
    }

    fn invalid_with(result: Result<(String, String), Error>, words: &str) {
        match result {
            Err(Error::Invalid(message)) => assert!(message.contains(words), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn date_categories_become_inclusive_day_spans() {
        assert_eq!(
            days("2024-02-29", DateGrouping::Day),
            span("2024-02-29", "2024-02-29")
        );
        assert_eq!(
            days("2024-02", DateGrouping::Month),
            span("2024-02-01", "2024-02-29")
        );
        assert_eq!(
            days("2023-02", DateGrouping::Month),
            span("2023-02-01", "2023-02-28")
        );
        assert_eq!(
            days("1900-02", DateGrouping::Month),
            span("1900-02-01", "1900-02-28")
        );
        assert_eq!(
            days("2024-12", DateGrouping::Month),
            span("2024-12-01", "2024-12-31")
        );
        assert_eq!(
            days("2024-Q1", DateGrouping::Quarter),
            span("2024-01-01", "2024-03-31")
        );
        assert_eq!(
            days("2024-Q2", DateGrouping::Quarter),
            span("2024-04-01", "2024-06-30")
        );
        assert_eq!(
            days("2024-q3", DateGrouping::Quarter),
            span("2024-07-01", "2024-09-30")
        );
        assert_eq!(
            days("2024-Q4", DateGrouping::Quarter),
            span("2024-10-01", "2024-12-31")
        );
        assert_eq!(
            days("2024", DateGrouping::Year),
            span("2024-01-01", "2024-12-31")
        );
    }

    #[test]
    fn malformed_date_categories_name_the_form_expected() {
        invalid_with(
            days("March", DateGrouping::Month),
            "'March' is not a month written YYYY-MM",
        );
        for bad in ["2024-13", "2024-00", "2024-2", "24-02", "2024-02-01", ""] {
            invalid_with(days(bad, DateGrouping::Month), "a month written YYYY-MM");
        }
        for bad in ["2023-02-29", "2024-04-31", "2024/04/01", "2024-04"] {
            invalid_with(days(bad, DateGrouping::Day), "a day written YYYY-MM-DD");
        }
        for bad in [
            "2024-Q0", "2024-Q5", "2024Q1", "2024-Q", "2024-Q12", "2024-1",
        ] {
            invalid_with(
                days(bad, DateGrouping::Quarter),
                "a quarter written YYYY-Qn",
            );
        }
        for bad in ["24", "0000", "2024-01", "year"] {
            invalid_with(days(bad, DateGrouping::Year), "a year written YYYY");
        }
    }

    #[test]
    fn weeks_and_fiscal_periods_cannot_be_chosen() {
        for grouping in [
            DateGrouping::Week,
            DateGrouping::FiscalPeriod,
            DateGrouping::FiscalYear,
        ] {
            invalid_with(
                days("2024-W05", grouping),
                "measure the chart without a category",
            );
        }
    }

    pub(crate) fn options() -> Vec<ChoiceOption> {
        vec![
            ChoiceOption {
                value: 1,
                labels: vec!["In Progress".into(), "In Bearbeitung".into()],
            },
            ChoiceOption {
                value: 3,
                labels: vec!["Won".into()],
            },
            ChoiceOption {
                value: 4,
                labels: vec!["Lost".into()],
            },
            ChoiceOption {
                value: 7,
                labels: vec!["3".into()],
            },
        ]
    }

    #[test]
    fn choice_categories_are_labels_in_any_case_or_numbers() {
        let resolve = |value: &str| choice_value(&options(), value, "statuscode", "Pipeline");
        assert_eq!(resolve("won"), Ok(3));
        assert_eq!(resolve("IN PROGRESS"), Ok(1));
        assert_eq!(resolve("in bearbeitung"), Ok(1), "any language's label");
        assert_eq!(resolve("4"), Ok(4));
        assert_eq!(resolve("3"), Ok(7), "a label that is a number wins");
        match resolve("Maybe") {
            Err(Error::Invalid(message)) => {
                assert!(message.contains("'Maybe'"), "{message}");
                assert!(message.contains("In Progress, Won, Lost, 3"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(resolve("99").is_err(), "a number that is no option");
        assert_eq!(boolean_value("Yes"), Some("1"));
        assert_eq!(boolean_value("FALSE"), Some("0"));
        assert_eq!(boolean_value("0"), Some("0"));
        assert_eq!(boolean_value("maybe"), None);
    }
}
