//! Containment: a deliberately misbehaving component (`tests/misbehave`) meets
//! each of the host's limits, the call fails with an error naming the limit (or
//! the refusal's reason) within the limit, and the host serves a normal call
//! right after.
//!
//! Every bad call runs on a thread of its own and is given at most
//! [`CONTAINED_WITHIN`]: a protection that went missing makes the test fail
//! instead of hanging it.

use goals_e2e::target;
use goals_e2e::{Sim, misbehaving_component};
use goals_host::bindings::{
    Aggregation, CurrencyChoice, Error, Measurement, MetricSpec, ViewKind, ViewRef,
};
use goals_host::connections::{self, ConnectionRecord};
use goals_host::db::Database;
use goals_host::limits::Limits;
use goals_host::runtime::{self, CallError, PluginRuntime, PluginSource};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const MEMORY_BYTES: usize = 32 << 20;
const RESPONSE_BODY_BYTES: u64 = 1 << 20;
const STORAGE_BYTES: u64 = 64 << 10;
const STORAGE_KEYS: u64 = 50;

/// Every bad call must end within its limit plus this generous margin: a bound
/// on containment, not a timing race.
const CONTAINED_WITHIN: Duration = CALL_TIMEOUT.saturating_add(Duration::from_secs(3));

/// A normal call after a bad one must not wait for anything.
const AT_ONCE: Duration = Duration::from_secs(2);

fn limits() -> Limits {
    Limits {
        call_timeout: CALL_TIMEOUT,
        memory_bytes: MEMORY_BYTES,
        response_body_bytes: RESPONSE_BODY_BYTES,
        storage_bytes: STORAGE_BYTES,
        storage_keys: STORAGE_KEYS,
        ..Limits::default()
    }
}

/// The misbehaving component, built and compiled once per test binary.
async fn compiled() -> &'static PluginRuntime {
    static COMPILED: OnceCell<PluginRuntime> = OnceCell::const_new();
    COMPILED
        .get_or_init(|| async {
            let path = misbehaving_component().to_path_buf();
            let db = Database::open_in_memory().expect("in-memory database");
            runtime::load_with_limits(&PluginSource::File(path), db, limits(), None)
                .await
                .expect("load the misbehaving component")
        })
        .await
}

/// The component over a fresh database with a connection to the simulator.
struct Bench {
    sim: Sim,
    db: Database,
    runtime: Arc<PluginRuntime>,
    conn: ConnectionRecord,
}

impl Bench {
    async fn new() -> Bench {
        let sim = Sim::start().await;
        let db = Database::open_in_memory().expect("in-memory database");
        let runtime = Arc::new(runtime::with_database(compiled().await, db.clone()));
        assert_eq!(runtime.limits(), &limits());
        let conn = connections::add(&db, runtime.info(), sim.new_connection("sim"))
            .await
            .expect("add the simulator connection");
        Bench {
            sim,
            db,
            runtime,
            conn,
        }
    }

    /// Asks the component to misbehave on `conn`; returns the outcome and how
    /// long the call took.
    async fn misbehave(
        &self,
        conn: &ConnectionRecord,
        column: &str,
        entity: &str,
    ) -> (Result<Measurement, CallError>, Duration) {
        let runtime = Arc::clone(&self.runtime);
        let conn = conn.clone();
        let spec = MetricSpec {
            entity: entity.to_string(),
            view: ViewRef {
                id: "00000000-0000-0000-0000-000000000000".to_string(),
                kind: ViewKind::System,
            },
            column: column.to_string(),
            aggregation: Aggregation::Count,
            currency: CurrencyChoice::Base,
        };
        let (outcome, elapsed) =
            on_own_thread(async move { runtime.fetch_and_aggregate(&target(&conn), &spec).await })
                .await;
        // Shown when a test fails.
        eprintln!(
            "'{column}' ({entity}) after {elapsed:?}: {}",
            shown(&outcome)
        );
        (outcome, elapsed)
    }

    /// The host serves a normal call at once, on the same runtime: on the
    /// connection of the bad call and on a connection added now.
    async fn still_serves(&self, after: &str) {
        let fresh = connections::add(
            &self.db,
            self.runtime.info(),
            self.sim.new_connection(&format!("after {after}")),
        )
        .await
        .expect("add a fresh connection");
        for conn in [&self.conn, &fresh] {
            let started = Instant::now();
            let apps = self
                .runtime
                .list_apps(&target(conn))
                .await
                .unwrap_or_else(|e| panic!("list-apps after '{after}' failed: {e}"));
            let elapsed = started.elapsed();
            let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["Well-behaved app"], "after '{after}'");
            assert!(
                elapsed < AT_ONCE,
                "list-apps after '{after}' took {elapsed:?}"
            );
        }
    }
}

/// Runs `call` on a thread and runtime of its own, waiting at most
/// [`CONTAINED_WITHIN`] for it. The test's runtime stays free meanwhile (it
/// serves the simulator).
async fn on_own_thread<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
) -> (T, Duration) {
    let (done, outcome) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the call");
        let _ = done.send(runtime.block_on(call));
    });
    let outcome = tokio::task::spawn_blocking(move || outcome.recv_timeout(CONTAINED_WITHIN))
        .await
        .expect("wait for the call");
    match outcome {
        Ok(value) => (value, started.elapsed()),
        Err(_) => panic!(
            "the call was still running after {CONTAINED_WITHIN:?}: the host did not contain it"
        ),
    }
}

/// An outcome for people: a trap's debug form would carry a host backtrace.
fn shown(outcome: &Result<Measurement, CallError>) -> String {
    match outcome {
        Ok(measurement) => format!("Ok({measurement:?})"),
        Err(CallError::Plugin { error }) => format!("Plugin({error:?})"),
        Err(CallError::Trap(error)) => format!("Trap({error:#})"),
        Err(CallError::HostLimit(message)) => format!("HostLimit({message:?})"),
        Err(CallError::Refused { refusals }) => format!("Refused({refusals:?})"),
        Err(CallError::NoIntegration(message)) => format!("NoIntegration({message:?})"),
    }
}

fn host_limit(outcome: Result<Measurement, CallError>) -> String {
    match outcome {
        Err(CallError::HostLimit(message)) => message,
        other => panic!("expected a host limit, got {}", shown(&other)),
    }
}

/// The contract error of a call the plugin failed, the host having refused
/// nothing (else it is [`refused`]).
fn plugin_error(outcome: Result<Measurement, CallError>) -> Error {
    match outcome {
        Err(CallError::Plugin { error }) => error,
        other => panic!("expected a plugin error, got {}", shown(&other)),
    }
}

/// What the host refused: whatever the plugin made of it, the call fails as the
/// host's refusal, never as one of the environment's answers.
fn refused(outcome: Result<Measurement, CallError>) -> Vec<String> {
    match outcome {
        Err(CallError::Refused { refusals }) => refusals,
        other => panic!("expected the host's refusal, got {}", shown(&other)),
    }
}

fn assert_contained(what: &str, elapsed: Duration) {
    assert!(
        elapsed < CONTAINED_WITHIN,
        "'{what}' was stopped only after {elapsed:?}"
    );
}

#[tokio::test]
async fn an_endless_loop_stops_at_the_call_deadline() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "loop", "").await;
    let message = host_limit(outcome);
    assert!(message.contains("2 s deadline"), "{message}");
    assert!(message.contains("--call-timeout"), "{message}");
    assert!(
        elapsed >= CALL_TIMEOUT,
        "stopped after {elapsed:?}, before the deadline"
    );
    assert_contained("loop", elapsed);
    bench.still_serves("loop").await;
}

#[tokio::test]
async fn a_memory_bomb_stops_at_the_memory_limit() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "memory", "").await;
    let message = host_limit(outcome);
    assert!(message.contains("more than 32 MiB"), "{message}");
    assert!(message.contains("--memory-limit"), "{message}");
    assert_contained("memory", elapsed);
    bench.still_serves("memory").await;
}

#[tokio::test]
async fn a_request_to_another_origin_is_refused() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "forbidden-host", "").await;
    let refusals = refused(outcome);
    assert_eq!(
        refusals,
        [
            "https://example.com:443 is not one of this connection's origins \
          (its environment and authority URLs)"
        ]
    );
    assert_contained("forbidden-host", elapsed);
    bench.still_serves("forbidden-host").await;
}

#[tokio::test]
async fn a_request_to_a_private_or_metadata_address_is_refused() {
    let bench = Bench::new().await;
    for (environment_url, address) in [
        ("http://10.255.255.1:9", "10.255.255.1"),
        ("http://169.254.169.254", "169.254.169.254"),
    ] {
        // An environment URL of its own is one of the connection's origins, so
        // only the address check stands in the way.
        let mut new = bench.sim.new_connection(address);
        new.set("environment_url", environment_url);
        let conn = connections::add(&bench.db, bench.runtime.info(), new)
            .await
            .expect("add a connection to a private address");
        let (outcome, elapsed) = bench.misbehave(&conn, "private-address", "").await;
        let refusals = refused(outcome);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(
            refusals[0].contains(&format!(
                "resolves to the private, link-local or metadata address {address}"
            )),
            "{refusals:?}"
        );
        assert_contained("private-address", elapsed);
    }
    bench.still_serves("private-address").await;
}

/// The bytes the huge-response tests ask for: four times the limit, far below
/// the memory limit, so only the response limit can stop the call.
const HUGE: u64 = 4 * RESPONSE_BODY_BYTES;

#[tokio::test]
async fn a_huge_response_with_a_content_length_is_refused_before_its_body() {
    let bench = Bench::new().await;
    let path = format!("/test/bytes/{HUGE}");
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "huge-response", &path).await;
    // Refused when the headers came, before the body.
    assert_eq!(
        refused(outcome),
        ["a response body is larger than the 1 MiB the host passes to plugins (--response-limit)"]
    );
    assert_eq!(served(&bench.sim, &path), 1);
    assert_contained("huge-response", elapsed);
    bench.still_serves("huge-response").await;
}

#[tokio::test]
async fn a_huge_response_without_a_content_length_is_cut_off_while_streaming() {
    let bench = Bench::new().await;
    let path = format!("/test/bytes/{HUGE}?chunked=1");
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "huge-response", &path).await;
    // Nothing to check up front: the headers passed, the body stream failed.
    assert_eq!(
        refused(outcome),
        ["a response body is larger than the 1 MiB the host passes to plugins (--response-limit)"]
    );
    assert_eq!(served(&bench.sim, &path), 1);
    assert_contained("huge-response", elapsed);
    bench.still_serves("huge-response").await;
}

#[tokio::test]
async fn a_response_up_to_the_limit_passes_either_way() {
    let bench = Bench::new().await;
    for path in [
        format!("/test/bytes/{RESPONSE_BODY_BYTES}"),
        format!("/test/bytes/{RESPONSE_BODY_BYTES}?chunked=1"),
    ] {
        let (outcome, _) = bench.misbehave(&bench.conn, "huge-response", &path).await;
        let measurement = outcome.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(measurement.bytes_received, RESPONSE_BODY_BYTES, "{path}");
    }
}

/// How many requests for `path_and_query` the simulator received.
fn served(sim: &Sim, path_and_query: &str) -> usize {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    sim.server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path && r.query == query)
        .count()
}

/// Keys and bytes (sealed, as the quota counts them) stored for a connection,
/// and the distinct sizes of its values.
async fn stored(db: &Database, conn: &ConnectionRecord) -> (u64, u64, Vec<u64>) {
    let id = conn.id.clone();
    db.run(move |sql| {
        let (keys, bytes) = sql.query_row(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM plugin_kv
             WHERE connection_id = ?1",
            goals_host::params![&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let sizes: Vec<u64> = sql.query_map(
            "SELECT DISTINCT length(value) FROM plugin_kv WHERE connection_id = ?1",
            goals_host::params![id],
            |r| r.get(0),
        )?;
        Ok((keys, bytes, sizes))
    })
    .await
    .expect("read the plugin's storage")
}

#[tokio::test]
async fn a_storage_flood_stops_at_the_byte_quota() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "storage-flood", "4096").await;
    // The host refused no request: the plugin's own storage quota stopped it.
    let error = plugin_error(outcome);
    let Error::Limit(message) = error else {
        panic!("expected error::limit, got {error:?}");
    };
    assert!(
        message.starts_with("the plugin's storage for this connection is full"),
        "{message}"
    );
    assert!(message.contains("--storage-limit 64 KiB"), "{message}");
    // It stopped at the quota: everything stored fits, one more value would not.
    let (keys, bytes, sizes) = stored(&bench.db, &bench.conn).await;
    let [size] = sizes[..] else {
        panic!("values of several sizes: {sizes:?}");
    };
    assert!(size >= 4096, "{size}");
    assert!(bytes <= STORAGE_BYTES, "{bytes} bytes stored");
    assert!(
        bytes + size > STORAGE_BYTES,
        "stopped early at {bytes} bytes"
    );
    assert!(keys < STORAGE_KEYS, "{keys} keys");
    assert!(
        message.contains(&format!("({keys} keys, {} KiB;", bytes >> 10)),
        "{message}"
    );
    assert_contained("storage-flood", elapsed);
    bench.still_serves("storage-flood").await;
}

#[tokio::test]
async fn a_storage_flood_stops_at_the_key_quota() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "storage-flood", "1").await;
    // The host refused no request: the plugin's own storage quota stopped it.
    let error = plugin_error(outcome);
    let Error::Limit(message) = error else {
        panic!("expected error::limit, got {error:?}");
    };
    assert!(message.contains("(50 keys,"), "{message}");
    assert!(message.contains("--storage-keys 50"), "{message}");
    let (keys, bytes, _) = stored(&bench.db, &bench.conn).await;
    assert_eq!(keys, STORAGE_KEYS);
    assert!(bytes < STORAGE_BYTES, "{bytes}");
    assert_contained("storage-flood", elapsed);
    bench.still_serves("storage-flood").await;
}

#[tokio::test]
async fn a_panic_is_a_trap_and_the_host_stays_up() {
    let bench = Bench::new().await;
    let (outcome, elapsed) = bench.misbehave(&bench.conn, "panic", "").await;
    let error = match outcome {
        Err(CallError::Trap(error)) => error,
        other => panic!("expected a trap, got {}", shown(&other)),
    };
    let text = format!("{error:#}");
    assert!(text.contains("unreachable"), "{text}");
    assert_contained("panic", elapsed);
    bench.still_serves("panic").await;
}
