//! Exact metrics at any size: past the 50,000-row aggregate limit, through joins
//! that repeat rows, in the right currency, from cached metadata that never
//! outlives a change in Dataverse. Expected values are computed here from the
//! seeded rows, independently of the simulator's FetchXML engine.

use dataverse_sim::Row;
use goals_e2e::target;
use goals_e2e::{Sim, dataset, plugin_with_connection};
use goals_host::bindings::{
    Aggregation, CurrencyChoice, Error, Measurement, MetricSpec, MetricValue, ViewKind, ViewRef,
};
use goals_host::connections::ConnectionRecord;
use goals_host::runtime::{CallError, PluginRuntime};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn spec(
    view: &str,
    column: &str,
    aggregation: Aggregation,
    currency: CurrencyChoice,
) -> MetricSpec {
    let seeded = dataset().view_by_name(view).expect("seeded view");
    MetricSpec {
        entity: seeded.returnedtypecode.clone(),
        view: ViewRef {
            id: seeded.id.clone(),
            kind: match seeded.kind {
                dataverse_sim::ViewKind::System => ViewKind::System,
                dataverse_sim::ViewKind::Personal => ViewKind::Personal,
            },
        },
        column: column.to_string(),
        aggregation,
        currency,
    }
}

async fn measure(
    plugin: &PluginRuntime,
    conn: &ConnectionRecord,
    view: &str,
    column: &str,
    aggregation: Aggregation,
) -> Result<Measurement, CallError> {
    plugin
        .fetch_and_aggregate(
            &target(conn),
            &spec(view, column, aggregation, CurrencyChoice::Base),
        )
        .await
}

fn number(measurement: &Measurement) -> f64 {
    match measurement.value {
        Some(MetricValue::Number(n)) => n,
        ref other => panic!("a number expected, got {other:?}"),
    }
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

fn rows_where(entity: &str, keep: impl Fn(&Row) -> bool) -> Vec<&'static Row> {
    dataset()
        .rows(entity)
        .iter()
        .filter(|row| keep(row))
        .collect()
}

fn is(row: &Row, key: &str, value: Value) -> bool {
    row.get(key) == Some(&value)
}

fn open_leads() -> Vec<&'static Row> {
    rows_where("lead", |row| is(row, "statecode", json!(0)))
}

#[tokio::test]
async fn a_view_over_the_aggregate_limit_is_measured_exactly() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let leads = open_leads();
    assert!(leads.len() > 50_000);
    assert!(
        leads.iter().any(|row| !row.contains_key("createdon")),
        "some open leads have no createdon: a split by date must not lose them"
    );
    let amounts: Vec<f64> = leads
        .iter()
        .filter_map(|row| row.get("estimatedamount_base").and_then(Value::as_f64))
        .collect();

    let count = measure(&plugin, &conn, "Open Leads", "fullname", Aggregation::Count)
        .await
        .expect("count of open leads");
    assert_eq!(number(&count), leads.len() as f64);
    assert_eq!(count.records, leads.len() as u64);
    assert!(count.requests <= 12, "{} requests", count.requests);

    let sum = measure(
        &plugin,
        &conn,
        "Open Leads",
        "estimatedamount",
        Aggregation::Sum,
    )
    .await
    .expect("sum");
    assert!(
        close(number(&sum), amounts.iter().sum()),
        "{}",
        number(&sum)
    );
    assert_eq!(sum.currency.as_deref(), Some("USD"));

    let average = measure(
        &plugin,
        &conn,
        "Open Leads",
        "estimatedamount",
        Aggregation::Average,
    )
    .await
    .expect("average");
    let want = amounts.iter().sum::<f64>() / amounts.len() as f64;
    assert!(
        close(number(&average), want),
        "{} vs {want}",
        number(&average)
    );

    let max = measure(
        &plugin,
        &conn,
        "Open Leads",
        "estimatedamount",
        Aggregation::Max,
    )
    .await
    .expect("max");
    assert_eq!(
        number(&max),
        amounts.iter().copied().fold(f64::MIN, f64::max)
    );

    let latest = measure(&plugin, &conn, "Open Leads", "createdon", Aggregation::Max)
        .await
        .expect("latest lead");
    let want = leads
        .iter()
        .filter_map(|row| row.get("createdon").and_then(Value::as_str))
        .max()
        .map(str::to_string);
    assert!(
        matches!(latest.value, Some(MetricValue::DateTime(ref d)) if Some(d) == want.as_ref()),
        "{:?} vs {want:?}",
        latest.value
    );

    // The rest of the aggregations, over the same split.
    assert!(
        amounts.len() < leads.len(),
        "some open leads have no amount: the counts must differ"
    );
    let values = measure(
        &plugin,
        &conn,
        "Open Leads",
        "estimatedamount",
        Aggregation::CountValues,
    )
    .await
    .expect("count of amounts");
    assert_eq!(number(&values), amounts.len() as f64);
    let min = measure(
        &plugin,
        &conn,
        "Open Leads",
        "estimatedamount",
        Aggregation::Min,
    )
    .await
    .expect("min");
    assert_eq!(
        number(&min),
        amounts.iter().copied().fold(f64::MAX, f64::min)
    );
    let earliest = measure(&plugin, &conn, "Open Leads", "createdon", Aggregation::Min)
        .await
        .expect("earliest lead");
    let want = leads
        .iter()
        .filter_map(|row| row.get("createdon").and_then(Value::as_str))
        .min()
        .map(str::to_string);
    assert!(
        matches!(earliest.value, Some(MetricValue::DateTime(ref d)) if Some(d) == want.as_ref()),
        "{:?} vs {want:?}",
        earliest.value
    );
}

#[tokio::test]
async fn an_unchanged_metric_syncs_in_one_request() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    for view in ["Hot Leads", "Open Leads"] {
        let first = measure(&plugin, &conn, view, "fullname", Aggregation::Count)
            .await
            .expect("first sync");
        sim.server.clear_requests();
        let again = measure(&plugin, &conn, view, "fullname", Aggregation::Count)
            .await
            .expect("next sync");
        assert_eq!(number(&again), number(&first), "{view}");
        assert_eq!(
            again.requests, 1,
            "{view}: one request per sync once cached"
        );
        assert_eq!(
            sim.server.requests().len(),
            1,
            "{view}: the simulator saw one request"
        );
        assert_eq!(
            again.bytes_received as usize,
            sim.server.requests()[0].response_bytes,
            "{view}: the bytes received are the body the simulator sent"
        );
    }
}

/// The goals of the `sync_cost` bench, held here so a change cannot quietly miss
/// them: once cached, a sync of a view of any size is one request of under 2 KiB.
#[tokio::test]
async fn a_cached_sync_of_any_size_is_one_request_under_2_kib() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    for view in ["Bench 1k", "Bench 50k", "Bench 200k"] {
        let spec = spec(view, "new_amount", Aggregation::Sum, CurrencyChoice::Base);
        let first = plugin
            .fetch_and_aggregate(&target(&conn), &spec)
            .await
            .unwrap_or_else(|e| panic!("first sync of {view}: {e}"));
        let later = plugin
            .fetch_and_aggregate(&target(&conn), &spec)
            .await
            .unwrap_or_else(|e| panic!("later sync of {view}: {e}"));
        assert_eq!(number(&later), number(&first), "{view}");
        assert_eq!(later.requests, 1, "{view}");
        assert!(
            later.bytes_received < 2048,
            "{view}: {} bytes",
            later.bytes_received
        );
        assert!(first.requests <= 5, "{view}: {} requests", first.requests);
    }
}

#[tokio::test]
async fn a_distinct_count_over_the_limit_reads_every_row_once() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let companies: BTreeSet<String> = open_leads()
        .iter()
        .filter_map(|row| row.get("companyname").and_then(Value::as_str))
        .map(str::to_lowercase)
        .collect();
    let measured = measure(
        &plugin,
        &conn,
        "Open Leads",
        "companyname",
        Aggregation::CountDistinct,
    )
    .await
    .expect("distinct companies");
    assert_eq!(number(&measured), companies.len() as f64);
    assert_eq!(measured.records, open_leads().len() as u64);
    let pages = open_leads().len().div_ceil(5000) as u32;
    assert!(
        measured.requests >= pages && measured.requests <= pages + 8,
        "{} requests for {pages} pages",
        measured.requests
    );
}

#[tokio::test]
async fn joins_that_repeat_rows_still_count_each_view_row_once() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let open_deals_per_account = |account: &str| {
        rows_where("opportunity", |row| {
            is(row, "statecode", json!(0)) && is(row, "parentaccountid", json!(account))
        })
        .len()
    };
    let accounts: Vec<&Row> = rows_where("account", |row| {
        row.get("accountid")
            .and_then(Value::as_str)
            .is_some_and(|id| open_deals_per_account(id) > 0)
    });
    let joined_rows: usize = accounts
        .iter()
        .filter_map(|row| row.get("accountid").and_then(Value::as_str))
        .map(open_deals_per_account)
        .sum();
    assert!(
        joined_rows > accounts.len(),
        "the join must repeat accounts"
    );

    let count = measure(
        &plugin,
        &conn,
        "Accounts with Open Deals",
        "name",
        Aggregation::Count,
    )
    .await
    .expect("count");
    assert_eq!(number(&count), accounts.len() as f64);

    let revenue: f64 = accounts
        .iter()
        .filter_map(|row| row.get("revenue_base").and_then(Value::as_f64))
        .sum();
    let sum = measure(
        &plugin,
        &conn,
        "Accounts with Open Deals",
        "revenue",
        Aggregation::Sum,
    )
    .await
    .expect("sum of revenue");
    assert!(
        close(number(&sum), revenue),
        "{} vs {revenue}",
        number(&sum)
    );

    // Every other aggregation also sees one row per account, not one per deal.
    let employees: Vec<f64> = accounts
        .iter()
        .filter_map(|row| row.get("numberofemployees").and_then(Value::as_f64))
        .collect();
    assert!(employees.len() > 1);
    let distinct = employees
        .iter()
        .map(|n| n.to_bits())
        .collect::<BTreeSet<_>>()
        .len();
    let wanted = [
        (Aggregation::CountValues, employees.len() as f64),
        (Aggregation::CountDistinct, distinct as f64),
        (
            Aggregation::Average,
            employees.iter().sum::<f64>() / employees.len() as f64,
        ),
        (
            Aggregation::Min,
            employees.iter().copied().fold(f64::MAX, f64::min),
        ),
        (
            Aggregation::Max,
            employees.iter().copied().fold(f64::MIN, f64::max),
        ),
    ];
    for (aggregation, want) in wanted {
        let measured = measure(
            &plugin,
            &conn,
            "Accounts with Open Deals",
            "numberofemployees",
            aggregation,
        )
        .await
        .unwrap_or_else(|e| panic!("{aggregation:?}: {e}"));
        assert!(
            close(number(&measured), want),
            "{aggregation:?}: {} vs {want}",
            number(&measured)
        );
    }
}

#[tokio::test]
async fn transaction_currency_is_only_used_when_every_row_shares_it() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let euro = dataset().currency_by_code("EUR").expect("EUR");
    let euro_deals = rows_where("opportunity", |row| {
        is(row, "statecode", json!(0)) && is(row, "transactioncurrencyid", json!(euro.id))
    });
    let raw: f64 = euro_deals
        .iter()
        .filter_map(|row| row.get("estimatedvalue").and_then(Value::as_f64))
        .sum();
    let measured = plugin
        .fetch_and_aggregate(
            &target(&conn),
            &spec(
                "Open Deals in Euro",
                "estimatedvalue",
                Aggregation::Sum,
                CurrencyChoice::Transaction,
            ),
        )
        .await
        .expect("sum in euro");
    assert!(
        close(number(&measured), raw),
        "{} vs {raw}",
        number(&measured)
    );
    assert_eq!(measured.currency.as_deref(), Some("EUR"));

    let base = measure(
        &plugin,
        &conn,
        "Open Deals in Euro",
        "estimatedvalue",
        Aggregation::Sum,
    )
    .await
    .expect("sum in base currency");
    assert_eq!(base.currency.as_deref(), Some("USD"));
    assert!(!close(number(&base), raw));

    let mixed = plugin
        .fetch_and_aggregate(
            &target(&conn),
            &spec(
                "Open Opportunities",
                "estimatedvalue",
                Aggregation::Sum,
                CurrencyChoice::Transaction,
            ),
        )
        .await
        .expect_err("open opportunities mix currencies");
    let CallError::Plugin {
        error: Error::Invalid(message),
        ..
    } = mixed
    else {
        panic!("invalid expected, got {mixed}");
    };
    assert!(message.contains("currency"), "{message}");
}

#[tokio::test]
async fn an_edited_view_is_measured_with_its_new_definition() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let view = dataset().view_by_name("Hot Leads").expect("view");
    let before = measure(&plugin, &conn, "Hot Leads", "fullname", Aggregation::Count)
        .await
        .expect("before");
    // Hot leads that are also qualified-or-open → now: warm open leads.
    let edited = view.fetchxml.replace(
        "<condition attribute='leadqualitycode' operator='eq' value='1' />",
        "<condition attribute='leadqualitycode' operator='eq' value='2' />",
    );
    assert_ne!(edited, view.fetchxml, "the edit must change the query");
    sim.server.update_view(&view.id, Some(&edited), None);
    let after = measure(&plugin, &conn, "Hot Leads", "fullname", Aggregation::Count)
        .await
        .expect("after");
    let warm = rows_where("lead", |row| {
        is(row, "statecode", json!(0)) && is(row, "leadqualitycode", json!(2))
    })
    .len();
    assert_eq!(number(&after), warm as f64);
    assert_ne!(number(&after), number(&before));
}

#[tokio::test]
async fn a_deleted_view_or_column_is_not_found_never_a_stale_number() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    measure(
        &plugin,
        &conn,
        "Won Opportunities",
        "actualvalue",
        Aggregation::Sum,
    )
    .await
    .expect("cached once");
    sim.server.delete_attribute("opportunity", "actualvalue");
    let column = measure(
        &plugin,
        &conn,
        "Won Opportunities",
        "actualvalue",
        Aggregation::Sum,
    )
    .await
    .expect_err("the column is gone");
    assert!(
        matches!(
            column,
            CallError::Plugin {
                error: Error::NotFound(_),
                ..
            }
        ),
        "{column}"
    );

    measure(&plugin, &conn, "Hot Leads", "fullname", Aggregation::Count)
        .await
        .expect("cached once");
    let view = dataset().view_by_name("Hot Leads").expect("view");
    sim.server.delete_view(&view.id);
    let gone = measure(&plugin, &conn, "Hot Leads", "fullname", Aggregation::Count)
        .await
        .expect_err("the view is gone");
    let CallError::Plugin {
        error: Error::NotFound(message),
        ..
    } = gone
    else {
        panic!("not-found expected, got {gone}");
    };
    assert!(message.contains("Hot Leads"), "{message}");
}

#[tokio::test]
async fn a_part_that_grows_past_the_limit_is_split_again() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let first = measure(&plugin, &conn, "Open Leads", "fullname", Aggregation::Count)
        .await
        .expect("first");
    // 60,000 open leads created in one day: one part of the cached split now holds
    // more than 50,000 rows.
    let extra: Vec<Row> = (0..60_000)
        .map(|i| {
            let mut row = Row::new();
            row.insert(
                "leadid".into(),
                json!(format!("00000000-0000-4000-8000-{i:012}")),
            );
            row.insert("fullname".into(), json!(format!("Burst {i}")));
            row.insert("statecode".into(), json!(0));
            row.insert(
                "createdon".into(),
                json!(format!(
                    "2025-03-01T{:02}:{:02}:{:02}Z",
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                )),
            );
            row
        })
        .collect();
    sim.server.add_rows("lead", extra);
    let grown = measure(&plugin, &conn, "Open Leads", "fullname", Aggregation::Count)
        .await
        .expect("after the burst");
    assert_eq!(number(&grown), number(&first) + 60_000.0);
}
