#!/usr/bin/env bash
# Run parley's whole test suite: the one command for developers and CI.
#
#   scripts/test/test.sh [ARGS...]
#
# Checks for a Rust toolchain, makes sure PostgreSQL and Redis answer
# (scripts/test/ensure-services.sh), drops test databases that earlier runs left
# behind, then runs every test target of the workspace with cargo-nextest
# when it is installed, else with `cargo test`. ARGS go to that runner, e.g.
# a test-name filter. Prints how long each phase took.
#
# The tests read PARLEY_TEST_DATABASE_URL and PARLEY_TEST_REDIS_URL; set
# them to use other servers (the local ones are then still checked).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

readonly MIN_RUST=1.88
# A database whose name starts with this is one test's private database.
readonly TEST_DB_PREFIX=parley_test_
# Leftovers younger than this may belong to a run still going (another
# terminal, another checkout): leave them alone.
readonly LEFTOVER_MIN_AGE='10 minutes'

# A URL fit to print: any password replaced with ***.
redact() { sed -E 's#(//[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

on_exit print_timings

check_toolchain() {
    cargo_on_path
    have cargo || die "cargo not found. parley needs a Rust toolchain, cargo >= $MIN_RUST:
  install it with rustup (https://rustup.rs), then open a new shell or run
  'source \"\$HOME/.cargo/env\"'."
    local version
    version=$(cargo --version | awk '{print $2}')
    if [[ "$(printf '%s\n' "$MIN_RUST" "$version" | sort -V | head -1)" != "$MIN_RUST" ]]; then
        die "cargo $version is older than $MIN_RUST: run 'rustup update stable'"
    fi
    log "using $(cargo --version)"
}

# Drops parley_test_* databases that no session uses and that are older than
# LEFTOVER_MIN_AGE: what crashed or interrupted runs left. Never fails the run.
drop_leftover_databases() {
    if ! have psql; then
        return 0
    fi
    local psql=(env PGCONNECT_TIMEOUT=5 psql "$PARLEY_TEST_DATABASE_URL" -w -X -q -A -t
        -v ON_ERROR_STOP=1)
    local names
    # pg_stat_file gives a database's age; it needs a superuser, as the
    # default URL's user postgres is. Without one, nothing is dropped.
    if ! names=$("${psql[@]}" -c "
        SELECT d.datname FROM pg_database d
        WHERE d.datname LIKE '${TEST_DB_PREFIX//_/\\_}%'
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
          AND (pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification
              < now() - interval '$LEFTOVER_MIN_AGE'
        ORDER BY 1" 2>&1); then
        log "skipped dropping leftover test databases: ${names//$'\n'/ }"
        return 0
    fi
    local name dropped=0
    while IFS= read -r name; do
        [[ -n "$name" ]] || continue
        # No FORCE: a database someone connected to meanwhile stays.
        if "${psql[@]}" -c "DROP DATABASE IF EXISTS \"$name\"" 2>/dev/null; then
            dropped=$((dropped + 1))
        fi
    done <<<"$names"
    log "dropped $dropped leftover test database(s)"
}

run_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        log "running: cargo nextest run --workspace --all-targets --no-fail-fast${*:+ $*}"
        cargo nextest run --workspace --all-targets --no-fail-fast "$@"
    else
        log "cargo-nextest not installed; running: cargo test --workspace --all-targets --no-fail-fast${*:+ $*}"
        cargo test --workspace --all-targets --no-fail-fast "$@"
    fi
}

timed toolchain check_toolchain
timed services bash scripts/test/ensure-services.sh
timed tools bash scripts/test/ensure-tools.sh

export PARLEY_TEST_DATABASE_URL="${PARLEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PARLEY_TEST_REDIS_URL="${PARLEY_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
log "PARLEY_TEST_DATABASE_URL=$(redact "$PARLEY_TEST_DATABASE_URL")"
log "PARLEY_TEST_REDIS_URL=$(redact "$PARLEY_TEST_REDIS_URL")"

timed "leftover databases" drop_leftover_databases
# Build and run together: nextest's own summary line gives the run time.
timed "build + tests" run_tests "$@"
timed "browser e2e" bash scripts/test/test-browser.sh
timed "sdk e2e" bash scripts/test/test-sdk.sh
timed "deploy checks" bash scripts/test/check-deploy.sh
timed "k6 smoke" bash scripts/test/check-k6.sh
timed "backup round trip" bash scripts/test/test-backup.sh
timed "schemathesis" bash scripts/test/check-schemathesis.sh
