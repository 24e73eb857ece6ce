package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestBrowserLiveHandoff drives a whole handoff in headless Chromium, with
// the dispatcher running: an agent goes online in the live console, a bot
// escalates through the API, the customer waits on their page, the agent
// gets the offer with its countdown and accepts, both chat, the agent
// resolves and earns, and the customer rates.
func TestBrowserLiveHandoff(t *testing.T) {
	t.Parallel() // it mostly waits on Chromium, a process of its own
	// (1) Maya is online in her console.
	w := newLiveUIWorld(t)
	br, db, ts, agent, maya, key := w.br, w.db, w.ts, w.agent, w.maya, w.key
	ctx := context.Background()

	// (2) The bot escalates Ada's chat.
	esc := liveUIEscalate(t, ts.ts.URL, key, "chat-8812")
	convID := esc.ID

	// (3) Ada opens her link: the bot transcript and her place in line.
	customer := br.newTab("customer")
	customer.openURL(esc.CustomerURL)
	customer.waitFor("the transcript", `document.querySelectorAll("#messages li[data-seq]").length === 2`)
	if got := customer.text(`#messages li[data-seq="1"]`); !strings.Contains(got, "I was charged twice for order 1142") {
		customer.fatalf("first transcript line = %q; want Ada's words", got)
	}
	if got := customer.attr(`#messages li[data-seq="2"]`, "class"); !strings.Contains(got, "msg-bot") {
		customer.fatalf("the bot's line has class %q; want msg-bot", got)
	}

	// (4) Maya gets the offer: countdown, pay, and nothing about who Ada is.
	agent.waitFor("the offer card", `!!document.querySelector("#offer-card") && document.querySelector("#offer-countdown").textContent.trim() !== ""`)
	agent.shot("offer")
	if got := agent.text("#offer-countdown"); !regexp.MustCompile(`^\d+ s$`).MatchString(got) {
		agent.fatalf("countdown = %q; want seconds left like \"20 s\"", got)
	}
	if got := agent.text("#offer-card"); !strings.Contains(got, "4.50 USD") || !strings.Contains(got, "Acme") ||
		!strings.Contains(got, "billing") || !strings.Contains(got, "Charged twice") {
		agent.fatalf("offer card = %q; want the brand, skill, summary and the pay 4.50 USD", got)
	} else if strings.Contains(got, "Ada") || strings.Contains(got, "ada@example.com") {
		agent.fatalf("offer card = %q; it must not say who the customer is", got)
	}
	// While it is offered, Ada still waits in line.
	customer.waitFor("the place in line", `document.querySelector("#queue-position").textContent.trim() !== "–" && document.querySelector("#queue-wait").textContent.trim() !== "–"`)
	customer.shot("waiting")

	// (5) Maya accepts: her chat opens, and Ada sees that she joined.
	agent.click("#offer-accept")
	pane := "#chat-" + convID
	agent.waitVisible(pane)
	if got := agent.text(pane); !strings.Contains(got, "Ada") || !strings.Contains(got, "I was charged twice") {
		agent.fatalf("chat pane = %q; want Ada's name and the transcript", got)
	}
	customer.waitFor("Maya joined", `document.querySelector("#chat-status").textContent.includes("Maya from Acme support joined")`)
	customer.waitFor("the queue card hides", `document.querySelector("#queue").hidden`)
	if got := customer.text("#messages li.msg-system"); !strings.Contains(got, "Maya") || !strings.Contains(got, "joined") {
		customer.fatalf("system line = %q; want Maya joined", got)
	}

	// (6) They chat.
	agent.typeInto(pane+" .composer input[name=text]", "Hello Ada")
	agent.click(pane + " .composer button[type=submit]")
	customer.waitFor("Maya's message", liveUICount("#messages", "Hello Ada")+` === 1`)
	customer.typeInto("#composer-text", "Thanks!")
	customer.click("#composer button[type=submit]")
	agent.waitFor("Ada's message", liveUICount(pane+" .messages", "Thanks!")+` === 1`)
	customer.waitFor("Ada's message acknowledged", `document.querySelectorAll("#messages li.pending").length === 0`)
	agent.waitFor("Maya's message acknowledged", `document.querySelectorAll("`+pane+` li.pending").length === 0`)
	agent.shot("chatting")
	customer.shot("chatting")
	br.phoneShots("chatting")

	// (6b) Both connections drop while Ada sends a message: both pages
	// reconnect by themselves, and the message arrives once. They wait a
	// spread delay first (Handoff.retryIn), counted here.
	for _, p := range []*browserTab{customer, agent} {
		p.waitFor("reconnect delays spread from half to one and a half the backoff", `(function () {
			var seen = {};
			for (var i = 0; i < 200; i++) {
				var d = Handoff.retryIn(1000);
				if (d < 500 || d > 1500) return false;
				seen[d] = true;
			}
			return Object.keys(seen).length > 20;
		})()`)
		p.waitFor("a count of reconnect delays", `(function (f) {
			window.retries = 0;
			Handoff.retryIn = function (b) { window.retries++; return f(b); };
			return true;
		})(Handoff.retryIn)`)
	}
	topic := convTopic(convID)
	ts.srv.hub.Close(topic)
	customer.typeInto("#composer-text", "Still here")
	customer.click("#composer button[type=submit]")
	liveUIEventually(t, "both pages back on the conversation", func() bool { return ts.srv.hub.Count(topic) == 2 })
	customer.waitFor("the customer's page waited a spread delay", `window.retries >= 1`)
	agent.waitFor("the agent's page waited a spread delay", `window.retries >= 1`)
	agent.waitFor("Ada's message after the drop", liveUICount(pane+" .messages", "Still here")+` === 1`)
	customer.waitFor("the message acknowledged after the drop", `document.querySelectorAll("#messages li.pending").length === 0`)
	agent.typeInto(pane+" .composer input[name=text]", "Great, I am on it")
	agent.click(pane + " .composer button[type=submit]")
	customer.waitFor("Maya's message after the drop", liveUICount("#messages", "Great, I am on it")+` === 1`)
	agent.waitFor("Maya's message acknowledged after the drop", `document.querySelectorAll("`+pane+` li.pending").length === 0`)
	customer.expectSeqs("#messages", 6)
	agent.expectSeqs(pane+" .messages", 6)

	// A reload shows the whole conversation again, each message once.
	customer.openURL(esc.CustomerURL)
	customer.waitFor("the conversation after a reload", `document.querySelectorAll("#messages li[data-seq]").length === 6`)
	customer.waitFor("the joined line after a reload", `document.querySelector("#messages li.msg-system") !== null`)
	customer.expectSeqs("#messages", 6)

	// (7) Maya resolves with a note and sees what she earned.
	agent.click(pane + ` button[data-action="resolve"]`)
	agent.typeInto("#note-"+convID, "Refunded the duplicate charge on order 1142.")
	agent.click(pane + " .resolve-form button[type=submit]")
	agent.waitFor("the earning", `!document.querySelector("#earning-notice").hidden`)
	agent.waitFor("the pane closes", `!document.querySelector("`+pane+`")`)
	earnings, err := db.Store.Earnings(ctx, maya.ID, 10)
	if err != nil || len(earnings) != 1 {
		t.Fatalf("Earnings(Maya) = %d earnings, %v; want 1", len(earnings), err)
	}
	e := earnings[0]
	if e.ConversationID != convID || e.BaseMinor != 450 || e.Currency != "USD" || e.NetMinor <= 0 || e.NetMinor > 450 {
		t.Fatalf("earning = %+v; want conversation %s, base 450 USD, a net between 0 and 450", e, convID)
	}
	wantEarned := "You earned " + models.FormatMoney(e.NetMinor, e.Currency) + " USD"
	if got := agent.text("#earning-notice"); !strings.Contains(got, wantEarned) {
		agent.fatalf("earning notice = %q; want %q", got, wantEarned)
	}
	agent.shot("resolved")

	// (8) Ada rates 5.
	customer.waitVisible("#rating-form")
	if customer.visible("#composer") {
		customer.fatalf("the composer is still shown after the conversation was resolved")
	}
	customer.click(`#rating input[name=rating][value="5"]`)
	customer.typeInto("#rating-comment", "Quick and kind.")
	customer.click("#rating-form button[type=submit]")
	customer.waitVisible("#rating-done")
	customer.shot("rated")
	br.phoneShots("done")

	conv, err := db.Store.ConversationByID(ctx, convID)
	if err != nil {
		t.Fatalf("ConversationByID: %v", err)
	}
	if conv.Status != models.ConvResolved || conv.Rating == nil || *conv.Rating != 5 || conv.RatingComment != "Quick and kind." {
		t.Fatalf("stored conversation: status %s, rating %v, comment %q; want resolved, 5, %q", conv.Status, conv.Rating, conv.RatingComment, "Quick and kind.")
	}

	// Every message is shown once, in order, on both sides.
	customer.expectSeqs("#messages", 6)
	br.checkConsole()
}

// TestBrowserLiveDeclineAndMissedOffers: Maya declines an offer with a
// reason, then lets two run out; the console removes each card with a word
// on why, and after the second miss shows she was set away.
func TestBrowserLiveDeclineAndMissedOffers(t *testing.T) {
	t.Parallel()
	w := newLiveUIWorld(t)
	db, agent := w.db, w.agent
	ctx := context.Background()
	offered := func(conv string) string {
		return `document.querySelector('#offer-card[data-conversation="` + conv + `"]')`
	}
	// moveClock moves the store's clock in steps shorter than the presence
	// lease, renewing Maya's lease after each, as her heartbeats would.
	moveClock := func(d time.Duration) {
		for d > 0 {
			step := min(d, 20*time.Second)
			db.Clock.Advance(step)
			if err := db.Store.Heartbeat(ctx, w.maya.ID); err != nil {
				t.Fatalf("Heartbeat: %v", err)
			}
			d -= step
		}
	}

	// A decline needs a reason.
	first := liveUIEscalate(t, w.ts.ts.URL, w.key, "chat-1")
	agent.waitFor("the first offer", offered(first.ID)+` !== null`)
	agent.click("#offer-decline")
	agent.waitVisible("#decline-form")
	agent.click("#decline-form button[type=submit]") // no reason chosen: the form does not go
	if offers, err := db.Store.Offers(ctx, first.ID); err != nil || len(offers) != 1 || offers[0].Status != models.OfferPending {
		t.Fatalf("offers after a decline without a reason = %+v, %v; want one, still pending", offers, err)
	}
	browserGet(agent, "choose Other", chromedp.Evaluate[bool](`(function (s) { s.value = "other"; s.dispatchEvent(new Event("change", {bubbles: true})); return true; })(document.querySelector("#decline-reason"))`))
	agent.typeInto("#decline-other", "Order disputes are not my area.")
	agent.shot("decline-form")
	agent.click("#decline-form button[type=submit]")
	agent.waitFor("the declined card goes", offered(first.ID)+` === null`)
	if got := agent.text("#console-notice"); !strings.Contains(got, "declined") {
		agent.fatalf("notice after declining = %q; want it to say so", got)
	}
	if offers, err := db.Store.Offers(ctx, first.ID); err != nil || len(offers) != 1 ||
		offers[0].Status != models.OfferDeclined || offers[0].DeclineReason != "Order disputes are not my area." {
		t.Fatalf("offers after declining = %+v, %v; want one, declined with the reason typed", offers, err)
	}

	// The next offer runs out: one miss, she stays online.
	second := liveUIEscalate(t, w.ts.ts.URL, w.key, "chat-2")
	agent.waitFor("the second offer", offered(second.ID)+` !== null`)
	agent.shot("second-offer")
	moveClock(21 * time.Second)
	agent.waitFor("the expired card goes", offered(second.ID)+` === null`)
	if got := agent.text("#console-notice"); !strings.Contains(got, "timed out") {
		agent.fatalf("notice after the offer ran out = %q; want it to say it timed out", got)
	}
	if got := agent.text("#presence-state"); got != "online" {
		agent.fatalf("presence after one miss = %q; want online", got)
	}

	// A minute on, one of the two comes back to her; it runs out too, and
	// the second miss in a row sets her away, with the reason.
	moveClock(41 * time.Second)
	agent.waitFor("an offer again", `document.querySelector("#offer-card") !== null`)
	moveClock(21 * time.Second)
	agent.waitFor("set away", `document.querySelector("#presence-state").textContent.trim() === "away"`)
	agent.waitFor("the card goes", `document.querySelector("#offer-card") === null`)
	if got := agent.text("#console-notice"); !strings.Contains(got, "missed two offers") {
		agent.fatalf("notice after two misses = %q; want why she was set away", got)
	}
	agent.shot("set-away")
	if a, err := db.Store.Agent(ctx, w.maya.ID); err != nil || a.Presence != models.PresenceAway {
		t.Fatalf("stored agent after two misses = %+v, %v; want away", a, err)
	}
	w.br.checkConsole()
}

// liveUIWorld is what every live test starts from: the server with its
// dispatcher running, a brand that pays 4.50 for billing with its bot's
// key, and Maya, an approved agent, online in her console.
type liveUIWorld struct {
	br    *testBrowser
	db    *modeltest.DB
	ts    *testServer
	key   string
	maya  *models.Agent
	agent *browserTab
}

func newLiveUIWorld(t *testing.T) *liveUIWorld {
	t.Helper()
	chromium := chromiumPath(t)
	db := modeltest.SQLite(t)
	ctx := context.Background()
	ts := newTestServer(t, db)
	br := newTestBrowser(t, chromium, ts.ts.URL)

	// The dispatcher sweeps every second with the real clock; the store's
	// clock is fake and stands still unless a test moves it, so an offer's
	// time left stays full.
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		ts.srv.RunBackground(loopCtx)
	}()
	t.Cleanup(func() {
		stopLoop()
		<-loopDone
	})

	owner, brand := mustBrand(t, db, "Acme", "owner@acme.test")
	if _, err := db.Store.AddSkill(ctx, owner.ID, brand.ID, "billing"); err != nil {
		t.Fatalf("AddSkill: %v", err)
	}
	settings := models.SettingsOf(brand)
	settings.PayRateMinor = 450
	if _, err := db.Store.UpdateBrandSettings(ctx, owner.ID, brand.ID, settings); err != nil {
		t.Fatalf("UpdateBrandSettings: %v", err)
	}
	key, _, err := db.Store.CreateAPIKey(ctx, owner.ID, brand.ID, "Acme bot")
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	maya, err := db.Store.ApplyAsAgent(ctx, models.AgentApplication{DisplayName: "Maya", Email: "maya@agents.test",
		Password: testPassword, Languages: []string{"en"}, Skills: map[string]int{"billing": 4},
		Bio: "Billing support for six years.", MaxConcurrent: 2})
	if err != nil {
		t.Fatalf("ApplyAsAgent: %v", err)
	}
	op := mustOperator(t, db, "ops@handoff.test")
	if err := db.Store.DecideApplication(ctx, op.ID, maya.ID, true, ""); err != nil {
		t.Fatalf("approve Maya: %v", err)
	}

	// Maya signs in, opens her console and goes online over the socket.
	agent := br.newTab("agent")
	agent.open("/login")
	agent.typeInto("#email", "maya@agents.test")
	agent.typeInto("#password", testPassword)
	agent.submit("sign in", "main form button[type=submit]")
	agent.open("/agent")
	agent.waitFor("the console connects", `document.querySelector("#socket-state").dataset.state === "open"`)
	agent.click(`#live-console button[data-presence="online"]`)
	agent.waitFor("presence online", `document.querySelector("#presence-state").textContent.trim() === "online"`)
	agent.shot("online")
	if a, err := db.Store.Agent(ctx, maya.ID); err != nil || a.Presence != models.PresenceOnline {
		t.Fatalf("stored agent after going online = %+v, %v; want online", a, err)
	}
	return &liveUIWorld{br: br, db: db, ts: ts, key: key, maya: maya, agent: agent}
}

// liveUIEscalation is the part of the 201 answer the test uses.
type liveUIEscalation struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	CustomerURL string `json:"customer_url"`
}

// liveUIEscalate posts Ada's escalation as the brand's bot does.
func liveUIEscalate(t *testing.T, base, key, externalID string) liveUIEscalation {
	t.Helper()
	body := `{"external_id": ` + jsQuote(externalID) + `, "customer": {"name": "Ada", "email": "ada@example.com"}, "language": "en",
		"skills": ["billing"], "reason": "asked for a human", "summary": "Charged twice for order 1142; the bot could not refund.",
		"transcript": [
			{"role": "customer", "text": "I was charged twice for order 1142", "at": "2026-11-27T09:59:00Z"},
			{"role": "bot", "text": "I can't refund that, sorry. Let me find you a person.", "at": "2026-11-27T09:59:05Z"}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/escalations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/v1/escalations: %v", err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/escalations = %d; want 201\n%s", res.StatusCode, buf.String())
	}
	var out liveUIEscalation
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.ID == "" || !strings.HasPrefix(out.CustomerURL, base+"/c/") {
		t.Fatalf("escalation answer %s: %v; want an id and a customer_url on %s", buf.String(), err, base)
	}
	return out
}

// liveUIEventually waits until ok is true; the step timeout only turns a hang
// into a failure.
func liveUIEventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", browserStepTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveUICount is a JavaScript expression: how many messages under list
// contain text.
func liveUICount(list, text string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).filter(function (li) { return li.textContent.includes(%s); }).length`,
		jsQuote(list+" li[data-seq]"), jsQuote(text))
}

// expectSeqs checks that the list shows want messages, each sequence number
// once and in increasing order.
func (p *browserTab) expectSeqs(list string, want int) {
	p.t.Helper()
	seqs := browserGet(p, "read the sequence numbers", chromedp.Evaluate[[]int](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map(function (li) { return parseInt(li.dataset.seq, 10); })`, jsQuote(list+" li[data-seq]"))))
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			p.fatalf("%s shows sequence numbers %v; want each once, in order", list, seqs)
		}
	}
	if len(seqs) != want {
		p.fatalf("%s shows %d messages (%v); want %d", list, len(seqs), seqs, want)
	}
}
