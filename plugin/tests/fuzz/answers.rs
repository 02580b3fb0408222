//! Dataverse's answers: `$batch` bodies, pages, aggregates, and whole flows
//! (measuring a metric, browsing an environment) against a scripted platform.

use crate::check;
use crate::inputs;
use crate::scripted::{self, Answer, Scripted};
use dynamics365_plugin::aggregate::{Accumulator, Extreme, Partial};
use dynamics365_plugin::client::{RETRY_BUDGET, Session};
use dynamics365_plugin::connection::{Connection, Credential};
use dynamics365_plugin::fetchxml::{ColumnRef, ViewQuery};
use dynamics365_plugin::paging::{self, PageRead};
use dynamics365_plugin::types::{CurrencyChoice, MetricSpec, ViewKind, ViewRef};
use dynamics365_plugin::xml::{Element, Node};
use dynamics365_plugin::{AGGREGATIONS, batch, discovery, metadata, metrics, signin};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use serde_json::Value;

// ---------------------------------------------------------------------------
// $batch

#[derive(Debug, Clone)]
struct BatchPart {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn batch_part() -> BoxedStrategy<BatchPart> {
    let header = (
        inputs::strings(&["Content-Type", "OData-Version", "Retry-After", "X-Thing"]),
        "[ -~]{0,12}",
    );
    (
        prop_oneof![4 => inputs::status(), 1 => 100u16..1000],
        prop::collection::vec(header, 0..3),
        inputs::json_text(),
    )
        .prop_map(|(status, headers, body)| BatchPart {
            status,
            headers,
            body,
        })
        .boxed()
}

fn render_batch(boundary: &str, parts: &[BatchPart], crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = format!("preamble{eol}");
    for part in parts {
        out.push_str(&format!(
            "--{boundary}{eol}Content-Type: application/http{eol}Content-Transfer-Encoding: binary{eol}{eol}HTTP/1.1 {} Reason{eol}",
            part.status
        ));
        for (name, value) in &part.headers {
            out.push_str(&format!("{name}: {value}{eol}"));
        }
        out.push_str(&format!("{eol}{}{eol}", part.body));
    }
    out.push_str(&format!("--{boundary}--{eol}"));
    out
}

#[test]
fn batch_answers_split_into_parts_or_fail_cleanly() {
    let boundary = prop_oneof![
        6 => "batchresponse_[a-z0-9-]{1,12}",
        1 => inputs::any_text(),
    ];
    let content_type = (
        inputs::strings(&[
            "multipart/mixed; boundary={}",
            "multipart/mixed;boundary=\"{}\"",
            "multipart/mixed; charset=utf-8; BOUNDARY={}",
            "application/json",
            "multipart/mixed; boundary=",
            "{}",
        ]),
        any::<bool>(),
    );
    let strategy = (
        boundary,
        content_type,
        prop::collection::vec(batch_part(), 0..4),
        prop::option::weighted(0.4, inputs::mutations()),
        prop::option::weighted(0.05, prop::collection::vec(any::<u8>(), 0..200)),
    );
    check(
        "batch::parse_response",
        1000,
        strategy,
        |(boundary, (template, crlf), parts, damage, raw)| {
            let content_type = template.replace("{}", &boundary);
            let text = render_batch(&boundary, &parts, crlf);
            let body = match (&raw, &damage) {
                (Some(raw), _) => raw.clone(),
                (None, Some(damage)) => inputs::mutate_bytes(text.as_bytes(), damage),
                (None, None) => text.clone().into_bytes(),
            };
            let result = batch::parse_response(&content_type, &body);
            // An intact answer whose boundary the content type names comes back
            // part for part (unless a body happens to contain the delimiter).
            let intact = raw.is_none()
                && damage.is_none()
                && crlf
                && template.starts_with("multipart/mixed; boundary={}")
                && parts.iter().all(|p| (100..1000).contains(&p.status))
                && !boundary.is_empty()
                && boundary
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && parts
                    .iter()
                    .all(|p| !p.body.contains(&format!("--{boundary}")));
            if intact {
                let answers = result.map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;
                prop_assert_eq!(answers.len(), parts.len());
                for (answer, part) in answers.iter().zip(&parts) {
                    prop_assert_eq!(answer.status, part.status);
                    prop_assert_eq!(&answer.body, part.body.as_bytes());
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Aggregation arithmetic

#[test]
fn accumulators_take_any_values() {
    let values = prop::collection::vec(prop::option::weighted(0.9, inputs::json_value()), 0..12);
    check(
        "aggregate::Accumulator",
        1000,
        (prop::sample::select(&AGGREGATIONS[..]), values),
        |(aggregation, values)| {
            let mut accumulator = Accumulator::new(aggregation);
            for value in &values {
                accumulator.add(value.as_ref());
                if let Some(value) = value {
                    let _ = Extreme::from_json(value);
                }
            }
            let partial = accumulator.finish();
            prop_assert_eq!(partial.rows, values.len() as u64);
            for aggregation in AGGREGATIONS {
                let _ = partial.value(aggregation);
            }
            Ok(())
        },
    );
}

fn extreme() -> BoxedStrategy<Option<Extreme>> {
    prop::option::of(prop_oneof![
        any::<f64>().prop_map(Extreme::Number),
        inputs::timestamp().prop_map(Extreme::Text),
    ])
    .boxed()
}

/// Mostly plausible counts, some near the top of `u64` (merging saturates).
fn count() -> BoxedStrategy<u64> {
    prop_oneof![4 => 0u64..1_000_000, 1 => any::<u64>()].boxed()
}

fn partial() -> BoxedStrategy<Partial> {
    (
        count(),
        count(),
        any::<f64>(),
        extreme(),
        extreme(),
        count(),
    )
        .prop_map(|(rows, values, sum, min, max, distinct)| Partial {
            rows,
            values,
            sum,
            min,
            max,
            distinct,
        })
        .boxed()
}

#[test]
fn partials_merge() {
    check(
        "aggregate::Partial::merge",
        1000,
        prop::collection::vec(partial(), 0..8),
        |parts| {
            let mut total = Partial::default();
            for part in parts {
                total.merge(part);
            }
            for aggregation in AGGREGATIONS {
                let _ = total.value(aggregation);
            }
            Ok(())
        },
    );
}

#[test]
fn small_readers_take_any_body() {
    check(
        "metadata::modified_on, paging::value_key",
        1000,
        (inputs::body(), inputs::cell_name(), any::<bool>()),
        |(body, cell, lookup)| {
            let _ = metadata::modified_on(&body);
            let column = ColumnRef::from_cell(&cell);
            let key = paging::value_key(&column, lookup);
            prop_assert!(key.contains(&column.attribute));
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Whole flows

pub fn connection() -> BoxedStrategy<(Connection, Option<String>)> {
    (
        prop_oneof![
            6 => Just("https://org.crm.dynamics.com".to_string()),
            1 => Just("https://org.crm.dynamics.com/".to_string()),
            1 => inputs::any_text(),
        ],
        prop_oneof![6 => Just("contoso.onmicrosoft.com".to_string()), 1 => inputs::any_text()],
        prop_oneof![6 => Just("app".to_string()), 1 => inputs::any_text()],
        prop::option::weighted(0.9, "[ -~]{0,8}"),
        prop::option::weighted(0.9, inputs::any_text()),
    )
        .prop_map(|(environment_url, tenant, client_id, secret, refresh)| {
            let credential = match secret {
                Some(secret) => Credential::ClientSecret(secret),
                None => Credential::User,
            };
            let connection = Connection {
                id: "c".into(),
                environment_url,
                authority_url: "https://login.microsoftonline.com".into(),
                tenant,
                client_id,
                credential,
            };
            (connection, refresh)
        })
        .boxed()
}

/// A platform for `connection`, holding a person's refresh token when given.
fn platform(connection: &Connection, refresh: &Option<String>, script: &[Answer]) -> Scripted {
    with_refresh_token(Scripted::new(script), connection, refresh)
}

fn with_refresh_token(
    platform: Scripted,
    connection: &Connection,
    refresh: &Option<String>,
) -> Scripted {
    if let Some(refresh) = refresh {
        let key = format!(
            "refresh-token {} {}",
            connection.client_id,
            connection.environment_url.trim_end_matches('/')
        );
        platform.store(&key, refresh.as_bytes());
    }
    platform
}

/// Retries a session makes of a transient failure (`client::MAX_RETRIES`).
const RETRIES: usize = 1;

/// Every request beyond the script fails; each call asks once more, and a
/// session retries only a few times. A flow that asks for more ignores errors.
fn bounded(
    platform: &Scripted,
    script: &[Answer],
    sessions: usize,
    calls: usize,
) -> TestCaseResult {
    let most = script.len() + calls + sessions * RETRIES;
    prop_assert!(
        platform.sent() <= most,
        "{} requests for a script of {} answers in {calls} calls",
        platform.sent(),
        script.len()
    );
    prop_assert!(
        platform.slept() <= RETRY_BUDGET * sessions as u32,
        "waited {:?} in {sessions} sessions",
        platform.slept()
    );
    Ok(())
}

fn view_ref() -> BoxedStrategy<ViewRef> {
    (
        prop_oneof![
            8 => Just("dd621d4a-d898-e711-80e7-00155db763be".to_string()),
            1 => inputs::any_text(),
        ],
        any::<bool>(),
    )
        .prop_map(|(id, personal)| ViewRef {
            id,
            kind: if personal {
                ViewKind::Personal
            } else {
                ViewKind::System
            },
        })
        .boxed()
}

fn spec() -> BoxedStrategy<MetricSpec> {
    (
        prop_oneof![20 => Just("account".to_string()), 1 => inputs::any_text()],
        view_ref(),
        inputs::cell_name(),
        prop::sample::select(&AGGREGATIONS[..]),
        any::<bool>(),
    )
        .prop_map(|(entity, view, column, aggregation, base)| MetricSpec {
            entity,
            view,
            column,
            aggregation,
            currency: if base {
                CurrencyChoice::Base
            } else {
                CurrencyChoice::Transaction
            },
        })
        .boxed()
}

/// Makes most views show the metric's column, or most measurements would stop
/// at "column no longer in view" before any query is built.
fn showing(column: &str, script: &mut [Answer]) {
    for answer in script {
        let Answer::Fitting { fit, .. } = answer else {
            continue;
        };
        if !fit.shows {
            continue;
        }
        let Ok(mut grid) = Element::parse(&fit.layout_xml) else {
            continue;
        };
        if let Some(row) = grid.elements_mut().find(|e| e.name == "row") {
            let cell = Element::new("cell").with_attr("name", column);
            row.children.push(Node::Element(cell));
        } else {
            continue;
        }
        fit.layout_xml = grid.to_xml();
    }
}

#[test]
fn measuring_a_metric_ends_on_any_answers() {
    check(
        "metrics::fetch_and_aggregate",
        300,
        (connection(), spec(), scripted::script(24), 0usize..24),
        |((connection, refresh), spec, mut script, first_run)| {
            showing(&spec.column, &mut script);
            let platform = platform(&connection, &refresh, &script);
            // Two syncs on one storage: the second reads what the first cached
            // (token, view, tables, split plan).
            let mut sessions = 0;
            for _ in 0..2 {
                sessions += 1;
                let before = platform.sent();
                let mut session = Session::new(&platform, &connection);
                let result = metrics::fetch_and_aggregate(&mut session, &spec, &[], None);
                if let Ok(measurement) = &result {
                    prop_assert_eq!(measurement.requests as usize, platform.sent() - before);
                }
                if platform.sent() >= first_run.min(script.len()) {
                    break;
                }
            }
            bounded(&platform, &script, sessions, sessions)
        },
    );
}

#[test]
fn browsing_ends_on_any_answers() {
    check(
        "discovery::list_* and signin",
        300,
        (
            connection(),
            scripted::script(12),
            prop_oneof![
                4 => Just("dd621d4a-d898-e711-80e7-00155db763be".to_string()),
                1 => inputs::any_text(),
            ],
            prop_oneof![8 => Just("account".to_string()), 1 => inputs::any_text()],
            prop::option::of(inputs::any_text()),
            view_ref(),
        ),
        |((connection, refresh), script, app, entity, search, view)| {
            let platform = platform(&connection, &refresh, &script);
            let mut session = Session::new(&platform, &connection);
            let _ = discovery::list_apps(&mut session);
            let _ = discovery::list_entities(&mut session, &app);
            let _ = discovery::list_views(&mut session, &entity, search.as_deref());
            let _ = discovery::list_columns(&mut session, &entity, &view);
            let _ = signin::start_device_sign_in(&mut session);
            let _ = signin::poll_device_sign_in(&mut session);
            let _ = signin::who_am_i(&mut session);
            bounded(&platform, &script, 1, 7)
        },
    );
}

#[derive(Debug, Clone)]
enum PageAnswer {
    Fitting(Answer),
    /// A body shaped like a page, from the generic JSON generator.
    Shaped {
        rows: Vec<Value>,
        more: Value,
        cookie: Option<String>,
    },
}

fn page_answer() -> BoxedStrategy<PageAnswer> {
    let rows = prop::collection::vec(inputs::json_value(), 0..4);
    let more = prop_oneof![
        6 => Just(Value::Bool(true)),
        2 => Just(Value::Bool(false)),
        1 => inputs::json_leaf(),
    ];
    prop_oneof![
        3 => scripted::answer().prop_map(PageAnswer::Fitting),
        2 => (rows, more, prop::option::weighted(0.8, scripted::cookie_annotation()))
            .prop_map(|(rows, more, cookie)| PageAnswer::Shaped { rows, more, cookie }),
    ]
    .boxed()
}

impl PageAnswer {
    fn answer(&self) -> Answer {
        match self {
            PageAnswer::Fitting(answer) => answer.clone(),
            PageAnswer::Shaped { rows, more, cookie } => {
                let mut page = serde_json::json!({
                    "value": rows,
                    "@Microsoft.Dynamics.CRM.morerecords": more,
                });
                if let Some(cookie) = cookie {
                    page["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"] =
                        Value::from(cookie.clone());
                }
                Answer::Raw {
                    status: 200,
                    headers: Vec::new(),
                    body: page.to_string().into_bytes(),
                }
            }
        }
    }
}

#[test]
fn page_reads_end_on_any_pages() {
    check(
        "paging::read",
        400,
        (
            inputs::fetch_xml(),
            inputs::cell_name(),
            any::<bool>(),
            prop::sample::select(&AGGREGATIONS[..]),
            prop::collection::vec(page_answer(), 0..10),
        ),
        |(fetch, cell, lookup, aggregation, pages)| {
            let query = ViewQuery::parse(&fetch)
                .or_else(|_| ViewQuery::parse("<fetch><entity name='account'/></fetch>"))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let Ok(query) = query.metric_query(&[], &|_| true) else {
                return Ok(());
            };
            let script: Vec<Answer> = pages.iter().map(PageAnswer::answer).collect();
            let connection = Connection {
                id: "c".into(),
                environment_url: "https://org.crm.dynamics.com".into(),
                authority_url: "https://login.microsoftonline.com".into(),
                tenant: "t".into(),
                client_id: "app".into(),
                credential: Credential::ClientSecret("s".into()),
            };
            let platform = Scripted::new(&script);
            platform.signed_in(&connection.client_id, &connection.environment_url);
            let mut session = Session::new(&platform, &connection);
            let column = ColumnRef::from_cell(&cell);
            let value_key = paging::value_key(&column, lookup);
            let read = PageRead {
                query: &query,
                entity_set: "accounts",
                primary_id: "accountid",
                column: &column,
                value_key: &value_key,
                aggregation,
            };
            if let Ok((partial, first)) = paging::read(&mut session, &read) {
                prop_assert!(!first.is_empty());
                for aggregation in AGGREGATIONS {
                    let _ = partial.value(aggregation);
                }
            }
            bounded(&platform, &script, 1, 1)
        },
    );
}

/// A server that answers forever (429s, 401s, 503s, garbled bodies): one call of
/// a session must still end after a bounded number of requests and waits.
#[test]
fn one_call_asks_a_bounded_number_of_times() {
    const CAP: usize = 200;
    let retry_answer = prop_oneof![
        3 => (
            inputs::strings(&["429", "429", "429", "401", "502", "503", "504", "500", "400", "200"]),
            prop::option::of(inputs::strings(&["0", "0", " 0 ", "1", "2", "15", "16", "", "x"])),
            inputs::body(),
        )
            .prop_map(|(status, retry_after, body)| Answer::Raw {
                status: status.parse().unwrap_or(500),
                headers: retry_after.map(|s| ("retry-after".to_string(), s)).into_iter().collect(),
                body,
            }),
        2 => scripted::answer(),
    ];
    check(
        "client::Session retries",
        500,
        (
            connection(),
            prop::collection::vec(retry_answer, 1..4),
            0u8..3,
            prop::bool::weighted(0.7),
        ),
        |((connection, refresh), answers, call, signed_in)| {
            let platform =
                with_refresh_token(Scripted::endless(&answers, CAP), &connection, &refresh);
            if signed_in {
                platform.signed_in(&connection.client_id, &connection.environment_url);
            }
            let mut session = Session::new(&platform, &connection);
            let _ = match call {
                0 => session.get_json::<Value>("WhoAmI", "identity").map(drop),
                1 => session.get("WhoAmI", "identity").map(drop),
                _ => session
                    .batch(&["accounts?fetchXml=%3Cfetch%2F%3E".to_string()], "view")
                    .map(drop),
            };
            prop_assert!(platform.sent() <= CAP, "still asking after {CAP} requests");
            prop_assert!(
                platform.slept() <= RETRY_BUDGET,
                "waited {:?}",
                platform.slept()
            );
            Ok(())
        },
    );
}
