//! A chart's measure through the whole pipeline, over a fake Dataverse.

use super::category::tests::options;
use super::*;
use crate::connection::{Connection, Credential};
use crate::metadata::{ColumnInfo, TableInfo, ViewDefinition};
use crate::metrics;
use crate::platform::Platform;
use crate::platform::fake::FakePlatform;
use crate::types::{CurrencyChoice, MetricValue, ViewRef};
use crate::xml::Element;

const DESCRIPTION: &str = r#"<datadefinition>
    <fetchcollection>
      <fetch mapping="logical" aggregate="true">
        <entity name="opportunity">
          <attribute groupby="true" alias="groupby_column" name="statuscode" />
          <attribute alias="avg_value" name="estimatedvalue" aggregate="avg" />
          <attribute alias="sum_estimatedvalue" name="estimatedvalue" aggregate="sum" />
          <attribute alias="owners" name="ownerid" aggregate="countcolumn" distinct="true" />
          <link-entity name="account" from="accountid" to="parentaccountid" alias="acc">
            <attribute alias="sum_revenue" name="revenue" aggregate="sum" />
          </link-entity>
        </entity>
      </fetch>
    </fetchcollection>
    <categorycollection>
      <category>
        <measurecollection><measure alias="sum_estimatedvalue" /></measurecollection>
        <measurecollection><measure alias="sum_revenue" /></measurecollection>
        <measurecollection><measure alias="owners" /></measurecollection>
      </category>
    </categorycollection>
  </datadefinition>"#;

fn measure(alias: &str, column: &str, aggregation: Aggregation) -> ChartMeasure {
    ChartMeasure {
        alias: alias.into(),
        column: column.into(),
        aggregation,
    }
}

fn with_fetch(attributes: &str) -> String {
    format!(
        "<datadefinition><fetchcollection><fetch aggregate='true'><entity name='lead'>\
         {attributes}</entity></fetch></fetchcollection></datadefinition>"
    )
}

#[test]
fn measures_are_the_plotted_aggregates_in_plotted_order() {
    let description = DataDescription::parse(DESCRIPTION).unwrap();
    assert_eq!(description.entity, "opportunity");
    // The average is not plotted; the joined table's sum is left out.
    assert_eq!(
        description.measures,
        [
            measure("sum_estimatedvalue", "estimatedvalue", Aggregation::Sum),
            measure("owners", "ownerid", Aggregation::CountDistinct),
        ]
    );
    assert_eq!(
        description.category,
        Some(ChartCategory {
            column: "statuscode".into(),
            date_grouping: None
        })
    );
}

#[test]
fn every_aggregate_maps_and_unplotted_charts_measure_all() {
    let description = DataDescription::parse(&with_fetch(
        "<attribute alias='a' name='leadid' aggregate='count'/>\
         <attribute alias='b' name='leadid' aggregate='count' distinct='true'/>\
         <attribute alias='c' name='email' aggregate='countcolumn'/>\
         <attribute alias='d' name='email' aggregate='countcolumn' distinct='true'/>\
         <attribute alias='e' name='budget' aggregate='sum'/>\
         <attribute alias='f' name='budget' aggregate='avg'/>\
         <attribute alias='g' name='budget' aggregate='min'/>\
         <attribute alias='h' name='budget' aggregate='max'/>\
         <attribute alias='i' name='budget' aggregate='sum' distinct='true'/>\
         <attribute alias='j' name='budget' aggregate='median'/>\
         <attribute name='budget' aggregate='sum'/>\
         <attribute groupby='true' alias='k' name='createdon' dategrouping='month'/>",
    ))
    .unwrap();
    assert_eq!(
        description.measures,
        [
            measure("a", "leadid", Aggregation::Count),
            measure("b", "leadid", Aggregation::CountDistinct),
            measure("c", "email", Aggregation::CountValues),
            measure("d", "email", Aggregation::CountDistinct),
            measure("e", "budget", Aggregation::Sum),
            measure("f", "budget", Aggregation::Average),
            measure("g", "budget", Aggregation::Min),
            measure("h", "budget", Aggregation::Max),
        ]
    );
    assert_eq!(
        description.category,
        Some(ChartCategory {
            column: "createdon".into(),
            date_grouping: Some(DateGrouping::Month)
        })
    );
}

#[test]
fn each_date_grouping_is_read() {
    for (text, grouping) in [
        ("day", DateGrouping::Day),
        ("week", DateGrouping::Week),
        ("month", DateGrouping::Month),
        ("quarter", DateGrouping::Quarter),
        ("year", DateGrouping::Year),
        ("fiscal-period", DateGrouping::FiscalPeriod),
        ("fiscal-year", DateGrouping::FiscalYear),
    ] {
        let description = DataDescription::parse(&with_fetch(&format!(
            "<attribute alias='n' name='leadid' aggregate='count'/>\
             <attribute groupby='true' alias='k' name='createdon' dategrouping='{text}'/>"
        )))
        .unwrap();
        assert_eq!(
            description.category.and_then(|c| c.date_grouping),
            Some(grouping),
            "{text}"
        );
    }
    let ungrouped = DataDescription::parse(&with_fetch(
        "<attribute alias='n' name='leadid' aggregate='count'/>",
    ))
    .unwrap();
    assert_eq!(ungrouped.category, None);
}

#[test]
fn unreadable_descriptions_are_errors_and_charts_without_measures_are_left_out() {
    assert!(matches!(
        DataDescription::parse("<datadefinition><fetch>"),
        Err(ChartError::Xml(_))
    ));
    assert_eq!(
        DataDescription::parse("<datadefinition/>"),
        Err(ChartError::NoFetch)
    );
    assert_eq!(
        DataDescription::parse("<fetch><entity/></fetch>"),
        Err(ChartError::NoFetch)
    );
    let joined_only = with_fetch(
        "<link-entity name='account' from='accountid' to='parentaccountid'>\
         <attribute alias='s' name='revenue' aggregate='sum'/></link-entity>",
    );
    assert!(
        DataDescription::parse(&joined_only)
            .unwrap()
            .measures
            .is_empty()
    );
    assert!(measurable("lead", Some(&joined_only)).is_err());
    assert!(measurable("lead", None).is_err());
    assert!(
        measurable(
            "contact",
            Some(&with_fetch(
                "<attribute alias='n' name='leadid' aggregate='count'/>"
            ))
        )
        .is_err()
    );
}

const VIEW_ID: &str = "0a000000-0000-0000-0000-000000000001";
const CHART_ID: &str = "0c000000-0000-0000-0000-000000000002";
const VIEW_STAMP: &str = "2024-01-01T00:00:00Z";
const CHART_STAMP: &str = "2024-05-01T00:00:00Z";

fn connection() -> Connection {
    Connection {
        id: "c1".into(),
        environment_url: "https://org.crm.dynamics.com".into(),
        authority_url: "https://login.microsoftonline.com".into(),
        tenant: "t1".into(),
        client_id: "app".into(),
        credential: Credential::ClientSecret("secret".into()),
    }
}

fn store<T: Serialize>(platform: &FakePlatform, key: &str, value: &T) {
    platform.storage_set(key, &serde_json::to_vec(value).unwrap(), None);
}

/// A platform with everything a sync caches already cached: the token, the
/// view, the chart, the table, the columns, the currency and the options.
fn cached(description: &str) -> FakePlatform {
    let platform = FakePlatform::default();
    store(
        &platform,
        "access-token app https://org.crm.dynamics.com",
        &serde_json::json!({"access_token": "tok", "expires_at": 1_800_003_600u64}),
    );
    store(
        &platform,
        &format!("view system {VIEW_ID}"),
        &ViewDefinition {
            name: "Open Opportunities".into(),
            entity: "opportunity".into(),
            fetch_xml: "<fetch><entity name='opportunity'><attribute name='name'/>\
                <filter><condition attribute='statecode' operator='eq' value='0'/></filter>\
                </entity></fetch>"
                .into(),
            // The measure's column is not shown: a chart does not need it to be.
            layout_xml:
                "<grid><row name='result' id='opportunityid'><cell name='name'/></row></grid>"
                    .into(),
            modified_on: Some(VIEW_STAMP.into()),
        },
    );
    store(
        &platform,
        &format!("chart system {CHART_ID}"),
        &ChartDefinition {
            name: "Pipeline by status".into(),
            entity: "opportunity".into(),
            data_description: description.into(),
            modified_on: Some(CHART_STAMP.into()),
        },
    );
    store(
        &platform,
        "table opportunity",
        &TableInfo {
            entity_set_name: "opportunities".into(),
            primary_id_attribute: "opportunityid".into(),
        },
    );
    for (column, kind) in [
        ("estimatedvalue", "MoneyType"),
        ("statuscode", "StatusType"),
    ] {
        store(
            &platform,
            &format!("column opportunity {column}"),
            &ColumnInfo {
                kind: kind.into(),
                ..ColumnInfo::default()
            },
        );
    }
    store(&platform, "base currency", &"EUR");
    store(&platform, "options opportunity statuscode", &options());
    platform
}

fn spec() -> MetricSpec {
    MetricSpec {
        entity: "opportunity".into(),
        view: ViewRef {
            id: VIEW_ID.into(),
            kind: ViewKind::System,
        },
        column: "estimatedvalue".into(),
        aggregation: Aggregation::Sum,
        currency: CurrencyChoice::Base,
    }
}

fn selection(category: Option<&str>) -> ChartSelection {
    ChartSelection {
        chart_id: CHART_ID.into(),
        chart_kind: ViewKind::System,
        measure: "sum_estimatedvalue".into(),
        category: category.map(str::to_string),
    }
}

fn stamp(modified_on: &str) -> String {
    format!(r#"{{"modifiedon":"{modified_on}"}}"#)
}

const AGGREGATE: &str = r#"{"value":[{"metric_sum":1500.5,"metric_rows":3}]}"#;

fn respond_batch(platform: &FakePlatform, parts: &[(u16, &str)]) {
    let mut body = String::new();
    for (status, json) in parts {
        body.push_str(&format!(
            "--batchresponse_1\r\nContent-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {status} X\r\n\
             Content-Type: application/json\r\n\r\n{json}\r\n"
        ));
    }
    body.push_str("--batchresponse_1--\r\n");
    platform.respond(
        200,
        &[("content-type", "multipart/mixed; boundary=batchresponse_1")],
        &body,
    );
}

fn measure_chart(
    platform: &FakePlatform,
    category: Option<&str>,
) -> Result<crate::types::Measurement, Error> {
    let conn = connection();
    let mut session = Session::new(platform, &conn);
    metrics::fetch_and_aggregate(&mut session, &spec(), &[], Some(&selection(category)))
}

#[test]
fn a_cached_chart_is_measured_in_one_batch_with_the_view_and_chart_checks() {
    let platform = cached(DESCRIPTION);
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp(CHART_STAMP)),
            (200, AGGREGATE),
        ],
    );
    let measurement = measure_chart(&platform, Some("won")).unwrap();
    assert_eq!(measurement.value, Some(MetricValue::Number(1500.5)));
    assert_eq!(measurement.records, 3);
    assert_eq!(measurement.currency.as_deref(), Some("EUR"));
    assert_eq!(
        measurement.requests, 1,
        "one request once metadata is cached"
    );

    let sent = platform.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].url.ends_with("/api/data/v9.2/$batch"),
        "{}",
        sent[0].url
    );
    let body = String::from_utf8(sent[0].body.clone()).unwrap();
    let gets: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("GET "))
        .collect();
    assert_eq!(gets.len(), 3, "{body}");
    assert_eq!(
        gets[0],
        format!("/api/data/v9.2/savedqueries({VIEW_ID})?$select=modifiedon HTTP/1.1")
    );
    assert_eq!(
        gets[1],
        format!("/api/data/v9.2/savedqueryvisualizations({CHART_ID})?$select=modifiedon HTTP/1.1")
    );
    assert!(
        gets[2].starts_with("/api/data/v9.2/opportunities?fetchXml="),
        "{}",
        gets[2]
    );

    // The query shown to people: the base-currency sum of the won rows among
    // the view's.
    let query = Element::parse(&measurement.query).unwrap();
    let conditions: Vec<(&str, &str)> = query
        .descendants()
        .into_iter()
        .filter(|e| e.name == "condition")
        .filter_map(|e| Some((e.attr("attribute")?, e.attr("value")?)))
        .collect();
    assert_eq!(conditions, [("statecode", "0"), ("statuscode", "3")]);
    assert!(query.descendants().iter().any(
        |e| e.attr("name") == Some("estimatedvalue_base") && e.attr("aggregate") == Some("sum")
    ));
}

#[test]
fn a_month_category_narrows_the_rows_to_its_days() {
    let by_month = DESCRIPTION.replace(
        r#"name="statuscode""#,
        r#"name="estimatedclosedate" dategrouping="month""#,
    );
    let platform = cached(&by_month);
    store(
        &platform,
        "column opportunity estimatedclosedate",
        &ColumnInfo {
            kind: "DateTimeType".into(),
            ..ColumnInfo::default()
        },
    );
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp(CHART_STAMP)),
            (200, AGGREGATE),
        ],
    );
    let measurement = measure_chart(&platform, Some("2024-02")).unwrap();
    assert_eq!(measurement.requests, 1);
    let query = Element::parse(&measurement.query).unwrap();
    let days: Vec<(&str, &str)> = query
        .descendants()
        .into_iter()
        .filter(|e| e.attr("attribute") == Some("estimatedclosedate"))
        .filter_map(|e| Some((e.attr("operator")?, e.attr("value")?)))
        .collect();
    assert_eq!(
        days,
        [
            ("on-or-after", "2024-02-01"),
            ("on-or-before", "2024-02-29")
        ]
    );

    let platform = cached(&by_month.replace("month", "week"));
    store(
        &platform,
        "column opportunity estimatedclosedate",
        &ColumnInfo {
            kind: "DateTimeType".into(),
            ..ColumnInfo::default()
        },
    );
    match measure_chart(&platform, Some("2024-02")) {
        Err(Error::Invalid(message)) => assert!(
            message.contains("by week") && message.contains("without a category"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_chart_is_read_again_and_measured_again() {
    let platform = cached(DESCRIPTION);
    let changed = "2024-06-01T00:00:00Z";
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp(changed)),
            (200, AGGREGATE),
        ],
    );
    let record = serde_json::json!({
        "name": "Pipeline by status",
        "primaryentitytypecode": "opportunity",
        "datadescription": DESCRIPTION,
        "modifiedon": changed,
    });
    platform.respond(200, &[], &record.to_string());
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp(changed)),
            (200, AGGREGATE),
        ],
    );
    let measurement = measure_chart(&platform, None).unwrap();
    assert_eq!(measurement.requests, 3);
    let sent = platform.sent.borrow();
    assert!(
        sent[1].url.contains(&format!(
            "savedqueryvisualizations({CHART_ID})?$select=name"
        )),
        "{}",
        sent[1].url
    );
    let cached: ChartDefinition =
        cache::get(&platform, &format!("chart system {CHART_ID}")).unwrap();
    assert_eq!(cached.modified_on.as_deref(), Some(changed));
}

#[test]
fn a_chart_whose_measure_changed_or_was_deleted_is_not_found() {
    let platform = cached(DESCRIPTION);
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp("2024-06-01T00:00:00Z")),
            (200, AGGREGATE),
        ],
    );
    let record = serde_json::json!({
        "name": "Pipeline by status",
        "primaryentitytypecode": "opportunity",
        "datadescription": DESCRIPTION.replace(r#"aggregate="sum""#, r#"aggregate="max""#),
        "modifiedon": "2024-06-01T00:00:00Z",
    });
    platform.respond(200, &[], &record.to_string());
    match measure_chart(&platform, None) {
        Err(Error::NotFound(message)) => assert_eq!(
            message,
            "the measure 'sum_estimatedvalue' of chart 'Pipeline by status' changed (now \
             max of estimatedvalue); link the chart again"
        ),
        other => panic!("{other:?}"),
    }

    let platform = cached(DESCRIPTION);
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (404, r#"{"error":{"code":"","message":"not found"}}"#),
            (200, AGGREGATE),
        ],
    );
    match measure_chart(&platform, None) {
        Err(Error::NotFound(message)) => assert_eq!(
            message,
            "chart 'Pipeline by status' was deleted in Dynamics 365; choose another chart"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        platform
            .storage_get(&format!("chart system {CHART_ID}"))
            .is_none()
    );
}

#[test]
fn a_selection_that_no_longer_fits_fails_before_any_request() {
    let platform = cached(DESCRIPTION);
    let conn = connection();
    let mut session = Session::new(&platform, &conn);
    let mut unknown = selection(None);
    unknown.measure = "sum_revenue".into();
    match metrics::fetch_and_aggregate(&mut session, &spec(), &[], Some(&unknown)) {
        Err(Error::NotFound(message)) => {
            assert!(
                message.contains("'sum_estimatedvalue', 'owners'"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let mut other_table = spec();
    other_table.entity = "lead".into();
    match resolve(&mut session, &other_table, &selection(None)) {
        Err(Error::NotFound(message)) => {
            assert!(
                message.contains("'opportunity'") && message.contains("'lead'"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    match measure_chart(&platform, Some("Maybe")) {
        Err(Error::Invalid(message)) => assert!(message.contains("Won, Lost"), "{message}"),
        other => panic!("{other:?}"),
    }
    let ungrouped = cached(&DESCRIPTION.replace(r#"groupby="true""#, ""));
    match measure_chart(&ungrouped, Some("Won")) {
        Err(Error::Invalid(message)) => assert_eq!(
            message,
            "chart 'Pipeline by status' has no categories; measure it without a category"
        ),
        other => panic!("{other:?}"),
    }
    assert!(platform.sent.borrow().is_empty() && ungrouped.sent.borrow().is_empty());
}

#[test]
fn listing_puts_system_charts_first_and_leaves_out_what_cannot_be_measured() {
    let platform = cached(DESCRIPTION);
    let system = serde_json::json!({"value": [
        {"savedqueryvisualizationid": CHART_ID, "name": "Pipeline by status", "datadescription": DESCRIPTION},
        {"savedqueryvisualizationid": VIEW_ID, "name": "Broken", "datadescription": "<datadefinition>"},
    ]});
    let personal = serde_json::json!({"value": [
        {"userqueryvisualizationid": "0d000000-0000-0000-0000-000000000003", "name": "Mine",
         "datadescription": with_fetch("<attribute alias='n' name='leadid' aggregate='count'/>")
            .replace("'lead'", "'opportunity'")},
    ]});
    platform
        .respond(200, &[], &system.to_string())
        .respond(200, &[], &personal.to_string());
    let conn = connection();
    let mut session = Session::new(&platform, &conn);
    let charts = list_charts(&mut session, "opportunity").unwrap();
    let names: Vec<(&str, ViewKind)> = charts.iter().map(|c| (c.name.as_str(), c.kind)).collect();
    assert_eq!(
        names,
        [
            ("Pipeline by status", ViewKind::System),
            ("Mine", ViewKind::Personal)
        ]
    );
    assert_eq!(charts[0].measures.len(), 2);
    let sent = platform.sent.borrow();
    assert_eq!(
        sent[0].url,
        "https://org.crm.dynamics.com/api/data/v9.2/savedqueryvisualizations?\
         $select=savedqueryvisualizationid%2Cname%2Cdatadescription&\
         $filter=primaryentitytypecode%20eq%20%27opportunity%27&$orderby=name"
    );
    assert!(
        sent[1]
            .url
            .contains("/userqueryvisualizations?$select=userqueryvisualizationid")
    );
    drop(sent);
    assert!(matches!(
        list_charts(&mut session, "Opportunity'"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn a_history_is_measured_in_one_batch_one_aggregate_a_point() {
    let platform = cached(DESCRIPTION);
    store(
        &platform,
        "column opportunity createdon",
        &ColumnInfo {
            kind: "DateTimeType".into(),
            ..ColumnInfo::default()
        },
    );
    respond_batch(
        &platform,
        &[
            (200, &stamp(VIEW_STAMP)),
            (200, &stamp(CHART_STAMP)),
            (200, AGGREGATE),
            (200, AGGREGATE),
            (200, AGGREGATE),
        ],
    );
    let days = ["2024-01-07", "2024-01-14", "2024-01-21"];
    let points: Vec<crate::types::DateWindow> = days
        .iter()
        .map(|day| crate::types::DateWindow {
            column: "createdon".into(),
            first_day: None,
            last_day: Some(day.to_string()),
        })
        .collect();
    let conn = connection();
    let mut session = Session::new(&platform, &conn);
    let series = metrics::fetch_series(
        &mut session,
        &spec(),
        &[],
        Some(&selection(Some("won"))),
        &points,
    )
    .unwrap();
    // The whole series' one request is counted on its first point.
    let requests: Vec<u32> = series.iter().map(|m| m.requests).collect();
    assert_eq!(requests, [1, 0, 0]);
    assert!(
        series
            .iter()
            .all(|m| m.value == Some(MetricValue::Number(1500.5)))
    );
    assert_eq!(platform.sent.borrow().len(), 1);
    // Each point's query keeps its own day, beside the category's condition.
    for (measurement, day) in series.iter().zip(days) {
        let query = Element::parse(&measurement.query).unwrap();
        let conditions: Vec<(&str, &str, &str)> = query
            .descendants()
            .into_iter()
            .filter(|e| e.name == "condition")
            .filter_map(|e| Some((e.attr("attribute")?, e.attr("operator")?, e.attr("value")?)))
            .collect();
        assert!(
            conditions.contains(&("createdon", "on-or-before", day)),
            "{conditions:?}"
        );
        assert!(
            conditions.contains(&("statuscode", "eq", "3")),
            "{conditions:?}"
        );
    }
}

#[test]
fn a_charts_sum_of_a_base_currency_twin_aggregates_the_twin_itself() {
    // Charts (and views) may measure "Est. Revenue (Base)" itself.
    let base_description = DESCRIPTION.replace(
        r#"alias="sum_estimatedvalue" name="estimatedvalue""#,
        r#"alias="sum_estimatedvalue" name="estimatedvalue_base""#,
    );
    let platform = cached(&base_description);
    store(
        &platform,
        "column opportunity estimatedvalue_base",
        &ColumnInfo {
            kind: "MoneyType".into(),
            attribute_of: Some("estimatedvalue".into()),
        },
    );
    for currency in [CurrencyChoice::Base, CurrencyChoice::Transaction] {
        respond_batch(
            &platform,
            &[
                (200, &stamp(VIEW_STAMP)),
                (200, &stamp(CHART_STAMP)),
                (200, AGGREGATE),
            ],
        );
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        let spec = MetricSpec {
            column: "estimatedvalue_base".into(),
            currency,
            ..spec()
        };
        let measured =
            metrics::fetch_and_aggregate(&mut session, &spec, &[], Some(&selection(None))).unwrap();
        // Its amounts are in the base currency, whichever currency was asked.
        assert_eq!(measured.currency.as_deref(), Some("EUR"), "{currency:?}");
        let query = Element::parse(&measured.query).unwrap();
        let summed: Vec<&str> = query
            .descendants()
            .into_iter()
            .filter(|e| e.attr("aggregate") == Some("sum"))
            .filter_map(|e| e.attr("name"))
            .collect();
        assert_eq!(summed, ["estimatedvalue_base"], "{currency:?}");
    }
}
