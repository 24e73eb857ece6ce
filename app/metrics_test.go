package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

// TestSQLiteWriteMetrics: on SQLite /metrics shows how busy the one writer
// is (turns, held and waited seconds) and the kept statements; PostgreSQL
// has no such gate.
func TestSQLiteWriteMetrics(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, body := ts.client().get("/metrics")
		for _, name := range []string{
			`handoff_sqlite_write_turns_total{db="main"}`, `handoff_sqlite_write_held_seconds_total{db="main"}`,
			`handoff_sqlite_write_waited_seconds_total{db="main"}`, `handoff_sqlite_statements_compiled_total{db="main"}`,
			`handoff_sqlite_statements_kept{db="main"}`, `handoff_sqlite_write_transactions_total{db="main"}`,
			`handoff_sqlite_write_groups_total{db="main"}`, `handoff_sqlite_write_backlog_seconds{db="main"}`,
		} {
			if got, want := strings.Contains(body, name+" "), db.Name == "sqlite"; got != want {
				t.Errorf("/metrics on %s shows %s = %v; want %v", db.Name, name, got, want)
			}
		}
		if db.Name == "sqlite" && strings.Contains(body, `handoff_sqlite_write_turns_total{db="main"} 0`+"\n") {
			t.Error("no write turn counted after the server migrated and seeded its database")
		}
		if db.Name == "sqlite" && (strings.Contains(body, `handoff_sqlite_write_transactions_total{db="main"} 0`+"\n") ||
			strings.Contains(body, `handoff_sqlite_write_groups_total{db="main"} 0`+"\n")) {
			t.Error("no write transaction or group counted after the server migrated and seeded its database")
		}
	})
}

// TestPoolMetrics: /metrics shows each store's connection pool (on
// PostgreSQL pgxpool's, not database/sql's, which keeps no connection
// there) under Prometheus' go_sql_* names: its size and a connection in
// use or idle after the server's own queries.
func TestPoolMetrics(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, body := ts.client().get("/metrics")
		size := fmt.Sprintf(`go_sql_max_open_connections{db_name="main"} %d`+"\n", db.Store.PoolStats().MaxOpenConnections)
		if !strings.Contains(body, size) {
			t.Errorf("/metrics on %s lacks %q", db.Name, size)
		}
		if strings.Contains(body, `go_sql_open_connections{db_name="main"} 0`+"\n") {
			t.Errorf("/metrics on %s shows no connection open after the server's queries", db.Name)
		}
		for _, name := range []string{`go_sql_wait_count_total{db_name="main"}`, `go_sql_wait_duration_seconds_total{db_name="main"}`,
			`go_sql_in_use_connections{db_name="main"}`, `go_sql_idle_connections{db_name="main"}`} {
			if !strings.Contains(body, name+" ") {
				t.Errorf("/metrics on %s lacks %s", db.Name, name)
			}
		}
	})
}
