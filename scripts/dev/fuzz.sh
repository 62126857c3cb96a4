#!/usr/bin/env bash
# Runs the cargo-fuzz targets of tests/fuzz/ for a fixed time each and
# prints, per target, the executions libFuzzer counted and the crashes it
# saved. Exits non-zero when any target crashed.
#
#   scripts/dev/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); TARGETs default to every target
# (client_frame rest_body query_path config jwt ws_frames). Needs the nightly
# toolchain (rustup) and cargo-fuzz, installed here from crates.io when
# missing. Builds once with `cargo +nightly fuzz build --fuzz-dir tests/fuzz`
# (release, debug assertions, AddressSanitizer), then runs each binary as
# `cargo fuzz run` would, but from a directory of its own, so that two runs
# at once keep separate logs. Each run reads the seeds in
# tests/fuzz/corpus/TARGET/ and grows tests/fuzz/work/TARGET/corpus/
# (gitignored); crashes land in tests/fuzz/artifacts/TARGET/. Runs at the
# lowest CPU priority. docs/fuzzing.md records the results.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"
root=$PWD

readonly CARGO_FUZZ_VERSION=0.13.2
readonly TRIPLE=x86_64-unknown-linux-gnu

seconds=${1:-600}
[[ "$seconds" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, not '$seconds'"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(client_frame rest_body query_path config jwt ws_frames)
fi

rustup toolchain list | grep -q '^nightly' ||
    die "the nightly toolchain is missing: rustup toolchain install nightly"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    nice -n 10 cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

log "building the targets (nightly, release, AddressSanitizer)"
nice -n 10 cargo +nightly fuzz build --fuzz-dir tests/fuzz
for target in "${targets[@]}"; do
    [[ -x "tests/fuzz/target/$TRIPLE/release/$target" ]] ||
        die "tests/fuzz/target/$TRIPLE/release/$target was not built"
done

failed=0
summary=()
for target in "${targets[@]}"; do
    work="$root/tests/fuzz/work/$target"
    artifacts="$root/tests/fuzz/artifacts/$target"
    mkdir -p "$work/corpus" "$work/run" "$artifacts"
    rm -f "$work/run"/fuzz-*.log
    command=(nice -n 19 "$root/tests/fuzz/target/$TRIPLE/release/$target"
        -jobs=1 -max_total_time="$seconds" -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/"
        "$work/corpus" "$root/tests/fuzz/corpus/$target")
    before=$(find "$artifacts" -type f | wc -l)
    log "$target: ${seconds}s: ${command[*]}"
    (cd "$work/run" && "${command[@]}") >"$work/libfuzzer.out" 2>&1 || true
    # -jobs=1 runs the fuzzer in a child process that logs to fuzz-0.log.
    job_log="$work/run/fuzz-0.log"
    [[ -f "$job_log" ]] || job_log="$work/libfuzzer.out"
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$job_log" | tail -1 | awk '{print $2}')
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if grep -qE '^==[0-9]+==ERROR|panicked at|deadly signal' "$job_log"; then
        crashes=$((crashes > 0 ? crashes : 1))
    fi
    ((crashes == 0)) || failed=1
    line=$(printf '%-13s %6ss %12s executions %3d crashes' "$target" "$seconds" "${execs:-?}" "$crashes")
    summary+=("$line")
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$seconds" "${execs:-?}" "$crashes" \
        >>"$root/tests/fuzz/work/results.tsv"
    log "$line (log: $job_log)"
done

printf '\nfuzz.sh results:\n'
printf '  %s\n' "${summary[@]}"
((failed == 0)) || die "a target crashed: see tests/fuzz/artifacts/, reproduce with
  cargo +nightly fuzz run --fuzz-dir tests/fuzz TARGET ARTIFACT"
