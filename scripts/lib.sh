# shellcheck shell=bash
# The PARLEY_* variables set here are read by the scripts that source it.
# shellcheck disable=SC2034
# What every script in scripts/ (and .ci/run) shares. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# Gives:
#   PARLEY_ROOT            the repository root (scripts cd there themselves)
#   log MSG / die MSG      "NAME: MSG" on stdout (LOG_FD=2: stderr) / on stderr
#                          with "error:", then exit 1; NAME is the script's
#                          file name (SCRIPT_NAME overrides it)
#   have CMD               whether CMD is on PATH
#   cargo_on_path          adds rustup's cargo to PATH when a non-login shell
#                          lacks it
#   on_exit CMD...         runs CMD when the script exits, last registered
#                          first (the one EXIT trap; don't set another)
#   timed LABEL CMD...     runs CMD and records how long it took;
#                          print_timings lists every step at exit
#   parley_bin, start_parley, stop_parley: a parley for checks (below)
#   stop_pid PID           SIGTERM, then SIGKILL after 10 s

[[ -n "${PARLEY_LIB_SOURCED:-}" ]] && return 0
PARLEY_LIB_SOURCED=1

PARLEY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0")}
LOG_FD=${LOG_FD:-1}

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&"$LOG_FD"; }
die() {
    printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
now_ms() { date +%s%3N; }

# Non-login shells (CI, sudo, service managers) often lack rustup's PATH entry.
cargo_on_path() {
    if ! have cargo && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    fi
}

# --- cleanup at exit ---------------------------------------------------------

_on_exit=()
on_exit() { _on_exit+=("$*"); }
_run_on_exit() {
    local i
    for ((i = ${#_on_exit[@]} - 1; i >= 0; i--)); do
        eval "${_on_exit[i]}" || true
    done
}
trap _run_on_exit EXIT

# --- step timings --------------------------------------------------------------

timings=()
# timed LABEL CMD...: runs CMD, logs and records how long it took, pass or
# fail, and returns CMD's status.
timed() {
    local label=$1
    shift
    local start rc=0 ms took
    start=$(now_ms)
    "$@" || rc=$?
    ms=$(($(now_ms) - start))
    took="$((ms / 1000)).$((ms % 1000 / 100))s"
    if ((rc == 0)); then
        timings+=("$(printf '%-22s %7s' "$label" "$took")")
        log "$label took $took"
    else
        timings+=("$(printf '%-22s %7s  FAILED (exit %d)' "$label" "$took" "$rc")")
        log "$label took $took and failed (exit $rc)"
    fi
    return "$rc"
}

print_timings() {
    ((${#timings[@]} > 0)) || return 0
    printf '\n%s steps:\n' "$SCRIPT_NAME"
    printf '  %s\n' "${timings[@]}"
}

# --- a parley for checks ---------------------------------------------------------

# parley_bin: sets PARLEY_EXE to the parley binary to run: $PARLEY_BIN (a
# binary built elsewhere: CI artifacts, a release build), else
# target/debug/parley, built by cargo when it is out of date (once a run).
PARLEY_EXE=
parley_bin() {
    [[ -z "$PARLEY_EXE" ]] || return 0
    if [[ -n "${PARLEY_BIN:-}" ]]; then
        PARLEY_EXE=$PARLEY_BIN
    else
        (cd "$PARLEY_ROOT" && cargo build --quiet --bin parley) || die "building parley failed"
        PARLEY_EXE=$PARLEY_ROOT/target/debug/parley
    fi
}

PARLEY_PID=
PARLEY_ADDR=
PARLEY_LOG=
_parley_dir=
_parley_cleanup() {
    stop_parley
    rm -rf "$_parley_dir"
}
# start_parley [NAME=VALUE...]: starts parley in the background on a random
# loopback address with kernel-chosen ports (parallel runs and other servers
# never collide), JSON logs and a 2 s drain; DATABASE_URL, REDIS_URL and
# PARLEY_CONFIG are unset unless given, then NAME=VALUE set. Waits at most
# 60 s for it to log the address it serves on. Sets PARLEY_PID, PARLEY_ADDR
# (host:port of the public listener) and PARLEY_LOG (its output, kept across
# restarts). It is stopped at exit, or earlier by stop_parley.
start_parley() {
    local host addr=
    parley_bin
    if [[ -z "$_parley_dir" ]]; then
        _parley_dir=$(mktemp -d)
        on_exit _parley_cleanup
    fi
    PARLEY_LOG="$_parley_dir/parley.log"
    host="127.0.0.$((RANDOM % 250 + 2))"
    : >"$PARLEY_LOG"
    env -u DATABASE_URL -u REDIS_URL -u PARLEY_CONFIG \
        PARLEY_HTTP_ADDR="$host:0" PARLEY_ADMIN_ADDR="$host:0" \
        PARLEY_LOG_FORMAT=json PARLEY_LOG='warn,parley::app::startup=info' \
        PARLEY_DRAIN_TIMEOUT_S=2 PARLEY_DRAIN_GRACE_MS=0 \
        "$@" "$PARLEY_EXE" >>"$PARLEY_LOG" 2>&1 &
    PARLEY_PID=$!
    # parley logs the addresses it bound once it serves.
    for _ in $(seq 600); do
        addr=$(grep -so '"public_addr":"[^"]*"' "$PARLEY_LOG" | head -1 | cut -d'"' -f4 || true)
        [[ -n "$addr" ]] && break
        kill -0 "$PARLEY_PID" 2>/dev/null || { cat "$PARLEY_LOG" >&2; die "parley exited at start-up"; }
        sleep 0.1
    done
    [[ -n "$addr" ]] || { cat "$PARLEY_LOG" >&2; die "parley did not come up within 60 s"; }
    PARLEY_ADDR=$addr
}

# stop_parley: SIGTERM, then SIGKILL if it is still running after 10 s
# (the drain timeout start_parley sets is 2 s).
stop_parley() {
    [[ -z "$PARLEY_PID" ]] || stop_pid "$PARLEY_PID"
    PARLEY_PID=
}

# stop_pid PID: SIGTERM, then SIGKILL if it still runs after 10 s; reaps it
# when it is this shell's child.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
