//! Dynamics 365 charts as metric sources: a chart's measure over a view's rows,
//! maybe only one category's (a choice's label, a month of a date), computed by
//! the plugin's aggregate and checked against the simulator's own rows.

use goals_e2e::{Cli, Sim, dataset};
use serde_json::{Value, json};

const PIPELINE: &str = "Pipeline by Status Reason";
const BY_MONTH: &str = "Estimated Revenue by Close Month";
const BY_RATING: &str = "Average Probability by Rating";

/// The opportunities with `statecode` (the sim's views filter on it) that
/// `keep` accepts.
fn opportunities(
    statecode: i64,
    keep: impl Fn(&dataverse_sim::Row) -> bool,
) -> Vec<&'static dataverse_sim::Row> {
    dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(statecode)))
        .filter(|row| keep(row))
        .collect()
}

fn sum(rows: &[&dataverse_sim::Row], column: &str) -> f64 {
    rows.iter()
        .filter_map(|row| row.get(column).and_then(Value::as_f64))
        .sum()
}

fn close(measured: &Value, expected: f64) -> bool {
    measured
        .as_f64()
        .is_some_and(|v| (v - expected).abs() < 0.01)
}

/// `measure` of a chart over `view` of opportunities, with `extra` arguments.
async fn measure_chart(cli: &Cli, view: &str, chart: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "measure",
        "--connection",
        "sim",
        "--entity",
        "opportunity",
        "--view",
        view,
        "--chart",
        chart,
        "--json",
    ];
    args.extend(extra);
    let run = cli.run(&args).await;
    assert!(run.success(), "{}", run.stderr);
    run.json()
}

#[tokio::test]
async fn charts_are_listed_with_their_measures_and_categories() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let charts = cli
        .json(&["charts", "--connection", "sim", "--entity", "opportunity"])
        .await;
    let charts = charts.as_array().expect("a list");
    let named = |name: &str| {
        charts
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no chart {name} in {charts:?}"))
            .clone()
    };
    let pipeline = named(PIPELINE);
    assert_eq!(pipeline["kind"], "system");
    assert_eq!(
        pipeline["measures"],
        json!([
            {"alias": "sum_estimatedvalue", "column": "estimatedvalue", "aggregation": "sum"},
            {"alias": "count_opportunities", "column": "opportunityid", "aggregation": "count"},
        ])
    );
    assert_eq!(
        pipeline["category"],
        json!({"column": "statuscode", "date_grouping": null})
    );
    assert_eq!(named(BY_MONTH)["category"]["date_grouping"], "month");
    assert_eq!(named(BY_RATING)["measures"][0]["aggregation"], "average");
    assert_eq!(named("My Won Revenue by Owner")["kind"], "personal");
    // System charts come first; leads' charts are not opportunities'.
    let kinds: Vec<&str> = charts.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert!(kinds.is_sorted_by_key(|k| *k != "system"), "{kinds:?}");
    assert!(charts.iter().all(|c| c["name"] != "Leads by Source"));

    let table = cli
        .run(&["charts", "--connection", "sim", "--entity", "opportunity"])
        .await
        .stdout;
    assert!(
        table.contains("sum_estimatedvalue = sum of estimatedvalue")
            && table.contains("estimatedclosedate by month"),
        "{table}"
    );
}

#[tokio::test]
async fn a_charts_measure_counts_only_the_rows_of_the_chosen_category() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());

    // Choice categories by label (any case) or number: On Hold is status 2.
    let on_hold = opportunities(0, |row| row.get("statuscode") == Some(&json!(2)));
    let in_progress = opportunities(0, |row| row.get("statuscode") == Some(&json!(1)));
    assert!(!on_hold.is_empty() && !in_progress.is_empty());
    let measured = measure_chart(
        &cli,
        "Open Opportunities",
        PIPELINE,
        &["--measure", "sum_estimatedvalue", "--category", "on hold"],
    )
    .await;
    assert!(
        close(&measured["value"], sum(&on_hold, "estimatedvalue_base")),
        "{measured} vs {}",
        sum(&on_hold, "estimatedvalue_base")
    );
    assert_eq!(measured["records"], json!(on_hold.len()));
    assert!(
        measured["query"]
            .as_str()
            .is_some_and(|q| q.contains("statuscode")
                && (q.contains("value=\"2\"") || q.contains("value='2'"))),
        "{measured}"
    );
    let counted = measure_chart(
        &cli,
        "Open Opportunities",
        PIPELINE,
        &["--measure", "count_opportunities", "--category", "1"],
    )
    .await;
    assert_eq!(counted["value"], json!(in_progress.len() as f64));
    // Without a category: every row of the view.
    let all = opportunities(0, |_| true);
    let whole = measure_chart(
        &cli,
        "Open Opportunities",
        PIPELINE,
        &["--measure", "sum_estimatedvalue"],
    )
    .await;
    assert!(
        close(&whole["value"], sum(&all, "estimatedvalue_base")),
        "{whole}"
    );

    // A month of a date category: both ends of the month count.
    let month = all
        .iter()
        .filter_map(|row| row.get("estimatedclosedate").and_then(Value::as_str))
        .map(|date| date[..7].to_string())
        .max()
        .expect("a close date");
    let in_month = opportunities(0, |row| {
        row.get("estimatedclosedate")
            .and_then(Value::as_str)
            .is_some_and(|date| date.starts_with(&month))
    });
    let by_month = measure_chart(
        &cli,
        "Open Opportunities",
        BY_MONTH,
        &["--category", &month],
    )
    .await;
    assert!(
        close(&by_month["value"], sum(&in_month, "estimatedvalue_base")),
        "{by_month} for {month}"
    );
    assert_eq!(by_month["records"], json!(in_month.len()));

    // A measure over a column the view does not show (Won Opportunities shows
    // no probability), for one rating by its label.
    let hot_won = opportunities(1, |row| row.get("opportunityratingcode") == Some(&json!(1)));
    let probabilities: Vec<f64> = hot_won
        .iter()
        .filter_map(|row| row.get("closeprobability").and_then(Value::as_f64))
        .collect();
    assert!(!probabilities.is_empty());
    let average = probabilities.iter().sum::<f64>() / probabilities.len() as f64;
    let rated = measure_chart(&cli, "Won Opportunities", BY_RATING, &["--category", "Hot"]).await;
    assert!(close(&rated["value"], average), "{rated} vs {average}");

    // Mistakes are named with the way out.
    let several = cli
        .run(&[
            "measure",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
            "--chart",
            PIPELINE,
        ])
        .await;
    assert!(!several.success());
    assert!(
        several.stderr.contains("several measures")
            && several.stderr.contains("count_opportunities"),
        "{}",
        several.stderr
    );
    let unknown = cli
        .run(&[
            "measure",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
            "--chart",
            PIPELINE,
            "--measure",
            "sum_estimatedvalue",
            "--category",
            "Maybe",
        ])
        .await;
    assert!(!unknown.success());
    assert!(
        unknown.stderr.contains("Maybe") && unknown.stderr.contains("On Hold"),
        "{}",
        unknown.stderr
    );
    let no_chart = cli
        .run(&[
            "measure",
            "--connection",
            "sim",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
            "--chart",
            "Nope",
        ])
        .await;
    assert!(!no_chart.success());
    assert!(no_chart.stderr.contains(PIPELINE), "{}", no_chart.stderr);
}

#[tokio::test]
async fn a_key_result_linked_to_a_chart_syncs_its_measure_in_one_request() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Pipeline on hold",
            "--owner",
            "ana",
            "--unit",
            "currency",
            "--currency-code",
            "USD",
            "--start",
            "100000000",
            "--target",
            "0",
            "--direction",
            "decrease",
        ])
        .await["id"]
        .to_string();
    let linked = cli
        .run(&[
            "kr",
            "link",
            &kr,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
            "--chart",
            PIPELINE,
            "--measure",
            "sum_estimatedvalue",
            "--category",
            "On Hold",
            "--json",
        ])
        .await;
    assert!(linked.success(), "{}", linked.stderr);
    let on_hold = opportunities(0, |row| row.get("statuscode") == Some(&json!(2)));
    let expected = sum(&on_hold, "estimatedvalue_base");
    let linked = linked.json();
    assert!(
        close(&linked["key_result"]["current_value"], expected),
        "{linked}"
    );
    let details = cli.json(&["kr", "show", &kr]).await;
    let chart_id = details["link"]["chart"]["id"].clone();
    assert!(
        chart_id.as_str().is_some_and(|id| id.len() == 36),
        "{details}"
    );
    assert_eq!(
        details["link"]["chart"],
        json!({"id": chart_id, "name": PIPELINE, "kind": "system",
               "measure": "sum_estimatedvalue", "category": "On Hold"})
    );
    assert_eq!(details["link"]["column_logical_name"], "estimatedvalue");
    assert_eq!(details["link"]["aggregation"], "sum");

    // A sync of the linked chart: the same number, from one request.
    let synced = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    assert!(close(&synced["run"]["value"], expected), "{synced}");
    assert_eq!(synced["run"]["requests"], json!(1), "{synced}");
    let shown = cli.run(&["kr", "show", &kr]).await.stdout;
    assert!(
        shown.contains("chart           Pipeline by Status Reason (system), measure sum_estimatedvalue, only category On Hold"),
        "{shown}"
    );
    // The chart's measure changed in Dynamics 365: the link breaks and says how
    // to mend it, rather than measure another number under the old name.
    let chart = dataset().chart_by_name(PIPELINE).expect("the chart");
    let changed = chart.datadescription.replace(
        r#"alias="sum_estimatedvalue" name="estimatedvalue""#,
        r#"alias="sum_estimatedvalue" name="actualvalue""#,
    );
    assert_ne!(changed, chart.datadescription);
    sim.server.update_chart(&chart.id, &changed);
    let failed = cli.run(&["kr", "sync", &kr]).await;
    assert!(!failed.success(), "{}", failed.stdout);
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["link"]["state"], "broken", "{details}");
    assert!(
        details["link"]["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("link the chart again")),
        "{details}"
    );
    assert!(
        close(&details["key_result"]["current_value"], expected),
        "{details}"
    );

    // A column and a chart together are refused before anything is called.
    let both = cli
        .run(&[
            "kr",
            "link",
            &kr,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
            "--entity",
            "opportunity",
            "--view",
            "Open Opportunities",
            "--chart",
            PIPELINE,
            "--column",
            "estimatedvalue",
        ])
        .await;
    assert!(!both.success());
    assert_eq!(both.output.status.code(), Some(2), "{}", both.stderr);
}

#[tokio::test]
async fn a_charts_measure_over_the_aggregate_limit_is_exact() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let open_leads: Vec<&dataverse_sim::Row> = dataset()
        .rows("lead")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .collect();
    // Past Dataverse's 50,000-row aggregate limit: split, and still exact.
    assert!(open_leads.len() > 50_000);
    let measure = |category: Option<&'static str>| {
        let cli = &cli;
        async move {
            let mut args = vec![
                "measure",
                "--connection",
                "sim",
                "--entity",
                "lead",
                "--view",
                "Open Leads",
                "--chart",
                "Leads by Source",
                "--json",
            ];
            if let Some(category) = category {
                args.extend(["--category", category]);
            }
            let run = cli.run(&args).await;
            assert!(run.success(), "{}", run.stderr);
            run.json()
        }
    };
    let all = measure(None).await;
    assert_eq!(all["value"], json!(open_leads.len() as f64), "{all}");
    assert!(all["requests"].as_u64().is_some_and(|n| n > 1), "{all}");
    // Web is lead source 8.
    let web = open_leads
        .iter()
        .filter(|row| row.get("leadsourcecode") == Some(&json!(8)))
        .count();
    assert!(web > 0);
    let from_web = measure(Some("Web")).await;
    assert_eq!(from_web["value"], json!(web as f64), "{from_web}");
}

#[tokio::test]
async fn the_api_lists_charts_and_measures_and_links_one() {
    use crate::api::{Served, find, token};
    use reqwest::{Method, StatusCode};
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "Contoso", &admin).await;
    let base = format!("/api/v1/connections/{conn}");
    let charts = api
        .ok(
            Method::GET,
            &format!("{base}/entities/opportunity/charts"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        find(&charts, "name", PIPELINE)["measures"][1]["alias"],
        "count_opportunities"
    );
    let views = api
        .ok(
            Method::GET,
            &format!("{base}/entities/opportunity/views?search=open"),
            &admin,
            None,
        )
        .await;
    let view = find(&views, "name", "Open Opportunities")["id"].clone();
    let on_hold = opportunities(0, |row| row.get("statuscode") == Some(&json!(2)));

    let measured = api
        .ok(
            Method::POST,
            &format!("{base}/measurements"),
            &admin,
            Some(
                json!({"entity": "opportunity", "view_id": view, "chart": PIPELINE,
                        "chart_measure": "count_opportunities", "chart_category": "On Hold"}),
            ),
        )
        .await;
    assert_eq!(measured["value"], json!(on_hold.len() as f64), "{measured}");

    // Given both ways, or a category without its chart: refused, naming why.
    let (status, problem) = api
        .call(
            Method::POST,
            &format!("{base}/measurements"),
            Some(&admin),
            Some(
                json!({"entity": "opportunity", "view_id": view, "chart": PIPELINE,
                        "column": "estimatedvalue", "aggregation": "sum"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not both")),
        "{problem}"
    );
    let (status, problem) = api
        .call(
            Method::POST,
            &format!("{base}/measurements"),
            Some(&admin),
            Some(
                json!({"entity": "opportunity", "view_id": view, "column": "name",
                        "aggregation": "count", "chart_category": "Won"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["kind"], "invalid-input", "{problem}");

    // A link to the chart's measure, synced once.
    let kr = api
        .ok(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            &admin,
            Some(json!({"title": "On hold", "owner": "ana", "unit": "number", "start": 0, "target": 500})),
        )
        .await["id"]
        .clone();
    let apps = api
        .ok(Method::GET, &format!("{base}/apps"), &admin, None)
        .await;
    let linked = api
        .ok(
            Method::PUT,
            &format!("/api/v1/key-results/{kr}/link"),
            &admin,
            Some(
                json!({"connection_id": conn, "app_id": find(&apps, "name", "Sales Hub")["id"],
                        "entity": "opportunity", "view_id": view, "chart": PIPELINE,
                        "chart_measure": "count_opportunities", "chart_category": "On Hold"}),
            ),
        )
        .await;
    assert_eq!(linked["run"]["status"], "success", "{linked}");
    assert_eq!(
        linked["key_result"]["current_value"],
        json!(on_hold.len() as f64)
    );
    assert_eq!(linked["link"]["chart"]["category"], "On Hold", "{linked}");
}
