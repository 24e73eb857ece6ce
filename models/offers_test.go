package models_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// mustOnlineAgent creates an approved agent, online with the given capacity.
func mustOnlineAgent(tb testing.TB, db *modeltest.DB, op *models.User, email string, capacity int) *models.Agent {
	tb.Helper()
	a := mustApprovedAgent(tb, db, op, email)
	if err := db.Store.SetAvailability(context.Background(), a.ID, models.PresenceOnline, capacity); err != nil {
		tb.Fatalf("SetAvailability(%s): %v", email, err)
	}
	return a
}

// offerTo makes the dispatcher's decision to offer c to agent.
func (f *liveFixture) offerTo(c *models.Conversation, agent *models.Agent) models.NewOffer {
	return models.NewOffer{ConversationID: c.ID, AgentID: agent.ID, PayMinor: f.brand.PayRateMinor, SurgeMinor: 25,
		Currency: f.brand.Currency, Explanation: `{"why":"` + agent.ID + `"}`, Timeout: 20 * time.Second}
}

func mustCreateOffer(tb testing.TB, db *modeltest.DB, in models.NewOffer) *models.Offer {
	tb.Helper()
	o, err := db.Store.CreateOffer(context.Background(), in)
	if err != nil {
		tb.Fatalf("CreateOffer(%s to %s): %v", in.ConversationID, in.AgentID, err)
	}
	return o
}

func convStatus(tb testing.TB, db *modeltest.DB, id string) string {
	tb.Helper()
	c, err := db.Store.ConversationByID(context.Background(), id)
	if err != nil {
		tb.Fatalf("ConversationByID(%s): %v", id, err)
	}
	return c.Status
}

// sameRow fails unless got and want, pointers to structs of one type, hold
// equal fields; times compare as instants.
func sameRow(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := 0; i < g.NumField(); i++ {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		equal := reflect.DeepEqual(gf, wf)
		switch gt := gf.(type) {
		case time.Time:
			equal = gt.Equal(wf.(time.Time))
		case *time.Time:
			wt := wf.(*time.Time)
			equal = (gt == nil) == (wt == nil) && (gt == nil || gt.Equal(*wt))
		}
		if !equal {
			tb.Errorf("%s.%s = %v; want %v (as stored)", what, g.Type().Field(i).Name, show(gf), show(wf))
		}
	}
}

// wantMessage fails unless err says what the one-by-one accept said.
func wantMessage(tb testing.TB, err error, msg string) {
	tb.Helper()
	if err == nil || !strings.Contains(err.Error(), msg) {
		tb.Errorf("error %v; want it to say %q", err, msg)
	}
}

func show(v any) any {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}

// One batch holds a decision of every stale kind and decisions that
// compete for one agent or one conversation: exactly the offers one by one
// would make are made, the order decides between competitors, and every
// skipped conversation is still queued.
func TestCreateOffersMixedBatch(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		op := mustOperator(t, db)
		full := mustOnlineAgent(t, db, op, "full@agents.test", 1)
		away := mustOnlineAgent(t, db, op, "away@agents.test", 2)
		suspended := mustOnlineAgent(t, db, op, "suspended@agents.test", 2)
		busy := mustOnlineAgent(t, db, op, "busy@agents.test", 2)
		d := mustOnlineAgent(t, db, op, "d@agents.test", 2)
		e := mustOnlineAgent(t, db, op, "e@agents.test", 2)
		g := mustOnlineAgent(t, db, op, "g@agents.test", 2)

		// full has their one chat; busy has an offer waiting; away and
		// suspended changed after the dispatcher read them.
		chat := f.escalate(t, "full-chat")
		if _, _, err := db.Store.AcceptOffer(ctx, full.ID, mustCreateOffer(t, db, f.offerTo(chat, full)).ID); err != nil {
			t.Fatal(err)
		}
		offered := f.escalate(t, "offered")
		waiting := mustCreateOffer(t, db, f.offerTo(offered, busy))
		if err := db.Store.SetPresence(ctx, away.ID, models.PresenceAway); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Store.SuspendAgent(ctx, op.ID, suspended.ID, "test"); err != nil {
			t.Fatal(err)
		}
		gone := f.escalate(t, "gone")
		if _, err := db.Store.CancelConversation(ctx, f.brand.ID, gone.ID, "left"); err != nil {
			t.Fatal(err)
		}
		q := make([]*models.Conversation, 6)
		for i := range q {
			q[i] = f.escalate(t, fmt.Sprintf("q%d", i))
		}

		batch := []models.NewOffer{
			f.offerTo(gone, d),         // conversation no longer waiting
			f.offerTo(q[0], full),      // agent has no free seat
			f.offerTo(q[1], away),      // agent away
			f.offerTo(q[2], suspended), // agent suspended (and offline)
			f.offerTo(q[3], busy),      // agent already has a pending offer
			f.offerTo(offered, e),      // conversation already has a pending offer
			f.offerTo(q[4], d),         // made
			f.offerTo(q[5], d),         // d now has a pending offer: skipped
			f.offerTo(q[5], e),         // so q5 goes to e
			f.offerTo(q[4], g),         // q4 is taken: skipped
		}
		made, err := db.Store.CreateOffers(ctx, batch)
		if err != nil {
			t.Fatalf("CreateOffers: %v", err)
		}
		want := []models.NewOffer{batch[6], batch[8]}
		if len(made) != len(want) {
			t.Fatalf("made %d offers %+v; want %d", len(made), made, len(want))
		}
		for i, w := range want {
			o := made[i]
			if o.ConversationID != w.ConversationID || o.AgentID != w.AgentID || o.Status != models.OfferPending ||
				o.PayMinor != w.PayMinor || o.SurgeMinor != w.SurgeMinor || o.Currency != w.Currency || o.Explanation != w.Explanation ||
				!o.CreatedAt.Equal(db.Clock.Now()) || !o.ExpiresAt.Equal(db.Clock.Now().Add(w.Timeout)) || o.AnsweredAt != nil {
				t.Errorf("made[%d] = %+v; want the offer of %s to %s", i, o, w.ConversationID, w.AgentID)
			}
			stored, err := db.Store.Offer(ctx, o.ID)
			if err != nil {
				t.Fatalf("made[%d] is not stored: %v", i, err)
			}
			sameRow(t, fmt.Sprintf("made[%d]", i), &o, stored)
		}
		for c, status := range map[*models.Conversation]string{
			gone: models.ConvAbandoned, offered: models.ConvOffered,
			q[0]: models.ConvQueued, q[1]: models.ConvQueued, q[2]: models.ConvQueued, q[3]: models.ConvQueued,
			q[4]: models.ConvOffered, q[5]: models.ConvOffered,
		} {
			if got := convStatus(t, db, c.ID); got != status {
				t.Errorf("conversation %s is %s; want %s", c.ExternalID, got, status)
			}
		}
		if o, _ := db.Store.PendingOffer(ctx, busy.ID); o == nil || o.ID != waiting.ID {
			t.Errorf("busy's pending offer = %+v; want the one made before the batch", o)
		}
		if n := count(t, db, "offers", "status = ?", models.OfferPending); n != 3 {
			t.Errorf("pending offers = %d; want 3 (busy's and the two made)", n)
		}
	})
}

// A decision for an agent that does not exist fails the batch, as it always
// has, and makes none of its offers.
func TestCreateOffersUnknownAgent(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		a, b := f.escalate(t, "a"), f.escalate(t, "b")
		ghost := &models.Agent{ID: "01900000-0000-7000-8000-000000000000"}
		made, err := db.Store.CreateOffers(context.Background(), []models.NewOffer{f.offerTo(a, f.agent), f.offerTo(b, ghost)})
		if !errors.Is(err, models.ErrNotFound) || made != nil {
			t.Fatalf("CreateOffers with an unknown agent = %+v, %v; want ErrNotFound", made, err)
		}
		if n := count(t, db, "offers", ""); n != 0 {
			t.Fatalf("offers = %d; want none", n)
		}
		for _, c := range []*models.Conversation{a, b} {
			if got := convStatus(t, db, c.ID); got != models.ConvQueued {
				t.Fatalf("conversation %s is %s; want queued", c.ExternalID, got)
			}
		}
	})
}

// The accept answers with the offer and the conversation as stored, every
// column included.
func TestAcceptOfferReturnsStoredRows(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		c := f.escalate(t, "rows")
		o := f.offer(t, c)
		db.Clock.Advance(3 * time.Second)
		gotO, gotC, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
		if err != nil {
			t.Fatalf("AcceptOffer: %v", err)
		}
		wantO, err := db.Store.Offer(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantC, err := db.Store.ConversationByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, "offer", gotO, wantO)
		sameRow(t, "conversation", gotC, wantC)
		now := db.Clock.Now()
		if gotO.Status != models.OfferAccepted || gotO.AnsweredAt == nil || !gotO.AnsweredAt.Equal(now) ||
			gotC.Status != models.ConvActive || gotC.AgentID == nil || *gotC.AgentID != f.agent.ID ||
			gotC.AssignedAt == nil || !gotC.AssignedAt.Equal(now) || gotC.LastSeq != 2 || gotC.Summary != "Charged twice" {
			t.Fatalf("accepted offer %+v, conversation %+v; want accepted now, active with the agent", gotO, gotC)
		}
		_, _, err = db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
		wantErr(t, "second AcceptOffer", err, models.ErrConflict)
		wantMessage(t, err, "offer already accepted")
	})
}

// An accept that is refused changes nothing: the offer stays pending, the
// conversation offered, and the agent's run of missed offers is kept.
func TestAcceptOfferRefusedChangesNothing(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		first := f.offer(t, f.escalate(t, "first"))
		if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, first.ID); err != nil {
			t.Fatal(err)
		}
		c := f.escalate(t, "second")
		o := f.offer(t, c)
		if err := db.Store.DB.Exec("UPDATE agents SET missed_offers = 1 WHERE id = ?", f.agent.ID).Error; err != nil {
			t.Fatal(err)
		}
		before, err := db.Store.Agent(ctx, f.agent.ID)
		if err != nil {
			t.Fatal(err)
		}
		db.Clock.Advance(time.Second)
		check := func(t *testing.T, wantConv string) {
			t.Helper()
			if got, _ := db.Store.Offer(ctx, o.ID); got.Status != models.OfferPending || got.AnsweredAt != nil {
				t.Errorf("offer %s answered %v; want still pending", got.Status, got.AnsweredAt)
			}
			if got := convStatus(t, db, c.ID); got != wantConv {
				t.Errorf("conversation %s; want %s", got, wantConv)
			}
			a, _ := db.Store.Agent(ctx, f.agent.ID)
			if a.MissedOffers != 1 || !a.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("agent missed %d, updated %v; want 1 and %v: a refused accept must not touch them", a.MissedOffers, a.UpdatedAt, before.UpdatedAt)
			}
		}
		t.Run("ErrNoFreeSeat", func(t *testing.T) {
			if err := db.Store.DB.Exec("UPDATE agents SET max_concurrent = 1 WHERE id = ?", f.agent.ID).Error; err != nil {
				t.Fatal(err)
			}
			_, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
			wantErr(t, "AcceptOffer beyond capacity", err, models.ErrConflict)
			wantMessage(t, err, "agent has no free seat")
			check(t, models.ConvOffered)
			if err := db.Store.DB.Exec("UPDATE agents SET max_concurrent = 2 WHERE id = ?", f.agent.ID).Error; err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ErrConversationNotOffered", func(t *testing.T) {
			// Not a state the store leaves, but the accept must still check it.
			if err := db.Store.DB.Exec("UPDATE conversations SET status = 'queued' WHERE id = ?", c.ID).Error; err != nil {
				t.Fatal(err)
			}
			_, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
			wantErr(t, "AcceptOffer of a conversation not offered", err, models.ErrConflict)
			wantMessage(t, err, "conversation no longer waiting")
			check(t, models.ConvQueued)
		})
		t.Run("ErrUnknownOffer", func(t *testing.T) {
			_, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, "01900000-0000-7000-8000-000000000000")
			wantErr(t, "AcceptOffer of an unknown offer", err, models.ErrNotFound)
			wantMessage(t, err, "offer: not found")
			check(t, models.ConvQueued)
		})
	})
}

// An accept and an offer pass race for an agent with one seat and an offer
// waiting: whichever goes first, the agent never ends up with an offer they
// have no seat for, nor more chats than seats.
func TestAcceptRacingCreateOffers(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 1); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			x := f.escalate(t, fmt.Sprintf("x%d", i))
			o := f.offer(t, x)
			y := f.escalate(t, fmt.Sprintf("y%d", i))
			var wg sync.WaitGroup
			var acceptErr, offerErr error
			var made []models.Offer
			wg.Add(2)
			go func() { defer wg.Done(); _, _, acceptErr = db.Store.AcceptOffer(ctx, f.agent.ID, o.ID) }()
			go func() {
				defer wg.Done()
				made, offerErr = db.Store.CreateOffers(ctx, []models.NewOffer{f.offerTo(y, f.agent)})
			}()
			wg.Wait()
			if acceptErr != nil || offerErr != nil {
				t.Fatalf("round %d: accept %v, offers %v; want both to succeed", i, acceptErr, offerErr)
			}
			if len(made) != 0 {
				t.Fatalf("round %d: made %+v to an agent whose one seat the accept took", i, made)
			}
			if n := count(t, db, "conversations", "agent_id = ? AND status = ?", f.agent.ID, models.ConvActive); n != 1 {
				t.Fatalf("round %d: agent has %d chats; want 1", i, n)
			}
			if got := convStatus(t, db, y.ID); got != models.ConvQueued {
				t.Fatalf("round %d: y is %s; want queued", i, got)
			}
			if _, _, err := db.Store.ResolveConversation(ctx, f.agent.ID, x.ID, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Store.CancelConversation(ctx, f.brand.ID, y.ID, "next round"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// inFlight is a PostgreSQL transaction of the test's own, on a connection
// of its own, run statement by statement: another writer in flight, which
// the test stops between two of its statements.
type inFlight struct {
	t   *testing.T
	db  *modeltest.DB
	tx  *sql.Tx
	pid int // its backend, to find who waits for it
}

func beginInFlight(t *testing.T, db *modeltest.DB) *inFlight {
	t.Helper()
	sqlDB, err := db.Store.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := sqlDB.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	f := &inFlight{t: t, db: db, tx: tx}
	if err := tx.QueryRow("SELECT pg_backend_pid()").Scan(&f.pid); err != nil {
		t.Fatal(err)
	}
	return f
}

// exec runs one statement, which does what says.
func (f *inFlight) exec(what, query string, args ...any) {
	f.t.Helper()
	if _, err := f.tx.Exec(query, args...); err != nil {
		f.t.Fatalf("in-flight transaction: %s: %v", what, err)
	}
}

// waitBlocked returns once another session waits for a lock the
// transaction holds.
func (f *inFlight) waitBlocked() {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var n int
		if err := f.db.Store.DB.Raw("SELECT count(*) FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))", f.pid).Scan(&n).Error; err != nil {
			f.t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	f.t.Fatal("nothing waited for the in-flight transaction")
}

func (f *inFlight) commit() {
	f.t.Helper()
	if err := f.tx.Commit(); err != nil {
		f.t.Fatalf("in-flight transaction: commit: %v", err)
	}
}

// holdAgentLock starts a PostgreSQL transaction that locks the agent's row
// and runs stmts, as an accept or a capacity change in flight would. It
// returns a function that waits until another session is blocked behind it
// and a function that commits it.
func holdAgentLock(t *testing.T, db *modeltest.DB, agentID string, stmts ...string) (waitBlocked func(), commit func()) {
	t.Helper()
	f := beginInFlight(t, db)
	f.exec("lock the agent", "SELECT 1 FROM agents WHERE id = $1 FOR UPDATE", agentID)
	for _, s := range stmts {
		f.exec(s, s)
	}
	return f.waitBlocked, f.commit
}

// An offer pass that waits for the agent's row while an accept fills their
// last seat sees that chat once it has the lock: its count comes after the
// lock, not from a snapshot taken before it.
func TestCreateOffersCountsSeatsAfterLock(t *testing.T) {
	db := modeltest.Postgres(t)
	f := newLiveFixture(t, db)
	ctx := context.Background()
	if err := db.Store.SetAvailability(ctx, f.agent.ID, models.PresenceOnline, 1); err != nil {
		t.Fatal(err)
	}
	x := f.escalate(t, "x")
	o := f.offer(t, x)
	y := f.escalate(t, "y")
	// The accept of o, in flight.
	waitBlocked, commit := holdAgentLock(t, db, f.agent.ID,
		fmt.Sprintf("UPDATE offers SET status = 'accepted', answered_at = now() WHERE id = '%s'", o.ID),
		fmt.Sprintf("UPDATE conversations SET status = 'active', agent_id = '%s', assigned_at = now() WHERE id = '%s'", f.agent.ID, x.ID))
	type result struct {
		made []models.Offer
		err  error
	}
	done := make(chan result, 1)
	go func() {
		made, err := db.Store.CreateOffers(ctx, []models.NewOffer{f.offerTo(y, f.agent)})
		done <- result{made, err}
	}()
	waitBlocked()
	commit()
	r := <-done
	if r.err != nil || len(r.made) != 0 {
		t.Fatalf("CreateOffers after the accept committed = %+v, %v; want no offer: the agent's one seat is taken", r.made, r.err)
	}
	if got := convStatus(t, db, y.ID); got != models.ConvQueued {
		t.Fatalf("y is %s; want queued", got)
	}
}

// An accept that waits for the agent's row while their capacity drops sees
// the new capacity once it has the lock.
func TestAcceptOfferCountsSeatsAfterLock(t *testing.T) {
	db := modeltest.Postgres(t)
	f := newLiveFixture(t, db)
	ctx := context.Background()
	first := f.offer(t, f.escalate(t, "first"))
	if _, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	c := f.escalate(t, "second")
	o := f.offer(t, c)
	// The agent lowering their capacity to 1, in flight.
	waitBlocked, commit := holdAgentLock(t, db, f.agent.ID,
		fmt.Sprintf("UPDATE agents SET max_concurrent = 1 WHERE id = '%s'", f.agent.ID))
	done := make(chan error, 1)
	go func() {
		_, _, err := db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
		done <- err
	}()
	waitBlocked()
	commit()
	wantErr(t, "AcceptOffer after the capacity dropped", <-done, models.ErrConflict)
	if n := count(t, db, "conversations", "agent_id = ? AND status = ?", f.agent.ID, models.ConvActive); n != 1 {
		t.Fatalf("agent has %d chats; want 1", n)
	}
	if got := convStatus(t, db, c.ID); got != models.ConvOffered {
		t.Fatalf("conversation is %s; want still offered", got)
	}
}

// checkOffers fails unless the pending offers and the offered
// conversations agree: at most one pending offer per conversation and per
// agent, every pending offer's conversation offered, and every offered
// conversation with its pending offer.
func checkOffers(tb testing.TB, db *modeltest.DB) {
	tb.Helper()
	for _, c := range []struct{ what, query string }{
		{"conversations with two pending offers", `SELECT count(*) FROM (SELECT conversation_id FROM offers
			WHERE status = 'pending' GROUP BY conversation_id HAVING count(*) > 1) x`},
		{"agents with two pending offers", `SELECT count(*) FROM (SELECT agent_id FROM offers
			WHERE status = 'pending' GROUP BY agent_id HAVING count(*) > 1) x`},
		{"pending offers of conversations not offered", `SELECT count(*) FROM offers o
			JOIN conversations c ON c.id = o.conversation_id WHERE o.status = 'pending' AND c.status <> 'offered'`},
		{"offered conversations without a pending offer", `SELECT count(*) FROM conversations c
			WHERE c.status = 'offered' AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.conversation_id = c.id AND o.status = 'pending')`},
	} {
		var n int64
		if err := db.Store.DB.Raw(c.query).Scan(&n).Error; err != nil {
			tb.Fatalf("count %s: %v", c.what, err)
		}
		if n != 0 {
			tb.Errorf("%s: %d; want 0", c.what, n)
		}
	}
}

func offerStatus(tb testing.TB, db *modeltest.DB, id string) string {
	tb.Helper()
	o, err := db.Store.Offer(context.Background(), id)
	if err != nil {
		tb.Fatalf("Offer(%s): %v", id, err)
	}
	return o.Status
}

// The sweep's expiry, the agent's decline of the same offer and an offer
// pass for the same agent race, round after round: none of them fails (the
// decline may find the offer expired already) and the offers stay
// consistent with the conversations.
func TestExpireOffersRacingOfferWriters(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		f := newLiveFixture(t, db)
		ctx := context.Background()
		rounds := 50
		if db.Name == "sqlite" {
			rounds = 10 // one writer at a time: this checks the outcome, not the locks
		}
		for i := range rounds {
			x := f.escalate(t, fmt.Sprintf("x%d", i))
			o := f.offer(t, x)
			y := f.escalate(t, fmt.Sprintf("y%d", i))
			db.Clock.Advance(21 * time.Second) // o is due
			var wg sync.WaitGroup
			var expireErr, declineErr, offerErr error
			wg.Add(3)
			go func() { defer wg.Done(); _, expireErr = db.Store.ExpireOffers(ctx) }()
			go func() { defer wg.Done(); _, declineErr = db.Store.DeclineOffer(ctx, f.agent.ID, o.ID, "busy") }()
			go func() {
				defer wg.Done()
				_, offerErr = db.Store.CreateOffers(ctx, []models.NewOffer{f.offerTo(y, f.agent)})
			}()
			wg.Wait()
			if expireErr != nil || offerErr != nil || (declineErr != nil && !errors.Is(declineErr, models.ErrConflict)) {
				t.Fatalf("round %d: expire %v, decline %v, offers %v; want no error but a decline's conflict", i, expireErr, declineErr, offerErr)
			}
			checkOffers(t, db)
			status := offerStatus(t, db, o.ID)
			a, err := db.Store.Agent(ctx, f.agent.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case status == models.OfferExpired && declineErr != nil && a.MissedOffers == 1:
			case status == models.OfferDeclined && declineErr == nil && a.MissedOffers == 0:
			default:
				t.Fatalf("round %d: offer %s, decline %v, agent missed %d; want expired (a miss, the decline refused) or declined (no miss)",
					i, status, declineErr, a.MissedOffers)
			}
			if got := convStatus(t, db, x.ID); got != models.ConvQueued {
				t.Fatalf("round %d: x is %s; want queued", i, got)
			}
			for _, c := range []*models.Conversation{x, y} {
				if _, err := db.Store.CancelConversation(ctx, f.brand.ID, c.ID, "next round"); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Store.SetPresence(ctx, f.agent.ID, models.PresenceOnline); err != nil { // clears the miss
				t.Fatal(err)
			}
		}
	})
}

// The offer batch locks its agents' rows and then inserts their offers; an
// insert waits for an agent's pending offer that another transaction is
// changing (the partial unique index on pending offers). So a writer that
// changed the agent's pending offer and then asked for the agent's row
// would deadlock with it. Each writer here runs while a batch holds the
// agent's row, and the batch inserts once the writer waits for it: the
// writer must have waited before touching the offer, and both succeed.
func TestOfferWritersWaitForOfferBatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		after  time.Duration // from the offer to the write
		write  func(ctx context.Context, f *liveFixture, o *models.Offer) error
		offer  string // the offer's status afterwards
		conv   string // its conversation's
		missed int    // the agent's run of missed offers
	}{
		{"ExpireOffers", 21 * time.Second, func(ctx context.Context, f *liveFixture, o *models.Offer) error {
			_, err := f.db.Store.ExpireOffers(ctx)
			return err
		}, models.OfferExpired, models.ConvQueued, 1},
		{"DeclineOffer", 0, func(ctx context.Context, f *liveFixture, o *models.Offer) error {
			_, err := f.db.Store.DeclineOffer(ctx, f.agent.ID, o.ID, "busy")
			return err
		}, models.OfferDeclined, models.ConvQueued, 0},
		{"AcceptOffer", 0, func(ctx context.Context, f *liveFixture, o *models.Offer) error {
			_, _, err := f.db.Store.AcceptOffer(ctx, f.agent.ID, o.ID)
			return err
		}, models.OfferAccepted, models.ConvActive, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := modeltest.Postgres(t)
			f := newLiveFixture(t, db)
			ctx := context.Background()
			x := f.escalate(t, "x")
			o := f.offer(t, x)
			y := f.escalate(t, "y")
			db.Clock.Advance(tc.after)

			batch := beginInFlight(t, db)
			batch.exec("lock the agents", models.LockOfferAgentsSQL, []string{f.agent.ID})
			done := make(chan error, 1)
			go func() { done <- tc.write(ctx, f, o) }()
			batch.waitBlocked()
			now, n := db.Clock.Now(), f.offerTo(y, f.agent)
			batch.exec("make the offers", models.CreateOffersSQL, []string{models.NewID()}, []string{y.ID}, []string{f.agent.ID},
				[]int64{n.PayMinor}, []int64{n.SurgeMinor}, []string{n.Currency}, []string{n.Explanation}, []time.Time{now.Add(n.Timeout)}, now)
			batch.exec("requeue", models.CreateOffersRequeueSQL, []string{y.ID}, now)
			batch.commit()
			if err := <-done; err != nil {
				t.Fatalf("%s while an offer batch held the agent: %v; want success", tc.name, err)
			}

			checkOffers(t, db)
			if got := offerStatus(t, db, o.ID); got != tc.offer {
				t.Errorf("offer is %s; want %s", got, tc.offer)
			}
			if got := convStatus(t, db, x.ID); got != tc.conv {
				t.Errorf("x is %s; want %s", got, tc.conv)
			}
			// The batch met the agent's offer, still pending when it ran.
			if got := convStatus(t, db, y.ID); got != models.ConvQueued {
				t.Errorf("y is %s; want queued", got)
			}
			if a, _ := db.Store.Agent(ctx, f.agent.ID); a.MissedOffers != tc.missed {
				t.Errorf("agent missed %d offers; want %d", a.MissedOffers, tc.missed)
			}
		})
	}
}

// An expiry (as a decline or an accept) holds the agent's row, then the
// offer, then the conversation. So a writer that changed the conversation
// and then asked for its pending offer would deadlock with it. Each writer
// here runs while an expiry holds the agent and the offer, and the expiry
// requeues the conversation once the writer waits for it: the writer must
// have waited before touching the conversation, and both succeed.
func TestConversationWritersWaitForExpiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // from the offer to the write
		write func(ctx context.Context, f *liveFixture, c *models.Conversation) error
		conv  string // the conversation's status afterwards
	}{
		{"CancelConversation", 0, func(ctx context.Context, f *liveFixture, c *models.Conversation) error {
			_, err := f.db.Store.CancelConversation(ctx, f.brand.ID, c.ID, "left")
			return err
		}, models.ConvAbandoned},
		{"AbandonOverdue", 901 * time.Second, func(ctx context.Context, f *liveFixture, c *models.Conversation) error {
			done, rescinded, err := f.db.Store.AbandonOverdue(ctx)
			if err == nil && (len(done) != 1 || len(rescinded) != 0) {
				err = fmt.Errorf("abandoned %d, rescinded %d offers; want 1 and 0 (the offer expired)", len(done), len(rescinded))
			}
			return err
		}, models.ConvAbandoned},
		{"LapsePresence", 31 * time.Second, func(ctx context.Context, f *liveFixture, c *models.Conversation) error {
			r, err := f.db.Store.LapsePresence(ctx, 30*time.Second, time.Hour)
			if err == nil && len(r.Withdrawn) != 0 {
				err = fmt.Errorf("withdrew %d offers; want none (the offer expired)", len(r.Withdrawn))
			}
			return err
		}, models.ConvQueued},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := modeltest.Postgres(t)
			f := newLiveFixture(t, db)
			ctx := context.Background()
			x := f.escalate(t, "x")
			o := f.offer(t, x)
			db.Clock.Advance(tc.after)

			expiry := beginInFlight(t, db)
			now := db.Clock.Now()
			expiry.exec("lock the agent", "SELECT 1 FROM agents WHERE id = $1 FOR NO KEY UPDATE", f.agent.ID)
			expiry.exec("expire the offer", "UPDATE offers SET status = 'expired', answered_at = $2 WHERE id = $1 AND status = 'pending'", o.ID, now)
			done := make(chan error, 1)
			go func() { done <- tc.write(ctx, f, x) }()
			expiry.waitBlocked()
			expiry.exec("requeue", "UPDATE conversations SET status = 'queued', updated_at = $2 WHERE id = $1 AND status = 'offered'", x.ID, now)
			expiry.exec("count the miss", "UPDATE agents SET missed_offers = missed_offers + 1 WHERE id = $1", f.agent.ID)
			expiry.commit()
			if err := <-done; err != nil {
				t.Fatalf("%s while an expiry held the offer: %v; want success", tc.name, err)
			}

			checkOffers(t, db)
			if got := offerStatus(t, db, o.ID); got != models.OfferExpired {
				t.Errorf("offer is %s; want expired", got)
			}
			if got := convStatus(t, db, x.ID); got != tc.conv {
				t.Errorf("x is %s; want %s", got, tc.conv)
			}
		})
	}
}
