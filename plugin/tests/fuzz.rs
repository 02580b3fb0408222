//! Property tests: the plugin's parsers, query rewriting and readers of Dataverse
//! and identity-platform answers return `Ok` or `Err` on any input, never panic
//! and never keep asking for more.
//!
//! Each target runs a modest number of cases so that `cargo test` stays fast. A
//! long campaign sets the count for every target:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test -p dynamics365-plugin --release --test fuzz -- --nocapture
//! ```
//!
//! With `--nocapture` each target prints how many cases it ran and how long it
//! took. A failure prints the shrunk input. Inputs that once failed are kept as
//! plain tests in `fuzz/regressions.rs` rather than in proptest's regression
//! files, so that they read as tests.

#[path = "fuzz/answers.rs"]
mod answers;
#[path = "fuzz/cookies.rs"]
mod cookies;
#[path = "fuzz/documents.rs"]
mod documents;
#[path = "fuzz/inputs.rs"]
mod inputs;
#[path = "fuzz/queries.rs"]
mod queries;
#[path = "fuzz/regressions.rs"]
mod regressions;
#[path = "fuzz/scripted.rs"]
mod scripted;
#[path = "fuzz/sign_in.rs"]
mod sign_in;
#[path = "fuzz/splits.rs"]
mod splits;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseResult, TestRunner, contextualize_config};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Runs `test` on `default_cases` inputs of `strategy` (`PROPTEST_CASES`
/// overrides the count) and fails with the shrunk input when it fails or panics.
pub fn check<S>(
    target: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let config = contextualize_config(Config {
        cases: default_cases,
        // Failures are kept as plain tests in regressions.rs instead.
        failure_persistence: None,
        ..Config::default()
    });
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let executed = AtomicU64::new(0);
    let started = Instant::now();
    let result = runner.run(&strategy, |input| {
        executed.fetch_add(1, Ordering::Relaxed);
        test(input)
    });
    eprintln!(
        "fuzz {target}: {} executions ({cases} cases) in {:.1?}",
        executed.load(Ordering::Relaxed),
        started.elapsed()
    );
    if let Err(failure) = result {
        panic!("{target}: {failure}");
    }
}
