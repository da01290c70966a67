#!/usr/bin/env bash
# Run a command against a throw-away Postgres server listening on 127.0.0.1 only.
#
#   bash .ci/with-postgres.sh .venv/bin/python -m pytest -m postgres tests/memory
#
# Starts Debian's postgresql (installed with apt-get when initdb/pg_ctl are missing) in a fresh temporary data
# folder owned by the `postgres` user, exports REGIONREASONER_TEST_POSTGRES_URL, runs the command, and always
# stops the server and removes the folder.  Exits with the command's status.  PGPORT (default 54329) picks the
# port.  Postgres refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

PORT="${PGPORT:-54329}"

find_bin() {
    local name=$1 dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/$name" ]]; then
            echo "$dir/$name"
            return 0
        fi
    done
    command -v "$name" 2>/dev/null || return 1
}

if ! find_bin initdb >/dev/null || ! find_bin pg_ctl >/dev/null; then
    echo "with-postgres: installing Debian's postgresql (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)
PG_ISREADY=$(find_bin pg_isready || true)

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

TMP=$(mktemp -d -t rr-postgres.XXXXXX)
chmod 755 "$TMP"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$TMP"
fi
DATA="$TMP/data"
LOG="$TMP/server.log"
STARTED=0

cleanup() {
    local status=$?
    if [[ $STARTED -eq 1 ]]; then
        as_pg "$PG_CTL" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || {
            echo "with-postgres: pg_ctl stop failed; killing the server" >&2
            if [[ -f "$DATA/postmaster.pid" ]]; then
                kill -TERM "$(head -n1 "$DATA/postmaster.pid")" 2>/dev/null || true
            fi
        }
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$INITDB" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$TMP/initdb.log" 2>&1 || {
    cat "$TMP/initdb.log" >&2
    exit 1
}
# Listen on 127.0.0.1 only; the unix socket goes into the temp folder, not /var/run/postgresql.
as_pg "$PG_CTL" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k $TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start \
    >/dev/null || {
    echo "with-postgres: the server did not start; its log:" >&2
    cat "$LOG" >&2 || true
    exit 1
}
STARTED=1
if [[ -n "$PG_ISREADY" ]]; then
    for _ in $(seq 1 60); do
        "$PG_ISREADY" -q -h 127.0.0.1 -p "$PORT" && break
        sleep 0.5
    done
fi

export REGIONREASONER_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/postgres"
echo "with-postgres: Postgres on 127.0.0.1:${PORT} (REGIONREASONER_TEST_POSTGRES_URL=$REGIONREASONER_TEST_POSTGRES_URL)" >&2

set +e
"$@"
STATUS=$?
set -e
exit "$STATUS"
