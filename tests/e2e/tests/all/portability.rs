//! Portability: the very component the host embeds, transpiled with jco, runs
//! on Node.js (`tests/jco`: preview2-shim for WASI, an outbound guard that lets
//! it reach only the connection's origins, in-memory storage) against the
//! simulator, and every discovery list and several metrics equal the wasmtime
//! host's. Needs `node` and npm's registry (or an earlier install); skipped with
//! a message without them, mandatory under GOALS_E2E_REQUIRE_ALL (CI).

use goals_e2e::target;
use goals_e2e::{Sim, goals_host_binary, plugin_with_connection, seeded_spec};
use goals_host::bindings::{Aggregation, MetricValue};
use goals_host::names::{aggregation_name, column_type_name, view_kind_name};
use goals_host::runtime::{EMBEDDED_PLUGIN, error_kind};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The metrics both runtimes measure: (entity, view, column, aggregation).
const METRICS: [(&str, &str, &str, Aggregation); 4] = [
    ("lead", "Hot Leads", "fullname", Aggregation::Count),
    (
        "opportunity",
        "Open Opportunities",
        "estimatedvalue",
        Aggregation::Sum,
    ),
    (
        "opportunity",
        "Open Opportunities",
        "closeprobability",
        Aggregation::Average,
    ),
    (
        "opportunity",
        "Open Opportunities",
        "estimatedclosedate",
        Aggregation::Max,
    ),
];
const ENTITIES: [&str; 2] = ["lead", "opportunity"];

fn tests_jco() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../jco")
}

fn succeeded(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `tests/jco` installed (pinned by its lock file) in the build's target
/// directory, reused while the lock file is unchanged.
fn installed_harness() -> PathBuf {
    let work = goals_host_binary()
        .parent()
        .expect("the binary's directory")
        .join("jco");
    std::fs::create_dir_all(&work).unwrap();
    let lock = std::fs::read(tests_jco().join("package-lock.json")).unwrap();
    let installed = std::fs::read(work.join("package-lock.json")).ok();
    if installed.as_deref() != Some(&lock[..]) || !work.join("node_modules").is_dir() {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(tests_jco().join(file), work.join(file)).unwrap();
        }
        succeeded(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&work),
            "npm ci in tests/jco",
        );
    }
    for file in ["host.js", "guard.js", "run.mjs"] {
        std::fs::copy(tests_jco().join(file), work.join(file)).unwrap();
    }
    work
}

/// Numbers compared as numbers: Node prints 5 where Rust prints 5.0.
fn normalized(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, normalized(value)))
                .collect(),
        ),
        other => other,
    }
}

#[tokio::test]
async fn the_plugin_runs_unchanged_on_node_with_jco() {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("GOALS_E2E_REQUIRE_ALL").is_none(),
            "GOALS_E2E_REQUIRE_ALL is set, but node is not installed"
        );
        eprintln!("skipped: the jco portability test needs Node.js (node and npm)");
        return;
    }
    let work = tokio::task::spawn_blocking(installed_harness)
        .await
        .unwrap();
    std::fs::write(work.join("plugin.wasm"), EMBEDDED_PLUGIN).unwrap();
    let _ = std::fs::remove_dir_all(work.join("out"));
    succeeded(
        Command::new(work.join("node_modules/.bin/jco"))
            .args(["transpile", "plugin.wasm", "-o", "out", "--name", "plugin"])
            .args(["--map", "goals:integration/*=../host.js#*"])
            .args([
                "--map",
                "wasi:http/outgoing-handler=../guard.js#guardedHandler",
            ])
            .current_dir(&work),
        "jco transpile",
    );

    let sim = Sim::start().await;
    let (runtime, conn) = plugin_with_connection(&sim).await;
    let script = json!({
        "origins": conn.origins,
        "connection": {
            "id": conn.id,
            "settings": conn.settings,
            "secret": sim.config.client_secret,
        },
        "entities": ENTITIES,
        "measurements": METRICS.iter().map(|(entity, view, column, aggregation)| {
            let spec = seeded_spec(entity, view, column, *aggregation);
            json!({
                "entity": entity,
                "view": spec.view.id,
                "kind": view_kind_name(spec.view.kind),
                "column": column,
                "aggregation": aggregation_name(*aggregation),
            })
        }).collect::<Vec<_>>(),
    });
    let script_path = work.join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    let (work_dir, script_arg) = (work.clone(), script_path.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("run.mjs")
            .arg("out")
            .arg(script_arg)
            .current_dir(work_dir)
            .output()
    })
    .await
    .unwrap()
    .expect("run node");
    assert!(
        output.status.success(),
        "the plugin failed on Node:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let on_node: Value = serde_json::from_slice(&output.stdout).expect("the harness's JSON");
    assert_eq!(on_node["denied"], json!([]), "the guard refused requests");

    // The same, from the wasmtime host.
    let info = runtime.info();
    let mut apps = Vec::new();
    for app in runtime.list_apps(&target(&conn)).await.unwrap() {
        let entities = runtime
            .list_entities(&target(&conn), &app.id)
            .await
            .unwrap();
        apps.push(json!({
            "id": app.id,
            "name": app.name,
            "entities": entities.iter().map(|e| &e.logical_name).collect::<Vec<_>>(),
        }));
    }
    let mut views = serde_json::Map::new();
    let mut columns = serde_json::Map::new();
    for entity in ENTITIES {
        let listed = runtime
            .list_views(&target(&conn), entity, None)
            .await
            .unwrap();
        views.insert(
            entity.to_string(),
            json!(
                listed
                    .iter()
                    .map(|v| json!([v.id, v.name, view_kind_name(v.kind)]))
                    .collect::<Vec<_>>()
            ),
        );
        for view in &listed {
            let view_ref = goals_host::bindings::ViewRef {
                id: view.id.clone(),
                kind: view.kind,
            };
            let listed = runtime
                .list_columns(&target(&conn), entity, &view_ref)
                .await
                .unwrap();
            columns.insert(
                view.id.clone(),
                json!(
                    listed
                        .iter()
                        .map(|c| json!([
                            c.name,
                            column_type_name(c.column_type),
                            c.aggregations
                                .iter()
                                .map(|a| aggregation_name(*a))
                                .collect::<Vec<_>>(),
                        ]))
                        .collect::<Vec<_>>()
                ),
            );
        }
    }
    let mut measurements = Vec::new();
    for (entity, view, column, aggregation) in METRICS {
        let spec = seeded_spec(entity, view, column, aggregation);
        measurements.push(
            match runtime.fetch_and_aggregate(&target(&conn), &spec).await {
                Ok(measured) => json!({
                    "value": match measured.value {
                        Some(MetricValue::Number(n)) => json!(n),
                        Some(MetricValue::DateTime(t)) => json!(t),
                        None => Value::Null,
                    },
                    "records": measured.records,
                }),
                Err(goals_host::runtime::CallError::Plugin { error }) => {
                    json!({ "error": error_kind(&error) })
                }
                Err(other) => panic!("wasmtime: {other}"),
            },
        );
    }
    let on_wasmtime = json!({
        "describe": {
            "id": info.id,
            "name": info.name,
            "settings": info.settings.iter().map(|s| &s.key).collect::<Vec<_>>(),
            "aggregations": info.aggregations.iter().map(|a| aggregation_name(*a)).collect::<Vec<_>>(),
        },
        "apps": apps,
        "views": views,
        "columns": columns,
        "measurements": measurements,
        "denied": [],
    });
    assert!(
        on_wasmtime["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("value").is_some()),
        "every metric measured: {}",
        on_wasmtime["measurements"]
    );
    assert_eq!(normalized(on_node), normalized(on_wasmtime));
}
