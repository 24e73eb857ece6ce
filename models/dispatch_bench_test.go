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
func seedOnlineAgents(b testing.TB, db *modeltest.DB, n int) {
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

// seedQueue adds n conversations of the brand: the first busy in
// progress, one each for every other agent in id order from the first, the
// next busy offered, with a pending offer each for every other agent from
// the second, the rest queued. It returns them.
func seedQueue(tb testing.TB, db *modeltest.DB, brandID string, n, busy int) []models.Conversation {
	tb.Helper()
	var agents []string
	if err := db.Store.DB.Raw("SELECT id FROM agents ORDER BY id").Scan(&agents).Error; err != nil {
		tb.Fatal(err)
	}
	if len(agents) < 2*busy {
		tb.Fatalf("%d agents for %d busy with chats and %d with offers", len(agents), busy, busy)
	}
	now := db.Clock.Now()
	var convs []models.Conversation
	var offers []models.Offer
	for i := range n {
		c := models.Conversation{ID: models.NewID(), BrandID: brandID, ExternalID: fmt.Sprintf("queue-%d", i),
			Status: models.ConvQueued, Language: "en", Priority: 5, QueuedAt: now, CreatedAt: now, UpdatedAt: now}
		switch {
		case i < busy:
			c.Status, c.AgentID, c.AssignedAt = models.ConvActive, &agents[2*i], &now
		case i < 2*busy:
			c.Status = models.ConvOffered
			offers = append(offers, models.Offer{ID: models.NewID(), ConversationID: c.ID, AgentID: agents[2*(i-busy)+1],
				Status: models.OfferPending, Currency: "USD", Explanation: "{}", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		}
		convs = append(convs, c)
	}
	if err := db.Store.DB.CreateInBatches(convs, 200).Error; err != nil {
		tb.Fatal(err)
	}
	if err := db.Store.DB.CreateInBatches(offers, 200).Error; err != nil {
		tb.Fatal(err)
	}
	return convs
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

// BenchmarkOnlineAgentStatesBacklog is BenchmarkOnlineAgentStates with a
// long queue: 3,500 conversations queued, 500 offered (a pending offer for
// each of half the agents) and 500 in progress (one each for the other
// half), as when escalations come faster than they are offered (go test ./models -bench OnlineAgentStatesBacklog -run '^$').
// The read must cost about what it costs with the queue empty: it runs
// every second, and when it grew with the queue it was what made an
// overloaded PostgreSQL fall further behind.
func BenchmarkOnlineAgentStatesBacklog(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		db := open(b)
		f := newLiveFixture(b, db)
		seedOnlineAgents(b, db, 1000)
		seedQueue(b, db, f.brand.ID, 4500, 500)
		// Statistics gathered while the agents were offline, as a quiet
		// night leaves them: the planner expects almost nobody online.
		for _, q := range []string{"UPDATE agents SET presence = 'offline'", "ANALYZE", "UPDATE agents SET presence = 'online'"} {
			if err := db.Store.DB.Exec(q).Error; err != nil {
				b.Fatal(err)
			}
		}
		b.Run(db.Name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				got, err := db.Store.OnlineAgentStates(ctx, 30*time.Second)
				busy := 0
				for _, a := range got {
					busy += a.Active
				}
				if err != nil || len(got) != 1001 || busy != 500 {
					b.Fatalf("OnlineAgentStates = %d agents with %d chats, %v; want 1,001 with 500", len(got), busy, err)
				}
			}
		})
	}
}

// BenchmarkOfferPath is the dispatcher's batch of offers (10 agents, 10
// conversations) and one agent's accept with the chat's messages, on each database
// (go test ./models -bench OfferPath -run '^$'). Resetting between rounds
// (declines; a new offer and the resolve around each accept) is not timed.
func BenchmarkOfferPath(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		db := open(b)
		ctx := context.Background()
		f := newLiveFixture(b, db)
		op := mustOperator(b, db)
		const n = 10
		batch := make([]models.NewOffer, n)
		for i := range batch {
			a := mustOnlineAgent(b, db, op, fmt.Sprintf("bench%d@agents.test", i), 3)
			batch[i] = f.offerTo(f.escalate(b, fmt.Sprintf("batch-%d", i)), a)
		}
		b.Run(db.Name+"/CreateOffers10", func(b *testing.B) {
			for b.Loop() {
				made, err := db.Store.CreateOffers(ctx, batch)
				if err != nil || len(made) != n {
					b.Fatalf("CreateOffers = %d offers, %v; want %d", len(made), err, n)
				}
				b.StopTimer()
				for _, o := range made {
					if _, err := db.Store.DeclineOffer(ctx, o.AgentID, o.ID, "bench"); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
		})
		// An accept as the agent's console makes it: the accept, then the
		// chat's messages, in two calls (as before AcceptOfferChat) or one.
		for _, chat := range []bool{false, true} {
			name := map[bool]string{false: "/AcceptOfferThenMessages", true: "/AcceptOfferChat"}[chat]
			b.Run(db.Name+name, func(b *testing.B) {
				i := 0
				for b.Loop() {
					b.StopTimer()
					i++
					c := f.escalate(b, fmt.Sprintf("accept-%v-%d", chat, i))
					o := f.offer(b, c)
					b.StartTimer()
					var msgs []models.Message
					var err error
					if chat {
						_, _, msgs, err = db.Store.AcceptOfferChat(ctx, f.agent.ID, o.ID)
					} else if _, _, err = db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err == nil {
						msgs, err = db.Store.Messages(ctx, c.ID, 0, 0)
					}
					if err != nil || len(msgs) == 0 {
						b.Fatalf("accept = %d messages, %v; want the transcript", len(msgs), err)
					}
					b.StopTimer()
					if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, ""); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
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

// BenchmarkSweepBacklog is what the sweep reads every second with a
// backlog of 10,000 conversations queued and none of them overdue yet: the
// overdue check, and the queue for the customers' places, beside the whole
// rows it read before (go test ./models -bench SweepBacklog -run '^$').
func BenchmarkSweepBacklog(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		db := open(b)
		f := newLiveFixture(b, db)
		for i := 0; i < 10000; i++ {
			f.escalate(b, fmt.Sprintf("backlog-%05d", i))
		}
		ctx := context.Background()
		b.Run(db.Name+"/AbandonOverdue", func(b *testing.B) {
			for b.Loop() {
				done, _, err := db.Store.AbandonOverdue(ctx)
				if err != nil || len(done) != 0 {
					b.Fatalf("AbandonOverdue = %d abandoned, %v; want none", len(done), err)
				}
			}
		})
		b.Run(db.Name+"/WaitingQueue", func(b *testing.B) {
			for b.Loop() {
				if got, err := db.Store.WaitingQueue(ctx); err != nil || len(got) != 10000 {
					b.Fatalf("WaitingQueue = %d, %v; want 10,000", len(got), err)
				}
			}
		})
		b.Run(db.Name+"/WaitingConversations", func(b *testing.B) {
			for b.Loop() {
				if got, err := db.Store.WaitingConversations(ctx, ""); err != nil || len(got) != 10000 {
					b.Fatalf("WaitingConversations = %d, %v; want 10,000", len(got), err)
				}
			}
		})
	}
}

// BenchmarkPlaceBehindALine is a customer's hello (ConversationPlaced) for
// the last of a brand's waiting conversations, behind lines of 10 and
// 5,000 (go test ./models -bench PlaceBehind -run '^$'). The count stops at
// PlaceCountLimit ahead, so a long line costs what a line of that length
// does.
func BenchmarkPlaceBehindALine(b *testing.B) {
	for _, open := range []func(testing.TB) *modeltest.DB{modeltest.SQLite, modeltest.Postgres} {
		for _, n := range []int{10, 5000} {
			db := open(b)
			f := newLiveFixture(b, db)
			line := seedQueue(b, db, f.brand.ID, n, 0)
			if err := db.Store.DB.Exec("ANALYZE").Error; err != nil {
				b.Fatal(err)
			}
			var last string
			for _, c := range line {
				last = max(last, c.ID) // equal times: the last by id
			}
			want := min(n, models.PlaceCountLimit+1)
			b.Run(fmt.Sprintf("%s/%d", db.Name, n), func(b *testing.B) {
				for b.Loop() {
					_, place, err := db.Store.ConversationPlaced(context.Background(), last)
					if err != nil || place != want {
						b.Fatalf("place %d, %v; want %d", place, err, want)
					}
				}
			})
		}
	}
}
