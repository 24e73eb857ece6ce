package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// liveUIStep bounds one step of the live browser test. It only turns a hang
// into a failure; nothing asserts how fast anything is.
const liveUIStep = 30 * time.Second

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
	customer := br.tab("customer")
	customer.openURL(esc.CustomerURL)
	customer.waitFor("the transcript", `document.querySelectorAll("#messages li[data-seq]").length === 2`)
	if got := customer.text(`#messages li[data-seq="1"]`); !strings.Contains(got, "I was charged twice for order 1142") {
		customer.fail("first transcript line = %q; want Ada's words", got)
	}
	if got := customer.attr(`#messages li[data-seq="2"]`, "class"); !strings.Contains(got, "msg-bot") {
		customer.fail("the bot's line has class %q; want msg-bot", got)
	}

	// (4) Maya gets the offer: countdown, pay, and nothing about who Ada is.
	agent.waitFor("the offer card", `!!document.querySelector("#offer-card") && document.querySelector("#offer-countdown").textContent.trim() !== ""`)
	agent.shot("offer")
	if got := agent.text("#offer-countdown"); !regexp.MustCompile(`^\d+ s$`).MatchString(got) {
		agent.fail("countdown = %q; want seconds left like \"20 s\"", got)
	}
	if got := agent.text("#offer-card"); !strings.Contains(got, "4.50 USD") || !strings.Contains(got, "Acme") ||
		!strings.Contains(got, "billing") || !strings.Contains(got, "Charged twice") {
		agent.fail("offer card = %q; want the brand, skill, summary and the pay 4.50 USD", got)
	} else if strings.Contains(got, "Ada") || strings.Contains(got, "ada@example.com") {
		agent.fail("offer card = %q; it must not say who the customer is", got)
	}
	// While it is offered, Ada still waits in line.
	customer.waitFor("the place in line", `document.querySelector("#queue-position").textContent.trim() !== "–" && document.querySelector("#queue-wait").textContent.trim() !== "–"`)
	customer.shot("waiting")

	// (5) Maya accepts: her chat opens, and Ada sees that she joined.
	agent.click("#offer-accept")
	pane := "#chat-" + convID
	agent.waitVisible(pane)
	if got := agent.text(pane); !strings.Contains(got, "Ada") || !strings.Contains(got, "I was charged twice") {
		agent.fail("chat pane = %q; want Ada's name and the transcript", got)
	}
	customer.waitFor("Maya joined", `document.querySelector("#chat-status").textContent.includes("Maya from Acme support joined")`)
	customer.waitFor("the queue card hides", `document.querySelector("#queue").hidden`)
	if got := customer.text("#messages li.msg-system"); !strings.Contains(got, "Maya") || !strings.Contains(got, "joined") {
		customer.fail("system line = %q; want Maya joined", got)
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
	// reconnect by themselves, and the message arrives once.
	topic := convTopic(convID)
	ts.srv.hub.Close(topic)
	customer.typeInto("#composer-text", "Still here")
	customer.click("#composer button[type=submit]")
	liveUIEventually(t, "both pages back on the conversation", func() bool { return ts.srv.hub.Count(topic) == 2 })
	agent.waitFor("Ada's message after the drop", liveUICount(pane+" .messages", "Still here")+` === 1`)
	customer.waitFor("the message acknowledged after the drop", `document.querySelectorAll("#messages li.pending").length === 0`)
	agent.typeInto(pane+" .composer input[name=text]", "Great, I am on it")
	agent.click(pane + " .composer button[type=submit]")
	customer.waitFor("Maya's message after the drop", liveUICount("#messages", "Great, I am on it")+` === 1`)
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
		agent.fail("earning notice = %q; want %q", got, wantEarned)
	}
	agent.shot("resolved")

	// (8) Ada rates 5.
	customer.waitVisible("#rating-form")
	if customer.visible("#composer") {
		customer.fail("the composer is still shown after the conversation was resolved")
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
	br.checkProblems()
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
	liveUIRun(agent, "choose Other", chromedp.Evaluate[bool](`(function (s) { s.value = "other"; s.dispatchEvent(new Event("change", {bubbles: true})); return true; })(document.querySelector("#decline-reason"))`))
	agent.typeInto("#decline-other", "Order disputes are not my area.")
	agent.shot("decline-form")
	agent.click("#decline-form button[type=submit]")
	agent.waitFor("the declined card goes", offered(first.ID)+` === null`)
	if got := agent.text("#console-notice"); !strings.Contains(got, "declined") {
		agent.fail("notice after declining = %q; want it to say so", got)
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
		agent.fail("notice after the offer ran out = %q; want it to say it timed out", got)
	}
	if got := agent.text("#presence-state"); got != "online" {
		agent.fail("presence after one miss = %q; want online", got)
	}

	// A minute on, one of the two comes back to her; it runs out too, and
	// the second miss in a row sets her away, with the reason.
	moveClock(41 * time.Second)
	agent.waitFor("an offer again", `document.querySelector("#offer-card") !== null`)
	moveClock(21 * time.Second)
	agent.waitFor("set away", `document.querySelector("#presence-state").textContent.trim() === "away"`)
	agent.waitFor("the card goes", `document.querySelector("#offer-card") === null`)
	if got := agent.text("#console-notice"); !strings.Contains(got, "missed two offers") {
		agent.fail("notice after two misses = %q; want why she was set away", got)
	}
	agent.shot("set-away")
	if a, err := db.Store.Agent(ctx, w.maya.ID); err != nil || a.Presence != models.PresenceAway {
		t.Fatalf("stored agent after two misses = %+v, %v; want away", a, err)
	}
	w.br.checkProblems()
}

// liveUIWorld is what every live test starts from: the server with its
// dispatcher running, a brand that pays 4.50 for billing with its bot's
// key, and Maya, an approved agent, online in her console.
type liveUIWorld struct {
	br    *liveUIBrowser
	db    *modeltest.DB
	ts    *testServer
	key   string
	maya  *models.Agent
	agent *liveUITab
}

func newLiveUIWorld(t *testing.T) *liveUIWorld {
	t.Helper()
	br := newLiveUIBrowser(t)
	db := modeltest.SQLite(t)
	ctx := context.Background()
	ts := newTestServer(t, db)
	br.base = ts.ts.URL

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
	agent := br.tab("agent")
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
	body := `{"external_id": ` + liveUIQuote(externalID) + `, "customer": {"name": "Ada", "email": "ada@example.com"}, "language": "en",
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
	deadline := time.Now().Add(liveUIStep)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", liveUIStep, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveUICount is a JavaScript expression: how many messages under list
// contain text.
func liveUICount(list, text string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).filter(function (li) { return li.textContent.includes(%s); }).length`,
		liveUIQuote(list+" li[data-seq]"), liveUIQuote(text))
}

// liveUIQuote quotes s as a JavaScript string.
func liveUIQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// liveUIChromium finds Chromium: $CHROMIUM_PATH, /usr/bin/chromium, or
// chromium on the PATH. Without it the test skips, except under CI=true.
func liveUIChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium not found; under CI the browser tests are required: install it or set CHROMIUM_PATH")
	}
	t.Skip("Chromium not found: browser test skipped; install it or set CHROMIUM_PATH")
	return ""
}

// liveUIBrowser is one headless Chromium; each person uses a tab in a
// browser context of their own, so each has their own cookies.
type liveUIBrowser struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  *syncBuffer
	keep bool // $HANDOFF_SCREENSHOTS: keep a screenshot of each step

	mu       sync.Mutex
	tabs     []*liveUITab
	shots    []liveUIShot
	problems []string
}

type liveUIShot struct {
	name string
	png  []byte
}

func newLiveUIBrowser(t *testing.T) *liveUIBrowser {
	t.Helper()
	chromium := liveUIChromium(t)
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &liveUIBrowser{t: t, ctx: ctx, out: out, keep: os.Getenv("HANDOFF_SCREENSHOTS") != ""}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		b.save()
		if t.Failed() {
			t.Logf("Chromium output:\n%s", liveUIOutput(out.String()))
		}
	})
	if err := liveUIStart(ctx, cancel); err != nil {
		t.Fatalf("start Chromium %s: %v\n%s", chromium, err, liveUIOutput(out.String()))
	}
	return b
}

// liveUIStart runs the first, empty action, which starts the browser or opens
// the tab. Its context must carry no deadline (that would end the browser
// with it), so a hang is guarded here instead.
func liveUIStart(ctx context.Context, cancel context.CancelFunc) error {
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * liveUIStep):
		cancel()
		return fmt.Errorf("no answer within %s", 2*liveUIStep)
	}
}

// liveUIOutput drops the D-Bus noise of a container from Chromium's output.
func liveUIOutput(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// tab opens a tab for one person in a browser context of its own, and
// records what its pages log as errors.
func (b *liveUIBrowser) tab(who string) *liveUITab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := liveUIStart(ctx, cancel); err != nil {
		b.t.Fatalf("open a tab for the %s: %v", who, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.problems = append(b.problems, who+": "+m.String())
				b.mu.Unlock()
			}
		}
	}()
	p := &liveUITab{t: b.t, b: b, who: who, ctx: ctx}
	b.mu.Lock()
	b.tabs = append(b.tabs, p)
	b.mu.Unlock()
	return p
}

// checkProblems fails the test for console errors and uncaught exceptions:
// a script blocked by the Content-Security-Policy shows up here too.
func (b *liveUIBrowser) checkProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser console: %s", p)
	}
}

// phoneShots keeps a screenshot of every tab at a phone's width, when
// screenshots are kept, and goes back to the desktop width.
func (b *liveUIBrowser) phoneShots(label string) {
	if !b.keep {
		return
	}
	for _, p := range b.tabs {
		p.do("phone width", chromedp.EmulateViewport(390, 844))
		p.takeShot("phone-" + label)
		p.do("desktop width", chromedp.EmulateViewport(1280, 900))
	}
}

// save writes the screenshots into $HANDOFF_SCREENSHOTS/<test> when set,
// else, after a failure, into a new temporary folder that outlives the test
// (t.TempDir would go with it), and logs where.
func (b *liveUIBrowser) save() {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := os.Getenv("HANDOFF_SCREENSHOTS")
	if len(b.shots) == 0 || dir == "" && !b.t.Failed() {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())
	var err error
	if dir != "" {
		dir = filepath.Join(dir, name)
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "handoff-"+name+"-")
	}
	if err != nil {
		b.t.Logf("screenshots: %v", err)
		return
	}
	for _, s := range b.shots {
		if err := os.WriteFile(filepath.Join(dir, s.name+".png"), s.png, 0o644); err != nil {
			b.t.Logf("screenshot %s: %v", s.name, err)
		}
	}
	b.t.Logf("%d screenshots in %s", len(b.shots), dir)
}

// liveUITab is one person at the browser.
type liveUITab struct {
	t   *testing.T
	b   *liveUIBrowser
	who string
	ctx context.Context
}

// do runs steps with the step timeout and fails the test on an error.
func (p *liveUITab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveUIStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// liveUIRun runs one action that returns a value, with the step timeout.
func liveUIRun[T any](p *liveUITab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveUIStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.fail("%s: %v", what, err)
	}
	return v
}

// fail takes a screenshot of every tab, then fails the test.
func (p *liveUITab) fail(format string, args ...any) {
	p.t.Helper()
	for _, tab := range p.b.tabs {
		if tab == p {
			tab.takeShot("failed")
		} else {
			tab.takeShot("when-" + p.who + "-failed")
		}
	}
	p.t.Fatalf("%s: %s", p.who, fmt.Sprintf(format, args...))
}

func (p *liveUITab) shot(label string) {
	if p.b.keep {
		p.takeShot(label)
	}
}

func (p *liveUITab) takeShot(label string) {
	ctx, cancel := context.WithTimeout(p.ctx, liveUIStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot of the %s's page: %v", p.who, err)
		return
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.b.shots = append(p.b.shots, liveUIShot{fmt.Sprintf("%02d-%s-%s", len(p.b.shots)+1, p.who, label), png})
}

// open navigates to a path of the server and expects 200.
func (p *liveUITab) open(path string) {
	p.t.Helper()
	p.openURL(p.b.base + path)
}

func (p *liveUITab) openURL(u string) {
	p.t.Helper()
	res := liveUIRun(p, "open "+u, chromedp.NavigateResponse(u))
	if res.Status != http.StatusOK {
		p.fail("GET %s = %d; want 200", u, res.Status)
	}
}

// submit clicks a submit button and waits for the page that follows.
func (p *liveUITab) submit(what, css string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveUIStep)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	if err != nil {
		p.fail("%s (click %s): %v", what, css, err)
	}
	if res.Status != http.StatusOK {
		p.fail("%s: the page answered %d; want 200", what, res.Status)
	}
}

func (p *liveUITab) click(css string) {
	p.t.Helper()
	p.do("click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// typeInto types into an empty field as a person does.
func (p *liveUITab) typeInto(css, text string) {
	p.t.Helper()
	p.do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

func (p *liveUITab) waitVisible(css string) {
	p.t.Helper()
	p.do("wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// waitFor waits until a JavaScript expression is true on the page.
func (p *liveUITab) waitFor(what, expr string) {
	p.t.Helper()
	liveUIRun(p, "wait for "+what, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(liveUIStep)))
}

func (p *liveUITab) text(css string) string {
	p.t.Helper()
	return strings.TrimSpace(liveUIRun(p, "read "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible)))
}

func (p *liveUITab) attr(css, name string) string {
	p.t.Helper()
	return liveUIRun(p, "read "+css+"["+name+"]", chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%s) || {getAttribute: function () { return ""; }}).getAttribute(%s) || ""`, liveUIQuote(css), liveUIQuote(name))))
}

// visible reports whether an element is rendered (not hidden, not display:none).
func (p *liveUITab) visible(css string) bool {
	p.t.Helper()
	return liveUIRun(p, "is "+css+" visible", chromedp.Evaluate[bool](
		fmt.Sprintf(`(function (n) { return !!n && n.getClientRects().length > 0; })(document.querySelector(%s))`, liveUIQuote(css))))
}

// expectSeqs checks that the list shows want messages, each sequence number
// once and in increasing order.
func (p *liveUITab) expectSeqs(list string, want int) {
	p.t.Helper()
	seqs := liveUIRun(p, "read the sequence numbers", chromedp.Evaluate[[]int](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map(function (li) { return parseInt(li.dataset.seq, 10); })`, liveUIQuote(list+" li[data-seq]"))))
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			p.fail("%s shows sequence numbers %v; want each once, in order", list, seqs)
		}
	}
	if len(seqs) != want {
		p.fail("%s shows %d messages (%v); want %d", list, len(seqs), seqs, want)
	}
}
