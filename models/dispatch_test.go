package models_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// The dispatcher's view of the agents: the approved ones online within
// their lease, in id order, each with their chats in progress and whether
// an offer waits for them; all of them or those of some ids.
func TestAgentStates(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db) // Maya
		ctx := context.Background()
		st := db.Store
		op := mustOperator(t, db)
		online := func(email string, capacity int) *models.Agent {
			t.Helper()
			a := mustApprovedAgent(t, db, op, email)
			if err := st.SetAvailability(ctx, a.ID, models.PresenceOnline, capacity); err != nil {
				t.Fatal(err)
			}
			return a
		}
		maya, tom, ann := f.agent, online("tom@agents.test", 2), online("ann@agents.test", 1)
		suspended, offline, lapsed := online("sus@agents.test", 1), online("off@agents.test", 1), online("lapsed@agents.test", 2)
		pending := mustApplyAsAgent(t, db, "pending@agents.test") // not approved, though marked online
		if err := st.DB.Exec("UPDATE agents SET presence = 'online', last_seen_at = ? WHERE id = ?", db.Clock.Now(), pending.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := st.SetAvailability(ctx, maya.ID, models.PresenceOnline, 3); err != nil {
			t.Fatal(err)
		}
		n := 0
		offer := func(a *models.Agent) *models.Offer {
			t.Helper()
			n++
			c := f.escalate(t, "chat-"+string(rune('a'+n)))
			o, err := st.CreateOffer(ctx, models.NewOffer{ConversationID: c.ID, AgentID: a.ID, PayMinor: 450, Currency: "USD",
				Explanation: "{}", Timeout: time.Hour})
			if err != nil {
				t.Fatalf("CreateOffer to %s: %v", a.ID, err)
			}
			return o
		}
		accept := func(a *models.Agent) *models.Offer {
			t.Helper()
			o := offer(a)
			if _, _, err := st.AcceptOffer(ctx, a.ID, o.ID); err != nil {
				t.Fatal(err)
			}
			return o
		}
		// Maya: two chats in progress, one resolved and rated 4, one
		// closed. Tom: one chat in progress and an offer waiting. Ann: an
		// offer declined.
		var done []string
		for range 2 {
			o := accept(maya)
			if _, _, err := st.ResolveConversation(ctx, maya.ID, o.ConversationID, ""); err != nil {
				t.Fatal(err)
			}
			done = append(done, o.ConversationID)
		}
		if err := st.RateConversation(ctx, done[0], 4, ""); err != nil {
			t.Fatal(err)
		}
		if err := st.DB.Exec("UPDATE conversations SET status = 'closed', closed_at = ? WHERE id = ?", db.Clock.Now(), done[1]).Error; err != nil {
			t.Fatal(err)
		}
		accept(maya)
		accept(maya)
		accept(tom)
		offer(tom)
		if _, err := st.DeclineOffer(ctx, ann.ID, offer(ann).ID, "not now"); err != nil {
			t.Fatal(err)
		}
		accept(suspended)
		if _, err := st.SuspendAgent(ctx, op.ID, suspended.ID, "fraud"); err != nil {
			t.Fatal(err)
		}
		accept(offline)
		if err := st.SetPresence(ctx, offline.ID, models.PresenceOffline); err != nil {
			t.Fatal(err)
		}
		accept(lapsed)
		offer(lapsed)
		// Everyone's lease is renewed but the lapsed agent's.
		db.Clock.Advance(20 * time.Second)
		if _, err := st.Heartbeats(ctx, []string{maya.ID, tom.ID, ann.ID, suspended.ID, offline.ID, pending.ID}); err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(20 * time.Second)

		// want is the agent's state as their row and the counts say.
		want := func(a *models.Agent, active int, pendingOffer bool) models.AgentState {
			t.Helper()
			got, err := st.Agent(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			return models.AgentState{ID: a.ID, MaxConcurrent: got.MaxConcurrent, Presence: got.Presence, LastSeenAt: got.LastSeenAt,
				FreeSince: got.FreeSince, CreatedAt: got.CreatedAt, Active: active, PendingOffer: pendingOffer, Skills: map[string]int{},
				RatingSum: float64(got.RatingSum), RatingCount: got.RatingCount, ResolvedCount: got.ResolvedCount}
		}
		wantMaya, wantTom, wantAnn := want(maya, 2, false), want(tom, 1, true), want(ann, 0, false)
		if wantMaya.ResolvedCount != 2 || wantMaya.RatingSum != 4 || wantMaya.RatingCount != 1 || wantMaya.FreeSince == nil || wantMaya.MaxConcurrent != 3 {
			t.Fatalf("Maya = %+v; want 2 resolved, rated 4 once, free since a resolve, 3 seats", wantMaya)
		}
		byID := func(s ...models.AgentState) []models.AgentState {
			sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
			return s
		}
		const lease = 30 * time.Second
		got, err := st.OnlineAgentStates(ctx, lease)
		if w := byID(wantMaya, wantTom, wantAnn); err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("OnlineAgentStates =\n%+v, %v\nwant\n%+v", got, err, w)
		}

		unknown := models.NewID()
		some := []string{tom.ID, suspended.ID, offline.ID, lapsed.ID, pending.ID, unknown, ann.ID}
		got, err = st.AgentStates(ctx, lease, some)
		if w := byID(wantTom, wantAnn); err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("AgentStates(%d ids) =\n%+v, %v\nwant\n%+v", len(some), got, err, w)
		}
		if got, err := st.AgentStates(ctx, lease, []string{suspended.ID, lapsed.ID}); err != nil || len(got) != 0 {
			t.Fatalf("AgentStates(suspended, lapsed) = %+v, %v; want none", got, err)
		}
		// More ids than one read takes: Maya in the first 500, Tom after.
		many := make([]string, 700)
		for i := range many {
			many[i] = models.NewID()
		}
		many[3], many[650] = maya.ID, tom.ID
		got, err = st.AgentStates(ctx, lease, many)
		if w := []models.AgentState{wantMaya, wantTom}; err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("AgentStates(700 ids) =\n%+v, %v\nwant\n%+v", got, err, w)
		}
	})
}

// On PostgreSQL every subset of agents is read with the same statement (the
// ids are one array parameter), prepared once per connection.
func TestAgentStatesOnePreparedStatement(t *testing.T) {
	db := modeltest.Postgres(t)
	ctx := context.Background()
	st := db.Store
	sqlDB, err := st.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // one connection: its prepared statements are all of them
	op := mustOperator(t, db)
	var ids []string
	for _, email := range []string{"a@agents.test", "b@agents.test", "c@agents.test"} {
		a := mustApprovedAgent(t, db, op, email)
		if err := st.SetPresence(ctx, a.ID, models.PresenceOnline); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	statements := countStatements(t, db)
	for n := 1; n <= len(ids); n++ {
		got, err := st.AgentStates(ctx, 30*time.Second, ids[:n])
		if err != nil || len(got) != n {
			t.Fatalf("AgentStates(%d ids) = %d agents, %v; want %d", n, len(got), err, n)
		}
	}
	if got := statements.Load(); got != 3 {
		t.Fatalf("three AgentStates ran %d statements; want 3, one each", got)
	}
	var prepared []string
	if err := st.DB.Raw(`SELECT statement FROM pg_prepared_statements
		WHERE statement LIKE '%pending_offer%' AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&prepared).Error; err != nil {
		t.Fatal(err)
	}
	if len(prepared) != 1 {
		t.Fatalf("AgentStates of 1, 2 and 3 ids prepared %d statements; want 1:\n%q", len(prepared), prepared)
	}
}

// The sweep abandons the waiting conversations (queued or offered) older
// than their own brand's maximum wait, withdrawing a pending offer, and
// leaves the younger ones, those of a brand that waits longer and the
// chats in progress. A brand's new maximum counts from its next sweep.
func TestAbandonOverdue(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db) // Acme and Maya
		ctx := context.Background()
		st := db.Store
		_, beta, err := st.SignUpBrand(ctx, models.BrandSignup{Name: "Beta", Email: "owner@beta.test", Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		maxWait := func(b *models.Brand, seconds int) {
			t.Helper()
			if err := st.DB.Exec("UPDATE brands SET max_wait_seconds = ? WHERE id = ?", seconds, b.ID).Error; err != nil {
				t.Fatal(err)
			}
		}
		maxWait(f.brand, 60)
		maxWait(beta, 900)
		active := f.activeChat(t, "active", f.brand.PayRateMinor, 0)
		queued := f.escalate(t, "queued")
		offered := f.escalate(t, "offered")
		o := f.offer(t, offered)
		betaOld, _, err := st.Escalate(ctx, beta.ID, models.Escalation{ExternalID: "beta-old", Language: "en"})
		if err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(30 * time.Second)
		young := f.escalate(t, "young")

		sweep := func(when string, wantDone ...string) {
			t.Helper()
			done, rescinded, err := st.AbandonOverdue(ctx)
			if err != nil {
				t.Fatalf("%s: AbandonOverdue: %v", when, err)
			}
			var got []string
			for _, c := range done {
				if c.Status != models.ConvAbandoned || c.AbandonedAt == nil {
					t.Errorf("%s: returned %s as %s, abandoned at %v; want abandoned", when, c.ExternalID, c.Status, c.AbandonedAt)
				}
				got = append(got, c.ExternalID)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, wantDone) {
				t.Errorf("%s: abandoned %v; want %v", when, got, wantDone)
			}
			for _, r := range rescinded {
				if r.ID != o.ID {
					t.Errorf("%s: rescinded offer %s; want only %s (of %q)", when, r.ID, o.ID, offered.ExternalID)
				}
			}
		}
		sweep("at 30 s")
		db.Clock.Advance(30 * time.Second) // Acme's first three are 60 s old
		sweep("at 60 s", "offered", "queued")
		if got := offerStatus(t, db, o.ID); got != models.OfferRescinded {
			t.Errorf("offer of the abandoned conversation is %s; want %s", got, models.OfferRescinded)
		}
		checkOffers(t, db)
		for c, want := range map[*models.Conversation]string{queued: models.ConvAbandoned, offered: models.ConvAbandoned,
			active: models.ConvActive, young: models.ConvQueued, betaOld: models.ConvQueued} {
			if got := convStatus(t, db, c.ID); got != want {
				t.Errorf("%s after the sweep at 60 s is %s; want %s", c.ExternalID, got, want)
			}
		}
		sweep("again at 60 s")
		maxWait(beta, 45) // Beta's conversation is 60 s old
		sweep("after Beta's change", "beta-old")
		db.Clock.Advance(30 * time.Second)
		sweep("at 90 s", "young")
		if got := convStatus(t, db, active.ID); got != models.ConvActive {
			t.Errorf("the chat in progress is %s; want %s", got, models.ConvActive)
		}
	})
}

// The sweep's queue read holds the waiting conversations (queued or
// offered, not those in progress) in line order, with what a place in line
// needs as the whole rows have it.
func TestWaitingQueue(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		f.activeChat(t, "active", f.brand.PayRateMinor, 0) // in progress, so not in line
		db.Clock.Advance(time.Second)
		first := f.escalate(t, "first")
		db.Clock.Advance(time.Second)
		f.offer(t, f.escalate(t, "second"))
		whole, err := st.WaitingConversations(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.WaitingQueue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(whole) != 2 || len(got) != len(whole) {
			t.Fatalf("WaitingQueue = %d conversations, WaitingConversations %d; want 2 each", len(got), len(whole))
		}
		if got[0].ID != first.ID {
			t.Errorf("WaitingQueue begins with %s; want %s, the longest waiting", got[0].ID, first.ID)
		}
		for i, c := range got {
			w := whole[i]
			if c.ID != w.ID || c.BrandID != w.BrandID || c.Status != w.Status || c.Language != w.Language ||
				!reflect.DeepEqual(c.SkillList(), w.SkillList()) || c.Priority != w.Priority ||
				!c.QueuedAt.Equal(w.QueuedAt) || !c.CreatedAt.Equal(w.CreatedAt) {
				t.Errorf("WaitingQueue[%d] = %+v; want the place-in-line fields of %+v", i, c, w)
			}
		}
		if got[1].Status != models.ConvOffered || len(got[1].SkillList()) == 0 {
			t.Errorf("the second is %s with skills %v; want offered, with its skills", got[1].Status, got[1].SkillList())
		}
	})
}

// Many leases lapsing at once are handled a batch per call: at most
// LapseBatch offers withdrawn and LapseBatch agents set offline, their
// chats back in the queue; the next call handles the rest, and nothing
// is handled twice.
func TestLapsePresenceInBatches(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		st := db.Store
		st.LapseBatch = 2
		op := mustOperator(t, db)
		agents := []*models.Agent{f.agent}
		for _, email := range []string{"tom@agents.test", "ann@agents.test"} {
			a := mustApprovedAgent(t, db, op, email)
			if err := st.SetAvailability(ctx, a.ID, models.PresenceOnline, 2); err != nil {
				t.Fatal(err)
			}
			agents = append(agents, a)
		}
		// Each agent: a chat in progress and a pending offer.
		var convs []string
		for i, a := range agents {
			for j := range 2 {
				c := f.escalate(t, fmt.Sprintf("lapse-%d-%d", i, j))
				convs = append(convs, c.ID)
				o, err := st.CreateOffer(ctx, models.NewOffer{ConversationID: c.ID, AgentID: a.ID, PayMinor: 450, Currency: "USD",
					Explanation: "{}", Timeout: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if j == 0 {
					if _, _, err := st.AcceptOffer(ctx, a.ID, o.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		db.Clock.Advance(61 * time.Second)
		withdrawn, requeued, offline := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for call, want := range []int{2, 1, 0} {
			r, err := st.LapsePresence(ctx, 30*time.Second, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Withdrawn) != want || len(r.Offline) != want || len(r.Requeued) != want {
				t.Fatalf("call %d: withdrew %d offers, set %d agents offline, requeued %d chats; want %d each",
					call+1, len(r.Withdrawn), len(r.Offline), len(r.Requeued), want)
			}
			for _, o := range r.Withdrawn {
				if withdrawn[o.ID] {
					t.Fatalf("offer %s withdrawn twice", o.ID)
				}
				withdrawn[o.ID] = true
			}
			for _, c := range r.Requeued {
				requeued[c.ID] = true
			}
			for _, id := range r.Offline {
				offline[id] = true
			}
		}
		if len(withdrawn) != 3 || len(requeued) != 3 || len(offline) != 3 {
			t.Fatalf("withdrew %d, requeued %d, set offline %d; want 3 each", len(withdrawn), len(requeued), len(offline))
		}
		for _, a := range agents {
			got, err := st.Agent(ctx, a.ID)
			if err != nil || got.Presence != models.PresenceOffline {
				t.Errorf("agent %s is %v (%v); want offline", a.ID, got.Presence, err)
			}
		}
		for _, id := range convs {
			if got := convStatus(t, db, id); got != models.ConvQueued {
				t.Errorf("conversation %s is %s; want queued", id, got)
			}
		}
		checkOffers(t, db)
	})
}
