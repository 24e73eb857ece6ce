#!/usr/bin/env bash
# Statements per run, from pg_stat_statements: reset, one docs/perf/run.sh
# (same environment), then every statement's calls into $DIR/statements.NAME.
# Compare two files (say a run at 50/s and one at 1/s, or one instance and
# two) to count the statements per escalation. Needs the extension loaded
# (shared_preload_libraries = 'pg_stat_statements', a restart, and CREATE
# EXTENSION pg_stat_statements in the database; remove it afterwards).
#
#   RATE=50 FRESH=0 docs/perf/statements.sh r50
set -u
name=${1:?usage: statements.sh NAME}
DIR=${DIR:-/tmp/handoff-perf} DBNAME=${DBNAME:-handoff_perf}
psql -qAt -h 127.0.0.1 -U postgres "$DBNAME" -c 'SELECT pg_stat_statements_reset()' >/dev/null || exit 1
"$(dirname "$0")/run.sh" | head -2
psql -qAt -F'|' -h 127.0.0.1 -U postgres "$DBNAME" -c "SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 120)
	FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC" >"$DIR/statements.$name"
echo "statements: $DIR/statements.$name"
