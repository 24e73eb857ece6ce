package app

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// With the board on, offer passes re-read only the agents something
// happened to; the events touch them, and a decision the board got wrong
// is skipped by the claim and corrected on the next pass.
func TestBoardFollowsEvents(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Hour })
		ctx := context.Background()
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		maya.next("hello")
		tom.next("hello")
		maya.send("presence", map[string]any{"status": "online", "capacity": 1})
		tom.send("presence", map[string]any{"status": "online", "capacity": 1})
		maya.next("presence")
		tom.next("presence")
		board := func() map[string]matching.Candidate {
			t.Helper()
			agents, release, err := w.ts.srv.boardAgents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			out := map[string]matching.Candidate{}
			for _, a := range agents {
				out[a.ID] = a
			}
			return out
		}
		offer := func() {
			t.Helper()
			if err := w.ts.srv.offerQueued(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if b := board(); len(b) != 2 || b[w.maya.ID].Capacity != 1 {
			t.Fatalf("board = %+v; want Maya and Tom, capacity 1", b)
		}

		// Maya (billing 5) gets the first chat and accepts: her seat is
		// taken, so the second chat goes to Tom on the very next pass.
		w.escalate(t, "chat-1")
		offer()
		card := decodeInto[offerCard](t, maya.next("offer"))
		if b := board(); !b[w.maya.ID].HasPendingOffer {
			t.Fatal("the board does not show the offer the pass just made")
		}
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		maya.next("offer.accepted")
		if b := board(); b[w.maya.ID].Active != 1 || b[w.maya.ID].HasPendingOffer {
			t.Fatalf("after the accept the board shows Maya %+v; want 1 active, no offer pending", b[w.maya.ID])
		}
		w.escalate(t, "chat-2")
		offer()
		tomCard := decodeInto[offerCard](t, tom.next("offer"))
		tom.send("offer.accept", map[string]string{"offer_id": tomCard.OfferID})
		tom.next("offer.accepted")

		// A change nobody told the board about (Maya's chat resolved
		// straight in the store) shows at the next full read at the latest.
		if _, _, err := db.Store.ResolveConversation(ctx, w.maya.ID, card.ConversationID, "done"); err != nil {
			t.Fatal(err)
		}
		w.escalate(t, "chat-3")
		offer()
		if got := maya.sync(); hasType(got, "offer") {
			t.Fatal("the board read Maya again without being told; want her left as she was until the full read")
		}
		if err := w.ts.srv.refreshBoard(ctx); err != nil { // the sweep's full read
			t.Fatal(err)
		}
		offer()
		card = decodeInto[offerCard](t, maya.next("offer"))
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		maya.next("offer.accepted")

		// A decision the board gets wrong: Tom is free on the board but
		// went away behind its back. The claim refuses him, the pass
		// re-reads him, and he is off the board; no offer reached him.
		tom.send("resolve", map[string]string{"conversation_id": tomCard.ConversationID, "note": "done"})
		tom.next("resolved")
		if b := board(); b[w.tom.ID].Presence != models.PresenceOnline || b[w.tom.ID].Active != 0 {
			t.Fatalf("board shows Tom %+v; want him free and online, as it last read him", b[w.tom.ID])
		}
		if err := db.Store.SetPresence(ctx, w.tom.ID, models.PresenceAway); err != nil {
			t.Fatal(err)
		}
		c4 := w.escalate(t, "chat-4")
		offer()
		if _, ok := board()[w.tom.ID]; ok {
			t.Fatal("Tom is still on the board after his claim was refused")
		}
		if got := tom.sync(); hasType(got, "offer") {
			t.Fatal("Tom got an offer while away")
		}
		if c, _ := db.Store.ConversationByID(ctx, c4.ID); c.Status != models.ConvQueued {
			t.Fatalf("chat-4 is %s; want queued for the next agent", c.Status)
		}

		// An event from another instance touches the agent it names.
		(&peers{s: w.ts.srv}).deliverBatch(ctx, []peerEvent{{K: "c", C: c4.ID, A: w.maya.ID}})
		w.ts.srv.board.mu.Lock()
		_, touched := w.ts.srv.board.stale[w.maya.ID]
		w.ts.srv.board.mu.Unlock()
		if !touched {
			t.Fatal("a peer's conversation event did not touch its agent")
		}
	})
}

// An offer pass reads the queue a page at a time, sized by the free seats,
// and reads on while free agents are left that nothing read so far suits:
// a conversation behind a long head of ones nobody online can take is
// offered in the same pass.
func TestOfferPassReadsPastUnsuitableHead(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, apiHighRate)
		ctx := context.Background()
		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		tom.next("hello")
		tom.send("presence", map[string]any{"status": "online", "capacity": 1})
		tom.next("presence")
		// More German chats than the first page holds (Tom speaks English
		// only), then one he can take.
		head := queuePageMin*2 + 3
		for i := range head {
			body := fmt.Sprintf(`{"external_id": "de-%d", "customer": {"name": "Ada"}, "language": "de", "skills": ["billing"],
				"summary": "Doppelt belastet", "reason": "asked for a human"}`, i)
			res := w.postEscalation(t, body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("escalation de-%d = %d; want 201", i, res.StatusCode)
			}
		}
		want := w.escalate(t, "en-1")
		if err := w.ts.srv.offerQueued(ctx); err != nil {
			t.Fatal(err)
		}
		card := decodeInto[offerCard](t, tom.next("offer"))
		if card.ConversationID != want.ID {
			t.Fatalf("Tom was offered %s; want the English chat %s", card.ConversationID, want.ID)
		}
		queued, err := db.Store.QueuedConversations(ctx, 1000)
		if err != nil || len(queued) != head {
			t.Fatalf("queued after the pass = %d, %v; want the %d German chats", len(queued), err, head)
		}
	})
}

// The sweep's full read runs beside the offer passes: an agent a pass
// re-reads meanwhile has an older row in the full read, so the next pass
// reads them again instead of keeping that row.
func TestFullReadKeepsNewerRereads(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Hour })
		ctx := context.Background()
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		maya.next("hello")
		maya.send("presence", map[string]any{"status": "online", "capacity": 1})
		maya.next("presence")
		capacity := func() int {
			t.Helper()
			cands, release, err := w.ts.srv.boardAgents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			for _, c := range cands {
				if c.ID == w.maya.ID {
					return c.Capacity
				}
			}
			t.Fatal("Maya is not on the board")
			return 0
		}
		if got := capacity(); got != 1 {
			t.Fatalf("capacity on the board = %d; want 1", got)
		}
		srv := w.ts.srv
		srv.board.afterFull = func() {
			// After the full read, before it is used: Maya takes a second
			// seat, and a pass re-reads her.
			if err := db.Store.SetAvailability(ctx, w.maya.ID, models.PresenceOnline, 2); err != nil {
				t.Error(err)
			}
			srv.touchAgent(w.maya.ID)
			if got := capacity(); got != 2 {
				t.Errorf("capacity re-read during the full read = %d; want 2", got)
			}
		}
		if err := srv.refreshBoard(ctx); err != nil {
			t.Fatal(err)
		}
		srv.board.afterFull = nil
		if got := capacity(); got != 2 {
			t.Fatalf("capacity after the full read = %d; want 2 (the full read's row for Maya is older than the re-read)", got)
		}
	})
}

// With the board on, an offer pass reads the queue, the agents touched
// since the last pass and the brands of the last pass side by side. What
// it must still do: offer to an agent the board had full once they are
// touched (a resolve), read a brand the guess did not hold, and keep the
// re-offer rule for a conversation offered before (its history is read
// only for such conversations).
func TestOfferPassWithTheBoard(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w, maya, pass := boardWorld(t, db, 1)
		ctx := context.Background()
		srv := w.ts.srv

		// Maya takes the first chat and is full: a second waits.
		first := w.escalate(t, "board-1")
		pass()
		card := decodeInto[offerCard](t, maya.next("offer"))
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		maya.next("offer.accepted")
		second := w.escalate(t, "board-2")
		pass()
		if free, ok := srv.boardFreeSeats(); !ok || free != 0 {
			t.Fatalf("board free seats = %d, %v; want 0 with Maya full", free, ok)
		}
		if got := maya.sync(); hasType(got, "offer") {
			t.Fatalf("Maya, full, was offered: %v", got)
		}
		// Her resolve touches her: the next pass reads her again.
		maya.send("resolve", map[string]string{"conversation_id": first.ID, "note": "done"})
		maya.next("resolved")
		if free, ok := srv.boardFreeSeats(); !ok || free != 1 {
			t.Fatalf("board free seats after the resolve = %d, %v; want 1 (Maya, touched)", free, ok)
		}
		pass()
		if card = decodeInto[offerCard](t, maya.next("offer")); card.ConversationID != second.ID {
			t.Fatalf("Maya was offered %s; want %s", card.ConversationID, second.ID)
		}

		// A brand the last pass did not see.
		if got := srv.passBrands.get(); !slices.Equal(got, []string{w.brand.ID}) {
			t.Fatalf("brands guessed = %v; want Acme's", got)
		}
		owner, beta := mustBrand(t, db, "Beta", "owner@beta.test")
		if _, err := db.Store.AddSkill(ctx, owner.ID, beta.ID, "billing"); err != nil {
			t.Fatal(err)
		}
		betaKey, _, err := db.Store.CreateAPIKey(ctx, owner.ID, beta.ID, "bot")
		if err != nil {
			t.Fatal(err)
		}
		maya.send("offer.decline", map[string]string{"offer_id": card.OfferID, "reason": "not my topic"})
		maya.next("offer.declined")
		req, _ := http.NewRequest(http.MethodPost, w.ts.ts.URL+"/api/v1/escalations", strings.NewReader(
			`{"external_id": "beta-1", "customer": {"name": "Bo"}, "language": "en", "skills": ["billing"], "summary": "Late parcel"}`))
		req.Header.Set("Authorization", "Bearer "+betaKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var betaConv escalationResponse
		if err := json.NewDecoder(res.Body).Decode(&betaConv); err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("Beta's escalation = %d, %v; want 201", res.StatusCode, err)
		}
		res.Body.Close()
		// The declined chat is first in the queue, but offered to Maya
		// before (the re-offer rule: not again within the cooldown), so
		// she gets Beta's; Tom, once online, gets the declined one.
		pass()
		if got := decodeInto[offerCard](t, maya.next("offer")); got.ConversationID != betaConv.ID || got.BrandName != "Beta" {
			t.Fatalf("Maya was offered %s of %s; want Beta's %s", got.ConversationID, got.BrandName, betaConv.ID)
		}
		got := srv.passBrands.get()
		slices.Sort(got)
		want := []string{w.brand.ID, beta.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("brands guessed = %v; want both (the queue held both)", got)
		}
		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		tom.next("hello")
		tom.send("presence", map[string]any{"status": "online", "capacity": 1})
		tom.next("presence")
		pass()
		tomCard := decodeInto[offerCard](t, tom.next("offer"))
		if tomCard.ConversationID != second.ID {
			t.Fatalf("Tom was offered %s; want the chat Maya declined, %s", tomCard.ConversationID, second.ID)
		}
		// Tom takes it and resolves it: a pass, with Tom free, finds the
		// queue empty and keeps the guess. (A resolve alone is no news for
		// the queue, and the pass before offered all of it, so this pass
		// would read nothing: a sweep's news makes it read.)
		tom.send("offer.accept", map[string]string{"offer_id": tomCard.OfferID})
		tom.next("offer.accepted")
		tom.send("resolve", map[string]string{"conversation_id": second.ID, "note": "done"})
		tom.next("resolved")
		srv.queue.changed()
		pass()
		if free, ok := srv.boardFreeSeats(); !ok || free != 1 {
			t.Fatalf("board free seats = %d, %v; want 1 (Tom)", free, ok)
		}
		if got := srv.passBrands.get(); !slices.Equal(got, []string{w.brand.ID}) {
			t.Fatalf("brands guessed after an empty queue = %v; want Acme's, from the pass before", got)
		}
	})
}

// An offer pass reads nothing while the queue is known to be empty (a
// pass found it so and nothing that can queue a conversation happened
// since), however many seats free up; news for the queue (here an
// escalation) makes the next pass read all of it again.
func TestOfferPassSkipsWhileQueueEmpty(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w, maya, pass := boardWorld(t, db, 2)
		ctx := context.Background()
		srv := w.ts.srv

		// An escalation through the API is read and offered: the pass
		// offered everything it read, to the queue's end, so the queue is
		// known to be empty after it.
		first := w.escalate(t, "watch-1")
		pass()
		card := decodeInto[offerCard](t, maya.next("offer"))
		if card.ConversationID != first.ID {
			t.Fatalf("Maya was offered %s; want %s", card.ConversationID, first.ID)
		}

		// A conversation stored queued without telling the server (no
		// handler does that): the passes do not read the queue, however
		// many seats free up (Maya accepts, and has a seat left), so it
		// waits.
		quiet, _, err := db.Store.Escalate(ctx, w.brand.ID, models.Escalation{ExternalID: "watch-quiet",
			CustomerName: "Ada", Language: "en", Skills: []string{"billing"}, Summary: "Charged twice", Reason: "asked for a human"})
		if err != nil {
			t.Fatal(err)
		}
		srv.touchAgent(w.maya.ID) // a seat freeing up is not news for the queue
		pass()
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		maya.next("offer.accepted")
		pass()
		if c, err := db.Store.ConversationByID(ctx, quiet.ID); err != nil || c.Status != models.ConvQueued {
			t.Fatalf("quiet conversation = %+v, %v; want still queued (the passes read nothing)", c, err)
		}

		// An escalation is news: the next pass reads the whole queue, and
		// the older conversation gets Maya's free seat first.
		w.escalate(t, "watch-2")
		pass()
		if card := decodeInto[offerCard](t, maya.next("offer")); card.ConversationID != quiet.ID {
			t.Fatalf("Maya was offered %s; want the older %s", card.ConversationID, quiet.ID)
		}
	})
}

// boardWorld is a live world with the board on and Maya online with
// capacity seats; pass runs one offer pass.
func boardWorld(t *testing.T, db *modeltest.DB, capacity int) (w *liveWorld, maya *liveWS, pass func()) {
	t.Helper()
	w = newLiveWorld(t, db, apiHighRate, func(c *Config) { c.SnapshotTTL = time.Hour })
	pass = func() {
		t.Helper()
		if err := w.ts.srv.offerQueued(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	maya = dialLive(t, w.ts, w.mayaC, "/ws/agent")
	maya.next("hello")
	maya.send("presence", map[string]any{"status": "online", "capacity": capacity})
	maya.next("presence")
	return w, maya, pass
}

// The sweep's full read settles the touches made before it began (it read
// their change), and keeps those made while it ran: passes that read
// nothing while the queue is empty would otherwise leave every agent
// touched meanwhile for the next escalation's pass to read.
func TestFullReadSettlesEarlierTouches(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w, _, _ := boardWorld(t, db, 1)
		ctx := context.Background()
		srv := w.ts.srv
		if err := srv.refreshBoard(ctx); err != nil { // the first read
			t.Fatal(err)
		}
		stale := func() []string {
			srv.board.mu.Lock()
			defer srv.board.mu.Unlock()
			ids := slices.Collect(maps.Keys(srv.board.stale))
			slices.Sort(ids)
			return ids
		}
		srv.touchAgent(w.maya.ID)
		srv.board.afterFull = func() { srv.touchAgent(w.tom.ID) }
		if err := srv.refreshBoard(ctx); err != nil {
			t.Fatal(err)
		}
		srv.board.afterFull = nil
		if got := stale(); !slices.Equal(got, []string{w.tom.ID}) {
			t.Fatalf("to re-read after the full read = %v; want only Tom %s (touched while it ran), not Maya %s", got, w.tom.ID, w.maya.ID)
		}
	})
}
