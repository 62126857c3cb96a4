#!/usr/bin/env bash
# Build parley in release mode and run it in the foreground.
#
#   scripts/dev/serve.sh [ARGS...]
#
# It runs from the repository root, so a parley.toml there is read.
# Configuration comes from the environment and that optional file (see
# docs/configuration.md). With none, parley listens on :8080 and keeps its
# data in the embedded in-process store, which is lost when it stops. Set
# DATABASE_URL (PostgreSQL) and REDIS_URL (several instances) to change that.
# ARGS are passed to the parley binary.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

cargo_on_path
have cargo || die "cargo not found: install a Rust toolchain (cargo >= 1.88) with rustup, https://rustup.rs"

if [[ -z "${DATABASE_URL:-}" ]]; then
    log "DATABASE_URL is unset: using the embedded store (data is lost on exit)" >&2
fi
exec cargo run --release --bin parley -- "$@"
