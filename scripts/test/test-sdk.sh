#!/usr/bin/env bash
# The client SDK (static/sdk/) tested in Node against real parley processes.
#
#   scripts/test/test-sdk.sh
#
# Needs Node 20+ with npm, haproxy (scripts/test/ensure-tools.sh installs
# it), openssl, psql, a PostgreSQL at PARLEY_TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) and a Redis at
# PARLEY_TEST_REDIS_URL (default redis://127.0.0.1:6379). Builds
# target/debug/parley (under $CARGO_TARGET_DIR when set; $PARLEY_BIN runs
# another binary) when it is stale, installs ws and typescript from
# tests/sdk/package-lock.json (npm ci) when needed, type-checks
# tests/sdk/example.ts against static/sdk/parley.d.ts (tsc --noEmit), then
# runs tests/sdk: two clients through haproxy in front of two instances, a
# conversation of every event kind, a drain, a kill -9 mid-publish, a cut
# network, a 1013 slow-consumer close and a refused token. About 25 s;
# every wait in it is bounded.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

export PARLEY_TEST_DATABASE_URL="${PARLEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

have npm || die "npm is missing: install Node.js 20 or later"
have haproxy || die "haproxy is missing: run scripts/test/ensure-tools.sh"

# cargo decides whether the binary is stale.
log "building target/debug/parley"
cargo build --quiet --bin parley

cd tests/sdk
# npm ci wipes node_modules; skip it while the lock it installed is unchanged.
stamp=node_modules/.installed-lock.json
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
    log "installing ws and typescript (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi
log "tsc --noEmit: tests/sdk/example.ts against static/sdk/parley.d.ts"
npx --no-install tsc --noEmit -p .
timeout 300 node --test --test-reporter=spec --test-timeout=60000 sdk.test.mjs
