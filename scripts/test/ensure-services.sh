#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 and Redis on 127.0.0.1:6379,
# as the test suite expects.
#
# For each service, in order: use it if it already answers; else start it if
# it is installed; else install it from Debian's packages and start it. Then
# wait (bounded) until it answers. Safe to run any number of times. Prints
# what it did; exports nothing. Starting or installing needs root or sudo.
#
# PostgreSQL must let user `postgres` in from 127.0.0.1 without a password
# (trust). A cluster this script installed or created is set up that way; an
# existing one is never edited, only reported.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly PG_HOST=127.0.0.1 PG_PORT=5432
readonly REDIS_HOST=127.0.0.1 REDIS_PORT=6379
readonly WAIT_S=30

# Set to 1 once this run has installed PostgreSQL or created its cluster:
# only then may the script change pg_hba.conf.
pg_fresh=0
# The PostgreSQL major version whose `main` cluster this run started.
pg_version=
apt_updated=0

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

# True when something accepts TCP connections on host $1, port $2.
port_open() {
    # shellcheck disable=SC2016 # $1 and $2 are the inner bash's arguments.
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

pg_ready() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

redis_ready() {
    if have redis-cli; then
        [[ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
    else
        port_open "$REDIS_HOST" "$REDIS_PORT"
    fi
}

# wait_for NAME CHECK: polls CHECK until it succeeds, for at most WAIT_S.
wait_for() {
    local name=$1 check=$2
    local deadline=$((SECONDS + WAIT_S))
    until "$check"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
    log "$name is ready"
}

apt_install() {
    have apt-get || die "$* not installed and apt-get is missing: install it by hand"
    if ((apt_updated == 0)); then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@"
}

pg_installed() {
    have pg_ctlcluster && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Sets pg_version to the cluster to start: the newest version with a `main`
# cluster or, when there is none, a new `main` for the newest installed server.
pg_find_cluster() {
    local v
    for v in $(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -rV); do
        if [[ -f "/etc/postgresql/$v/main/postgresql.conf" ]]; then
            pg_version=$v
            return
        fi
    done
    v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -rV | head -1)
    log "no PostgreSQL cluster: creating $v/main on port $PG_PORT"
    as_root pg_createcluster --port "$PG_PORT" "$v" main >/dev/null
    pg_version=$v
    pg_fresh=1
}

# True when user postgres gets in over TCP without a password.
pg_trusts_postgres() {
    PGCONNECT_TIMEOUT=5 psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
        -w -X -q -A -t -c 'SELECT 1' >/dev/null 2>&1
}

# Lets user postgres in from loopback without a password. The lines go first
# in pg_hba.conf because the first matching line wins.
pg_allow_trust() {
    local hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
    log "letting user postgres in from loopback without a password ($hba)"
    as_root sed -i "1i # Added by parley's scripts/test/ensure-services.sh for the test suite.\n\
host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust" "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload
}

ensure_postgres() {
    if pg_ready; then
        log "PostgreSQL already answers on $PG_HOST:$PG_PORT"
    else
        if ! pg_installed; then
            apt_install postgresql
            pg_fresh=1
        fi
        pg_find_cluster
        log "starting PostgreSQL cluster $pg_version/main"
        # Exit 2 means "already running": then it only needs waiting for.
        as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
        if ! wait_for PostgreSQL pg_ready; then
            if have pg_lsclusters; then pg_lsclusters >&2 || true; fi
            die "PostgreSQL does not answer on $PG_HOST:$PG_PORT after ${WAIT_S}s; check the cluster's port and listen_addresses above and its log under /var/log/postgresql"
        fi
    fi
    check_pg_auth
}

check_pg_auth() {
    if [[ -n "${PARLEY_TEST_DATABASE_URL:-}" ]]; then
        log "PARLEY_TEST_DATABASE_URL is set: the tests log in with it, not as passwordless postgres"
        return
    fi
    if ! have psql; then
        log "psql not found: cannot check that user postgres needs no password"
        return
    fi
    if pg_trusts_postgres; then
        log "PostgreSQL lets user postgres in from $PG_HOST without a password"
        return
    fi
    if ((pg_fresh == 1)); then
        pg_allow_trust
        if wait_for "PostgreSQL trust for user postgres" pg_trusts_postgres; then
            return
        fi
    fi
    die "user postgres cannot log in to $PG_HOST:$PG_PORT without a password. Add 'host all postgres 127.0.0.1/32 trust' first in pg_hba.conf and reload, or set PARLEY_TEST_DATABASE_URL to a URL with a password (postgres://user:password@127.0.0.1:5432/postgres)"
}

ensure_redis() {
    if redis_ready; then
        log "Redis already answers on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    have redis-server || apt_install redis-server
    # The Debian package may have started its own server while installing.
    if redis_ready; then
        log "Redis answers on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    log "starting redis-server on $REDIS_HOST:$REDIS_PORT (no persistence)"
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no >/dev/null
    wait_for Redis redis_ready ||
        die "Redis does not answer on $REDIS_HOST:$REDIS_PORT after ${WAIT_S}s"
}

ensure_postgres
ensure_redis
