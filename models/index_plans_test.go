package models_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestPartialIndexesServeTheirQueries checks that each statement that
// migration 0008's partial indexes are for can use them: on PostgreSQL as a
// prepared statement's generic plan (the plan a connection keeps after five
// runs, made without the parameters' values), with sequential scans
// discouraged so the planner takes any index it may; on SQLite through
// EXPLAIN QUERY PLAN. A predicate the statement does not imply (a bound
// status against WHERE status = 'pending') leaves only a full scan of the
// table, and the test fails.
func TestPartialIndexesServeTheirQueries(t *testing.T) {
	cases := []struct {
		name, sql, table string
		args             int
		indexes          []string // any of these will do
	}{
		{"due offers", models.DueOffersSQL, "offers", 1, []string{"offers_expiry_idx"}},
		{"lapsed offers", models.LapsedOffersSQL, "offers", 2, []string{"offers_expiry_idx", "offers_pending_agent_key", "offers_pending_conversation_key"}},
		{"recent times", models.RecentTimesSQL, "conversations", 2, []string{"conversations_brand_resolved_idx"}},
		{"agent's chat count", models.ActiveChatsSQL, "conversations", 1, []string{"conversations_agent_idx"}},
		// The form gorm writes for ActiveChats and the requeue of an agent's chats.
		{"agent's chats", "SELECT * FROM conversations WHERE agent_id = ? AND status = ?", "conversations", 2, []string{"conversations_agent_idx"}},
	}
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		for i, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				plan := explain(t, db, i, c.sql, c.args)
				t.Logf("%s:\n%s", c.name, plan)
				used := false
				for _, ix := range c.indexes {
					used = used || strings.Contains(plan, ix)
				}
				if !used || fullScan(plan, c.table) {
					t.Errorf("%s: want a scan of %s through one of %v, got plan:\n%s", c.name, c.table, c.indexes, plan)
				}
			})
		}
	})

	// The check must be able to fail: a bound status does not imply the
	// expiry index's predicate, so a generic plan cannot use it.
	t.Run("ErrBoundStatus", func(t *testing.T) {
		db := modeltest.Postgres(t)
		plan := explain(t, db, 99, "SELECT * FROM offers WHERE status = ? AND expires_at <= ? ORDER BY expires_at LIMIT 500", 2)
		if strings.Contains(plan, "offers_expiry_idx") {
			t.Errorf("a bound status used the partial index:\n%s", plan)
		}
	})
}

// explain returns the plan of a statement with n ? parameters.
func explain(t *testing.T, db *modeltest.DB, i int, query string, n int) string {
	t.Helper()
	ctx := context.Background()
	sqlDB, err := db.Store.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var lines []string
	if !modeltest.IsPostgres(db.URL) {
		rows, err := conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, make([]any, n)...)
		if err != nil {
			t.Fatalf("explain %q: %v", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	numbered := query
	for k := 1; strings.Contains(numbered, "?"); k++ {
		numbered = strings.Replace(numbered, "?", fmt.Sprintf("$%d", k), 1)
	}
	name := fmt.Sprintf("plan_test_%d", i)
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ")
	for _, stmt := range []string{
		"SET plan_cache_mode = force_generic_plan",
		"SET enable_seqscan = off",
		"PREPARE " + name + " AS " + numbered,
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	defer conn.ExecContext(ctx, "DEALLOCATE "+name)
	defer conn.ExecContext(ctx, "RESET ALL")
	rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE "+name+"("+nulls+")")
	if err != nil {
		t.Fatalf("explain %q: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// fullScan reports whether a plan reads the whole table: PostgreSQL's
// "Seq Scan on t", SQLite's "SCAN t" without an index.
func fullScan(plan, table string) bool {
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "Seq Scan on "+table) {
			return true
		}
		line = strings.TrimSpace(line)
		if (line == "SCAN "+table || strings.HasPrefix(line, "SCAN "+table+" ")) && !strings.Contains(line, "INDEX") {
			return true
		}
	}
	return false
}
