package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// liveWS is a websocket client for tests: frames arrive on a channel.
type liveWS struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan realtime.Envelope
	raw    chan string
}

// dialLive connects to path with the client's cookies.
func dialLive(t testing.TB, ts *testServer, c *testClient, path string) *liveWS {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.ts.URL, "http") + path
	h := http.Header{}
	if c != nil {
		h.Set("Cookie", sessionCookie+"="+c.cookie(sessionCookie))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	w := &liveWS{t: t, conn: conn, frames: make(chan realtime.Envelope, 256), raw: make(chan string, 256)}
	go func() {
		defer close(w.frames)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			env, err := realtime.DecodeEnvelope(b)
			if err != nil {
				continue
			}
			w.raw <- string(b)
			w.frames <- env
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return w
}

func (w *liveWS) send(typ string, data any) {
	w.t.Helper()
	b, err := realtime.Encode(typ, data)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		w.t.Fatalf("send %s: %v", typ, err)
	}
}

// next waits for the next frame of type typ, skipping others (a hang guard,
// not a timed assertion). It returns the frame's data.
func (w *liveWS) next(typ string) json.RawMessage {
	w.t.Helper()
	data, _ := w.until(typ)
	return data
}

// until is next that also returns the frames it passed over.
func (w *liveWS) until(typ string) (json.RawMessage, []realtime.Envelope) {
	w.t.Helper()
	deadline := time.After(15 * time.Second)
	var skipped []realtime.Envelope
	for {
		select {
		case env, ok := <-w.frames:
			if !ok {
				w.t.Fatalf("socket closed while waiting for %q", typ)
			}
			<-w.raw
			if env.Type == "error" {
				w.t.Fatalf("waiting for %q got error %s", typ, env.Data)
			}
			if env.Type == typ {
				return env.Data, skipped
			}
			skipped = append(skipped, env)
		case <-deadline:
			w.t.Fatalf("no %q frame", typ)
		}
	}
}

// drain returns the frames already received, without waiting for more.
func (w *liveWS) drain() []realtime.Envelope {
	var out []realtime.Envelope
	for {
		select {
		case env, ok := <-w.frames:
			if !ok {
				return out
			}
			<-w.raw
			out = append(out, env)
		default:
			return out
		}
	}
}

// sync sends a heartbeat-free round trip (an unknown command answers an
// error frame), so every frame published before it has been received.
func (w *liveWS) sync() []realtime.Envelope {
	w.t.Helper()
	w.send("ping.sync", map[string]string{})
	var out []realtime.Envelope
	deadline := time.After(15 * time.Second)
	for {
		select {
		case env, ok := <-w.frames:
			if !ok {
				w.t.Fatal("socket closed during sync")
			}
			<-w.raw
			if env.Type == "error" && bytes.Contains(env.Data, []byte("ping.sync")) {
				return out
			}
			out = append(out, env)
		case <-deadline:
			w.t.Fatal("sync timed out")
		}
	}
}

func decodeInto[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// liveWorld is a brand with a bot key, two approved agents signed in, and
// a customer-facing API.
type liveWorld struct {
	ts          *testServer
	owner       *models.User
	brand       *models.Brand
	key         string
	maya, tom   *models.Agent
	mayaC, tomC *testClient
}

func newLiveWorld(t *testing.T, db *modeltest.DB, opts ...func(*Config)) *liveWorld {
	t.Helper()
	ctx := context.Background()
	ts := newTestServer(t, db, opts...)
	owner, b := mustBrand(t, db, "Acme", "owner@acme.test")
	set := models.SettingsOf(b)
	set.PayRateMinor = 450
	b, err := db.Store.UpdateBrandSettings(ctx, owner.ID, b.ID, set)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Store.AddSkill(ctx, owner.ID, b.ID, "billing"); err != nil {
		t.Fatal(err)
	}
	key, _, err := db.Store.CreateAPIKey(ctx, owner.ID, b.ID, "bot")
	if err != nil {
		t.Fatal(err)
	}
	w := &liveWorld{ts: ts, owner: owner, brand: b, key: key}
	w.maya = mustAgentWith(t, db, "maya@agents.test", "Maya", 5)
	w.tom = mustAgentWith(t, db, "tom@agents.test", "Tom", 3)
	w.mayaC, w.tomC = ts.client(), ts.client()
	w.mayaC.login("maya@agents.test", testPassword)
	w.tomC.login("tom@agents.test", testPassword)
	return w
}

// mustAgentWith creates an approved agent with billing at level.
func mustAgentWith(t testing.TB, db *modeltest.DB, email, name string, level int) *models.Agent {
	t.Helper()
	ctx := context.Background()
	a, err := db.Store.ApplyAsAgent(ctx, models.AgentApplication{DisplayName: name, Email: email, Password: testPassword,
		Languages: []string{"en"}, Skills: map[string]int{"billing": level}, Bio: "I help.", MaxConcurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	op := mustOperator(t, db, "op-"+email)
	if err := db.Store.DecideApplication(ctx, op.ID, a.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	return a
}

// escalate posts an escalation and returns the decoded 201 body.
func (w *liveWorld) escalate(t *testing.T, externalID string) escalationResponse {
	t.Helper()
	body := fmt.Sprintf(`{"external_id": %q, "customer": {"name": "Ada", "email": "ada@example.com"}, "language": "en",
		"skills": ["billing"], "summary": "Charged twice for order 1142", "reason": "asked for a human",
		"transcript": [{"role": "customer", "text": "I was charged twice"}, {"role": "bot", "text": "I cannot refund that."}]}`, externalID)
	res := w.postEscalation(t, body)
	defer res.Body.Close()
	var out escalationResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("escalate = %d, %v; want 201", res.StatusCode, err)
	}
	return out
}

// postEscalation posts a JSON escalation body with the brand's key.
func (w *liveWorld) postEscalation(t *testing.T, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.ts.ts.URL+"/api/v1/escalations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (w *liveWorld) pass(t *testing.T) {
	t.Helper()
	if err := w.ts.srv.dispatchPass(context.Background()); err != nil {
		t.Fatalf("dispatch pass: %v", err)
	}
}

// heartbeat renews both agents' presence leases at the current fake time.
func (w *liveWorld) heartbeat(t *testing.T, agents ...*models.Agent) {
	t.Helper()
	for _, a := range agents {
		if err := w.ts.db.Store.Heartbeat(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func customerPath(customerURL string) string {
	i := strings.Index(customerURL, "/c/")
	return customerURL[i:]
}

func TestLiveHandoffEndToEnd(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		maya.next("hello")
		tom.next("hello")
		maya.send("presence", map[string]any{"status": "online", "capacity": 2})
		tom.send("presence", map[string]any{"status": "online", "capacity": 1})
		maya.next("presence")
		tom.next("presence")

		esc := w.escalate(t, "chat-1")
		if esc.Status != models.ConvQueued || esc.EligibleAgentsOnline != 2 || esc.EstimatedWaitSeconds == nil || esc.QueuePosition != 1 {
			t.Fatalf("escalation = %+v; want queued, 2 eligible, an estimate, position 1", esc)
		}
		customer := dialLive(t, w.ts, nil, customerPath(esc.CustomerURL)+"/ws")
		hello := decodeInto[struct {
			Conversation customerState `json:"conversation"`
			Queue        *struct {
				Position int `json:"position"`
			} `json:"queue"`
		}](t, customer.next("hello"))
		if hello.Queue == nil || hello.Queue.Position != 1 {
			t.Fatalf("customer hello = %+v; want place 1 in line", hello)
		}
		for i := 1; i <= 2; i++ { // the bot transcript first
			if m := decodeInto[messageFrame](t, customer.next("message")); m.Seq != i {
				t.Fatalf("transcript message seq %d; want %d", m.Seq, i)
			}
		}

		// The best agent (billing 5) gets the offer; the card never names the customer.
		w.pass(t)
		var rawOffer string
		var card offerCard
		for {
			env := <-maya.frames
			raw := <-maya.raw
			if env.Type == "offer" {
				rawOffer, card = raw, decodeInto[offerCard](t, env.Data)
				break
			}
		}
		if strings.Contains(rawOffer, "ada@example.com") || strings.Contains(rawOffer, "Ada") {
			t.Fatalf("offer card names the customer: %s", rawOffer)
		}
		if card.PayMinor != 450 || card.RemainingMS != 20000 || card.BrandName != "Acme" || card.Summary == "" || card.Why == "" {
			t.Fatalf("offer card = %+v; want pay 450, 20 s left, brand, summary and why", card)
		}
		// The card's sentence is the stored explanation's, word for word.
		if stored, err := w.ts.db.Store.Offer(context.Background(), card.OfferID); err != nil || card.Why != explanationSummary(stored.Explanation) {
			t.Fatalf("offer card why = %q; want the stored explanation's summary (%v)", card.Why, err)
		}

		// Maya declines: Tom gets it. Tom lets it expire: back to the queue.
		maya.send("offer.decline", map[string]string{"offer_id": card.OfferID, "reason": "not my topic"})
		maya.next("offer.declined")
		w.pass(t)
		tomCard := decodeInto[offerCard](t, tom.next("offer"))
		db.Clock.Advance(21 * time.Second)
		w.heartbeat(t, w.maya, w.tom)
		w.pass(t)
		if exp := decodeInto[struct {
			OfferID string `json:"offer_id"`
			SetAway bool   `json:"set_away"`
		}](t, tom.next("offer.expired")); exp.OfferID != tomCard.OfferID || exp.SetAway {
			t.Fatalf("expiry = %+v; want Tom's offer, not yet away", exp)
		}
		// Both have had it; Maya may have it again once 60 s passed since hers.
		if got := maya.sync(); hasType(got, "offer") {
			t.Fatalf("Maya was re-offered before the cooldown: %v", got)
		}
		db.Clock.Advance(40 * time.Second)
		w.heartbeat(t, w.maya, w.tom)
		w.pass(t)
		card = decodeInto[offerCard](t, maya.next("offer"))

		// A late accept from Tom's old offer fails; Maya accepts.
		tom.send("offer.accept", map[string]string{"offer_id": tomCard.OfferID})
		tom.next("offer.failed")
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		acc := decodeInto[struct {
			Chat agentChat `json:"chat"`
		}](t, maya.next("offer.accepted"))
		if acc.Chat.CustomerName != "Ada" || len(acc.Chat.Messages) != 2 {
			t.Fatalf("accepted chat = %+v; want Ada and the 2 transcript lines", acc.Chat)
		}
		joined := decodeInto[conversationFrame](t, customer.next("conversation"))
		for joined.Status != models.ConvActive {
			joined = decodeInto[conversationFrame](t, customer.next("conversation"))
		}
		if joined.AgentName != "Maya" || joined.BrandName != "Acme" {
			t.Fatalf("customer saw %+v; want Maya from Acme", joined)
		}

		// Messages both ways; a resent client id is stored once.
		maya.send("message.send", map[string]string{"conversation_id": esc.ID, "text": "Hello Ada, I am on it", "client_id": "a-1"})
		ackData, before := maya.until("message.ack")
		if hasType(before, "message") {
			t.Fatalf("agent received its own message back before the ack: %v", before)
		}
		if ack := decodeInto[struct {
			Seq     int
			Message messageFrame
		}](t, ackData); ack.Seq != 3 || ack.Message.Seq != 3 || ack.Message.Text != "Hello Ada, I am on it" || ack.Message.CreatedAt.IsZero() {
			t.Fatalf("agent ack %+v; want seq 3 carrying the stored message", ack)
		}
		if m := decodeInto[messageFrame](t, customer.next("message")); m.Text != "Hello Ada, I am on it" || m.Sender != "agent" {
			t.Fatalf("customer got %+v", m)
		}
		maya.send("message.send", map[string]string{"conversation_id": esc.ID, "text": "Hello Ada, I am on it", "client_id": "a-1"})
		if ack := decodeInto[struct{ Seq int }](t, maya.next("message.ack")); ack.Seq != 3 {
			t.Fatalf("resend ack seq %d; want the stored 3", ack.Seq)
		}
		customer.send("typing", map[string]string{})
		maya.next("typing")
		customer.send("message.send", map[string]string{"text": "Thanks, secret-body-text", "client_id": "c-1"})
		ackData, before = customer.until("message.ack")
		if hasType(before, "message") {
			t.Fatalf("customer received its own message back before the ack: %v", before)
		}
		if ack := decodeInto[struct{ Message messageFrame }](t, ackData); ack.Message.Seq != 4 || ack.Message.Sender != "customer" {
			t.Fatalf("customer ack %+v; want it to carry seq 4", ack)
		}
		if m := decodeInto[messageFrame](t, maya.next("message")); m.Seq != 4 || m.Sender != "customer" {
			t.Fatalf("agent got %+v; want the customer's seq 4", m)
		}
		if dup := customer.sync(); countSeq(t, dup, 3) > 0 || countSeq(t, dup, 4) > 0 {
			t.Fatalf("customer received the resent message again, or its own back (its ack carries it): %v", dup)
		}

		// The customer drops; messages sent meanwhile arrive on reconnect, once.
		customer.conn.CloseNow()
		for i, text := range []string{"Refund issued", "It takes 3 days"} {
			maya.send("message.send", map[string]string{"conversation_id": esc.ID, "text": text, "client_id": fmt.Sprintf("a-%d", i+2)})
			maya.next("message.ack")
		}
		customer = dialLive(t, w.ts, nil, customerPath(esc.CustomerURL)+"/ws?after=4")
		customer.next("hello")
		var seqs []int
		for len(seqs) < 2 {
			seqs = append(seqs, decodeInto[messageFrame](t, customer.next("message")).Seq)
		}
		if rest := customer.sync(); hasType(rest, "message") || seqs[0] != 5 || seqs[1] != 6 {
			t.Fatalf("resumed seqs %v then %v; want exactly 5 and 6", seqs, rest)
		}

		// Resolve, rate, earning.
		maya.send("resolve", map[string]string{"conversation_id": esc.ID, "note": "refunded the double charge"})
		res := decodeInto[struct {
			Earning struct {
				NetMinor int64  `json:"net_minor"`
				Currency string `json:"currency"`
			} `json:"earning"`
		}](t, maya.next("resolved"))
		if res.Earning.NetMinor != 382 || res.Earning.Currency != "USD" {
			t.Fatalf("earning = %+v; want 3.82 USD (4.50 less a 15%% fee rounded half-up)", res.Earning)
		}
		for decodeInto[conversationFrame](t, customer.next("conversation")).Status != models.ConvResolved {
		}
		customer.send("rate", map[string]any{"rating": 5, "comment": "quick and kind"})
		customer.next("rated")
		conv, err := db.Store.ConversationByID(context.Background(), esc.ID)
		if err != nil || conv.Rating == nil || *conv.Rating != 5 {
			t.Fatalf("stored conversation %+v, %v; want rating 5", conv, err)
		}
		earnings, err := db.Store.Earnings(context.Background(), w.maya.ID, 10)
		if err != nil || len(earnings) != 1 || earnings[0].NetMinor != 382 {
			t.Fatalf("earnings %+v, %v; want one of 382", earnings, err)
		}
		// The brand sees the timeline with each offer and why; the agent
		// sees the earning.
		owner := w.ts.client()
		owner.login("owner@acme.test", testPassword)
		res2, page := owner.get("/brand/" + w.brand.ID + "/conversations/" + esc.ID)
		for _, want := range []string{"Escalated", "Offered to Maya", "declined", "not my topic", "Offered to Tom", "expired", "accepted", "Resolved", "refunded the double charge", "Rated 5", "Ranked 1 of"} {
			if res2.StatusCode != http.StatusOK || !strings.Contains(page, want) {
				t.Fatalf("timeline (%d) lacks %q", res2.StatusCode, want)
			}
		}
		if strings.Contains(page, "ada@example.com") {
			t.Fatal("the timeline shows the customer's email")
		}
		if res2, page = owner.get("/brand/" + w.brand.ID + "/queue"); res2.StatusCode != http.StatusOK || !strings.Contains(page, "chat-1") {
			t.Fatalf("live queue page = %d without the conversation", res2.StatusCode)
		}
		if res2, page = w.mayaC.get("/agent/earnings"); res2.StatusCode != http.StatusOK || !strings.Contains(page, "3.82 USD") {
			t.Fatalf("earnings page = %d without 3.82 USD", res2.StatusCode)
		}
		// The offer outcomes and the messages' stores are counted for /metrics.
		_, metricsBody := w.ts.client().get("/metrics")
		for _, want := range []string{`handoff_offers_total{outcome="made"} 3`, `handoff_offers_total{outcome="declined"} 1`,
			`handoff_offers_total{outcome="expired"} 1`, `handoff_offers_total{outcome="accepted"} 1`, "handoff_escalation_to_offer_seconds_count 3",
			"handoff_message_store_seconds_count 5"} { // the messages sent above, the resend included
			if !strings.Contains(metricsBody, want) {
				t.Fatalf("/metrics lacks %q", want)
			}
		}
		// Every pass that made offers counts its three phases once.
		phases := map[string]int{}
		for _, m := range regexp.MustCompile(`handoff_offer_pass_phase_seconds_count\{phase="(\w+)"\} (\d+)`).FindAllStringSubmatch(metricsBody, -1) {
			phases[m[1]], _ = strconv.Atoi(m[2])
		}
		if c := phases["commit"]; c == 0 || phases["publish"] != c || phases["read"] < c {
			t.Fatalf("offer pass phases counted %v; want commit = publish > 0, read at least as many", phases)
		}
		// After the rating window the conversation closes and the link ends.
		db.Clock.Advance(models.RatingWindow)
		w.heartbeat(t, w.maya, w.tom)
		w.pass(t)
		if res2, _ = w.ts.client().get(customerPath(esc.CustomerURL)); res2.StatusCode != http.StatusGone {
			t.Fatalf("customer link after closing = %d; want 410", res2.StatusCode)
		}
		if log := w.ts.log.String(); strings.Contains(log, "secret-body-text") || strings.Contains(log, "Hello Ada") || strings.Contains(log, "ada@example.com") {
			t.Fatal("the server log contains message bodies or the customer's email")
		}
	})
}

func TestLapsedPresenceRequeuesChat(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		maya.next("hello")
		maya.send("presence", map[string]any{"status": "online", "capacity": 1})
		maya.next("presence")
		esc := w.escalate(t, "chat-lapse")
		w.pass(t)
		card := decodeInto[offerCard](t, maya.next("offer"))
		maya.send("offer.accept", map[string]string{"offer_id": card.OfferID})
		maya.next("offer.accepted")
		maya.conn.CloseNow() // Maya's connection is lost

		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		tom.next("hello")
		tom.send("presence", map[string]any{"status": "online", "capacity": 1})
		tom.next("presence")
		// Within the grace period the chat stays Maya's.
		db.Clock.Advance(45 * time.Second)
		w.heartbeat(t, w.tom)
		w.pass(t)
		if c, _ := db.Store.ConversationByID(context.Background(), esc.ID); c.Status != models.ConvActive {
			t.Fatalf("status %s within the grace period; want active", c.Status)
		}
		// After it, the chat goes back to the queue and on to Tom.
		db.Clock.Advance(20 * time.Second)
		w.heartbeat(t, w.tom)
		w.pass(t)
		card = decodeInto[offerCard](t, tom.next("offer"))
		if card.ConversationID != esc.ID {
			t.Fatalf("Tom was offered %s; want the requeued %s", card.ConversationID, esc.ID)
		}
		a, _ := db.Store.Agent(context.Background(), w.maya.ID)
		if a.Presence != models.PresenceOffline {
			t.Fatalf("Maya is %s after the grace period; want offline", a.Presence)
		}
		if e, _ := db.Store.Earnings(context.Background(), w.maya.ID, 10); len(e) != 0 {
			t.Fatalf("Maya earned %v for a lapsed chat; want nothing", e)
		}
	})
}

func hasType(envs []realtime.Envelope, typ string) bool {
	for _, e := range envs {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func countSeq(t testing.TB, envs []realtime.Envelope, seq int) int {
	n := 0
	for _, e := range envs {
		if e.Type == "message" && decodeInto[messageFrame](t, e.Data).Seq == seq {
			n++
		}
	}
	return n
}
