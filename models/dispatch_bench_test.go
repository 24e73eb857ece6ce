package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// seedOnlineAgents creates n approved agents, online now, with a skill and
// two languages each.
func seedOnlineAgents(b *testing.B, db *modeltest.DB, n int) {
	b.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		_, err := db.Store.ApplyAsAgent(ctx, models.AgentApplication{DisplayName: fmt.Sprintf("Agent %d", i),
			Email: fmt.Sprintf("agent%04d@bench.test", i), Password: testPassword, Languages: []string{"en", "de"},
			Skills: map[string]int{"billing": 1 + i%5}, Bio: "Bench.", MaxConcurrent: 2})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Store.DB.Exec("UPDATE agents SET status = 'approved', presence = 'online', last_seen_at = ?", db.Clock.Now()).Error; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOnlineAgentStates is what every offer pass reads: 1,000 agents
// online (go test ./models -bench OnlineAgent -run '^$').
func BenchmarkOnlineAgentStates(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		db := open(b)
		seedOnlineAgents(b, db, 1000)
		b.Run(db.Name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				got, err := db.Store.OnlineAgentStates(ctx, 30*time.Second)
				if err != nil || len(got) != 1000 {
					b.Fatalf("OnlineAgentStates = %d agents, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkAgentStates is what an offer pass reads when some agents
// changed since the last: 10 of 1,000 agents online (go test ./models
// -bench AgentStates -run '^$').
func BenchmarkAgentStates(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		db := open(b)
		seedOnlineAgents(b, db, 1000)
		var ids []string
		if err := db.Store.DB.Raw("SELECT id FROM agents ORDER BY id").Scan(&ids).Error; err != nil {
			b.Fatal(err)
		}
		some := make([]string, 0, 10)
		for i := 0; i < len(ids); i += 100 {
			some = append(some, ids[i])
		}
		b.Run(db.Name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				got, err := db.Store.AgentStates(ctx, 30*time.Second, some)
				if err != nil || len(got) != len(some) {
					b.Fatalf("AgentStates = %d agents, %v; want %d", len(got), err, len(some))
				}
			}
		})
	}
}
