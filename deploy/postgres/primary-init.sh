#!/bin/sh
# The PostgreSQL primary of deploy/compose.yaml: run once by the postgres image when it creates its data
# directory (/docker-entrypoint-initdb.d). A role for streaming replication, its pg_hba line, and the
# physical replication slot the replica streams from (the primary keeps the WAL the replica has not got yet,
# up to max_slot_wal_keep_size).
set -eu
psql -v ON_ERROR_STOP=1 -v password="$REPLICATION_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('replica1');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
