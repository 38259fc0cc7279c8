#!/bin/sh
# The hot-standby replica of deploy/compose.yaml. On its first start (an empty data directory) it clones
# the primary with pg_basebackup (-R writes standby.signal and primary_conninfo, -S streams from the slot
# the primary created); then the postgres image's own entrypoint runs the server, a read-only hot standby.
set -eu
: "${PRIMARY_HOST:?the primary's host name}" "${REPLICATION_PASSWORD:?the replicator role's password}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    until pg_isready -q -h "$PRIMARY_HOST" -p 5432; do
        echo "replica: waiting for the primary $PRIMARY_HOST" >&2
        sleep 2
    done
    gosu postgres env PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup --pgdata="$PGDATA" \
        --host="$PRIMARY_HOST" --username=replicator --wal-method=stream --write-recovery-conf \
        --slot="${REPLICATION_SLOT:-replica1}" --checkpoint=fast --progress
fi
exec docker-entrypoint.sh "$@"
