//! Measuring metrics through the real plugin component against the simulator.
//! Every expected value is computed here, in plain Rust over the seeded rows,
//! independently of the simulator's FetchXML engine.

use dataverse_sim::Row;
use goals_e2e::target;
use goals_e2e::{Sim, dataset, plugin_with_connection, seeded_spec};
use goals_host::bindings::{Aggregation, Error, Measurement, MetricValue};
use goals_host::connections::ConnectionRecord;
use goals_host::runtime::{CallError, PluginRuntime};
use serde_json::Value;
use std::collections::BTreeSet;

const ALL: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::CountValues,
    Aggregation::CountDistinct,
    Aggregation::Sum,
    Aggregation::Average,
    Aggregation::Min,
    Aggregation::Max,
];

async fn measure(
    plugin: &PluginRuntime,
    conn: &ConnectionRecord,
    entity: &str,
    view: &str,
    column: &str,
    aggregation: Aggregation,
) -> Result<Measurement, CallError> {
    plugin
        .fetch_and_aggregate(
            &target(conn),
            &seeded_spec(entity, view, column, aggregation),
        )
        .await
}

#[derive(Debug, PartialEq)]
enum Expected {
    Number(f64),
    Text(String),
    Nothing,
}

/// The aggregate of `values` (one per view row, `None` for an empty cell) with
/// Dataverse's semantics: empty cells count only for `count`.
fn expected(values: &[Option<Value>], aggregation: Aggregation) -> Expected {
    let present: Vec<&Value> = values.iter().flatten().collect();
    let numbers: Vec<f64> = present.iter().filter_map(|v| v.as_f64()).collect();
    let texts: Vec<&str> = present.iter().filter_map(|v| v.as_str()).collect();
    match aggregation {
        Aggregation::Count => Expected::Number(values.len() as f64),
        Aggregation::CountValues => Expected::Number(present.len() as f64),
        Aggregation::CountDistinct => Expected::Number(
            present
                .iter()
                .map(|v| v.to_string())
                .collect::<BTreeSet<_>>()
                .len() as f64,
        ),
        Aggregation::Sum => Expected::Number(numbers.iter().sum()),
        Aggregation::Average if numbers.is_empty() => Expected::Nothing,
        Aggregation::Average => {
            Expected::Number(numbers.iter().sum::<f64>() / numbers.len() as f64)
        }
        Aggregation::Min | Aggregation::Max if present.is_empty() => Expected::Nothing,
        Aggregation::Min if !texts.is_empty() => Expected::Text(
            texts
                .iter()
                .min()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        Aggregation::Max if !texts.is_empty() => Expected::Text(
            texts
                .iter()
                .max()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        Aggregation::Min => Expected::Number(numbers.iter().copied().fold(f64::INFINITY, f64::min)),
        Aggregation::Max => {
            Expected::Number(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        }
    }
}

fn assert_matches(measured: &Measurement, want: &Expected, context: &str) {
    match (&measured.value, want) {
        (Some(MetricValue::Number(got)), Expected::Number(want)) => {
            let tolerance = 1e-9 * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tolerance,
                "{context}: got {got}, want {want}"
            );
        }
        (Some(MetricValue::DateTime(got)), Expected::Text(want)) => {
            assert_eq!(got, want, "{context}")
        }
        (None, Expected::Nothing) => {}
        (got, want) => panic!("{context}: got {got:?}, want {want:?}"),
    }
}

fn open_opportunities() -> Vec<&'static Row> {
    dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&Value::from(0)))
        .collect()
}

#[tokio::test]
async fn every_aggregation_of_every_column_type_matches_the_data() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let rows = open_opportunities();
    // (column of the view, the row value it aggregates; money in the base currency)
    let columns: [(&str, &str, &[Aggregation]); 4] = [
        ("estimatedvalue", "estimatedvalue_base", &ALL),
        ("closeprobability", "closeprobability", &ALL),
        (
            "estimatedclosedate",
            "estimatedclosedate",
            &[
                Aggregation::Count,
                Aggregation::CountValues,
                Aggregation::CountDistinct,
                Aggregation::Min,
                Aggregation::Max,
            ],
        ),
        (
            "name",
            "name",
            &[
                Aggregation::Count,
                Aggregation::CountValues,
                Aggregation::CountDistinct,
            ],
        ),
    ];
    for (column, key, aggregations) in columns {
        let values: Vec<Option<Value>> = rows.iter().map(|row| row.get(key).cloned()).collect();
        for aggregation in aggregations {
            let context = format!("{aggregation:?} of {column}");
            let measured = measure(
                &plugin,
                &conn,
                "opportunity",
                "Open Opportunities",
                column,
                *aggregation,
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_matches(&measured, &expected(&values, *aggregation), &context);
            assert_eq!(measured.records, rows.len() as u64, "{context}: records");
            assert!(measured.query.contains("aggregate=\"true\""), "{context}");
        }
    }
    // The data must exercise null handling for the checks above to mean anything.
    assert!(rows.iter().any(|row| !row.contains_key("closeprobability")));
}

#[tokio::test]
async fn distinct_amounts_are_told_apart_in_the_base_currency() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let rows = open_opportunities();
    let rate = |row: &Row| row.get("exchangerate").and_then(Value::as_f64);
    let in_rate = |wanted: f64| {
        rows.iter()
            .find(|row| rate(row) == Some(wanted))
            .map(|row| (*row).clone())
            .expect("an open opportunity in that currency")
    };
    // The same amount in dollars (the base) and in euros: two amounts.
    let amount = 4321.0;
    let mut added = Vec::new();
    for (n, mut row) in [in_rate(1.0), in_rate(0.92)].into_iter().enumerate() {
        let base = (amount / rate(&row).unwrap_or(1.0) * 100.0).round() / 100.0;
        row.insert(
            "opportunityid".to_string(),
            Value::from(format!("0dd5e000-0000-4000-8000-00000000000{n}")),
        );
        row.insert("estimatedvalue".to_string(), Value::from(amount));
        row.insert("estimatedvalue_base".to_string(), Value::from(base));
        added.push(row);
    }
    assert!(
        rows.iter()
            .all(|row| row.get("estimatedvalue").and_then(Value::as_f64) != Some(amount)),
        "the amount is new to the data"
    );
    sim.server.add_rows("opportunity", added.clone());

    let values: Vec<Option<Value>> = rows
        .iter()
        .copied()
        .chain(added.iter())
        .map(|row| row.get("estimatedvalue_base").cloned())
        .collect();
    let measured = measure(
        &plugin,
        &conn,
        "opportunity",
        "Open Opportunities",
        "estimatedvalue",
        Aggregation::CountDistinct,
    )
    .await
    .expect("count distinct amounts");
    assert_matches(
        &measured,
        &expected(&values, Aggregation::CountDistinct),
        "distinct base amounts",
    );
    assert_eq!(measured.currency, None, "a count has no currency");
}

#[tokio::test]
async fn a_joined_column_is_aggregated_over_the_views_rows() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let values: Vec<Option<Value>> = open_opportunities()
        .iter()
        .map(|row| {
            let customer = row.get("customerid")?.as_str()?;
            dataset()
                .row_by_id("account", customer)?
                .get("numberofemployees")
                .cloned()
        })
        .collect();
    for aggregation in ALL {
        let measured = measure(
            &plugin,
            &conn,
            "opportunity",
            "Open Opportunities",
            "customeraccount.numberofemployees",
            aggregation,
        )
        .await
        .unwrap_or_else(|e| panic!("{aggregation:?}: {e}"));
        assert_matches(
            &measured,
            &expected(&values, aggregation),
            &format!("{aggregation:?} of customeraccount.numberofemployees"),
        );
    }
}

#[tokio::test]
async fn money_from_two_currencies_is_summed_in_the_base_currency() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let won: Vec<&Row> = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&Value::from(1)))
        .collect();
    let currencies: BTreeSet<&str> = won
        .iter()
        .filter_map(|row| row.get("transactioncurrencyid").and_then(Value::as_str))
        .collect();
    assert!(currencies.len() > 1, "the won deals must mix currencies");
    let base: Vec<Option<Value>> = won
        .iter()
        .map(|row| row.get("actualvalue_base").cloned())
        .collect();
    let raw_sum: f64 = won
        .iter()
        .filter_map(|row| row.get("actualvalue").and_then(Value::as_f64))
        .sum();
    let measured = measure(
        &plugin,
        &conn,
        "opportunity",
        "Won Opportunities",
        "actualvalue",
        Aggregation::Sum,
    )
    .await
    .expect("sum of won deals");
    assert_matches(
        &measured,
        &expected(&base, Aggregation::Sum),
        "sum of actualvalue",
    );
    let Some(MetricValue::Number(total)) = measured.value else {
        panic!("a number");
    };
    assert!(
        (total - raw_sum).abs() > 1.0,
        "a mixed-currency total is not the base total"
    );
}

#[tokio::test]
async fn counting_a_view_counts_its_rows() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let hot = dataset()
        .rows("lead")
        .iter()
        .filter(|row| {
            row.get("statecode") == Some(&Value::from(0))
                && row.get("leadqualitycode") == Some(&Value::from(1))
        })
        .count();
    let measured = measure(
        &plugin,
        &conn,
        "lead",
        "Hot Leads",
        "fullname",
        Aggregation::Count,
    )
    .await
    .expect("count of hot leads");
    assert_matches(
        &measured,
        &Expected::Number(hot as f64),
        "count of hot leads",
    );
    assert_eq!(measured.records, hot as u64);
}

#[tokio::test]
async fn a_column_of_the_wrong_type_is_invalid_and_names_what_is_allowed() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let error = measure(
        &plugin,
        &conn,
        "opportunity",
        "Open Opportunities",
        "name",
        Aggregation::Sum,
    )
    .await
    .expect_err("sum of text");
    let CallError::Plugin {
        error: Error::Invalid(message),
        ..
    } = error
    else {
        panic!("invalid expected, got {error}");
    };
    for part in ["sum", "'name'", "text", "count-values"] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
}

#[tokio::test]
async fn a_column_not_in_the_view_is_not_found() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let error = measure(
        &plugin,
        &conn,
        "opportunity",
        "Open Opportunities",
        "actualvalue",
        Aggregation::Sum,
    )
    .await
    .expect_err("actualvalue is not a column of that view");
    assert!(
        matches!(
            error,
            CallError::Plugin {
                error: Error::NotFound(_),
                ..
            }
        ),
        "{error}"
    );
}
