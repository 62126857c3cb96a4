#!/usr/bin/env bash
# End-to-end test of the browser client (static/) in real headless Chromium.
#
#   scripts/test/test-browser.sh
#
# Needs /usr/bin/chromium (scripts/test/ensure-tools.sh installs Debian's
# `chromium`), Node 20+ with npm, openssl, psql, a PostgreSQL at
# PARLEY_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# and a Redis at PARLEY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
# Builds target/debug/parley (under $CARGO_TARGET_DIR when set; $PARLEY_BIN
# runs another binary) when it is missing, installs playwright-core
# from tests/browser/package-lock.json (npm ci) when needed, then runs
# tests/browser: two browser contexts chat, the server restarts, and the
# page must catch up with every message once, in order; then room events
# (unread badges, replies, edits, reactions, deletes) on two instances
# sharing the database and Redis, across tabs and a restart; then people
# and safety (a mute and a ban from the member list reaching an open tab on
# the other instance, a block, a direct conversation started by name, log
# out everywhere). The screenshots are written to
# tests/browser/artifacts/{chat,events,safety-*}.png.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

export PARLEY_TEST_DATABASE_URL="${PARLEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing: run scripts/test/ensure-tools.sh"
have npm || die "npm is missing: install Node.js 20 or later"

# cargo decides whether the binary (and so its embedded static/) is stale.
log "building target/debug/parley"
cargo build --quiet --bin parley

cd tests/browser
# npm ci wipes node_modules; skip it while the lock it installed is unchanged.
stamp=node_modules/.installed-lock.json
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
    log "installing playwright-core (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi
mkdir -p artifacts
node --test --test-reporter=spec --test-timeout=120000 unit.test.mjs chat.test.mjs events.test.mjs safety.test.mjs push.test.mjs
log "screenshot: tests/browser/artifacts/chat.png"
