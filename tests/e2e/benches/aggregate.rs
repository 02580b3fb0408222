//! Client-side aggregation throughput (rows/s) of the plugin's paging read, in
//! wasm versus the same code compiled natively. Run with
//! `cargo bench -p goals-e2e --bench aggregate`; it prints a table.
//!
//! Both sides run `aggregate_bench` (tests/aggregate-bench): `paging::read` over an
//! in-memory platform whose pages are generated before the clock starts, timed with
//! `std::time::Instant` around the read alone, after a warm-up read. Natively the
//! crate is linked in; in wasm it is built for `wasm32-wasip2` in release and run
//! as a WASI command by wasmtime in this process. Building and compiling the
//! component are not part of the timings.
//!
//! Native and wasm runs alternate, in rounds, so that load from elsewhere on the
//! machine (a build, say) hits both alike; the table shows the median of all timed
//! reads of each side.

use aggregate_bench::{AGGREGATIONS, Pages, Report, median_of};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceType};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Rows of the view: 40 pages of 5,000.
const ROWS: usize = 200_000;
/// Rounds of one native and one wasm run per aggregation, alternating which goes
/// first.
const ROUNDS: usize = 3;
/// Timed reads per run (after one warm-up read).
const REPETITIONS: usize = 5;

fn main() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "Paging read (`paging::read`, {ROWS} rows in pages of {}) aggregated client-side over \
         an in-memory platform; median of {} timed reads per side ({ROUNDS} alternating \
         rounds of {REPETITIONS}, each after a warm-up read).",
        dynamics365_plugin::paging::PAGE_SIZE,
        ROUNDS * REPETITIONS,
    );
    println!(
        "Machine: {cores} cores (available_parallelism), {} {}{}.",
        std::env::consts::OS,
        std::env::consts::ARCH,
        load_average()
            .map(|load| format!(", load average {load} at start"))
            .unwrap_or_default(),
    );

    let started = Instant::now();
    let wasm = build_component();
    let built = started.elapsed();
    let engine = engine();
    let started = Instant::now();
    let component = Component::from_file(&engine, &wasm).expect("compile the component");
    let compiled = started.elapsed();
    println!(
        "Component {} built in {:.1} s and compiled by wasmtime (Cranelift) in {:.2} s \
         before any timing: compilation is excluded.",
        wasm.display(),
        built.as_secs_f64(),
        compiled.as_secs_f64(),
    );

    let pages = Pages::generate(ROWS);
    let mut native: Vec<Vec<Report>> = vec![Vec::new(); AGGREGATIONS.len()];
    let mut guest: Vec<Vec<Report>> = vec![Vec::new(); AGGREGATIONS.len()];
    for round in 0..ROUNDS {
        for (index, (name, aggregation)) in AGGREGATIONS.iter().enumerate() {
            let mut run_native = || native[index].extend(pages.samples(*aggregation, REPETITIONS));
            if round % 2 == 0 {
                run_native();
                guest[index].extend(run_component(&engine, &component, name));
            } else {
                guest[index].extend(run_component(&engine, &component, name));
                run_native();
            }
        }
    }
    drop(pages);

    println!();
    println!("| aggregation | rows | native rows/s | wasm rows/s | wasm / native |");
    println!("|---|---:|---:|---:|---:|");
    let mut mismatches = Vec::new();
    for (((name, _), native), guest) in AGGREGATIONS.iter().zip(&native).zip(&guest) {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        let expected = native[0];
        for report in native.iter().chain(guest) {
            if report.rows != expected.rows || !same(report.value, expected.value) {
                mismatches.push(format!("{name}: {expected:?} versus {report:?}"));
            }
        }
        let (native, guest) = (median_of(native), median_of(guest));
        println!(
            "| {name} | {} | {} | {} | {:.2} |",
            thousands(native.rows as f64),
            thousands(native.rows_per_second()),
            thousands(guest.rows_per_second()),
            guest.rows_per_second() / native.rows_per_second(),
        );
    }
    println!();
    println!(
        "Native: this bench's profile (release), linked in. Wasm: the same crate built \
         `--release` for wasm32-wasip2, run by wasmtime 48 with the host's engine settings \
         (component model, epoch interruption); the guest times itself with Instant \
         (wasi:clocks/monotonic-clock)."
    );
    assert!(
        mismatches.is_empty(),
        "native and wasm disagree: {mismatches:?}"
    );
}

/// The 1-minute load average, where the system tells it.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Builds `aggregate-bench` for wasm32-wasip2 in release and returns its command
/// component.
fn build_component() -> PathBuf {
    goals_e2e::build_guest(&[
        "--package",
        "aggregate-bench",
        "--bin",
        "aggregate-bench",
        "--release",
    ])
    .into_iter()
    .filter(|message| message["target"]["name"] == "aggregate-bench")
    .find_map(|message| message["executable"].as_str().map(PathBuf::from))
    .expect("cargo reported the aggregate-bench executable")
}

/// The engine as the host configures it (`host/engine/src/runtime.rs`), so the guest runs
/// with the same instrumentation as the plugin in production.
fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    Engine::new(&config).expect("create the wasmtime engine")
}

struct Guest {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Runs the command component for one aggregation and returns its timed reads.
fn run_component(engine: &Engine, component: &Component, aggregation: &str) -> Vec<Report> {
    let mut linker: Linker<Guest> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("link WASI");
    stub_plugin_imports(&mut linker, engine, component);
    let stdout = MemoryOutputPipe::new(1 << 20);
    let rows = ROWS.to_string();
    let repetitions = REPETITIONS.to_string();
    let ctx = WasiCtx::builder()
        .args(&["aggregate-bench", &rows, &repetitions, aggregation])
        .stdout(stdout.clone())
        .inherit_stderr()
        .build();
    let mut store = Store::new(
        engine,
        Guest {
            ctx,
            table: ResourceTable::new(),
        },
    );
    // Nothing advances the epoch here; the deadline only has to be in the future.
    store.set_epoch_deadline(1);
    let command =
        Command::instantiate(&mut store, component, &linker).expect("instantiate the command");
    let outcome = command
        .wasi_cli_run()
        .call_run(&mut store)
        .expect("run the command");
    let printed = stdout.contents();
    let printed = String::from_utf8_lossy(&printed);
    assert!(
        outcome.is_ok(),
        "the command failed; it printed:\n{printed}"
    );
    let line: Value = serde_json::from_str(printed.trim())
        .unwrap_or_else(|e| panic!("not one JSON report ({e}): {printed}"));
    assert_eq!(line["aggregation"], aggregation, "the run reported");
    let rows = line["rows"].as_u64().expect("rows") as usize;
    let value = line["value"].as_f64().unwrap_or(f64::NAN);
    line["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|seconds| Report {
            rows,
            seconds: seconds.as_f64().expect("seconds"),
            value,
        })
        .collect()
}

/// The plugin's rlib brings its wasm32-only component glue (`plugin/src/component.rs`)
/// into the command: besides `wasi:cli/run` the component exports the integration
/// world and imports `goals:integration/{storage,log,types}` and `wasi:http`
/// (through waki), none of which the benchmark calls. Those imports are defined
/// here as functions that trap if ever called.
///
/// `Linker::define_unknown_imports_as_traps` would be the one-liner, but it is not
/// semver-aware: it redefines the guest's `wasi:cli/*@0.2.6` under that exact name,
/// shadowing WASI's real `@0.2.12` implementation, so `std::env::args` would trap.
fn stub_plugin_imports(linker: &mut Linker<Guest>, engine: &Engine, component: &Component) {
    let ty = component.component_type();
    // Resources an earlier import introduced; later imports only refer to them
    // (`use wasi:io/streams.{input-stream}`) and must not redefine them.
    let mut seen: Vec<ResourceType> = Vec::new();
    let mut next_resource = 0;
    for (name, import) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            panic!("unexpected import {name} of the command");
        };
        let stubbed = name.starts_with("goals:integration/") || name.starts_with("wasi:http/");
        let mut stubs = stubbed.then(|| linker.instance(name).expect("a linker instance"));
        for (item, export) in instance.exports(engine) {
            match (export.ty, stubs.as_mut()) {
                (ComponentItem::Resource(resource), stubs) if !seen.contains(&resource) => {
                    seen.push(resource);
                    if let Some(stubs) = stubs {
                        next_resource += 1;
                        stubs
                            .resource(item, ResourceType::host_dynamic(next_resource), |_, _| {
                                Ok(())
                            })
                            .expect("stub a resource");
                    }
                }
                (ComponentItem::ComponentFunc(_), Some(stubs)) => {
                    let qualified = format!("{name}#{item}");
                    stubs
                        .func_new(item, move |_, _, _, _| {
                            Err(wasmtime::format_err!(
                                "`{qualified}` is not available to the benchmark"
                            ))
                        })
                        .expect("stub a function");
                }
                _ => {}
            }
        }
    }
}
