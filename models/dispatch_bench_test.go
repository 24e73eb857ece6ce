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
