#!/usr/bin/env bash
# Start, stop or locate a throwaway PostgreSQL + PostGIS cluster for practice-circle.
#
#   scripts/postgres.sh start [DB]   install PostGIS if missing, init and start the cluster,
#                                    create DB (default practice_circle) with the postgis
#                                    extension; prints its SQLAlchemy URL (idempotent)
#   scripts/postgres.sh url [DB]     print the URL without starting anything
#   scripts/postgres.sh status       exit 0 when the cluster runs
#   scripts/postgres.sh stop         stop the cluster (the data stays under var/pg)
#   scripts/postgres.sh destroy      stop it and delete var/pg
#
# Environment: PC_PG_PORT (5433), PC_PG_DIR (<repo>/var/pg), PC_PG_VERSION (15).
# The cluster trusts local connections on 127.0.0.1 only: for development and tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PC_PG_PORT:-5433}"
BASE="${PC_PG_DIR:-$ROOT/var/pg}"
VERSION="${PC_PG_VERSION:-15}"
BIN="/usr/lib/postgresql/$VERSION/bin"
DB="${2:-practice_circle}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# As root the cluster belongs to postgres, which must reach it: a checkout under a private
# directory (such as /root) gets its cluster under /tmp instead, one per checkout.
if [[ "$(id -u)" == 0 && -z "${PC_PG_DIR:-}" ]] && id postgres >/dev/null 2>&1 \
        && ! runuser -u postgres -- test -x "$ROOT"; then
    BASE="/tmp/practice-circle-pg-$(echo "$ROOT" | md5sum | cut -c1-8)"
fi
DATA="$BASE/data"
SOCK="$BASE/sock"
LOG="$BASE/server.log"

[[ "$DB" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "invalid database name: $DB"

# Run a command as the cluster owner: postgres when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"; }

psql_() { as_owner "$BIN/psql" -h "$SOCK" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAtX "$@"; }

running() { [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

install() {
    local control="/usr/share/postgresql/$VERSION/extension/postgis.control"
    [[ -x "$BIN/initdb" && -f "$control" ]] && return 0
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL $VERSION with PostGIS is missing; as root run: apt-get install postgresql-$VERSION-postgis-3"
    log "installing postgresql-$VERSION-postgis-3 from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "postgresql-$VERSION" "postgresql-$VERSION-postgis-3" >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends \
                "postgresql-$VERSION" "postgresql-$VERSION-postgis-3" >&2; }
    [[ -x "$BIN/initdb" && -f "$control" ]] || die "installation of PostGIS failed"
}

start() {
    install
    mkdir -p "$BASE"
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no postgres system user"
        # The owner must reach the cluster directory through its parents.
        chown postgres:postgres "$BASE"
    fi
    chmod 700 "$BASE"
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initialising a cluster in $DATA"
        rm -rf "$DATA"
        as_owner mkdir -m 700 "$DATA"
        as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 \
            || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
    fi
    as_owner mkdir -p -m 700 "$SOCK"
    if ! running; then
        log "starting on 127.0.0.1:$PORT"
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2 \
            || { tail -n 20 "$LOG" >&2 || true; die "pg_ctl start failed (is port $PORT taken?)"; }
    fi
    if [[ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
        psql_ -d postgres -c "CREATE DATABASE \"$DB\"" 2>/dev/null \
            || [[ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" == 1 ]] \
            || die "cannot create database $DB"
    fi
    psql_ -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null 2>&1 \
        || psql_ -d "$DB" -c "SELECT 1 FROM pg_extension WHERE extname = 'postgis'" | grep -qx 1 \
        || die "cannot create the postgis extension in $DB"
    url
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
    else
        log "not running"
    fi
}

case "${1:-}" in
    start) start ;;
    url) url ;;
    status) running ;;
    stop) stop ;;
    destroy) stop; rm -rf "$BASE" ;;
    *) echo "usage: $0 start|url|status|stop|destroy [DB]" >&2; exit 2 ;;
esac
