#!/usr/bin/env bash
# Checks /openapi.json against the running server with schemathesis: it
# generates requests from the document (valid and invalid ones) for every
# operation and fails when parley answers a 5xx, a status the document does
# not list for that operation, a media type it does not list, or a body
# that does not match the listed schema. About two minutes.
#
#   scripts/test/check-schemathesis.sh
#
# Installs schemathesis (pinned, from PyPI) into its own virtualenv under
# ~/.cache/parley when missing. Starts a debug parley here on the embedded
# store with its rate limits raised, so that the run tests the routes and
# not the limiter (429 is still documented on every /api/v1 route), and
# registers one user whose access token goes with every request. Builds
# target/debug/parley when it is out of date (PARLEY_BIN=path runs another
# binary instead). SCHEMATHESIS_SEED=N replays a run; SCHEMATHESIS_MAX_TIME
# (seconds, default 100) bounds it.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

readonly VERSION=4.32.5
readonly VENV="${XDG_CACHE_HOME:-$HOME/.cache}/parley/schemathesis-$VERSION"

shellcheck scripts/lib.sh scripts/test/check-schemathesis.sh scripts/dev/fuzz.sh

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    log "installing schemathesis $VERSION from PyPI into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi

# The embedded store (no DATABASE_URL), rate limits raised.
start_parley PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000
addr=$PARLEY_ADDR
work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
on_exit cleanup
log "parley serves on $addr (embedded store, rate limits raised)"

token=$(curl -sS --fail-with-body -H 'content-type: application/json' \
    -d '{"username":"schemathesis","email":"schemathesis@example.com","password":"correct horse battery"}' \
    "http://$addr/api/v1/auth/register" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
    die "could not register the test user"

# The /admin/ routes (drain, reports, webhooks, API keys) live on the
# admin listener (the public one answers 404), and /admin/drain there
# would stop the server under test; tests/api covers them there. Log out
# everywhere would sign the run's one user out and leave every later
# request a 401 (tests/api/revocation.rs covers it).
# From the scratch directory: schemathesis leaves its state (.schemathesis/) in the working directory.
# One run; its output also goes to $work/run.log to tell a failure of
# parley from a crash inside schemathesis.
run_schemathesis() {
    (cd "$work" && "$VENV/bin/schemathesis" run "http://$addr/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --exclude-path-regex '^/admin/' \
        --exclude-path /api/v1/auth/logout-all \
        --phases examples,coverage,fuzzing \
        --max-examples 30 --max-time "${SCHEMATHESIS_MAX_TIME:-100}" \
        ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
        --workers 2 --request-timeout 10 \
        --suppress-health-check all \
        --report junit --report-dir "$work/report") 2>&1 | tee "$work/run.log"
    return "${PIPESTATUS[0]}"
}
rc=0
run_schemathesis || rc=$?
# schemathesis 4.32 sometimes crashes inside its own generator (a
# "Runtime Error" such as "AST constructor recursion depth mismatch",
# with every generated case passing): that says nothing about parley, so
# such a run is made once more. A failure of parley is never retried.
if ((rc != 0)) && grep -q "Runtime Error" "$work/run.log" && ! grep -q "= FAILURES =" "$work/run.log"; then
    log "schemathesis crashed inside itself (no failure of parley); running it once more"
    rc=0
    run_schemathesis || rc=$?
fi
if ((rc != 0)); then
    log "parley's log (last 30 lines):"
    tail -n 30 "$PARLEY_LOG" >&2
    die "schemathesis found failures (exit $rc)"
fi
log "schemathesis: no failures"
