#!/bin/sh
# Build every fuzz target and run each for a short while from the committed seeds, so CI
# notices a target that no longer builds or a crash a seed's neighbourhood reaches quickly.
# Long runs are for people: see DEVELOPERS.md, "Fuzzing".
#
# cargo-fuzz needs nightly-only flags (-Z sanitizer=..., -Cpasses=sancov); only a stable
# toolchain exists here, so RUSTC_BOOTSTRAP=1 unlocks them on stable rustc.
#
# FUZZ_SECONDS (default 20) is each target's run time. One fuzz process at a time: the CI
# machines are shared.
set -eu

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz is missing; run 'cargo install cargo-fuzz'" >&2
    exit 1
fi

cargo fuzz build -O
for target in $(cargo fuzz list); do
    # A scratch corpus per run: the seeds stay as committed, the grown corpus is thrown away.
    corpus="$(mktemp -d)"
    log="$(mktemp)"
    echo "fuzz-smoke: $target for ${seconds}s"
    if ! cargo fuzz run -O "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -jobs=1 -workers=1 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz-smoke: $target crashed; the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" || true
    rm -rf "$corpus" "$log"
done
echo "fuzz-smoke: all targets ran ${seconds}s without a crash"
