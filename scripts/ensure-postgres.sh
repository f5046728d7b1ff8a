#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1 for the tests, with trust
# authentication for user postgres over local TCP. Idempotent: does nothing when
# one already answers. Otherwise installs Debian's postgresql when missing
# (apt-get, as root or with passwordless sudo), creates and starts a cluster,
# and adds one pg_hba.conf line. Never fails the build: when no PostgreSQL can
# be had it says so loudly, and the PostgreSQL tests skip with that reason.
set -u
PORT="${CLEARPOS_PG_PORT:-5432}"

say() { echo "ensure-postgres: $*" >&2; }

answers() {
    if command -v psql >/dev/null 2>&1; then
        psql -w -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
    fi
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

giving_up() {
    say "*** no PostgreSQL for the tests: $* — the PostgreSQL tests will be SKIPPED ***"
    exit 0
}

if answers; then
    exit 0
fi

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || giving_up "PostgreSQL is not installed and there is no apt-get"
    say "installing postgresql from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        || giving_up "apt-get update failed (not root?)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
        || giving_up "apt-get install postgresql failed"
fi

# the first cluster of the newest version, created when there is none
read -r VER NAME CPORT < <(pg_lsclusters -h 2>/dev/null | sort -k1,1nr | awk '{print $1, $2, $3; exit}')
if [ -z "${VER:-}" ]; then
    VER="$(ls /usr/lib/postgresql 2>/dev/null | sort -nr | head -1)"
    [ -n "$VER" ] || giving_up "no PostgreSQL version under /usr/lib/postgresql"
    NAME=main
    say "creating cluster $VER/$NAME on port $PORT"
    as_root pg_createcluster "$VER" "$NAME" -p "$PORT" >/dev/null || giving_up "pg_createcluster failed"
    CPORT="$PORT"
fi
[ "$CPORT" = "$PORT" ] || say "cluster $VER/$NAME listens on port $CPORT, not $PORT: set CLEARPOS_TEST_PG=postgresql://postgres@127.0.0.1:$CPORT/postgres"

HBA="/etc/postgresql/$VER/$NAME/pg_hba.conf"
if [ -f "$HBA" ] && ! grep -Eq '^host[[:space:]]+all[[:space:]]+(postgres|all)[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$HBA"; then
    say "allowing user postgres from 127.0.0.1 without a password (trust) in $HBA"
    as_root sed -i '0,/^[[:space:]]*[^#[:space:]]/s//host all postgres 127.0.0.1\/32 trust\n&/' "$HBA" \
        || giving_up "cannot edit $HBA"
fi

say "starting cluster $VER/$NAME"
as_root pg_ctlcluster "$VER" "$NAME" start 2>/dev/null || as_root pg_ctlcluster "$VER" "$NAME" reload 2>/dev/null || true
for _ in $(seq 1 60); do
    if PORT="$CPORT" answers; then
        say "PostgreSQL $VER answers on 127.0.0.1:$CPORT"
        exit 0
    fi
    sleep 0.5
done
giving_up "cluster $VER/$NAME did not answer on 127.0.0.1:$CPORT"
