package models_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// liveFixture is a brand with a catalogue and an approved, online agent.
type liveFixture struct {
	db    *modeltest.DB
	brand *models.Brand
	agent *models.Agent
}

func newLiveFixture(t testing.TB, db *modeltest.DB) *liveFixture {
	t.Helper()
	ctx := context.Background()
	st := db.Store
	owner, b, err := st.SignUpBrand(ctx, models.BrandSignup{Name: "Acme", Email: "owner@acme.test", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	set := models.SettingsOf(b)
	set.PayRateMinor = 450
	if b, err = st.UpdateBrandSettings(ctx, owner.ID, b.ID, set); err != nil {
		t.Fatal(err)
	}
	for _, sk := range []string{"billing", "refunds"} {
		if _, err := st.AddSkill(ctx, owner.ID, b.ID, sk); err != nil {
			t.Fatal(err)
		}
	}
	op, err := st.EnsureOperator(ctx, "op@handoff.test", "Op", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.ApplyAsAgent(ctx, models.AgentApplication{DisplayName: "Maya", Email: "maya@agents.test", Password: "correct horse battery",
		Languages: []string{"en"}, Skills: map[string]int{"billing": 5}, Bio: "Billing.", MaxConcurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DecideApplication(ctx, op.ID, a.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPresence(ctx, a.ID, models.PresenceOnline); err != nil {
		t.Fatal(err)
	}
	return &liveFixture{db: db, brand: b, agent: a}
}

func (f *liveFixture) escalate(t testing.TB, externalID string) *models.Conversation {
	t.Helper()
	c, created, err := f.db.Store.Escalate(context.Background(), f.brand.ID, models.Escalation{
		ExternalID: externalID, CustomerName: "Ada", CustomerEmail: "ada@example.com", Language: "en",
		Skills: []string{"billing"}, Summary: "Charged twice",
		Transcript: []models.TranscriptEntry{{Role: "customer", Text: "I was charged twice"}, {Role: "bot", Text: "Sorry"}},
	})
	if err != nil || !created {
		t.Fatalf("Escalate(%q) = created %v, %v; want a new conversation", externalID, created, err)
	}
	return c
}

func (f *liveFixture) offer(t testing.TB, c *models.Conversation) *models.Offer {
	t.Helper()
	o, err := f.db.Store.CreateOffer(context.Background(), models.NewOffer{ConversationID: c.ID, AgentID: f.agent.ID,
		PayMinor: f.brand.PayRateMinor, Currency: f.brand.Currency, Explanation: "{}", Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("CreateOffer: %v", err)
	}
	return o
}

func TestEscalateIsIdempotentWhileOpen(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-1")
		again, created, err := db.Store.Escalate(ctx, f.brand.ID, models.Escalation{ExternalID: "chat-1", Language: "de"})
		if err != nil || created || again.ID != c.ID || again.Language != "en" {
			t.Fatalf("second Escalate = %+v, created %v, %v; want the first conversation unchanged", again, created, err)
		}
		msgs, err := db.Store.Messages(ctx, c.ID, 0, 0)
		if err != nil || len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Sender != "bot" {
			t.Fatalf("Messages = %+v, %v; want the 2 transcript lines", msgs, err)
		}
		if _, err := db.Store.CancelConversation(ctx, f.brand.ID, c.ID, "bot cancelled"); err != nil {
			t.Fatal(err)
		}
		next := f.escalate(t, "chat-1")
		if next.ID == c.ID {
			t.Fatal("after the first closed, the same external_id must start a new conversation")
		}
	})
}

func TestEscalateConcurrentSameExternalID(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		var wg sync.WaitGroup
		ids := make([]string, 12)
		errs := make([]error, 12)
		createdN := 0
		var mu sync.Mutex
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, created, err := db.Store.Escalate(context.Background(), f.brand.ID, models.Escalation{ExternalID: "race", Language: "en"})
				errs[i] = err
				if err == nil {
					ids[i] = c.ID
					mu.Lock()
					if created {
						createdN++
					}
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if ids[i] != ids[0] {
				t.Fatalf("call %d got conversation %s; call 0 got %s", i, ids[i], ids[0])
			}
		}
		var n int64
		db.Store.DB.Table("conversations").Where("external_id = ?", "race").Count(&n)
		if n != 1 || createdN != 1 {
			t.Fatalf("conversations = %d, created = %d; want exactly 1 and 1", n, createdN)
		}
	})
}

func TestEscalateValidation(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		long := make([]byte, 201)
		for i := range long {
			long[i] = 'x'
		}
		bad := 10
		many := make([]models.TranscriptEntry, 201)
		for i := range many {
			many[i] = models.TranscriptEntry{Role: "bot", Text: "hi"}
		}
		for _, tc := range []struct {
			name  string
			in    models.Escalation
			field string
		}{
			{"ErrExternalIDMissing", models.Escalation{Language: "en"}, "external_id"},
			{"ErrExternalIDTooLong", models.Escalation{ExternalID: string(long), Language: "en"}, "external_id"},
			{"ErrUnknownSkill", models.Escalation{ExternalID: "a", Language: "en", Skills: []string{"astrology"}}, "skills[0]"},
			{"ErrBadLanguage", models.Escalation{ExternalID: "a", Language: "english!!"}, "language"},
			{"ErrPriority", models.Escalation{ExternalID: "a", Language: "en", Priority: &bad}, "priority"},
			{"ErrTooManyTranscript", models.Escalation{ExternalID: "a", Language: "en", Transcript: many}, "transcript"},
			{"ErrTranscriptRole", models.Escalation{ExternalID: "a", Language: "en", Transcript: []models.TranscriptEntry{{Role: "agent", Text: "x"}}}, "transcript[0].role"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := db.Store.Escalate(context.Background(), f.brand.ID, tc.in)
				var ve *models.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Escalate = %v; want a ValidationError", err)
				}
				if _, ok := ve.Map()[tc.field]; !ok {
					t.Fatalf("errors %v; want one on %q", ve.Fields, tc.field)
				}
			})
		}
	})
}

// TestAcceptOfferChat checks that the accept the agent's console makes
// returns the conversation's messages as a read after it would (on
// PostgreSQL they share its round trip), and nothing when it is refused.
func TestAcceptOfferChat(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-accept")
		if _, _, err := db.Store.AddMessage(ctx, c.ID, models.SenderCustomer, "", "c1", "Still there?"); err != nil {
			t.Fatal(err)
		}
		other := f.escalate(t, "chat-other") // its messages must not appear
		if _, _, err := db.Store.AddMessage(ctx, other.ID, models.SenderCustomer, "", "c1", "Someone else"); err != nil {
			t.Fatal(err)
		}
		o := f.offer(t, c)
		_, conv, msgs, err := db.Store.AcceptOfferChat(ctx, f.agent.ID, o.ID)
		if err != nil {
			t.Fatalf("AcceptOfferChat: %v", err)
		}
		if conv.ID != c.ID || conv.Status != models.ConvActive || conv.AgentID == nil || *conv.AgentID != f.agent.ID {
			t.Fatalf("conversation %s %s; want %s active with the agent", conv.ID, conv.Status, c.ID)
		}
		want, err := db.Store.Messages(ctx, c.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) < 2 || want[len(want)-1].Body != "Still there?" {
			t.Fatalf("the fixture's messages %+v; want the transcript and the customer's", want)
		}
		if len(msgs) != len(want) {
			t.Fatalf("%d messages; want %d", len(msgs), len(want))
		}
		for i := range want {
			g, w := msgs[i], want[i]
			if g.ID != w.ID || g.Seq != w.Seq || g.Sender != w.Sender || g.Body != w.Body || !g.CreatedAt.Equal(w.CreatedAt) ||
				(g.ClientID == nil) != (w.ClientID == nil) || (g.ClientID != nil && *g.ClientID != *w.ClientID) {
				t.Fatalf("message %d = %+v; want %+v", i, g, w)
			}
		}
		_, _, again, err := db.Store.AcceptOfferChat(ctx, f.agent.ID, o.ID)
		if !errors.Is(err, models.ErrConflict) || again != nil {
			t.Fatalf("second accept = %d messages, %v; want none and ErrConflict", len(again), err)
		}
	})
}

func TestOfferAcceptResolveRecordsEarning(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-9")
		o := f.offer(t, c)
		if _, err := db.Store.CreateOffer(ctx, models.NewOffer{ConversationID: c.ID, AgentID: f.agent.ID, Currency: "USD", Timeout: time.Second}); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("second pending offer = %v; want ErrConflict", err)
		}
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatalf("AcceptOffer: %v", err)
		}
		if _, _, err := db.Store.AddMessage(ctx, c.ID, models.SenderAgent, f.agent.ID, "m1", "Hello Ada"); err != nil {
			t.Fatal(err)
		}
		if m, created, err := db.Store.AddMessage(ctx, c.ID, models.SenderAgent, f.agent.ID, "m1", "Hello Ada"); err != nil || created || m.Seq != 3 {
			t.Fatalf("resent message = seq %v created %v, %v; want the stored seq 3, not created", m.Seq, created, err)
		}
		got, e, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, "refunded")
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		// 450 at 15 %: fee 67.5 rounds half-up to 68.
		if got.Status != models.ConvResolved || e.BaseMinor != 450 || e.FeeMinor != 68 || e.NetMinor != 382 || e.FeeBasisPoints != 1500 {
			t.Fatalf("resolved %s, earning %+v; want base 450, fee 68, net 382", got.Status, e)
		}
		b, _ := db.Store.Brand(ctx, f.brand.ID)
		if !b.CurrencyLocked() {
			t.Fatal("currency must be fixed once an earning is recorded")
		}
		if err := db.Store.RateConversation(ctx, c.ID, 5, "great"); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.RateConversation(ctx, c.ID, 1, "again"); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("second rating = %v; want ErrConflict", err)
		}
		online, err := db.Store.OnlineAgents(ctx, 30*time.Second)
		if err != nil || len(online) != 1 {
			t.Fatalf("OnlineAgents = %+v, %v; want the one agent", online, err)
		}
		if a := online[0]; a.ID != f.agent.ID || a.ResolvedCount != 1 || a.RatingSum != 5 || a.RatingCount != 1 ||
			a.Active != 0 || a.PendingOffer || len(a.Languages) != 1 || a.Languages[0] != "en" || a.Skills["billing"] != 5 || a.FreeSince == nil {
			t.Fatalf("agent state = %+v; want 1 resolved, rated 5 once, free, en, billing 5", a)
		}
		db.Clock.Advance(31 * time.Second)
		if online, _ := db.Store.OnlineAgents(ctx, 30*time.Second); len(online) != 0 {
			t.Fatalf("after the lease lapsed OnlineAgents = %d agents; want none", len(online))
		}
	})
}

func TestParallelAcceptsExactlyOneWins(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		o := f.offer(t, f.escalate(t, "chat-race"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		var other []error
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := db.Store.AcceptOffer(context.Background(), f.agent.ID, o.ID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, models.ErrConflict):
					conflicts++
				default:
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != 49 || len(other) > 0 {
			t.Fatalf("wins %d, conflicts %d, other %v; want 1, 49, none", wins, conflicts, other)
		}
	})
}

func TestAcceptAfterExpiryFailsBeforeSweep(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		o := f.offer(t, f.escalate(t, "chat-late"))
		db.Clock.Advance(20 * time.Second)
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("accept at expires_at = %v; want ErrConflict", err)
		}
		exp, err := db.Store.ExpireOffers(ctx)
		if err != nil || len(exp) != 1 || exp[0].SetAway {
			t.Fatalf("ExpireOffers = %+v, %v; want one expiry, agent not yet away", exp, err)
		}
		c, _ := db.Store.ConversationByID(ctx, o.ConversationID)
		if c.Status != models.ConvQueued {
			t.Fatalf("conversation %s after expiry; want queued", c.Status)
		}
		// A second miss in a row sets the agent away.
		o2 := f.offer(t, c)
		db.Clock.Advance(21 * time.Second)
		exp, err = db.Store.ExpireOffers(ctx)
		if err != nil || len(exp) != 1 || !exp[0].SetAway || exp[0].ID != o2.ID {
			t.Fatalf("second ExpireOffers = %+v, %v; want the agent set away", exp, err)
		}
		a, _ := db.Store.Agent(ctx, f.agent.ID)
		if a.Presence != models.PresenceAway {
			t.Fatalf("presence %s; want away", a.Presence)
		}
		if exp, _ := db.Store.ExpireOffers(ctx); len(exp) != 0 {
			t.Fatalf("a third sweep expired %d offers; want none", len(exp))
		}
	})
}

func TestDeclineRequeues(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-d")
		o := f.offer(t, c)
		if _, err := db.Store.DeclineOffer(ctx, f.agent.ID, o.ID, ""); err == nil {
			t.Fatal("decline without a reason must fail")
		}
		if _, err := db.Store.DeclineOffer(ctx, f.agent.ID, o.ID, "not my topic"); err != nil {
			t.Fatal(err)
		}
		got, _ := db.Store.ConversationByID(ctx, c.ID)
		if got.Status != models.ConvQueued {
			t.Fatalf("status %s; want queued", got.Status)
		}
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("accept after decline = %v; want ErrConflict", err)
		}
		if _, _, err := db.Store.AcceptOffer(ctx, "01900000-0000-7000-8000-000000000000", o.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agent accepting = %v; want ErrNotFound", err)
		}
	})
}

func TestCloseResolvedAfterRatingWindow(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-close")
		o := f.offer(t, c)
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, "done"); err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(models.RatingWindow - time.Second)
		if n, err := db.Store.CloseResolved(ctx); err != nil || n != 0 {
			t.Fatalf("CloseResolved inside the window = %d, %v; want 0", n, err)
		}
		db.Clock.Advance(time.Second)
		if n, err := db.Store.CloseResolved(ctx); err != nil || n != 1 {
			t.Fatalf("CloseResolved after the window = %d, %v; want 1", n, err)
		}
		if err := db.Store.RateConversation(ctx, c.ID, 4, ""); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("rating a closed conversation = %v; want ErrConflict", err)
		}
	})
}

func TestOffersAndAcceptsNeedAFreeSeat(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 2); err != nil {
			t.Fatal(err)
		}
		first := f.offer(t, f.escalate(t, "seat-1"))
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, first.ID); err != nil {
			t.Fatal(err)
		}
		// A seat is free: the offer is made; then the agent lowers their
		// capacity to 1 before answering, so the accept must fail.
		second := f.offer(t, f.escalate(t, "seat-2"))
		if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, second.ID); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("accept beyond capacity = %v; want ErrConflict", err)
		}
		if o, _ := db.Store.Offer(ctx, second.ID); o.Status != models.OfferPending {
			t.Fatalf("the refused offer is %s; want still pending until it expires", o.Status)
		}
		// No new offer is made to an agent without a free seat.
		db.Clock.Advance(21 * time.Second)
		if _, err := db.Store.ExpireOffers(ctx); err != nil {
			t.Fatal(err)
		}
		third := f.escalate(t, "seat-3")
		_, err := db.Store.CreateOffer(ctx, models.NewOffer{ConversationID: third.ID, AgentID: f.agent.ID, Currency: "USD", Timeout: time.Second})
		if !errors.Is(err, models.ErrConflict) {
			t.Fatalf("offer to a full agent = %v; want ErrConflict", err)
		}
		if c, _ := db.Store.ConversationByID(ctx, third.ID); c.Status != models.ConvQueued {
			t.Fatalf("after the refused offer the conversation is %s; want queued", c.Status)
		}
	})
}

func TestCreateOffersSkipsStaleDecisions(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 1); err != nil {
			t.Fatal(err)
		}
		a, b := f.escalate(t, "batch-a"), f.escalate(t, "batch-b")
		gone := f.escalate(t, "batch-gone")
		if _, err := db.Store.CancelConversation(ctx, f.brand.ID, gone.ID, "left"); err != nil {
			t.Fatal(err)
		}
		offer := func(c *models.Conversation) models.NewOffer {
			return models.NewOffer{ConversationID: c.ID, AgentID: f.agent.ID, PayMinor: 450, Currency: "USD", Timeout: 20 * time.Second}
		}
		// Three decisions for one agent: the abandoned conversation is
		// skipped, the first live one is offered, the second would give the
		// agent two pending offers and is skipped, its conversation queued.
		made, err := db.Store.CreateOffers(ctx, []models.NewOffer{offer(gone), offer(a), offer(b)})
		if err != nil {
			t.Fatal(err)
		}
		if len(made) != 1 || made[0].ConversationID != a.ID {
			t.Fatalf("made %+v; want one offer, for %s", made, a.ID)
		}
		for id, want := range map[string]string{a.ID: models.ConvOffered, b.ID: models.ConvQueued, gone.ID: models.ConvAbandoned} {
			if c, _ := db.Store.ConversationByID(ctx, id); c.Status != want {
				t.Fatalf("conversation %s is %s; want %s", id, c.Status, want)
			}
		}
		// An agent the sweep set away after the decision gets nothing.
		if _, err := db.Store.DeclineOffer(ctx, f.agent.ID, made[0].ID, "busy"); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.SetPresence(ctx, f.agent.ID, models.PresenceAway); err != nil {
			t.Fatal(err)
		}
		if made, err := db.Store.CreateOffers(ctx, []models.NewOffer{offer(b)}); err != nil || len(made) != 0 {
			t.Fatalf("offer to an agent away = %+v, %v; want none made", made, err)
		}
		if _, err := db.Store.CreateOffer(ctx, offer(b)); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("CreateOffer to an agent away = %v; want ErrConflict", err)
		}
		if c, _ := db.Store.ConversationByID(ctx, b.ID); c.Status != models.ConvQueued {
			t.Fatalf("conversation %s after the skipped offer; want queued", c.Status)
		}
	})
}

// RecentTimes averages the brand's last resolved conversations: accept to
// resolve, and the accepted offer's wait; an offer the agent let expire
// before a later one does not count.
func TestRecentTimes(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		if h, a, err := db.Store.RecentTimes(ctx, f.brand.ID); err != nil || h != 0 || a != 0 {
			t.Fatalf("RecentTimes with no history = %v, %v, %v; want zero", h, a, err)
		}
		// First chat: an offer expires, then a second offer is accepted
		// after 4 s and resolved 60 s later.
		c := f.escalate(t, "chat-1")
		f.offer(t, c)
		db.Clock.Advance(21 * time.Second)
		if _, err := db.Store.ExpireOffers(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.SetPresence(ctx, f.agent.ID, models.PresenceOnline); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Store.ConversationByID(ctx, c.ID)
		o := f.offer(t, c)
		db.Clock.Advance(4 * time.Second)
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(60 * time.Second)
		if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, ""); err != nil {
			t.Fatal(err)
		}
		// Second chat: accepted after 2 s, resolved 120 s later.
		c = f.escalate(t, "chat-2")
		o = f.offer(t, c)
		db.Clock.Advance(2 * time.Second)
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(120 * time.Second)
		if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, c.ID, ""); err != nil {
			t.Fatal(err)
		}
		h, a, err := db.Store.RecentTimes(ctx, f.brand.ID)
		if err != nil || h != 90*time.Second || a != 3*time.Second {
			t.Fatalf("RecentTimes = handle %v, accept %v, %v; want 1m30s and 3s", h, a, err)
		}
	})
}

// Heartbeats renews many leases in one statement; on PostgreSQL an agent
// whose row another transaction holds is skipped (and reported) instead of
// making the batch wait.
func TestHeartbeatsBatch(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		op := mustOperator(t, db)
		a := mustApprovedAgent(t, db, op, "a@agents.test")
		b := mustApprovedAgent(t, db, op, "b@agents.test")
		seen := func(id string) time.Time {
			t.Helper()
			got, err := db.Store.Agent(ctx, id)
			if err != nil || got.LastSeenAt == nil {
				t.Fatalf("Agent(%s) = %+v, %v; want a last_seen_at", id, got, err)
			}
			return got.LastSeenAt.UTC()
		}
		skipped, err := db.Store.Heartbeats(ctx, []string{a.ID, b.ID})
		if err != nil || len(skipped) != 0 {
			t.Fatalf("Heartbeats = %v, %v; want none skipped", skipped, err)
		}
		t0 := db.Clock.Now().UTC()
		if seen(a.ID) != t0 || seen(b.ID) != t0 {
			t.Fatalf("last_seen_at = %v, %v; want both %v", seen(a.ID), seen(b.ID), t0)
		}
		if db.Store.Dialect != models.Postgres {
			return // SQLite has one writer at a time: nothing to skip
		}
		db.Clock.Advance(5 * time.Second)
		tx := db.Store.DB.Begin()
		defer tx.Rollback()
		if err := tx.Exec("SELECT id FROM agents WHERE id = ? FOR UPDATE", a.ID).Error; err != nil {
			t.Fatal(err)
		}
		skipped, err = db.Store.Heartbeats(ctx, []string{a.ID, b.ID})
		if err != nil || len(skipped) != 1 || skipped[0] != a.ID {
			t.Fatalf("Heartbeats with a's row locked = %v, %v; want a skipped", skipped, err)
		}
		tx.Rollback()
		if seen(a.ID) != t0 || seen(b.ID) != t0.Add(5*time.Second) {
			t.Fatalf("last_seen_at = %v, %v; want a unchanged and b renewed", seen(a.ID), seen(b.ID))
		}
	})
}

// Messages written at once get distinct sequence numbers with no gaps, a
// resend racing its original is stored once, and a closed or unknown
// conversation refuses messages but answers a resend with the stored one.
func TestAddMessageConcurrent(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "chat-concurrent") // the bot transcript holds seq 1 and 2
		var wg sync.WaitGroup
		var mu sync.Mutex
		seqs := map[int]int{}
		var errs []error
		for i := 0; i < 20; i++ {
			for r := 0; r < 2; r++ { // each message twice, at once: a resend
				wg.Add(1)
				go func() {
					defer wg.Done()
					m, _, err := db.Store.AddMessage(ctx, c.ID, models.SenderCustomer, "", fmt.Sprintf("c%d", i), "hello")
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					seqs[m.Seq]++
				}()
			}
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("AddMessage errors: %v", errs)
		}
		for seq := 3; seq <= 22; seq++ {
			if seqs[seq] != 2 {
				t.Fatalf("seq %d answered %d times; want 2 (original and resend) for each of 3..22: %v", seq, seqs[seq], seqs)
			}
		}
		if n := count(t, db, "messages", "conversation_id = ?", c.ID); n != 22 {
			t.Fatalf("%d messages stored; want 22", n)
		}
		// Without a client id nothing is a resend: both are stored, with
		// no client id.
		for i := 0; i < 2; i++ {
			m, created, err := db.Store.AddMessage(ctx, c.ID, models.SenderCustomer, "", "", "no id")
			if err != nil || !created || m.Seq != 23+i || m.ClientID != nil {
				t.Fatalf("message without a client id #%d = %+v, created %v, %v; want seq %d, no client id", i, m, created, err, 23+i)
			}
		}
		if _, err := db.Store.CancelConversation(ctx, f.brand.ID, c.ID, "left"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Store.AddMessage(ctx, c.ID, models.SenderCustomer, "", "late", "still there?"); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("message to an abandoned conversation = %v; want ErrConflict", err)
		}
		// A resend after the close answers the message it repeats, on
		// both databases, alone and in a batch with others.
		var rw sync.WaitGroup
		for i := 0; i < 6; i++ {
			rw.Add(1)
			go func() {
				defer rw.Done()
				m, created, err := db.Store.AddMessage(ctx, c.ID, models.SenderCustomer, "", fmt.Sprintf("c%d", i), "hello")
				if err != nil || created || m.Seq < 3 || m.Seq > 22 || m.ClientID == nil || *m.ClientID != fmt.Sprintf("c%d", i) {
					t.Errorf("resend of c%d after the close = %+v, created %v, %v; want the stored message", i, m, created, err)
				}
			}()
		}
		rw.Wait()
		if _, _, err := db.Store.AddMessage(ctx, models.NewID(), models.SenderCustomer, "", "x", "hi"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("message to an unknown conversation = %v; want ErrNotFound", err)
		}
	})
}

// Messages that arrive together are stored together on PostgreSQL (one
// statement per batch). Whatever the batches, every message gets the
// answer it would get alone: customers and the agent in their chat are
// stored with gapless numbers per conversation; another agent's message
// and one to a chat not in progress are refused; a resend answers the
// stored message.
func TestAddMessageMixedBatches(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		active := f.escalate(t, "chat-active")
		o := f.offer(t, active)
		if _, _, err := st.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		done := f.escalate(t, "chat-done")
		if _, _, err := st.AcceptOffer(ctx, f.agent.ID, f.offer(t, done).ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.ResolveConversation(ctx, f.agent.ID, done.ID, "sorted"); err != nil {
			t.Fatal(err)
		}
		waiting := f.escalate(t, "chat-waiting")
		other := models.NewID() // another agent's id: not this chat's
		type send struct {
			conv, sender, senderID, clientID string
			want                             error // nil: stored
		}
		var sends []send
		for i := range 15 {
			sends = append(sends,
				send{active.ID, models.SenderCustomer, "", fmt.Sprintf("c%d", i), nil},
				send{active.ID, models.SenderAgent, f.agent.ID, fmt.Sprintf("a%d", i), nil},
				send{waiting.ID, models.SenderCustomer, "", fmt.Sprintf("w%d", i), nil})
		}
		sends = append(sends,
			send{active.ID, models.SenderAgent, other, "x1", models.ErrNotFound},
			send{done.ID, models.SenderAgent, f.agent.ID, "x2", models.ErrInvalid},
			send{waiting.ID, models.SenderAgent, f.agent.ID, "x4", models.ErrNotFound},
			send{models.NewID(), models.SenderCustomer, "", "x3", models.ErrNotFound})
		for round := range 2 { // the second round resends every message
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, len(sends))
			seqs := make([]int, len(sends))
			created := make([]bool, len(sends))
			for i, sd := range sends {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					m, c, err := st.AddMessage(ctx, sd.conv, sd.sender, sd.senderID, sd.clientID, "text "+sd.clientID)
					errs[i], created[i] = err, c
					if m != nil {
						seqs[i] = m.Seq
					}
				}()
			}
			close(start)
			wg.Wait()
			for i, sd := range sends {
				switch {
				case sd.want == nil && (errs[i] != nil || created[i] != (round == 0)):
					t.Fatalf("round %d: %s's message %s = created %v, %v; want stored (created %v)", round, sd.sender, sd.clientID, created[i], errs[i], round == 0)
				case sd.want != nil && !errors.Is(errs[i], sd.want):
					t.Fatalf("round %d: message %s = %v; want %v", round, sd.clientID, errs[i], sd.want)
				}
			}
		}
		for _, c := range []*models.Conversation{active, waiting} {
			msgs, err := st.Messages(ctx, c.ID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := 2 + 15
			if c == active {
				want = 2 + 30
			}
			if len(msgs) != want {
				t.Fatalf("%s holds %d messages; want %d", c.ExternalID, len(msgs), want)
			}
			for i, m := range msgs {
				if m.Seq != i+1 {
					t.Fatalf("%s: message %d has seq %d; want gapless 1..%d", c.ExternalID, i, m.Seq, want)
				}
			}
			got, err := st.ConversationByID(ctx, c.ID)
			if err != nil || got.LastSeq != want {
				t.Fatalf("%s last_seq = %d, %v; want %d", c.ExternalID, got.LastSeq, err, want)
			}
		}
	})
}

// TestQueuePlaces: an escalation's place as it is stored, and a
// conversation's place as the customer's page reads it, follow
// QueuePosition's rule (priority, then time queued, then id) and count
// only waiting conversations.
func TestQueuePlaces(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		skills, err := st.Skills(ctx, f.brand.ID)
		if err != nil {
			t.Fatal(err)
		}
		escalate := func(ext string, prio int, transcript bool) models.Escalated {
			t.Helper()
			in := models.Escalation{ExternalID: ext, Language: "en", Skills: []string{"billing"}, Priority: &prio}
			if transcript {
				in.Transcript = []models.TranscriptEntry{{Role: "customer", Text: "Hello"}}
			}
			e, err := st.EscalatePlaced(ctx, f.brand.ID, skills, in)
			if err != nil {
				t.Fatalf("EscalatePlaced(%s): %v", ext, err)
			}
			return e
		}
		placed := func(c *models.Conversation) int {
			t.Helper()
			got, place, err := st.ConversationPlaced(ctx, c.ID)
			if err != nil || got.ID != c.ID {
				t.Fatalf("ConversationPlaced(%s) = %v, %v", c.ID, got, err)
			}
			fresh, err := st.ConversationByID(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want, err := st.QueuePosition(ctx, fresh); err != nil || place != want {
				t.Fatalf("ConversationPlaced(%s) place %d; QueuePosition says %d (%v)", c.ID, place, want, err)
			}
			if got.Status != fresh.Status || got.LastSeq != fresh.LastSeq || got.BrandID != fresh.BrandID {
				t.Fatalf("ConversationPlaced row %+v differs from %+v", got, fresh)
			}
			resumed, rplace, _, err := st.ConversationResumed(ctx, c.ID, 0, 0)
			if err != nil || rplace != place || !reflect.DeepEqual(resumed, got) {
				t.Fatalf("ConversationResumed(%s) = %+v at %d, %v; want %+v at %d as ConversationPlaced", c.ID, resumed, rplace, err, got, place)
			}
			return place
		}
		a := escalate("a", 0, true)
		b := escalate("b", 5, false)
		c := escalate("c", 0, true)
		if a.Place != 1 || b.Place != 1 || c.Place != 3 || !a.Created || !c.Created {
			t.Fatalf("places when escalated: a %d b %d c %d; want 1 1 3", a.Place, b.Place, c.Place)
		}
		if pa, pb, pc := placed(a.Conversation), placed(b.Conversation), placed(c.Conversation); pa != 2 || pb != 1 || pc != 3 {
			t.Fatalf("places now: a %d b %d c %d; want 2 1 3", pa, pb, pc)
		}
		again := escalate("a", 0, false)
		if again.Created || again.Conversation.ID != a.Conversation.ID || again.Place != 2 {
			t.Fatalf("escalating a again = %+v; want its open conversation at place 2", again)
		}
		// Offered still waits; active does not.
		o := f.offer(t, b.Conversation)
		if placed(b.Conversation) != 1 {
			t.Fatal("an offered conversation left its place")
		}
		if _, _, err := st.AcceptOffer(ctx, f.agent.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		if pb, pa, pc := placed(b.Conversation), placed(a.Conversation), placed(c.Conversation); pb != 0 || pa != 1 || pc != 2 {
			t.Fatalf("after b was accepted: b %d a %d c %d; want 0 1 2", pb, pa, pc)
		}
		if _, _, err := st.ConversationPlaced(ctx, "nope"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("unknown conversation: %v; want ErrNotFound", err)
		}
		if _, _, _, err := st.ConversationResumed(ctx, models.NewID(), 0, 0); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("ConversationResumed(unknown) = %v; want ErrNotFound", err)
		}
	})
}

// TestQueuePlacesPastTheLimit: places are counted exactly up to
// PlaceCountLimit ahead; further back, every way of placing says
// PlaceCountLimit+1 ("at least"), and the count stops there.
func TestQueuePlacesPastTheLimit(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		const limit = models.PlaceCountLimit
		line := seedQueue(t, db, f.brand.ID, limit+3, 0) // priority 5, all queued at one time
		slices.SortFunc(line, func(a, b models.Conversation) int { return strings.Compare(a.ID, b.ID) })
		db.Clock.Advance(time.Second)
		skills, err := st.Skills(ctx, f.brand.ID)
		if err != nil {
			t.Fatal(err)
		}
		escalate := func(ext string, prio int) models.Escalated {
			t.Helper()
			e, err := st.EscalatePlaced(ctx, f.brand.ID, skills, models.Escalation{ExternalID: ext, Language: "en",
				Skills: []string{"billing"}, Priority: &prio})
			if err != nil {
				t.Fatalf("EscalatePlaced(%s): %v", ext, err)
			}
			return e
		}
		if e := escalate("last", 5); e.Place != limit+1 {
			t.Fatalf("behind %d waiting: place %d; want %d (at least)", limit+3, e.Place, limit+1)
		}
		if e := escalate("urgent", 9); e.Place != 1 {
			t.Fatalf("the most urgent: place %d; want 1", e.Place)
		}
		for _, k := range []int{0, 48, limit - 2, limit - 1, limit, limit + 2} {
			want := min(k+2, limit+1) // the urgent one is ahead of all of them
			_, place, err := st.ConversationPlaced(ctx, line[k].ID)
			if err != nil || place != want {
				t.Fatalf("ConversationPlaced(#%d in line) = %d, %v; want %d", k+2, place, err, want)
			}
			if _, rplace, _, err := st.ConversationResumed(ctx, line[k].ID, 0, 0); err != nil || rplace != want {
				t.Fatalf("ConversationResumed(#%d in line) = %d, %v; want %d", k+2, rplace, err, want)
			}
			if qp, err := st.QueuePosition(ctx, &line[k]); err != nil || qp != want {
				t.Fatalf("QueuePosition(#%d in line) = %d, %v; want %d", k+2, qp, err, want)
			}
		}
	})
}

// A customer's socket opening reads the conversation and the messages
// after the last the page saw, page by page, as Messages gives them.
func TestConversationResumed(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		c := f.activeChat(t, "resume", 450, 0) // two lines of transcript
		for i, sender := range []string{models.SenderCustomer, models.SenderAgent, models.SenderCustomer} {
			senderID := ""
			if sender == models.SenderAgent {
				senderID = f.agent.ID
			}
			if _, _, err := st.AddMessage(ctx, c.ID, sender, senderID, fmt.Sprintf("m%d", i), fmt.Sprintf("line %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := st.Messages(ctx, c.ID, 0, 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("Messages = %d, %v; want 5", len(all), err)
		}
		for _, tc := range []struct{ after, limit, from, to int }{
			{0, 0, 0, 5}, {0, 3, 0, 3}, {3, 500, 3, 5}, {4, 1, 4, 5}, {5, 0, 5, 5}, {9, 0, 5, 5},
		} {
			got, place, msgs, err := st.ConversationResumed(ctx, c.ID, tc.after, tc.limit)
			if err != nil || got.ID != c.ID || got.Status != models.ConvActive || got.LastSeq != 5 || place != 0 {
				t.Fatalf("ConversationResumed(after %d) = %+v at %d, %v; want the active chat, last seq 5, not waiting", tc.after, got, place, err)
			}
			want := all[tc.from:tc.to]
			if len(msgs) != len(want) || (len(want) > 0 && !reflect.DeepEqual(msgs, want)) {
				t.Fatalf("ConversationResumed(after %d, limit %d) messages %+v; want %+v", tc.after, tc.limit, msgs, want)
			}
		}
	})
}

// Paging through the queue by keys gives the queue in dispatch order, page
// by page, with ties in priority and time queued broken by id.
func TestQueuedConversationsAfter(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		skills, err := st.Skills(ctx, f.brand.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, prio := range []int{0, 5, 0, 5, 0, 1, 0, 5, 0} {
			if i%3 != 2 { // some share their time queued
				db.Clock.Advance(time.Millisecond)
			}
			p := prio
			if _, err := st.EscalatePlaced(ctx, f.brand.ID, skills, models.Escalation{ExternalID: fmt.Sprintf("q%d", i),
				Language: "en", Skills: []string{"billing"}, Priority: &p}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := st.QueuedConversations(ctx, 100)
		if err != nil || len(all) != 9 {
			t.Fatalf("QueuedConversations = %d, %v; want 9", len(all), err)
		}
		// An offered conversation leaves the queue; a declined one comes
		// back to it, offered before.
		declined := all[1]
		o := f.offer(t, &declined)
		if _, err := st.DeclineOffer(ctx, f.agent.ID, o.ID, "busy"); err != nil {
			t.Fatal(err)
		}
		f.offer(t, &all[4])
		all = slices.Delete(all, 4, 5)
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			if a.Priority < b.Priority || (a.Priority == b.Priority && (a.QueuedAt.After(b.QueuedAt) ||
				(a.QueuedAt.Equal(b.QueuedAt) && a.ID > b.ID))) {
				t.Fatalf("queue out of dispatch order at %d: %+v before %+v", i, a, b)
			}
		}
		for _, limit := range []int{1, 2, 3, 8, 20} {
			var paged []string
			var after *models.Conversation
			for {
				page, err := st.QueuedConversationsAfter(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("limit %d: a page of %d", limit, len(page))
				}
				for _, c := range page {
					paged = append(paged, c.ID)
					if c.OfferedBefore != (c.ID == declined.ID) {
						t.Errorf("%s: offered before %v; want %v", c.ID, c.OfferedBefore, c.ID == declined.ID)
					}
				}
				if len(page) < limit {
					break
				}
				after = &page[len(page)-1].Conversation
			}
			want := make([]string, len(all))
			for i, c := range all {
				want[i] = c.ID
			}
			if !slices.Equal(paged, want) {
				t.Errorf("limit %d: paged %v; want %v", limit, paged, want)
			}
		}
	})
}

// MessagesAt, ConversationsByID and OffersByID read many rows by key in one
// statement; keys that name nothing are left out.
func TestReadsByKey(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		a, b := f.escalate(t, "chat-a"), f.escalate(t, "chat-b") // each transcript holds seq 1 and 2
		msgs, err := db.Store.MessagesAt(ctx, []models.MessageKey{{a.ID, 2}, {b.ID, 1}, {a.ID, 9}, {"no-such", 1}})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || msgs[models.MessageKey{a.ID, 2}] == nil || msgs[models.MessageKey{b.ID, 1}] == nil ||
			msgs[models.MessageKey{a.ID, 2}].Seq != 2 || msgs[models.MessageKey{b.ID, 1}].ConversationID != b.ID {
			t.Errorf("MessagesAt = %v; want chat-a's 2nd and chat-b's 1st message only", msgs)
		}
		convs, err := db.Store.ConversationsByID(ctx, []string{a.ID, b.ID, a.ID, "00000000-0000-0000-0000-000000000000"})
		if err != nil {
			t.Fatal(err)
		}
		if len(convs) != 2 || convs[a.ID].ExternalID != "chat-a" || convs[b.ID].ExternalID != "chat-b" {
			t.Errorf("ConversationsByID = %v; want chat-a and chat-b", convs)
		}
		offers, err := db.Store.OffersByID(ctx, []string{"00000000-0000-0000-0000-000000000000"})
		if err != nil || len(offers) != 0 {
			t.Errorf("OffersByID of an unknown id = %v, %v; want none", offers, err)
		}
		for _, empty := range []error{
			func() error { m, err := db.Store.MessagesAt(ctx, nil); return nonEmpty(len(m), err) }(),
			func() error { m, err := db.Store.ConversationsByID(ctx, nil); return nonEmpty(len(m), err) }(),
			func() error { m, err := db.Store.OffersByID(ctx, nil); return nonEmpty(len(m), err) }(),
		} {
			if empty != nil {
				t.Error(empty)
			}
		}
	})
}

func nonEmpty(n int, err error) error {
	if err != nil || n != 0 {
		return fmt.Errorf("no keys: %d rows, %v; want none", n, err)
	}
	return nil
}
