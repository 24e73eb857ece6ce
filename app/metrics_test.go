package app

import (
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
