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

// liveStep bounds one step of the live browser test. It only turns a hang
// into a failure; nothing asserts how fast anything is.
const liveStep = 30 * time.Second

// TestBrowserLiveHandoff drives a whole handoff in headless Chromium, with
// the dispatcher running: an agent goes online in the live console, a bot
// escalates through the API, the customer waits on their page, the agent
// gets the offer with its countdown and accepts, both chat, the agent
// resolves and earns, and the customer rates.
func TestBrowserLiveHandoff(t *testing.T) {
	t.Parallel() // it mostly waits on Chromium, a process of its own
	br := newLiveBrowser(t)
	db := modeltest.SQLite(t)
	ctx := context.Background()
	ts := newTestServer(t, db)
	br.base = ts.ts.URL

	// The dispatcher sweeps every second with the real clock; the store's
	// clock is fake and stands still, so the offer's time left stays full.
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

	// A brand with a billing skill that pays 4.50 a conversation, and its key.
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

	// An approved agent, Maya, who does billing in English.
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

	// (1) Maya signs in, opens her console and goes online over the socket.
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

	// (2) The bot escalates Ada's chat.
	esc := liveEscalate(t, ts.ts.URL, key)
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
	customer.waitFor("Maya's message", liveCountJS("#messages", "Hello Ada")+` === 1`)
	customer.typeInto("#composer-text", "Thanks!")
	customer.click("#composer button[type=submit]")
	agent.waitFor("Ada's message", liveCountJS(pane+" .messages", "Thanks!")+` === 1`)
	customer.waitFor("Ada's message acknowledged", `document.querySelectorAll("#messages li.pending").length === 0`)
	agent.waitFor("Maya's message acknowledged", `document.querySelectorAll("`+pane+` li.pending").length === 0`)
	agent.shot("chatting")
	customer.shot("chatting")
	br.phoneShots("chatting")

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
	customer.expectSeqs("#messages", 4)
	br.checkProblems()
}

// liveEscalation is the part of the 201 answer the test uses.
type liveEscalation struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	CustomerURL string `json:"customer_url"`
}

// liveEscalate posts Ada's escalation as the brand's bot does.
func liveEscalate(t *testing.T, base, key string) liveEscalation {
	t.Helper()
	body := `{"external_id": "chat-8812", "customer": {"name": "Ada", "email": "ada@example.com"}, "language": "en",
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
	var out liveEscalation
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.ID == "" || !strings.HasPrefix(out.CustomerURL, base+"/c/") {
		t.Fatalf("escalation answer %s: %v; want an id and a customer_url on %s", buf.String(), err, base)
	}
	return out
}

// liveCountJS is a JavaScript expression: how many messages under list
// contain text.
func liveCountJS(list, text string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).filter(function (li) { return li.textContent.includes(%s); }).length`,
		liveJS(list+" li[data-seq]"), liveJS(text))
}

// liveJS quotes s as a JavaScript string.
func liveJS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// liveChromium finds Chromium: $CHROMIUM_PATH, /usr/bin/chromium, or
// chromium on the PATH. Without it the test skips, except under CI=true.
func liveChromium(t *testing.T) string {
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

// liveBrowser is one headless Chromium; each person uses a tab in a
// browser context of their own, so each has their own cookies.
type liveBrowser struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  *syncBuffer
	keep bool // $HANDOFF_SCREENSHOTS: keep a screenshot of each step

	mu       sync.Mutex
	tabs     []*liveTab
	shots    []liveShot
	problems []string
}

type liveShot struct {
	name string
	png  []byte
}

func newLiveBrowser(t *testing.T) *liveBrowser {
	t.Helper()
	chromium := liveChromium(t)
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
	b := &liveBrowser{t: t, ctx: ctx, out: out, keep: os.Getenv("HANDOFF_SCREENSHOTS") != ""}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		b.save()
		if t.Failed() {
			t.Logf("Chromium output:\n%s", liveOutput(out.String()))
		}
	})
	if err := liveStart(ctx, cancel); err != nil {
		t.Fatalf("start Chromium %s: %v\n%s", chromium, err, liveOutput(out.String()))
	}
	return b
}

// liveStart runs the first, empty action, which starts the browser or opens
// the tab. Its context must carry no deadline (that would end the browser
// with it), so a hang is guarded here instead.
func liveStart(ctx context.Context, cancel context.CancelFunc) error {
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * liveStep):
		cancel()
		return fmt.Errorf("no answer within %s", 2*liveStep)
	}
}

// liveOutput drops the D-Bus noise of a container from Chromium's output.
func liveOutput(s string) string {
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
func (b *liveBrowser) tab(who string) *liveTab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := liveStart(ctx, cancel); err != nil {
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
	p := &liveTab{t: b.t, b: b, who: who, ctx: ctx}
	b.mu.Lock()
	b.tabs = append(b.tabs, p)
	b.mu.Unlock()
	return p
}

// checkProblems fails the test for console errors and uncaught exceptions:
// a script blocked by the Content-Security-Policy shows up here too.
func (b *liveBrowser) checkProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser console: %s", p)
	}
}

// phoneShots keeps a screenshot of every tab at a phone's width, when
// screenshots are kept, and goes back to the desktop width.
func (b *liveBrowser) phoneShots(label string) {
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
func (b *liveBrowser) save() {
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

// liveTab is one person at the browser.
type liveTab struct {
	t   *testing.T
	b   *liveBrowser
	who string
	ctx context.Context
}

// do runs steps with the step timeout and fails the test on an error.
func (p *liveTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// liveRun runs one action that returns a value, with the step timeout.
func liveRun[T any](p *liveTab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.fail("%s: %v", what, err)
	}
	return v
}

// fail takes a screenshot of every tab, then fails the test.
func (p *liveTab) fail(format string, args ...any) {
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

func (p *liveTab) shot(label string) {
	if p.b.keep {
		p.takeShot(label)
	}
}

func (p *liveTab) takeShot(label string) {
	ctx, cancel := context.WithTimeout(p.ctx, liveStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot of the %s's page: %v", p.who, err)
		return
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.b.shots = append(p.b.shots, liveShot{fmt.Sprintf("%02d-%s-%s", len(p.b.shots)+1, p.who, label), png})
}

// open navigates to a path of the server and expects 200.
func (p *liveTab) open(path string) {
	p.t.Helper()
	p.openURL(p.b.base + path)
}

func (p *liveTab) openURL(u string) {
	p.t.Helper()
	res := liveRun(p, "open "+u, chromedp.NavigateResponse(u))
	if res.Status != http.StatusOK {
		p.fail("GET %s = %d; want 200", u, res.Status)
	}
}

// submit clicks a submit button and waits for the page that follows.
func (p *liveTab) submit(what, css string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, liveStep)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	if err != nil {
		p.fail("%s (click %s): %v", what, css, err)
	}
	if res.Status != http.StatusOK {
		p.fail("%s: the page answered %d; want 200", what, res.Status)
	}
}

func (p *liveTab) click(css string) {
	p.t.Helper()
	p.do("click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// typeInto types into an empty field as a person does.
func (p *liveTab) typeInto(css, text string) {
	p.t.Helper()
	p.do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

func (p *liveTab) waitVisible(css string) {
	p.t.Helper()
	p.do("wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// waitFor waits until a JavaScript expression is true on the page.
func (p *liveTab) waitFor(what, expr string) {
	p.t.Helper()
	liveRun(p, "wait for "+what, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(liveStep)))
}

func (p *liveTab) text(css string) string {
	p.t.Helper()
	return strings.TrimSpace(liveRun(p, "read "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible)))
}

func (p *liveTab) attr(css, name string) string {
	p.t.Helper()
	return liveRun(p, "read "+css+"["+name+"]", chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%s) || {getAttribute: function () { return ""; }}).getAttribute(%s) || ""`, liveJS(css), liveJS(name))))
}

// visible reports whether an element is rendered (not hidden, not display:none).
func (p *liveTab) visible(css string) bool {
	p.t.Helper()
	return liveRun(p, "is "+css+" visible", chromedp.Evaluate[bool](
		fmt.Sprintf(`(function (n) { return !!n && n.getClientRects().length > 0; })(document.querySelector(%s))`, liveJS(css))))
}

// expectSeqs checks that the list shows want messages, each sequence number
// once and in increasing order.
func (p *liveTab) expectSeqs(list string, want int) {
	p.t.Helper()
	seqs := liveRun(p, "read the sequence numbers", chromedp.Evaluate[[]int](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map(function (li) { return parseInt(li.dataset.seq, 10); })`, liveJS(list+" li[data-seq]"))))
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			p.fail("%s shows sequence numbers %v; want each once, in order", list, seqs)
		}
	}
	if len(seqs) != want {
		p.fail("%s shows %d messages (%v); want %d", list, len(seqs), seqs, want)
	}
}
