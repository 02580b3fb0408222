//! `goals-host bench api`: the HTTP API served on loopback, measured from
//! concurrent keep-alive clients: the details popover (database only) and the
//! preview (a plugin call to the simulator each).

use crate::api::{self, Shared};
use crate::bench::{Rig, percentiles};
use crate::goals::clock::Clock;
use crate::goals::tokens::{self, NewToken, Role};
use crate::integrations::Integrations;
use crate::limits::Limits;
use crate::render::table;
use crate::runtime::PluginSource;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request of a workload.
struct Call {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

/// Sends `per_client` copies of `call` from each of `clients` connections at
/// once; returns every latency and the wall time.
async fn load(
    address: std::net::SocketAddr,
    token: &str,
    call: Arc<Call>,
    clients: usize,
    per_client: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (call, authorization) = (Arc::clone(&call), format!("Bearer {token}"));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let body = call
                    .body
                    .as_ref()
                    .map(|b| Bytes::from(b.to_string()))
                    .unwrap_or_default();
                let request = http::Request::builder()
                    .method(call.method.clone())
                    .uri(&call.path)
                    .header(http::header::HOST, "bench")
                    .header(http::header::AUTHORIZATION, &authorization)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))?;
                let sent = Instant::now();
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                anyhow::ensure!(status.is_success(), "{} answered {status}", call.path);
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(clients * per_client);
    for task in tasks {
        all.extend(task.await.context("a bench client")??);
    }
    Ok((all, started.elapsed()))
}

pub async fn run(plugin: &PluginSource) -> anyhow::Result<(String, Value)> {
    let rig = Rig::start(plugin).await?;
    let kr = rig.links(1).await?;
    let engine = Arc::new(Integrations::new(vec![
        crate::runtime::load_with_limits(plugin, rig.db.clone(), Limits::default(), None).await?,
    ]));
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let state = Shared::new(rig.db.clone(), engine, clock, usize::MAX, false);
    state
        .syncer
        .sync(kr, crate::goals::sync::Trigger::Manual)
        .await?;
    let (token, _) = tokens::create(
        &rig.db,
        Role::PlatformAdmin,
        NewToken::default(),
        rig.clock.now(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, api::app(state)).into_future());

    let link = crate::goals::keyresults::link(&rig.db, kr)
        .await?
        .context("the bench's link")?;
    let workloads = [
        (
            "GET details",
            Call {
                method: http::Method::GET,
                path: format!("/api/v1/key-results/{kr}"),
                body: None,
            },
            16,
            250,
        ),
        (
            "POST preview",
            Call {
                method: http::Method::POST,
                path: format!("/api/v1/connections/{}/measurements", rig.conn.id),
                body: Some(json!({
                    "entity": link.metric.entity,
                    "view_id": link.metric.view.id,
                    "column": link.metric.column,
                    "aggregation": "count",
                })),
            },
            16,
            25,
        ),
    ];
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for (name, call, clients, per_client) in workloads {
        let call = Arc::new(call);
        // One round to warm connections, caches and the database.
        load(address, &token, Arc::clone(&call), clients, 2).await?;
        let (latencies, wall) = load(address, &token, call, clients, per_client).await?;
        let requests = latencies.len();
        let (p50, p99) = percentiles(latencies);
        let per_second = requests as f64 / wall.as_secs_f64();
        rows.push(vec![
            name.to_string(),
            clients.to_string(),
            requests.to_string(),
            format!("{:.2}", p50 / 1000.0),
            format!("{:.2}", p99 / 1000.0),
            format!("{per_second:.0}"),
        ]);
        values.push(json!({
            "workload": name,
            "clients": clients,
            "requests": requests,
            "p50_ms": p50 / 1000.0,
            "p99_ms": p99 / 1000.0,
            "requests_per_second": per_second,
        }));
    }
    server.abort();
    rig.simulator.shutdown().await;
    let section = format!(
        "The HTTP API on loopback, keep-alive clients at once (a preview is a plugin call \
         to the simulator, which shares the cores)\n\n{}",
        table(
            &[
                "REQUEST", "CLIENTS", "REQUESTS", "P50 MS", "P99 MS", "REQ/S"
            ],
            &rows
        )
    );
    Ok((section, Value::Array(values)))
}
