#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), one after another, on one core.
#
#   fuzz/run.sh [SECONDS]
#
# Needs the nightly toolchain (rustup's `nightly`); installs cargo-fuzz when it is missing
# (`cargo install --locked cargo-fuzz`, from crates.io). Each target starts
# from its committed seeds (fuzz/seeds/TARGET) plus whatever it found before (fuzz/corpus/TARGET,
# not committed). A crash stops the script with a non-zero status; the input that caused it is
# in fuzz/artifacts/TARGET/ (reproduce: cargo +nightly fuzz run --sanitizer none -O TARGET FILE).
# The whole libFuzzer output of a target is kept in fuzz/artifacts/TARGET.log. The random seed
# is fixed (FUZZ_SEED, default 1), so a run from the committed seeds explores the same inputs
# first every time: the CI step passes or fails the same way for the same code.
# The last line printed per target is libFuzzer's `Done N runs in S second(s)`.
set -euo pipefail
secs="${1:-30}"
cd "$(dirname "$0")"
targets=(duis csv jsonl gbcs segment inventory)
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "error: fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked --quiet cargo-fuzz
fi
cargo +nightly fuzz build --sanitizer none -O
# The inventory target writes each input to a file; it goes in a folder removed at the end
# (libFuzzer's timed exit leaves the target no chance to remove it).
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root="${TMPDIR:-/tmp}"
FLEETWATCH_FUZZ_SCRATCH="$(mktemp -d "$scratch_root/fleetwatch-fuzz.XXXXXX")"
export FLEETWATCH_FUZZ_SCRATCH
trap 'rm -rf "$FLEETWATCH_FUZZ_SCRATCH"' EXIT
shopt -s nullglob
for t in "${targets[@]}"; do
    # The artifacts are this run's: an input that failed before is fixed and kept as a
    # regression test (fuzz/regressions/, tests/chunking.rs), or still fails and is found again.
    mkdir -p "corpus/$t" "artifacts/$t"
    rm -f "artifacts/$t"/crash-* "artifacts/$t"/timeout-* "artifacts/$t"/oom-*
    echo "== $t (${secs}s)"
    # -max_len: the seeds reach 6 KB; -rss_limit_mb: memory must stay bounded on any input.
    set +e
    cargo +nightly fuzz run --sanitizer none -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -max_len=8192 -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 2>&1 | tee "artifacts/$t.log" | grep -E '^(Done|stat::number_of_executed_units|==|INFO: seed corpus|.*(panicked|ERROR|SUMMARY))'
    status=${PIPESTATUS[0]}
    set -e
    failing=("artifacts/$t"/crash-* "artifacts/$t"/timeout-* "artifacts/$t"/oom-*)
    if [ "$status" -ne 0 ] || [ "${#failing[@]}" -gt 0 ]; then
        echo "fuzz target $t failed (status $status): see fuzz/artifacts/$t.log and fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
