//! Runs the paging-read benchmark and prints one JSON line per aggregation:
//! `{"aggregation":"sum","rows":200000,"repetitions":7,"seconds":0.1,"rows_per_second":2000000.0,"value":1.0,"samples":[0.1,…]}`
//! where `seconds` is the median of the timed reads and `samples` every timed read.
//!
//! `aggregate-bench [ROWS [REPETITIONS [AGGREGATION...]]]`; by default 200,000
//! rows, 7 repetitions, every aggregation of [`aggregate_bench::AGGREGATIONS`].
//! Built for `wasm32-wasip2` it is a WASI command the `goals-e2e` bench runs.

use aggregate_bench::{AGGREGATIONS, Pages, aggregation_named, median_of};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: usize| match args.get(index) {
        Some(text) => text.parse::<usize>().map_err(|_| text.clone()),
        None => Ok(default),
    };
    let (rows, repetitions) = match (number(0, 200_000), number(1, 7)) {
        (Ok(rows), Ok(repetitions)) => (rows, repetitions),
        (Err(bad), _) | (_, Err(bad)) => {
            eprintln!("not a number: {bad}");
            return ExitCode::FAILURE;
        }
    };
    let wanted: Vec<&str> = if args.len() > 2 {
        args[2..].iter().map(String::as_str).collect()
    } else {
        AGGREGATIONS.iter().map(|(name, _)| *name).collect()
    };

    let pages = Pages::generate(rows);
    for name in wanted {
        let Some(aggregation) = aggregation_named(name) else {
            eprintln!("unknown aggregation: {name}");
            return ExitCode::FAILURE;
        };
        let samples = pages.samples(aggregation, repetitions);
        let report = median_of(&samples);
        println!(
            "{}",
            serde_json::json!({
                "aggregation": name,
                "rows": report.rows,
                "repetitions": repetitions,
                "seconds": report.seconds,
                "rows_per_second": report.rows_per_second(),
                "value": report.value,
                "samples": samples.iter().map(|s| s.seconds).collect::<Vec<_>>(),
            })
        );
    }
    ExitCode::SUCCESS
}
