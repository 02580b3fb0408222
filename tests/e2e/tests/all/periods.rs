//! A Key Result's or Project's period applied to a date column of its view:
//! only the rows dated within it count, both ends included, computed by the
//! plugin's query and checked against the simulator's own rows.

use goals_e2e::{Cli, Sim, dataset};
use serde_json::Value;

/// The open opportunities (the "Open Opportunities" view) whose estimated
/// close date lies within [first, last]: their count and base-currency sum.
fn open_closing_within(first: &str, last: &str) -> (usize, f64) {
    let rows: Vec<&dataverse_sim::Row> = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
        .filter(|row| {
            row.get("estimatedclosedate")
                .and_then(Value::as_str)
                .is_some_and(|date| (first..=last).contains(&&date[..10]))
        })
        .collect();
    let sum = rows
        .iter()
        .filter_map(|row| row.get("estimatedvalue_base").and_then(Value::as_f64))
        .sum();
    (rows.len(), sum)
}

/// Two close dates of open opportunities some way apart, each the date of a
/// row: a period starting and ending on them shows whether both ends count.
fn period_on_row_dates() -> (String, String) {
    let mut days: Vec<String> = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
        .filter_map(|row| row.get("estimatedclosedate").and_then(Value::as_str))
        .map(|date| date[..10].to_string())
        .collect();
    days.sort();
    days.dedup();
    (days[days.len() / 4].clone(), days[days.len() / 2].clone())
}

/// `COMMAND link ITEM` to `aggregation` of `column` in the "Open
/// Opportunities" view, with `extra` arguments, as JSON.
fn link(
    item: &str,
    command: &'static str,
    column: &'static str,
    aggregation: &'static str,
    extra: &[&str],
) -> Vec<String> {
    [
        command,
        "link",
        item,
        "--connection",
        "sim",
        "--app",
        "Sales Hub",
        "--entity",
        "opportunity",
        "--view",
        "Open Opportunities",
        "--column",
        column,
        "--aggregation",
        aggregation,
        "--json",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// `link` with the item's period applied to the estimated close date.
const ON_CLOSE_DATE: [&str; 2] = ["--period-column", "estimatedclosedate"];

#[tokio::test]
async fn a_period_limits_the_metric_to_rows_dated_within_it_both_ends_included() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let (first, last) = period_on_row_dates();
    let (count, sum) = open_closing_within(&first, &last);
    let (all, _) = open_closing_within("0000-01-01", "9999-12-31");
    // Both ends hold rows, so leaving either out would change the count.
    assert!(count > 0 && count < all, "{count} of {all}");
    for day in [&first, &last] {
        let (on_day, _) = open_closing_within(day, day);
        assert!(on_day > 0, "a row closes on {day}");
    }

    let kr = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Pipeline closing this period",
            "--owner",
            "ana",
            "--unit",
            "currency",
            "--currency-code",
            "USD",
            "--start",
            "0",
            "--target",
            "1000000000",
            "--period-start",
            &first,
            "--period-end",
            &last,
        ])
        .await;
    assert_eq!(kr["period_start"], first.as_str());
    let kr = kr["id"].to_string();
    let args = link(&kr, "kr", "estimatedvalue", "sum", &ON_CLOSE_DATE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    let linked = linked.json();
    let value = linked["key_result"]["current_value"]
        .as_f64()
        .expect("a value");
    assert!(
        (value - sum).abs() < 0.01,
        "measured {value}, the rows say {sum}"
    );
    assert_eq!(linked["preview"]["records"], serde_json::json!(count));
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(
        shown.contains(&format!("period          {first} → {last}"))
            && shown
                .contains("period on       estimatedclosedate: only rows dated within the period"),
        "{shown}"
    );
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["link"]["period_column"], "estimatedclosedate");

    // A scheduled sync keeps the window.
    let synced = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(
        synced["run"]["records"],
        serde_json::json!(count),
        "{synced}"
    );

    // A Project's period, counted; open at its start.
    let project = cli
        .json(&[
            "project",
            "create",
            "--title",
            "Close the backlog",
            "--owner",
            "ben",
            "--start",
            "0",
            "--target",
            "100",
            "--period-end",
            &last,
        ])
        .await["id"]
        .to_string();
    let args = link(&project, "project", "name", "count", &ON_CLOSE_DATE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    let linked = linked.json();
    let (until_last, _) = open_closing_within("0000-01-01", &last);
    assert_eq!(
        linked["project"]["current_value"],
        serde_json::json!(until_last as f64),
        "{linked}"
    );
}

#[tokio::test]
async fn a_period_column_needs_a_period_and_a_date_column() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let plain = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "No period",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "10",
        ])
        .await["id"]
        .to_string();
    let args = link(&plain, "kr", "name", "count", &ON_CLOSE_DATE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = cli.run(&args).await;
    assert_eq!(refused.output.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("has no period") && m.contains("--period-start")),
        "{}",
        refused.stdout
    );

    let dated = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Dated",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "10",
            "--period-start",
            "2024-01-01",
        ])
        .await["id"]
        .to_string();
    let mut args = link(&dated, "kr", "name", "count", &ON_CLOSE_DATE);
    let at = args
        .iter()
        .position(|a| a == "estimatedclosedate")
        .expect("the column");
    args[at] = "name".to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let not_a_date = cli.run(&args).await;
    assert_ne!(not_a_date.output.status.code(), Some(0));
    let message = not_a_date.json()["error"]["message"].to_string();
    assert!(message.contains("is not a date"), "{message}");
    // Nothing was linked.
    assert!(cli.json(&["kr", "show", &dated]).await["link"].is_null());

    let backwards = cli
        .run(&[
            "kr",
            "create",
            "--title",
            "Backwards",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "10",
            "--period-start",
            "2024-03-31",
            "--period-end",
            "2024-01-01",
            "--json",
        ])
        .await;
    assert_eq!(
        backwards.output.status.code(),
        Some(2),
        "{}",
        backwards.stderr
    );
}

/// Open opportunities created by `day` (rows without a creation date never
/// are), optionally only those closing within [first, last].
fn open_created_by(day: &str, closing: Option<(&str, &str)>) -> usize {
    dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
        .filter(|row| {
            row.get("createdon")
                .and_then(Value::as_str)
                .is_some_and(|created| &created[..10] <= day)
        })
        .filter(|row| {
            closing.is_none_or(|(first, last)| {
                row.get("estimatedclosedate")
                    .and_then(Value::as_str)
                    .is_some_and(|date| (first..=last).contains(&&date[..10]))
            })
        })
        .count()
}

#[tokio::test]
async fn a_linked_item_gets_its_history_back_filled_from_its_period_start() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    // A quarter: a point a week, from its first day.
    let (first, last) = ("2025-01-01", "2025-03-31");
    let kr = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Open deals this quarter",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "1000",
            "--period-start",
            first,
            "--period-end",
            last,
        ])
        .await["id"]
        .to_string();
    let args = link(&kr, "kr", "name", "count", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    let linked = linked.json();
    assert_eq!(linked["backfill"]["points"], 13, "{linked}");
    assert_eq!(linked["backfill"]["column"], "createdon");
    let requests = linked["backfill"]["requests"].as_i64().expect("requests");
    // Every point in one batch, and one reading the creation column's metadata.
    assert_eq!(requests, 2, "{requests} requests for 13 points");
    eprintln!("back-filling a quarter: 13 points, {requests} requests");

    let history = cli.json(&["kr", "history", &kr, "--limit", "100"]).await;
    let runs = history.as_array().expect("runs");
    let points: Vec<&Value> = runs.iter().filter(|r| r["backfilled"] == true).collect();
    assert_eq!(points.len(), 13);
    assert_eq!(
        runs.iter().filter(|r| r["backfilled"] == false).count(),
        1,
        "and the first sync"
    );
    for point in &points {
        let at = point["started_at"].as_str().expect("a time");
        let day = &at[..10];
        assert!(at.ends_with("T23:59:59Z"), "{at}");
        assert_eq!(
            point["value"],
            serde_json::json!(open_created_by(day, None) as f64),
            "{day}"
        );
    }
    let days: Vec<&str> = points
        .iter()
        .map(|p| &p["started_at"].as_str().expect("a time")[..10])
        .collect();
    assert!(
        days.contains(&"2025-01-01") && days.contains(&"2025-03-26"),
        "{days:?}"
    );
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(shown.contains("13 points back-filled"), "{shown}");

    // With the period on a date column as well, each point counts both.
    let closing = cli
        .json(&[
            "project",
            "create",
            "--title",
            "Deals closing this quarter",
            "--owner",
            "ben",
            "--start",
            "0",
            "--target",
            "100",
            "--period-start",
            first,
            "--period-end",
            last,
        ])
        .await["id"]
        .to_string();
    let args = link(&closing, "project", "name", "count", &ON_CLOSE_DATE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    let history = cli
        .json(&["project", "history", &closing, "--limit", "100"])
        .await;
    let points: Vec<&Value> = history
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["backfilled"] == true)
        .collect();
    assert_eq!(points.len(), 13, "{history}");
    for point in points {
        let day = &point["started_at"].as_str().expect("a time")[..10];
        assert_eq!(
            point["value"],
            serde_json::json!(open_created_by(day, Some((first, last))) as f64),
            "{day}"
        );
    }

    // Another date column the person picks, over a short period: a point a
    // day, each counting the rows dated by that day in that column.
    let (short_first, short_last) = ("2025-02-01", "2025-02-10");
    let by_close = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Closing by day",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "100",
            "--period-start",
            short_first,
            "--period-end",
            short_last,
        ])
        .await["id"]
        .to_string();
    let args = link(
        &by_close,
        "kr",
        "name",
        "count",
        &["--backfill-column", "estimatedclosedate"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    let linked = linked.json();
    assert_eq!(
        linked["backfill"]["column"], "estimatedclosedate",
        "{linked}"
    );
    assert_eq!(linked["backfill"]["points"], 10, "{linked}");
    let history = cli
        .json(&["kr", "history", &by_close, "--limit", "100"])
        .await;
    let points: Vec<&Value> = history
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["backfilled"] == true)
        .collect();
    assert_eq!(points.len(), 10, "{history}");
    for point in points {
        let day = &point["started_at"].as_str().expect("a time")[..10];
        let closed_by = dataset()
            .rows("opportunity")
            .iter()
            .filter(|row| row.get("statecode") == Some(&serde_json::json!(0)))
            .filter(|row| {
                row.get("estimatedclosedate")
                    .and_then(Value::as_str)
                    .is_some_and(|date| &date[..10] <= day)
            })
            .count();
        assert_eq!(point["value"], serde_json::json!(closed_by as f64), "{day}");
    }

    // --no-backfill leaves the history to the syncs.
    let plain = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "No back-fill",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "10",
            "--period-start",
            first,
        ])
        .await["id"]
        .to_string();
    let args = link(&plain, "kr", "name", "count", &["--no-backfill"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = cli.run(&args).await;
    assert!(linked.success(), "{}", linked.stderr);
    assert!(linked.json().get("backfill").is_none());
    assert_eq!(
        cli.json(&["kr", "history", &plain])
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
