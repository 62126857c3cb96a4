#!/usr/bin/env bash
# Build parley in release mode and run it in the foreground.
#
#   scripts/serve.sh [ARGS...]
#
# It runs from the repository root, so a parley.toml there is read.
# Configuration comes from the environment and that optional file (see
# docs/configuration.md). With none, parley listens on :8080 and keeps its
# data in the embedded in-process store, which is lost when it stops. Set
# DATABASE_URL (PostgreSQL) and REDIS_URL (several instances) to change that.
# ARGS are passed to the parley binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Non-login shells (sudo, service managers) often lack rustup's PATH entry.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "serve.sh: error: cargo not found: install a Rust toolchain (cargo >= 1.88) with rustup, https://rustup.rs" >&2
    exit 1
fi

if [[ -z "${DATABASE_URL:-}" ]]; then
    echo "serve.sh: DATABASE_URL is unset: using the embedded store (data is lost on exit)" >&2
fi
exec cargo run --release --bin parley -- "$@"
