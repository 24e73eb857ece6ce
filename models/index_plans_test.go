package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestPlaceCountWalksTheWaitingIndex checks the place-in-line count's
// plan (waitingAheadSQL): both of its ranges go through the index on
// waiting conversations, the same priority's backwards from the
// conversation's own entry. Through another index (the planner chose the
// one by age when the count was one range with an OR) the count reads the
// table for every entry it passes, and the entries it passes first are
// the conversations that have just left the line.
func TestPlaceCountWalksTheWaitingIndex(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		plan := explain(t, db, 50, models.PlaceCountSQL, 6)
		t.Logf("place count:\n%s", plan)
		if n := strings.Count(plan, "conversations_waiting_idx"); n != 2 || fullScan(plan, "w") {
			t.Errorf("want both ranges through conversations_waiting_idx (%d), no other scan; got plan:\n%s", n, plan)
		}
		backwards := "Backward using conversations_waiting_idx"
		if !modeltest.IsPostgres(db.URL) {
			// SQLite's plan does not say which way it walks: it says the
			// range, and the order needs no sort step.
			backwards = "(brand_id=? AND priority=? AND (queued_at,id)<(?,?))"
			if strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("the count sorts instead of walking the index:\n%s", plan)
			}
		}
		if !strings.Contains(plan, backwards) {
			t.Errorf("want %q in the plan:\n%s", backwards, plan)
		}
	})
}

// testConn is one connection of db's pool, closed at the test's end.
func testConn(t *testing.T, db *modeltest.DB) *sql.Conn {
	t.Helper()
	sqlDB, err := db.Store.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// explain returns the plan of a statement with n ? parameters.
func explain(t *testing.T, db *modeltest.DB, i int, query string, n int) string {
	t.Helper()
	ctx := context.Background()
	conn := testConn(t, db)
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

// TestPlansHoldWithAQueue runs the read of the online agents' states and
// the offer batch's requeue, as prepared statements' generic plans (the
// requeue rolled back), under statistics that mislead: gathered while
// every agent was offline and nothing was open, then run with every agent
// online, half of them holding a pending offer and the other half a chat,
// and conversations queued. Each pending offer and each open conversation
// must be read a bounded number of times, not once per agent or per
// conversation: the agents' read this replaced ran as nested loops here,
// its cost growing with agents × queue (529 ms a read at 1,000 agents in
// an overloaded run).
func TestPlansHoldWithAQueue(t *testing.T) {
	db := modeltest.Postgres(t)
	ctx := context.Background()
	f := newLiveFixture(t, db)
	for _, q := range []string{"UPDATE agents SET presence = 'offline'", "ANALYZE"} {
		if err := db.Store.DB.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	seedOnlineAgents(t, db, 100)
	convs := seedQueue(t, db, f.brand.ID, 300, 50)
	now := db.Clock.Now()
	states, err := db.Store.OnlineAgentStates(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	busy, offered := 0, 0
	for _, a := range states {
		busy += a.Active
		if a.PendingOffer {
			offered++
		}
	}
	if len(states) < 100 || busy != 50 || offered != 50 {
		t.Fatalf("%d agents online, %d chats, %d pending offers; want at least 100, 50 and 50", len(states), busy, offered)
	}

	conn := testConn(t, db)
	if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	since := "'" + now.Add(-time.Minute).Format(time.RFC3339Nano) + "'"
	batch := "'{" // the offered conversations, as a batch of offers that met other offers would name them
	for i, c := range convs[50:100] {
		if i > 0 {
			batch += ","
		}
		batch += c.ID
	}
	batch += "}'"
	for _, s := range []struct{ name, prepare, execute string }{
		{"states", "states(timestamptz) AS " + strings.Replace(models.AgentStatesSQL(models.Postgres, false), "?", "$1", 1), "states(" + since + ")"},
		{"requeue", "requeue(text[], timestamptz) AS " + models.CreateOffersRequeueSQL, "requeue(" + batch + ", " + since + ")"},
	} {
		t.Run(s.name, func(t *testing.T) {
			noReadPerRow(t, conn, s.prepare, s.execute)
		})
	}
}

// noReadPerRow prepares a statement on conn, runs it once through EXPLAIN
// ANALYZE in a transaction rolled back, and fails if its plan reads offers,
// or conversations other than through the (agent_id, status) index, once
// per row of another table (loops above 1).
func noReadPerRow(t *testing.T, conn *sql.Conn, prepare, execute string) {
	t.Helper()
	ctx := context.Background()
	for _, stmt := range []string{"BEGIN", "PREPARE " + prepare} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	rows, err := conn.QueryContext(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE "+execute)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", strings.Join(plan, "\n"))
	for i, line := range plan {
		// A node reading offers or the open conversations once per agent
		// says loops=<agents>; only the per-agent count of chats through
		// the (agent_id, status) index may run per agent.
		perAgent := strings.Contains(line, "loops=") && !strings.Contains(line, "loops=1)")
		if !perAgent {
			continue
		}
		node := line
		for j := i; j < len(plan) && !strings.Contains(plan[j], " on "); j++ {
			node = plan[j]
		}
		if strings.Contains(node, " on offers") || (strings.Contains(node, " on conversations") && !strings.Contains(node, "conversations_agent_idx")) {
			t.Fatalf("the plan reads %q once per row of another table:\n%s", strings.TrimSpace(node), strings.Join(plan, "\n"))
		}
	}
}
