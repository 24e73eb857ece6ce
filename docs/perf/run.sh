#!/usr/bin/env bash
# One measured run of `handoff simulate` against local `handoff serve`
# instances on this machine, as the README's Performance section reports it:
# the simulator's JSON summary, then each process's CPU over 10 s from the
# 8th second of escalating (after the agents' sign-in, which is bcrypt).
#
#   make build && docs/perf/run.sh                 # 200/s, 1,000 agents, 30 s
#   RATE=50 FRESH=0 docs/perf/run.sh               # on the database of the last run
#   TWO=1 RATE=100 FRESH=0 docs/perf/run.sh        # two instances
#   SQLITE=1 RATE=50 docs/perf/run.sh              # the embedded database
#   EXTRA="--idle 10000" DUR=20s docs/perf/run.sh  # 10,000 idle sockets
#
# Environment: RATE AGENTS HANDLE DUR EXTRA (more simulate flags), FRESH (1:
# a new database), DBNAME, BIN, TWO, SQLITE, SQLITEQ (options for the SQLite
# URL, e.g. _pragma=mmap_size(268435456)), PGSOCK (1: PostgreSQL over its
# Unix socket in /var/run/postgresql instead of TCP), PROF (1: the server's CPU
# profile in $DIR/server.prof; the second instance's in server-18601.prof),
# SRVENV/SIMENV (environment for the server or the simulator, e.g.
# GOMAXPROCS=1), DIR (logs; default /tmp/handoff-perf).
# PostgreSQL at 127.0.0.1:5432 as user postgres (trust). Runs never overlap
# (a lock); a fresh database on a PostgreSQL without autovacuum is slow
# until ANALYZE (README), so measure with FRESH=0 after a warm-up run.
set -u
RATE=${RATE:-200} AGENTS=${AGENTS:-1000} HANDLE=${HANDLE:-2} DUR=${DUR:-30s}
EXTRA=${EXTRA:-} FRESH=${FRESH:-1} DBNAME=${DBNAME:-handoff_perf}
BIN=$(realpath "${BIN:-bin/handoff}") TWO=${TWO:-} SQLITE=${SQLITE:-} PROF=${PROF:-}
DIR=${DIR:-/tmp/handoff-perf}
mkdir -p "$DIR" && cd "$DIR" || exit 1
exec 9>"$DIR/lock"
flock 9
pkill -f "$BIN serve" 2>/dev/null && sleep 0.5
pg=(-h 127.0.0.1 -U postgres)
if [ -n "$SQLITE" ]; then
	[ "$FRESH" = 1 ] && rm -f "$DIR"/perf.db*
	export HANDOFF_DATABASE_URL="sqlite://$DIR/perf.db${SQLITEQ:+?$SQLITEQ}"
else
	if [ "$FRESH" = 1 ]; then
		dropdb "${pg[@]}" --if-exists "$DBNAME" 2>/dev/null && createdb "${pg[@]}" "$DBNAME" || exit 1
	fi
	# PGSOCK=1: the server reaches PostgreSQL over its Unix socket, not TCP.
	url="postgres://postgres@127.0.0.1:5432/$DBNAME?sslmode=disable"
	[ -n "${PGSOCK:-}" ] && url="postgres://postgres@/$DBNAME?host=/var/run/postgresql"
	export HANDOFF_DATABASE_URL="$url"
fi
export HANDOFF_API_RATE=100000/1s HANDOFF_LOGIN_RATE=account=1000/1m,ip=100000/1m
servers=() urls=()
for port in 18600 ${TWO:+18601}; do
	demo=--demo
	[ "$port" != 18600 ] && demo=
	env ${SRVENV:-} "$BIN" serve $demo --addr 127.0.0.1:$port --base-url http://127.0.0.1:$port >serve-$port.log 2>&1 &
	servers+=($!) urls+=(--url http://127.0.0.1:$port)
	for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.2; done
done
[ -z "$SQLITE" ] && psql -q "${pg[@]}" "$DBNAME" -c 'VACUUM ANALYZE'
key=$("$BIN" apikey create --brand acme) || exit 1
q() { # one number from the run's database
	if [ -n "$SQLITE" ]; then sqlite3 "$DIR/perf.db" "$1"; else psql -qtAX "${pg[@]}" "$DBNAME" -c "$1"; fi
}
stored0=$(q "SELECT COUNT(*) FROM conversations")
rm -f sim.err
env ${SIMENV:-} "$BIN" simulate "${urls[@]}" --api-key "$key" --agents "$AGENTS" --rate "$RATE" \
	--duration "$DUR" --handle-time "$HANDLE" $EXTRA >sim.out 2>sim.err &
sim=$!

ticks() { # user+system CPU of the given processes, in 1/100 s
	local t=0 p
	for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done
	echo $t
}
held() { # seconds the SQLite write turn was held (first instance)
	curl -s http://127.0.0.1:18600/metrics | awk '/^handoff_sqlite_write_held_seconds_total/{s+=$2} END{print s+0}'
}
machine() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
cpu=
if [[ "$EXTRA" != *--idle* ]]; then
	(
		for _ in $(seq 3000); do grep -q ' 8s ' sim.err 2>/dev/null && break; sleep 0.1; done
		s1=$(ticks "${servers[@]}") p1=$(ticks $(pgrep -f 'postgres:')) c1=$(ticks $sim)
		read -r all1 idle1 <<<"$(machine)"
		h1=$(held)
		if [ -n "$PROF" ]; then
			[ -n "$TWO" ] && curl -s -o server-18601.prof "http://127.0.0.1:18601/debug/pprof/profile?seconds=10" &
			curl -s -o server.prof "http://127.0.0.1:18600/debug/pprof/profile?seconds=10"
			wait
		else
			sleep 10
		fi
		s2=$(ticks "${servers[@]}") p2=$(ticks $(pgrep -f 'postgres:')) c2=$(ticks $sim)
		read -r all2 idle2 <<<"$(machine)"
		h2=$(held)
		simcpu=$(((c2 - c1) / 10))
		[ "$c2" -lt "$c1" ] && simcpu="n/a (it ended within the 10 s)"
		echo "cpu (% of one core over 10 s): server $(((s2 - s1) / 10)) postgres $(((p2 - p1) / 10))" \
			"simulator $simcpu; machine $((100 * ((all2 - all1) - (idle2 - idle1)) / (all2 - all1)))% busy" \
			${SQLITE:+"; SQLite's write turn held $(awk -v a="$h1" -v b="$h2" 'BEGIN{printf "%d", (b - a) * 10}')% of the time"}
	) >cpu.txt &
	cpu=$!
fi
wait $sim
[ -n "$cpu" ] && wait $cpu
curl -s http://127.0.0.1:18600/metrics >metrics.txt
tail -1 sim.out
[ -n "$cpu" ] && cat cpu.txt
[ -n "$SQLITE" ] && awk '/^handoff_sqlite_write_transactions_total/{t=$2} /^handoff_sqlite_write_groups_total/{g=$2}
	END{if (g > 0) printf "SQLite write transactions %d in %d commits (%.2f a commit, since the server started)\n", t, g, t/g}' metrics.txt
awk '/^handoff_escalations_shed_total/{if ($2 > 0) printf "escalations shed (503, database work queueing): %d\n", $2}' metrics.txt
grep -i error sim.err | grep -v ' errors [0-9]* ' | tail -3 # the errors the simulator tallied
kill "${servers[@]}" 2>/dev/null
wait 2>/dev/null
# The run's invariants, by query (as the crash test checks them): every
# escalation answered 201 is stored, none was ever assigned twice, no chat
# message was stored twice (the last two over the whole database).
stored=$(($(q "SELECT COUNT(*) FROM conversations") - stored0))
twice=$(q "SELECT COUNT(*) FROM (SELECT conversation_id FROM offers WHERE status = 'accepted'
	GROUP BY conversation_id HAVING COUNT(*) > 1) AS x")
dup=$(q "SELECT COUNT(*) FROM (SELECT conversation_id, sender, client_id FROM messages WHERE client_id IS NOT NULL
	GROUP BY conversation_id, sender, client_id HAVING COUNT(*) > 1) AS x")
# (an --idle run's escalations are its idle customers')
answered=$(tail -1 sim.out | sed -n 's/.*"\(escalations\|idle_sockets\)":\([0-9]*\).*/\2/p')
echo "invariants: ${answered:-?} escalations answered 201, $stored stored; assigned twice: $twice; messages stored twice: $dup"
