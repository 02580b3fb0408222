//! Requests and bytes per sync, push-down versus a naive connector that pages
//! through every row, for views of 1,000, 50,000 and 200,000 rows. Run with
//! `cargo bench -p goals-e2e --bench sync_cost`; it prints a table.

use dynamics365_plugin::xml::Element;
use dynamics365_plugin::{odata, paging};
use goals_e2e::target;
use goals_e2e::{Sim, dataset, plugin_with_connection};
use goals_host::bindings::{
    Aggregation, CurrencyChoice, Measurement, MetricSpec, MetricValue, ViewKind, ViewRef,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Instant;

const VIEWS: [(&str, usize); 3] = [
    ("Bench 1k", 1_000),
    ("Bench 50k", 50_000),
    ("Bench 200k", 200_000),
];
const COLUMN: &str = "new_amount";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What one way of syncing cost.
struct Cost {
    requests: u32,
    bytes: u64,
    millis: u128,
    value: f64,
}

fn value(measurement: &Measurement) -> f64 {
    match measurement.value {
        Some(MetricValue::Number(n)) => n,
        _ => f64::NAN,
    }
}

#[tokio::main]
async fn main() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let token = token(&client, &sim).await;

    println!(
        "Sum of `{COLUMN}` per sync against the simulator (loopback, {} cores).",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!(
        "| view rows | push-down, first sync | push-down, each later sync | naive paging read |"
    );
    println!("|---:|---|---|---|");
    for (view_name, rows) in VIEWS {
        let view = dataset().view_by_name(view_name).expect("bench view");
        let spec = MetricSpec {
            entity: "new_benchrecord".to_string(),
            view: ViewRef {
                id: view.id.clone(),
                kind: ViewKind::System,
            },
            column: COLUMN.to_string(),
            aggregation: Aggregation::Sum,
            currency: CurrencyChoice::Base,
        };
        let pushdown = |label: &'static str| {
            let plugin = &plugin;
            let conn = &conn;
            let spec = &spec;
            async move {
                let started = Instant::now();
                let m = plugin
                    .fetch_and_aggregate(&target(conn), spec)
                    .await
                    .unwrap_or_else(|e| panic!("{label} sync of {view_name}: {e}"));
                Cost {
                    requests: m.requests,
                    bytes: m.bytes_received,
                    millis: started.elapsed().as_millis(),
                    value: value(&m),
                }
            }
        };
        let first = pushdown("first").await;
        let later = pushdown("later").await;
        let naive = naive_read(&client, &sim, &token, &view.fetchxml).await;
        assert!(
            (later.value - naive.value).abs() <= 1e-6 * naive.value.abs().max(1.0)
                && (first.value - later.value).abs() <= 1e-9 * later.value.abs().max(1.0),
            "the ways disagree on {view_name}: {} / {} / {}",
            first.value,
            later.value,
            naive.value
        );
        let cell = |c: &Cost| format!("{} req, {} B, {} ms", c.requests, c.bytes, c.millis);
        println!(
            "| {rows} | {} | {} | {} |",
            cell(&first),
            cell(&later),
            cell(&naive)
        );
    }
    println!();
    println!(
        "First sync includes sign-in and metadata; later syncs use the cached token, metadata and split plan."
    );
    sim.server.shutdown().await;
}

async fn token(client: &HttpClient, sim: &Sim) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &sim.config.client_id)
        .append_pair("client_secret", &sim.config.client_secret)
        .append_pair("scope", &format!("{}/.default", sim.url()))
        .finish();
    let request = hyper::Request::post(format!(
        "{}/{}/oauth2/v2.0/token",
        sim.url(),
        sim.config.tenant
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::new(Bytes::from(body)))
    .expect("token request");
    let (_, json) = send(client, request).await;
    json["access_token"].as_str().expect("a token").to_string()
}

async fn send(client: &HttpClient, request: hyper::Request<Full<Bytes>>) -> (u64, Value) {
    let response = client.request(request).await.expect("simulator answers");
    assert!(response.status().is_success(), "{}", response.status());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        bytes.len() as u64,
        serde_json::from_slice(&bytes).expect("JSON"),
    )
}

/// A connector that runs the view's own FetchXML page by page (5,000 rows, paging
/// cookie) and adds up the column itself: one request per 5,000 rows.
async fn naive_read(client: &HttpClient, sim: &Sim, token: &str, fetch_xml: &str) -> Cost {
    let started = Instant::now();
    // The token request counts too.
    let mut cost = Cost {
        requests: 1,
        bytes: 0,
        millis: 0,
        value: 0.0,
    };
    let mut cookie: Option<String> = None;
    for page in 1.. {
        let mut fetch = Element::parse(fetch_xml).expect("view FetchXML");
        fetch.set_attr("count", "5000");
        fetch.set_attr("page", &page.to_string());
        if let Some(cookie) = &cookie {
            fetch.set_attr("paging-cookie", cookie);
        }
        let url = format!(
            "{}/api/data/v9.2/new_benchrecords?{}",
            sim.url(),
            odata::query(&[("fetchXml", &fetch.to_xml())])
        );
        let request = hyper::Request::get(url)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json")
            .header("odata-version", "4.0")
            .header("prefer", "odata.include-annotations=\"*\"")
            .body(Full::new(Bytes::new()))
            .expect("page request");
        let (bytes, page) = send(client, request).await;
        cost.requests += 1;
        cost.bytes += bytes;
        for row in page["value"].as_array().into_iter().flatten() {
            cost.value += row[COLUMN].as_f64().unwrap_or(0.0);
        }
        if page["@Microsoft.Dynamics.CRM.morerecords"] != Value::Bool(true) {
            break;
        }
        cookie = page["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
            .as_str()
            .map(|annotation| paging::decode_cookie(annotation).expect("paging cookie"));
    }
    cost.millis = started.elapsed().as_millis();
    cost
}
