//! The instance pool: more calls than slots wait for one instead of failing, the
//! slots bound the instances alive at once, and a pool the OS cannot reserve
//! falls back to instances allocated on demand.

use goals_e2e::Sim;
use goals_e2e::target;
use goals_host::connections;
use goals_host::db::Database;
use goals_host::limits::Limits;
use goals_host::runtime::{self, PluginRuntime, PluginSource};
use std::sync::Arc;
use std::time::Duration;

async fn load(instance_slots: u32) -> (PluginRuntime, Database) {
    let db = Database::open_in_memory().expect("in-memory database");
    let limits = Limits {
        instance_slots,
        ..Limits::default()
    };
    let runtime = runtime::load_with_limits(&PluginSource::Embedded, db.clone(), limits, None)
        .await
        .expect("load the embedded plugin");
    (runtime, db)
}

/// Runs `calls` list-apps calls at once against a slow simulator; returns how
/// many succeeded and the most requests the simulator saw at once.
async fn crowd(
    (runtime, db): (PluginRuntime, Database),
    sim: &Sim,
    calls: usize,
) -> (usize, usize) {
    let conn = connections::add(&db, runtime.info(), sim.new_connection("sim"))
        .await
        .expect("add the simulator connection");
    // Every call signs in first: warm the token so each call is one request.
    runtime
        .list_apps(&target(&conn))
        .await
        .expect("a first call");
    sim.server.set_latency(Duration::from_millis(50));
    let runtime = Arc::new(runtime);
    let tasks: Vec<_> = (0..calls)
        .map(|_| {
            let (runtime, conn) = (Arc::clone(&runtime), conn.clone());
            tokio::spawn(async move { runtime.list_apps(&target(&conn)).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        match task.await.expect("the call's task") {
            Ok(_) => succeeded += 1,
            Err(error) => eprintln!("a call failed: {error}"),
        }
    }
    (succeeded, sim.server.peak_concurrency())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_beyond_the_pool_wait_for_a_slot() {
    let sim = Sim::start().await;
    let runtime = load(2).await;
    assert!(
        runtime.0.pooled(),
        "a two-slot pool fits any 64-bit machine"
    );
    let (succeeded, peak) = crowd(runtime, &sim, 12).await;
    assert_eq!(succeeded, 12, "every call gets a slot in turn");
    assert!(
        peak <= 2,
        "at most two instances alive, saw {peak} requests at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_too_large_to_reserve_falls_back_to_instances_on_demand() {
    let sim = Sim::start().await;
    // A million slots would need petabytes of address space: the reservation
    // fails on every machine, and the host must still run the plugin.
    let runtime = load(1_000_000).await;
    assert!(!runtime.0.pooled());
    let (succeeded, peak) = crowd(runtime, &sim, 6).await;
    assert_eq!(succeeded, 6);
    assert!(
        peak > 1,
        "unpooled calls still run concurrently, saw {peak}"
    );
}
