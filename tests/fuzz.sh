#!/usr/bin/env bash
# A long fuzzing campaign over every target in plugin/tests/fuzz.rs, natively, in
# release with overflow checks and debug assertions on (so an overflow fails as in
# a debug build). Each target prints its executions and time.
#
#   bash tests/fuzz.sh            # 100,000 cases per target
#   bash tests/fuzz.sh 20000      # fewer
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export PROPTEST_CASES="${1:-100000}"
cargo test -p dynamics365-plugin --release --locked --test fuzz -- --nocapture --test-threads=2
