package models_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm/logger"
)

// activeChat escalates a conversation and has the fixture's agent accept an
// offer for it paying pay + surge.
func (f *liveFixture) activeChat(t *testing.T, externalID string, pay, surge int64) *models.Conversation {
	t.Helper()
	ctx := context.Background()
	c := f.escalate(t, externalID)
	o, err := f.db.Store.CreateOffer(ctx, models.NewOffer{ConversationID: c.ID, AgentID: f.agent.ID,
		PayMinor: pay, SurgeMinor: surge, Currency: f.brand.Currency, Explanation: "{}", Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("CreateOffer(%s): %v", externalID, err)
	}
	if _, c, err = f.db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
		t.Fatalf("AcceptOffer(%s): %v", externalID, err)
	}
	return c
}

// resolveState is what a resolve changes.
type resolveState struct {
	conv     models.Conversation
	agent    models.Agent
	brand    models.Brand
	earnings int64
}

func (f *liveFixture) resolveState(t *testing.T, convID string) resolveState {
	t.Helper()
	ctx := context.Background()
	c, err := f.db.Store.ConversationByID(ctx, convID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.db.Store.Agent(ctx, f.agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.User, a.Languages, a.Skills = nil, nil, nil
	b, err := f.db.Store.Brand(ctx, f.brand.ID)
	if err != nil {
		t.Fatal(err)
	}
	return resolveState{*c, *a, *b, count(t, f.db, "earnings", "")}
}

// statementCounter counts the statements run through GORM.
type statementCounter struct {
	logger.Interface
	n atomic.Int64
}

func (c *statementCounter) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	c.n.Add(1)
}

// countStatements counts the statements the store runs through GORM until
// the test ends.
func countStatements(t *testing.T, db *modeltest.DB) *atomic.Int64 {
	t.Helper()
	c := &statementCounter{Interface: logger.Discard}
	prev := db.Store.DB.Logger
	db.Store.DB.Logger = c
	t.Cleanup(func() { db.Store.DB.Logger = prev })
	return &c.n
}

// Resolving records the earning from the accepted offer's pay and the
// newest fee in force (half-up), counts the chat for the agent and frees
// them, and fixes the brand's currency the first time. On PostgreSQL it is
// one statement.
func TestResolveConversation(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		// 1,250 bps in force since a minute before the resolves; 9,000 bps
		// only from tomorrow.
		now := db.Clock.Now().UTC()
		if err := st.DB.Exec("INSERT INTO platform_fees (id, basis_points, effective_at) VALUES (?, ?, ?), (?, ?, ?)",
			"newer", 1250, now.Add(time.Minute), "future", 9000, now.Add(24*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		if err := st.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 3); err != nil {
			t.Fatal(err)
		}
		halfUp := f.activeChat(t, "half-up", 1000, 260) // 1,260 at 12.5 %: 157.5 → 158
		down := f.activeChat(t, "down", 1259, 0)        // 157.375 → 157
		db.Clock.Advance(2 * time.Minute)
		statements := countStatements(t, db)
		for i, tc := range []struct {
			conv                 *models.Conversation
			base, surge, fee     int64
			note, wantNote       string
			moneyRecordedAt, now time.Time
		}{
			{halfUp, 1000, 260, 158, "  refunded twice  ", "refunded twice", now.Add(2 * time.Minute), now.Add(2 * time.Minute)},
			{down, 1259, 0, 157, "", "", now.Add(2 * time.Minute), now.Add(3 * time.Minute)},
		} {
			if i > 0 {
				db.Clock.Advance(time.Minute)
			}
			if got := models.Fee(tc.base+tc.surge, 1250); got != tc.fee {
				t.Fatalf("Fee(%d, 1250) = %d; want %d", tc.base+tc.surge, got, tc.fee)
			}
			before := f.resolveState(t, tc.conv.ID)
			n0 := statements.Load()
			c, e, err := st.ResolveConversation(ctx, f.agent.ID, tc.conv.ID, tc.note)
			if err != nil {
				t.Fatalf("ResolveConversation(%s): %v", tc.conv.ExternalID, err)
			}
			if n := statements.Load() - n0; st.Dialect == models.Postgres && n != 0 {
				t.Fatalf("resolve ran %d statements through GORM on PostgreSQL; want none (the one statement)", n)
			}
			after := f.resolveState(t, tc.conv.ID)
			if !reflect.DeepEqual(*c, after.conv) {
				t.Fatalf("ResolveConversation returned\n%+v\nthe database holds\n%+v", *c, after.conv)
			}
			if c.Status != models.ConvResolved || !c.ResolvedAt.Equal(tc.now) || !c.UpdatedAt.Equal(tc.now) ||
				c.ResolutionNote != tc.wantNote || c.AgentID == nil || *c.AgentID != f.agent.ID || c.LastSeq != before.conv.LastSeq {
				t.Fatalf("resolved conversation = %+v; want resolved at %v with note %q", *c, tc.now, tc.wantNote)
			}
			want := models.Earning{ID: e.ID, ConversationID: tc.conv.ID, AgentID: f.agent.ID, BrandID: f.brand.ID,
				BaseMinor: tc.base, SurgeMinor: tc.surge, FeeMinor: tc.fee, NetMinor: tc.base + tc.surge - tc.fee,
				Currency: "USD", FeeBasisPoints: 1250, Status: models.EarningHeld, CreatedAt: tc.now}
			if !models.ValidID(e.ID) || !reflect.DeepEqual(*e, want) {
				t.Fatalf("earning = %+v; want %+v", *e, want)
			}
			stored, err := st.Earnings(ctx, f.agent.ID, 0)
			if err != nil || len(stored) != i+1 {
				t.Fatalf("Earnings = %d, %v; want %d", len(stored), err, i+1)
			}
			got := stored[0]
			if got.CreatedAt = got.CreatedAt.UTC(); !reflect.DeepEqual(got, want) {
				t.Fatalf("stored earning = %+v; want %+v", got, want)
			}
			if a := after.agent; a.ResolvedCount != before.agent.ResolvedCount+1 || a.FreeSince == nil ||
				!a.FreeSince.Equal(tc.now) || !a.UpdatedAt.Equal(tc.now) {
				t.Fatalf("agent = %+v; want resolved_count %d, free since and updated %v", a, before.agent.ResolvedCount+1, tc.now)
			}
			if b := after.brand; b.MoneyRecordedAt == nil || !b.MoneyRecordedAt.Equal(tc.moneyRecordedAt) || !b.UpdatedAt.Equal(tc.moneyRecordedAt) {
				t.Fatalf("brand money recorded %v, updated %v; want both %v (the first resolve)", b.MoneyRecordedAt, b.UpdatedAt, tc.moneyRecordedAt)
			}
		}
	})
}

// A resolve that cannot record the earning (no accepted offer, no fee in
// force) fails and changes nothing; one of a conversation that is not the
// agent's is ErrNotFound, of one no longer active ErrConflict.
func TestResolveConversationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare breaks the agent's active chat c with sql and returns
		// what to resolve.
		prepare func(f *liveFixture, c *models.Conversation) (agentID, convID, sql string, args []any)
		want    error  // wrapped, unless nil
		text    string // in the error's text
	}{
		{"ErrNoAcceptedOffer", func(f *liveFixture, c *models.Conversation) (string, string, string, []any) {
			return f.agent.ID, c.ID, "UPDATE offers SET status = 'declined' WHERE conversation_id = ?", []any{c.ID}
		}, models.ErrNotFound, "accepted offer"},
		{"ErrNoFeeInForce", func(f *liveFixture, c *models.Conversation) (string, string, string, []any) {
			// The only fee takes effect a second from now.
			return f.agent.ID, c.ID, "UPDATE platform_fees SET effective_at = ?", []any{f.db.Clock.Now().Add(time.Second)}
		}, nil, "no platform fee in force"},
		{"ErrAnotherAgent", func(f *liveFixture, c *models.Conversation) (string, string, string, []any) {
			return models.NewID(), c.ID, "", nil
		}, models.ErrNotFound, "conversation"},
		{"ErrUnknownConversation", func(f *liveFixture, c *models.Conversation) (string, string, string, []any) {
			return f.agent.ID, models.NewID(), "", nil
		}, models.ErrNotFound, "conversation"},
		{"ErrNotActive", func(f *liveFixture, c *models.Conversation) (string, string, string, []any) {
			return f.agent.ID, c.ID, "UPDATE conversations SET status = 'abandoned' WHERE id = ?", []any{c.ID}
		}, models.ErrConflict, "conversation is abandoned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
				f := newLiveFixture(t, db)
				c := f.activeChat(t, "chat", 450, 50)
				db.Clock.Advance(time.Minute)
				agentID, convID, sql, args := tc.prepare(f, c)
				if sql != "" {
					if err := db.Store.DB.Exec(sql, args...).Error; err != nil {
						t.Fatal(err)
					}
				}
				before := f.resolveState(t, c.ID)
				_, _, err := db.Store.ResolveConversation(context.Background(), agentID, convID, "done")
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("ResolveConversation = %v; want an error with %q (%v)", err, tc.text, tc.want)
				}
				if after := f.resolveState(t, c.ID); !reflect.DeepEqual(after, before) {
					t.Fatalf("a failed resolve changed\n%+v\ninto\n%+v", before, after)
				}
			})
		})
	}
}

// Of resolves of one chat at once exactly one wins and one earning is
// recorded; resolves of the agent's two chats at once both count.
func TestResolveConversationConcurrent(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 3); err != nil {
			t.Fatal(err)
		}
		one := f.activeChat(t, "chat-one", 450, 0)
		const n = 8
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, errs[i] = db.Store.ResolveConversation(ctx, f.agent.ID, one.ID, "done")
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, models.ErrConflict):
				t.Fatalf("resolve %d = %v; want success or ErrConflict", i, err)
			}
		}
		if e := count(t, db, "earnings", "conversation_id = ?", one.ID); wins != 1 || e != 1 {
			t.Fatalf("%d resolves won, %d earnings; want 1 and 1", wins, e)
		}

		a, b := f.activeChat(t, "chat-a", 450, 0), f.activeChat(t, "chat-b", 450, 0)
		for _, c := range []*models.Conversation{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, "done"); err != nil {
					t.Errorf("ResolveConversation(%s): %v", c.ExternalID, err)
				}
			}()
		}
		wg.Wait()
		got, err := db.Store.Agent(ctx, f.agent.ID)
		if err != nil || got.ResolvedCount != 3 || count(t, db, "earnings", "") != 3 {
			t.Fatalf("agent resolved_count %d, %d earnings, %v; want 3 and 3", got.ResolvedCount, count(t, db, "earnings", ""), err)
		}
	})
}

// A resolve waits for the agent's row before it touches the conversation,
// as the presence lapse and suspension lock the agent and then re-queue
// their chats: with the conversation first, a resolve and a lapse of the
// same agent deadlocked (PostgreSQL aborts one with 40P01). The lapse here
// is run by hand, stopping once the resolve waits for it.
func TestResolveWaitsForAgentLock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		requeue bool // the lapse re-queues the chat (its grace ran out)
	}{
		{"lapse requeues the chat", true},
		{"lapse leaves the chat", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := modeltest.Postgres(t)
			f := newLiveFixture(t, db)
			ctx := context.Background()
			c := f.activeChat(t, "x", 450, 0)

			lapse := beginInFlight(t, db)
			lapse.exec("set the agent offline", "UPDATE agents SET presence = 'offline' WHERE id = $1", f.agent.ID)
			done := make(chan error, 1)
			go func() {
				_, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, "done")
				done <- err
			}()
			lapse.waitBlocked()
			if tc.requeue {
				lapse.exec("re-queue the agent's chats", "UPDATE conversations SET status = 'queued', agent_id = NULL, assigned_at = NULL WHERE agent_id = $1 AND status = 'active'", f.agent.ID)
			}
			lapse.commit()
			err := <-done
			want := models.ConvResolved
			if tc.requeue {
				want = models.ConvQueued
				if !errors.Is(err, models.ErrNotFound) { // no longer the agent's chat
					t.Fatalf("resolve of a chat the lapse re-queued: %v; want ErrNotFound", err)
				}
			} else if err != nil {
				t.Fatalf("resolve after the lapse: %v; want success", err)
			}
			if got := convStatus(t, db, c.ID); got != want {
				t.Errorf("conversation is %s; want %s", got, want)
			}
			wantEarnings := int64(1)
			if tc.requeue {
				wantEarnings = 0
			}
			if n := count(t, db, "earnings", ""); n != wantEarnings {
				t.Errorf("earnings = %d; want %d", n, wantEarnings)
			}
		})
	}
}
