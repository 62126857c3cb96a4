#!/usr/bin/env bash
# Runs one k6 scenario (smoke, load, stress, soak) against a release parley
# started here, and samples parley's RSS while it runs.
#
#   loadtest/k6/run.sh [OPTIONS] SCENARIO [-- K6_ARGS...]
#
#   --database-url URL  PostgreSQL for parley (default: the embedded store)
#   --rss-every S       RSS sampling interval in seconds (default 10)
#   --pin               parley on CPU 0, k6 on CPU 1 (taskset); PostgreSQL
#                       stays unpinned
#   --no-build          use target/release/parley as it is
#   --out DIR           where results go (default target/k6/SCENARIO-TIME)
# K6_ARGS go to `k6 run`, e.g. -e VUS=500 -e DURATION=5m.
#
# parley gets the environment a load run needs and the output says so:
# PARLEY_RATE_AUTH_PER_MIN and PARLEY_RATE_API_PER_MIN raised to 1000000
# (the defaults, 5 and 100 per minute, would refuse almost every request),
# PARLEY_LOG=warn (so the run does not measure the logger), listeners on
# 127.0.0.1:18080 and 19090. REDIS_URL and PARLEY_CONFIG are ignored.
# Results: k6 summary (summary.json), every sample (samples.csv.gz, for
# loadtest/k6/windows.py), rss.csv, parley.log, k6.log, env.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

log() { printf 'k6/run.sh: %s\n' "$*" >&2; }
die() {
    printf 'k6/run.sh: error: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

database_url=
rss_every=10
pin=false
build=true
out=
while (($# > 0)); do
    case $1 in
        --database-url) database_url=${2:?}; shift 2 ;;
        --rss-every) rss_every=${2:?}; shift 2 ;;
        --pin) pin=true; shift ;;
        --no-build) build=false; shift ;;
        --out) out=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) scenario=$1; shift; [[ "${1:-}" == -- ]] && shift; break ;;
    esac
done
[[ -n "${scenario:-}" && -f "loadtest/k6/$scenario.js" ]] || die "scenario must be one of: smoke load stress soak"

k6="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/k6"
[[ -x "$k6" ]] || k6=k6
"$k6" version >/dev/null 2>&1 || die "k6 not found: run scripts/test/ensure-tools.sh"
# PARLEY_BIN runs a binary built elsewhere (e.g. a copy of a given commit's
# build, which another build in the shared target/ cannot replace mid-run).
parley=${PARLEY_BIN:-target/release/parley}
if $build && [[ -z "${PARLEY_BIN:-}" ]]; then
    cargo build --release --bin parley
fi
out=${out:-target/k6/$scenario-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

cpu_parley=()
cpu_k6=()
if $pin; then
    cpu_parley=(taskset -c 0)
    cpu_k6=(taskset -c 1)
fi
# 10,000 VUs hold a WebSocket and an HTTP connection each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

parley_env=(PARLEY_HTTP_ADDR=127.0.0.1:18080 PARLEY_ADMIN_ADDR=127.0.0.1:19090
    PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000
    PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 PARLEY_WS_CONNS_PER_IP=1000000
    PARLEY_LOG=warn PARLEY_LOG_FORMAT=json PARLEY_DRAIN_TIMEOUT_S=5)
[[ -n "$database_url" ]] && parley_env+=("DATABASE_URL=$database_url")
{
    printf 'date: %s\nworking tree HEAD: %s\nbinary: %s\nuptime: %s\npin: %s\n' \
        "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD)" "$parley" "$(uptime)" "$pin"
    printf 'parley env: %s\n' "${parley_env[*]}" | sed -E 's#(//[^:/@]*):[^@/]*@#\1:***@#'
    printf 'k6 args: %s\n' "$*"
} >"$out/env.txt"
cat "$out/env.txt" >&2

pid=
sampler=
# shellcheck disable=SC2317 # only called by the EXIT trap
cleanup() {
    [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

env -u DATABASE_URL -u REDIS_URL -u PARLEY_CONFIG "${parley_env[@]}" \
    "${cpu_parley[@]}" "$parley" >"$out/parley.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
    curl -fsS -o /dev/null http://127.0.0.1:18080/readyz 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$out/parley.log" >&2; die "parley exited at start-up"; }
    sleep 0.1
done
curl -fsS -o /dev/null http://127.0.0.1:18080/readyz || die "parley not ready within 60 s"
log "parley (pid $pid) ready on 127.0.0.1:18080"

loadtest/k6/rss.sh "$pid" "$rss_every" >"$out/rss.csv" &
sampler=$!

rc=0
K6_NO_USAGE_REPORT=true "${cpu_k6[@]}" "$k6" run -e BASE_URL=http://127.0.0.1:18080 \
    --summary-export "$out/summary.json" --out "csv=$out/samples.csv.gz" \
    "$@" "loadtest/k6/$scenario.js" 2>&1 | tee "$out/k6.log" || rc=$?
printf 'uptime after: %s\n' "$(uptime)" >>"$out/env.txt"
log "results in $out (k6 exit $rc)"
exit "$rc"
