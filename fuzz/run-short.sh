#!/usr/bin/env bash
# Builds every fuzz target and runs each for a short time (FUZZ_SECONDS, 20 by default) from its
# seed corpus. Fails only on a finding: a crash, a failed property, a leak or a timeout, whose
# input libFuzzer leaves under fuzz/artifacts/<target>/. New inputs go to a temporary folder, so
# the committed seeds stay as they are.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
# cargo fuzz asks for nightly rustc flags (sanitizers); the stable toolchain takes them with this.
export RUSTC_BOOTSTRAP=1

# AddressSanitizer adds little to safe Rust and much to the build; a longer run can ask for it
# with FUZZ_SANITIZER=address.
sanitizer="${FUZZ_SANITIZER:-none}"

cargo fuzz build -O -s "$sanitizer"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    echo "fuzz: $target for ${seconds}s"
    cargo fuzz run -O -s "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        2>"$work/$target.log" || {
        tail -n 60 "$work/$target.log"
        echo "fuzz: $target found a failing input: see fuzz/artifacts/$target/" >&2
        exit 1
    }
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|cov: ' "$work/$target.log" \
        | tail -n 3 || true
done
