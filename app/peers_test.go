package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// peerReadKey marks the reads a test's deliveries make.
type peerReadKey struct{}

// Another instance's news of a conversation names its brand, so this
// instance reads the conversation only when someone here listens to it or
// to its brand; news without a brand (from an instance older than this
// rule) is read as before.
func TestPeerConversationNewsReadOnlyWhenWatched(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		srv := w.ts.srv
		c := w.escalate(t, "chat-1")
		var reads atomic.Int64
		if err := srv.store.DB.Callback().Query().After("gorm:query").Register("test:peer_reads", func(tx *gorm.DB) {
			if tx.Statement.Context.Value(peerReadKey{}) != nil && tx.Statement.Table == "conversations" {
				reads.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		ctx := context.WithValue(context.Background(), peerReadKey{}, true)
		p := &peers{s: srv}
		deliver := func(ev peerEvent, wantReads int64) {
			t.Helper()
			reads.Store(0)
			p.deliverBatch(ctx, []peerEvent{ev})
			if got := reads.Load(); got != wantReads {
				t.Errorf("%+v read the conversation %d times; want %d", ev, got, wantReads)
			}
		}
		ev := peerEvent{K: "c", C: c.ID, B: w.brand.ID}
		deliver(ev, 0) // nobody here listens

		dashboard := srv.hub.Subscribe(brandTopic(w.brand.ID))
		defer srv.hub.Unsubscribe(dashboard)
		deliver(ev, 1)
		select {
		case f := <-dashboard.C:
			if !strings.Contains(string(f), `"conversation"`) || !strings.Contains(string(f), c.ID) {
				t.Errorf("the brand's dashboard got %s; want the conversation's frame", f)
			}
		default:
			t.Error("the brand's dashboard got no frame")
		}
		srv.hub.Unsubscribe(dashboard)

		customer := srv.hub.Subscribe(convTopic(c.ID))
		defer srv.hub.Unsubscribe(customer)
		deliver(ev, 1)
		if len(customer.C) != 1 {
			t.Errorf("the customer got %d frames; want the conversation's frame", len(customer.C))
		}
		srv.hub.Unsubscribe(customer)

		deliver(peerEvent{K: "c", C: c.ID}, 1) // no brand: read, then nobody to tell
	})
}

// Another instance's batch is delivered in its order, the rows it names
// read together: one statement each for its messages, offers and
// conversations, however many events name them, and none for those nobody
// here listens to.
func TestPeerBatchReadsTogether(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		srv, st := w.ts.srv, db.Store
		bg := context.Background()
		for _, a := range []*models.Agent{w.maya, w.tom} {
			if err := st.SetPresence(bg, a.ID, models.PresenceOnline); err != nil {
				t.Fatal(err)
			}
		}
		c1, c2 := w.escalate(t, "chat-1"), w.escalate(t, "chat-2")
		w.pass(t)
		offerOf := func(convID string) models.Offer {
			t.Helper()
			os, err := st.Offers(bg, convID)
			if err != nil || len(os) != 1 {
				t.Fatalf("offers of %s: %v, %v; want one", convID, os, err)
			}
			return os[0]
		}
		o1, o2 := offerOf(c1.ID), offerOf(c2.ID)
		if _, _, err := st.AcceptOffer(bg, o1.AgentID, o1.ID); err != nil {
			t.Fatal(err)
		}
		var seqs []int
		for _, text := range []string{"first", "second"} {
			m, _, err := st.AddMessage(bg, c1.ID, models.SenderCustomer, "", "", text)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, m.Seq)
		}

		reads := map[string]int{}
		var mu sync.Mutex
		if err := st.DB.Callback().Query().After("gorm:query").Register("test:batch_reads", func(tx *gorm.DB) {
			if tx.Statement.Context.Value(peerReadKey{}) != nil && tx.Statement.Table != "brands" && tx.Statement.Table != "agents" {
				mu.Lock()
				reads[tx.Statement.Table]++
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
		customer := srv.hub.Subscribe(convTopic(c1.ID))
		defer srv.hub.Unsubscribe(customer)
		agent := srv.hub.Subscribe(agentTopic(o2.AgentID))
		defer srv.hub.Unsubscribe(agent)
		dashboard := srv.hub.Subscribe(brandTopic(w.brand.ID))
		defer srv.hub.Unsubscribe(dashboard)

		ctx := context.WithValue(bg, peerReadKey{}, true)
		(&peers{s: srv}).deliverBatch(ctx, []peerEvent{
			{K: "m", C: c1.ID, S: seqs[0]},
			{K: "o", O: o2.ID, A: o2.AgentID, C: c2.ID},
			{K: "c", C: c2.ID, B: w.brand.ID},
			{K: "m", C: c1.ID, S: seqs[1]},
			{K: "m", C: c2.ID, S: 1},                    // nobody here listens to chat-2's chat
			{K: "o", O: o1.ID, A: o1.AgentID, C: c1.ID}, // nor to its agent (and it was accepted)
			{K: "f", T: agentTopic(o2.AgentID), Y: "presence", D: json.RawMessage(`{"presence":"online"}`)},
		})
		want := map[string]int{"messages": 1, "offers": 1, "conversations": 1}
		mu.Lock()
		if fmt.Sprint(reads) != fmt.Sprint(want) {
			t.Errorf("reads by table %v; want %v", reads, want)
		}
		mu.Unlock()
		frames := func(sub <-chan []byte) (out []string) {
			for len(sub) > 0 {
				out = append(out, string(<-sub))
			}
			return out
		}
		got := frames(customer.C)
		if len(got) != 2 || !strings.Contains(got[0], `"first"`) || !strings.Contains(got[1], `"second"`) {
			t.Errorf("the customer got %q; want the two messages in order", got)
		}
		got = frames(agent.C)
		if len(got) != 2 || !strings.Contains(got[0], `"offer"`) || !strings.Contains(got[0], c2.ID) || !strings.Contains(got[1], `"presence"`) {
			t.Errorf("the agent got %q; want the offer card of chat-2, then the presence frame", got)
		}
		got = frames(dashboard.C)
		if len(got) != 1 || !strings.Contains(got[0], `"conversation"`) || !strings.Contains(got[0], c2.ID) {
			t.Errorf("the dashboard got %q; want chat-2's conversation frame", got)
		}

		// An offer from an older instance names no conversation: it is
		// read after the offer.
		mu.Lock()
		clear(reads)
		mu.Unlock()
		(&peers{s: srv}).deliverBatch(ctx, []peerEvent{{K: "o", O: o2.ID, A: o2.AgentID}})
		mu.Lock()
		if fmt.Sprint(reads) != fmt.Sprint(map[string]int{"offers": 1, "conversations": 1}) {
			t.Errorf("an older instance's offer: reads by table %v; want the offer, then its conversation", reads)
		}
		mu.Unlock()
		if got = frames(agent.C); len(got) != 1 || !strings.Contains(got[0], `"offer"`) || !strings.Contains(got[0], c2.ID) {
			t.Errorf("an older instance's offer: the agent got %q; want chat-2's offer card", got)
		}
	})
}

// An instance knows its own batches, which PostgreSQL sends back to its
// listener, from their first bytes, and no other instance's; a payload is
// the JSON of its batch, as the listeners decode it.
func TestPeersKnowTheirOwnBatches(t *testing.T) {
	p := &peers{id: models.NewID()}
	other := &peers{id: models.NewID()}
	for _, events := range [][]peerEvent{{}, {{K: "c", C: models.NewID(), B: models.NewID()}}, {{K: "k"}, {K: "x", A: p.id}},
		{{K: "f", T: "agent:a", Y: "offer.expired", D: json.RawMessage(`{"notice":"<b>&</b>"}`)}, {K: "m", C: "c", S: 7}}} {
		encoded := make([][]byte, len(events))
		for i, ev := range events {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			encoded[i] = b
		}
		mine, theirs := p.payload(nil, encoded, false), other.payload(nil, encoded, true)
		if !p.own(string(mine)) || p.own(string(theirs)) || other.own(string(mine)) {
			t.Fatalf("own(%s) = %v, own(%s) = %v; want true, false", mine, p.own(string(mine)), theirs, p.own(string(theirs)))
		}
		var got peerBatch
		if err := json.Unmarshal(mine, &got); err != nil {
			t.Fatalf("payload %s: %v", mine, err)
		}
		var gap peerBatch
		if err := json.Unmarshal(theirs, &gap); err != nil || !gap.Gap || got.Gap {
			t.Fatalf("payloads %s and %s: gap %v and %v (%v); want false and true", mine, theirs, got.Gap, gap.Gap, err)
		}
		// Compared as JSON: a frame's data comes back HTML-escaped.
		again, _ := json.Marshal(got)
		want, _ := json.Marshal(peerBatch{From: p.id, Events: events})
		if string(again) != string(want) {
			t.Fatalf("payload %s decodes to %s; want %s", mine, again, want)
		}
	}
	if p.own("") || p.own(`{"e":[],"i":"`+p.id+`"}`) {
		t.Fatal("own took a payload that does not start with this instance's id")
	}
}

// batchEvents sends an event at once when no batch went within the
// interval, holds the events that follow it for the rest of the interval,
// and caps a batch at notifyMaxBytes of encoded events, measured (the
// estimate it used before missed the brand id of conversation news, and
// full batches of those went over PostgreSQL's 8,000 bytes), keeping the
// order and dropping only an event no batch could hold.
func TestBatchEvents(t *testing.T) {
	collect := func(out chan<- []peerEvent) func([][]byte) {
		return func(b [][]byte) {
			evs := make([]peerEvent, len(b))
			for i, e := range b {
				if err := json.Unmarshal(e, &evs[i]); err != nil {
					panic(err)
				}
			}
			out <- evs
		}
	}
	ids := func(evs []peerEvent) []string {
		out := make([]string, len(evs))
		for i, ev := range evs {
			out[i] = ev.C
		}
		return out
	}
	noneTooLarge := func(t *testing.T) func(peerEvent, string) {
		return func(ev peerEvent, why string) { t.Errorf("event %s dropped: %s", ev.C, why) }
	}
	t.Run("leading edge", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		in, out := make(chan peerEvent, 10), make(chan []peerEvent, 10)
		returned := make(chan struct{})
		go func() { batchEvents(ctx, in, time.Hour, collect(out), noneTooLarge(t)); close(returned) }()
		in <- peerEvent{K: "c", C: "e1"}
		if got := ids(<-out); fmt.Sprint(got) != "[e1]" {
			t.Fatalf("first batch %v; want [e1], sent without waiting the hour", got)
		}
		in <- peerEvent{K: "c", C: "e2"} // within the hour: held
		in <- peerEvent{K: "c", C: "e3"}
		for len(in) > 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-returned
		if len(out) != 0 {
			t.Fatalf("sent %v within the interval; want the events held", ids(<-out))
		}
	})
	t.Run("cap and order", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const n = 500
		in, out := make(chan peerEvent, n), make(chan []peerEvent, n)
		// Conversation news with its brand, of the length of real ids,
		// and, every seventh, an expiry notice: the longest frames sent.
		brand, notice := models.NewID(), json.RawMessage(`{"offer_id":"`+models.NewID()+`","set_away":true,"notice":"You missed two offers in a row, so we set you away. Go online again when you are ready."}`)
		total := 0
		for i := range n {
			ev := peerEvent{K: "c", C: fmt.Sprintf("%s-%05d", models.NewID(), i), B: brand}
			if i%7 == 0 {
				ev = peerEvent{K: "f", C: ev.C, T: "agent:" + brand, Y: "offer.expired", D: notice}
			}
			b, _ := json.Marshal(ev)
			total += len(b) + 1
			in <- ev
		}
		go batchEvents(ctx, in, time.Millisecond, collect(out), noneTooLarge(t))
		p := &peers{id: models.NewID()}
		next, batches := 0, 0
		for next < n {
			b := <-out
			batches++
			encoded := make([][]byte, len(b))
			for i, ev := range b {
				encoded[i], _ = json.Marshal(ev)
				if want := fmt.Sprintf("-%05d", next); !strings.HasSuffix(ev.C, want) {
					t.Fatalf("event %s came as #%d; want the one ending %s (in order)", ev.C, next, want)
				}
				next++
			}
			if size := len(p.payload(nil, encoded, true)); size >= 8000 || size > notifyMaxBytes+100 {
				t.Fatalf("a batch of %d events is a payload of %d bytes; PostgreSQL takes less than 8,000", len(b), size)
			}
		}
		if least := total / notifyMaxBytes; batches < least {
			t.Fatalf("%d batches for %d events (%d bytes); want at least %d", batches, n, total, least)
		}
	})
	t.Run("too large", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		in, out := make(chan peerEvent, 3), make(chan []peerEvent, 3)
		var dropped []string
		var mu sync.Mutex
		go batchEvents(ctx, in, time.Millisecond, collect(out), func(ev peerEvent, why string) {
			mu.Lock()
			defer mu.Unlock()
			dropped = append(dropped, ev.C+": "+why)
		})
		in <- peerEvent{K: "f", C: "big", D: json.RawMessage(`"` + strings.Repeat("x", notifyMaxBytes) + `"`)}
		in <- peerEvent{K: "f", C: "broken", D: json.RawMessage(`{not json`)}
		in <- peerEvent{K: "c", C: "small"}
		if got := ids(<-out); fmt.Sprint(got) != "[small]" {
			t.Fatalf("batch %v; want [small], the large and the broken event dropped", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dropped) != 2 || !strings.HasPrefix(dropped[0], "big: 7") || !strings.Contains(dropped[0], "over the batch's") ||
			!strings.HasPrefix(dropped[1], "broken: ") {
			t.Fatalf("dropped %q; want big (too large), then broken (not JSON)", dropped)
		}
	})
}

// Full batches of the longest events go through PostgreSQL's NOTIFY whole:
// 500 events queued at once (a sender that fell behind) reach a listener,
// all of them, in order, and nothing is logged as failed.
func TestPeersNotifyFullBatches(t *testing.T) {
	ts, p, conn, ctx := peersAndListener(t)
	const n = 500
	brand := models.NewID()
	for i := range n {
		ev := peerEvent{K: "c", C: fmt.Sprintf("%s-%05d", models.NewID(), i), B: brand}
		if i%5 == 0 {
			ev = peerEvent{K: "o", O: models.NewID(), A: models.NewID(), C: ev.C}
		}
		p.notify(ev)
	}
	go p.send(ctx)
	got, payloads := 0, 0
	for got < n {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events in %d payloads: %v; the server's log:\n%s", got, n, payloads, err, ts.log.String())
		}
		if !p.own(msg.Payload) {
			continue // another test's instance on this database
		}
		payloads++
		var b peerBatch
		if err := json.Unmarshal([]byte(msg.Payload), &b); err != nil {
			t.Fatal(err)
		}
		for _, ev := range b.Events {
			if want := fmt.Sprintf("-%05d", got); !strings.HasSuffix(ev.C, want) {
				t.Fatalf("event %s came as #%d; want the one ending %s", ev.C, got, want)
			}
			got++
		}
	}
	if payloads < 2 || strings.Contains(ts.log.String(), "notify failed") || p.dropped.Load() != 0 {
		t.Fatalf("%d events in %d payloads, %d dropped; want several full payloads and no failure; log:\n%s", got, payloads, p.dropped.Load(), ts.log.String())
	}
}

// An instance that lost events it meant to send (its queue was full) says
// so in the next batch that goes, and only in that one.
func TestPeersAnnounceLostEvents(t *testing.T) {
	_, p, conn, ctx := peersAndListener(t)
	for i := range peerQueue + 3 {
		p.notify(peerEvent{K: "m", C: fmt.Sprintf("conversation-%05d", i), S: 1})
	}
	if d := p.dropped.Load(); d != 3 {
		t.Fatalf("%d events dropped; want the 3 past the queue's %d", d, peerQueue)
	}
	go p.send(ctx)
	var gaps []int
	got, payloads := 0, 0
	for got < peerQueue {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", got, peerQueue, err)
		}
		if !p.own(msg.Payload) {
			continue
		}
		var b peerBatch
		if err := json.Unmarshal([]byte(msg.Payload), &b); err != nil {
			t.Fatal(err)
		}
		if b.Gap {
			gaps = append(gaps, payloads)
		}
		payloads++
		got += len(b.Events)
	}
	if fmt.Sprint(gaps) != "[0]" {
		t.Fatalf("payloads %v of %d said events were lost; want the first only", gaps, payloads)
	}
}

// A batch from another instance that lost events closes every socket here,
// so their clients resume from the database; one that lost nothing does
// not.
func TestPeersResyncOnAnotherInstancesGap(t *testing.T) {
	ts := newTestServer(t, modeltest.SQLite(t))
	srv := ts.srv
	p := &peers{s: srv, id: models.NewID(), log: srv.log}
	other := &peers{id: models.NewID()}
	ev, _ := json.Marshal(peerEvent{K: "c", C: "conversation-1"})
	sub := srv.hub.Subscribe(agentTopic("agent-1"))
	defer srv.hub.Unsubscribe(sub)
	p.deliverPayloads(context.Background(), []peerPayload{{data: string(other.payload(nil, [][]byte{ev}, false)), at: time.Now()}})
	select {
	case _, open := <-sub.C:
		t.Fatalf("a batch without a gap touched the socket (open %v)", open)
	default:
	}
	p.deliverPayloads(context.Background(), []peerPayload{{data: string(other.payload(nil, [][]byte{ev}, true)), at: time.Now()}})
	if _, open := <-sub.C; open {
		t.Fatal("the socket got a frame; want it closed after another instance's gap")
	}
	if !strings.Contains(ts.log.String(), "another instance lost events") {
		t.Fatalf("nothing logged; log:\n%s", ts.log.String())
	}
}

// peersAndListener returns a test server on a fresh PostgreSQL schema, its
// peers (not yet sending), a connection listening on their channel, and a
// context that ends the test after 30 s.
func peersAndListener(t *testing.T) (*testServer, *peers, *pgx.Conn, context.Context) {
	t.Helper()
	db := modeltest.Postgres(t)
	ts := newTestServer(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		t.Fatal(err)
	}
	return ts, ts.srv.peers, conn, ctx
}

// What the listener receives while the deliverer is busy waits in the
// inbox, and the deliverer takes all of it at once: the events of every
// payload waiting share one read of their messages, in the order
// received. A payload whose sender lost events is delivered after the
// ones before it, once this instance has resynchronised; a full inbox is
// emptied and this instance resynchronises too.
func TestPeersDeliverWhatWaitedTogether(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		srv, st := w.ts.srv, db.Store
		bg := context.Background()
		c := w.escalate(t, "chat-1")
		var seqs []int
		for _, text := range []string{"first", "second", "third", "fourth"} {
			m, _, err := st.AddMessage(bg, c.ID, models.SenderCustomer, "", "", text)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, m.Seq)
		}
		var reads, convReads atomic.Int64 // of messages, of conversations
		if err := st.DB.Callback().Query().After("gorm:query").Register("test:waited_reads", func(tx *gorm.DB) {
			if tx.Statement.Context.Value(peerReadKey{}) == nil {
				return
			}
			switch tx.Statement.Table {
			case "messages":
				reads.Add(1)
			case "conversations":
				convReads.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		other := &peers{id: models.NewID()}
		payload := func(seq int, gap bool) string {
			ev, _ := json.Marshal(peerEvent{K: "m", C: c.ID, S: seq})
			return string(other.payload(nil, [][]byte{ev}, gap))
		}
		// run lets the deliverer deliver what waits in the inbox, then
		// stops it.
		run := func(p *peers) {
			ctx, cancel := context.WithCancel(context.WithValue(bg, peerReadKey{}, true))
			done := make(chan struct{})
			go func() { defer close(done); p.deliver(ctx) }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				p.inMu.Lock()
				idle := len(p.inbox) == 0 && p.inflight.IsZero() && len(p.toDeliver) == 0
				p.inMu.Unlock()
				if idle {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the deliverer did not deliver what waited")
				}
			}
			cancel()
			<-done
		}
		frames := func(sub <-chan []byte) (out []string, open bool) {
			for {
				select {
				case f, ok := <-sub:
					if !ok {
						return out, false
					}
					out = append(out, string(f))
				default:
					return out, true
				}
			}
		}

		p := newPeers(srv)
		customer := srv.hub.Subscribe(convTopic(c.ID))
		defer srv.hub.Unsubscribe(customer)
		p.enqueue(payload(seqs[0], false), time.Now())
		p.enqueue(payload(seqs[1], false), time.Now())
		p.enqueue(payload(seqs[2], false), time.Now())
		run(p)
		got, open := frames(customer.C)
		if len(got) != 3 || !strings.Contains(got[0], `"first"`) || !strings.Contains(got[1], `"second"`) || !strings.Contains(got[2], `"third"`) || !open {
			t.Fatalf("the customer got %q (open %v); want the three messages in order", got, open)
		}
		if n := reads.Swap(0); n != 1 {
			t.Errorf("%d reads of messages for three payloads that waited together; want 1", n)
		}

		// A gap in the middle: the events before it first, then the
		// sockets closed (so the gap's own message has nobody here to
		// read it for).
		p = newPeers(srv)
		customer2 := srv.hub.Subscribe(convTopic(c.ID))
		defer srv.hub.Unsubscribe(customer2)
		p.enqueue(payload(seqs[0], false), time.Now())
		p.enqueue(payload(seqs[1], true), time.Now())
		run(p)
		got, open = frames(customer2.C)
		if len(got) != 1 || !strings.Contains(got[0], `"first"`) || open {
			t.Fatalf("the customer got %q (open %v); want the first message, then the socket closed", got, open)
		}
		if n := reads.Swap(0); n != 1 {
			t.Errorf("%d reads of messages around a gap; want 1, before it", n)
		}
		if !strings.Contains(w.ts.log.String(), "another instance lost events") {
			t.Errorf("the gap was not logged; log:\n%s", w.ts.log.String())
		}

		// A full inbox: what waited is dropped, the sockets closed, and
		// what came after delivered (news of a conversation without its
		// brand, which is read whoever listens).
		p = newPeers(srv)
		for range peerInboxMax {
			p.enqueue(payload(seqs[0], false), time.Now())
		}
		news, _ := json.Marshal(peerEvent{K: "c", C: c.ID})
		p.enqueue(string(other.payload(nil, [][]byte{news}, false)), time.Now())
		p.inMu.Lock()
		if !p.overflow || len(p.inbox) != 1 {
			t.Fatalf("overflow %v with %d waiting; want the inbox emptied and the last payload kept", p.overflow, len(p.inbox))
		}
		p.inMu.Unlock()
		customer3 := srv.hub.Subscribe(convTopic(c.ID))
		defer srv.hub.Unsubscribe(customer3)
		convReads.Store(0)
		run(p)
		if !strings.Contains(w.ts.log.String(), "batches from the others waited here") {
			t.Errorf("the overflow was not logged; log:\n%s", w.ts.log.String())
		}
		if _, open := frames(customer3.C); open {
			t.Error("a socket stayed open after the inbox overflowed")
		}
		if n, m := reads.Load(), convReads.Load(); n != 0 || m != 1 {
			t.Errorf("%d reads of messages and %d of conversations after an overflow; want 0 and 1 (the last payload)", n, m)
		}
	})
}

// Another instance's news is read through the dispatcher's pool, so it
// reaches the sockets here while every connection of the server's own
// pool is busy with requests.
func TestPeerReadsUseTheDispatchersPool(t *testing.T) {
	db := modeltest.Postgres(t)
	w := newLiveWorld(t, db, func(c *Config) { c.DispatchConns = 2 })
	srv, st := w.ts.srv, db.Store
	if srv.ds == st {
		t.Fatal("the dispatcher shares the server's pool; want one of its own")
	}
	bg := context.Background()
	c := w.escalate(t, "chat-1")
	m, _, err := st.AddMessage(bg, c.ID, models.SenderCustomer, "", "", "hello from there")
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := st.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	var held []*sql.Conn
	for range st.PoolStats().MaxOpenConnections {
		conn, err := sqlDB.Conn(bg)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	customer := srv.hub.Subscribe(convTopic(c.ID))
	defer srv.hub.Unsubscribe(customer)
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	(&peers{s: srv, log: srv.log}).deliverBatch(ctx, []peerEvent{{K: "m", C: c.ID, S: m.Seq}})
	select {
	case f := <-customer.C:
		if !strings.Contains(string(f), "hello from there") {
			t.Fatalf("the customer got %s; want the message", f)
		}
	default:
		t.Fatalf("no frame with the server's pool busy; log:\n%s", w.ts.log.String())
	}
}
