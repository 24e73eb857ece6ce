package app

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// browserStepTimeout bounds one browser step. It only turns a hang into a
// failure; nothing asserts how fast a page is.
const browserStepTimeout = 30 * time.Second

// TestBrowserSignupVettingAndPresence drives the pages in headless Chromium
// as three people do, each in a browser context of their own (so each has
// their own cookies): a brand signs up, sets its quality bars and makes an
// API key; an agent applies; the operator approves the application; the
// agent goes online.
func TestBrowserSignupVettingAndPresence(t *testing.T) {
	t.Parallel() // it mostly waits on Chromium, a process of its own
	chromium := chromiumPath(t)
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		br := newTestBrowser(t, chromium, ts.ts.URL)

		// (1) A brand signs up and lands on its dashboard, then opens its settings.
		brand := br.newTab("brand")
		brand.open("/signup")
		brand.fill("#name", "Globex Support")
		brand.fill("#email", "owner@globex.test")
		brand.fill("#password", testPassword)
		brand.submit("sign up", "main form button[type=submit]", 200)
		m := regexp.MustCompile(`^/brand/([^/]+)$`).FindStringSubmatch(brand.path())
		if m == nil {
			brand.fatalf("after sign-up the brand is at %s; want /brand/ID", brand.path())
		}
		brandID := m[1]
		if got := brand.text(".flash"); !strings.Contains(got, "Welcome to Handoff, Globex Support") {
			brand.fatalf("flash after sign-up = %q; want the welcome", got)
		}
		if got := brand.text("main"); !strings.Contains(got, "Getting started") {
			brand.fatalf("the dashboard lacks the getting-started checklist:\n%s", got)
		}
		brand.open("/brand/" + brandID + "/settings")

		// It sets its quality bars and the offer timeout.
		brand.fill("#min_rating", "4.2")
		brand.fill("#min_qa_score", "80")
		if !brand.checked("input[name=require_certification]") {
			brand.click("input[name=require_certification]")
		}
		brand.fill("#offer_timeout_seconds", "30")
		brand.submit("save settings", "main form button[type=submit]", 200)
		if got := brand.text(".flash"); got != "Settings saved." {
			brand.fatalf("flash after saving = %q; want %q", got, "Settings saved.")
		}
		for sel, want := range map[string]string{"#min_rating": "4.2", "#min_qa_score": "80", "#offer_timeout_seconds": "30"} {
			if got := brand.value(sel); got != want {
				brand.fatalf("after saving, %s shows %q; want %q", sel, got, want)
			}
		}
		if !brand.checked("input[name=require_certification]") {
			brand.fatalf("after saving, Require certification is not checked")
		}
		b, err := db.Store.Brand(ctx, brandID)
		if err != nil {
			t.Fatalf("Brand: %v", err)
		}
		if b.MinRating != 4.2 || b.MinQAScore != 80 || !b.RequireCertification || b.OfferTimeoutSeconds != 30 {
			t.Fatalf("stored settings: min rating %v, min QA %v, certification %v, offer timeout %d; want 4.2, 80, true, 30",
				b.MinRating, b.MinQAScore, b.RequireCertification, b.OfferTimeoutSeconds)
		}

		// (2) It makes an API key for its bot; the key is shown once.
		brand.submit("open API keys", `header nav a[href="/brand/`+brandID+`/keys"]`, 200)
		brand.fill("#name", "Bot")
		brand.submit("create key", "main form button[type=submit]", 201)
		key := brand.value("#new-key")
		if !strings.HasPrefix(key, "hk_") {
			brand.fatalf("#new-key = %q; want a key starting hk_", key)
		}
		if got := brand.text(".new-key header"); !strings.Contains(got, "Bot") {
			brand.fatalf("new key header = %q; want the key's name", got)
		}
		if kb, _, err := db.Store.BrandByAPIKey(ctx, key); err != nil || kb.ID != brandID {
			t.Fatalf("BrandByAPIKey(shown key) = %v, %v; want brand %s", kb, err, brandID)
		}

		// (3) An agent applies, in a browser of their own.
		agent := br.newTab("agent")
		agent.open("/apply")
		agent.fill("#display_name", "Sam Rivera")
		agent.fill("#email", "sam@agents.test")
		agent.fill("#password", testPassword)
		agent.fill("#languages", "en")
		agent.fill("input[name=skill_1]", "billing")
		agent.selectOption("select[name=level_1]", "4")
		agent.fill("#bio", "Six years of billing support for SaaS brands.")
		agent.submit("apply", "main form button[type=submit]", 200)
		if agent.path() != "/agent" {
			agent.fatalf("after applying the agent is at %s; want /agent", agent.path())
		}
		if got := agent.text("#application"); !strings.Contains(got, "Pending review") {
			agent.fatalf("application panel = %q; want Pending review", got)
		}
		const goOnline = "button[name=presence][value=online]"
		if !agent.disabled(goOnline) {
			agent.fatalf("Go online is enabled before approval")
		}

		// (4) The operator signs in, finds the application and approves it.
		mustOperator(t, db, "ops@handoff.test")
		op := br.newTab("operator")
		op.open("/login")
		op.fill("#email", "ops@handoff.test")
		op.fill("#password", testPassword)
		op.submit("sign in", "main form button[type=submit]", 200)
		if op.path() != "/admin" {
			op.fatalf("after sign-in the operator is at %s; want /admin", op.path())
		}
		if got := op.text("main"); !strings.Contains(got, "Sam Rivera") || !strings.Contains(got, "sam@agents.test") {
			op.fatalf("the queue does not list the applicant:\n%s", got)
		}
		a := browserPendingAgent(t, db, "sam@agents.test")
		op.submit("open the review", `main a[role=button][href="/admin/agents/`+a.ID+`"]`, 200)
		if got := op.text("#agent-status"); got != "pending" {
			op.fatalf("status on the review page = %q; want pending", got)
		}
		op.submit("approve", `form[action="/admin/agents/`+a.ID+`/approve"] button[type=submit]`, 200)
		if op.path() != "/admin" {
			op.fatalf("after approving the operator is at %s; want /admin", op.path())
		}
		if got := op.text(".flash"); !strings.Contains(got, "Application approved") {
			op.fatalf("flash after approving = %q; want Application approved", got)
		}
		if got := op.text("main"); strings.Contains(got, "sam@agents.test") {
			op.fatalf("the approved applicant is still in the queue:\n%s", got)
		}

		// (5) The agent reloads, sees the approval and goes online.
		agent.open("/agent")
		if got := agent.text("#application"); !strings.Contains(got, "Approved") {
			agent.fatalf("application panel after approval = %q; want Approved", got)
		}
		// Once approved, the live console replaces the plain form.
		const consoleOnline = "#live-console button[data-presence=online]"
		if agent.disabled(consoleOnline) {
			agent.fatalf("the console's Online button is disabled after approval")
		}
		agent.click(consoleOnline)
		for deadline := time.Now().Add(30 * time.Second); agent.text("#presence-state") != "online"; {
			if time.Now().After(deadline) {
				agent.fatalf("presence = %q; want online", agent.text("#presence-state"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		stored, err := db.Store.Agent(ctx, a.ID)
		if err != nil || stored.Status != models.AgentApproved || stored.Presence != "online" {
			t.Fatalf("stored agent = %+v, %v; want approved and online", stored, err)
		}

		br.checkConsole()
	})
}

// browserPendingAgent finds the pending application of email.
func browserPendingAgent(t *testing.T, db *modeltest.DB, email string) *models.Agent {
	t.Helper()
	agents, err := db.Store.Agents(context.Background(), models.AgentPending, 100)
	if err != nil {
		t.Fatalf("Agents: %v", err)
	}
	for i := range agents {
		if agents[i].User != nil && agents[i].User.Email == email {
			return &agents[i]
		}
	}
	t.Fatalf("no pending application from %s", email)
	return nil
}

// chromiumPath finds Chromium: $CHROMIUM_PATH, then the usual names. The
// browser tests skip without it, except under CI=true, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"}
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Chromium not found (tried %v); under CI the browser tests are required: install it or set CHROMIUM_PATH", names)
	}
	t.Skipf("Chromium not found (tried %v): browser tests skipped; install it or set CHROMIUM_PATH", names)
	return ""
}

// testBrowser is one headless Chromium for a test. People use it through
// tabs in browser contexts of their own.
type testBrowser struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  *syncBuffer // Chromium's own output, shown when the test fails

	// keepShots is set by $HANDOFF_SCREENSHOTS: a screenshot of every page
	// then. Otherwise only a failure takes them (each costs about half a
	// second under -race).
	keepShots bool
	tabs      []*browserTab

	mu       sync.Mutex
	shots    []browserShot
	problems []string // console errors and uncaught exceptions
}

type browserShot struct {
	name string
	png  []byte
}

func newTestBrowser(t *testing.T, chromium, base string) *testBrowser {
	t.Helper()
	out := &syncBuffer{}
	// No user-data-dir flag: the allocator makes a fresh one per browser
	// and removes it once Chromium and its helpers have exited.
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
	b := &testBrowser{t: t, ctx: ctx, base: base, out: out, keepShots: os.Getenv("HANDOFF_SCREENSHOTS") != ""}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		b.saveShots()
		if t.Failed() {
			t.Logf("Chromium output (without D-Bus noise):\n%s", chromiumOutput(out.String()))
		}
	})
	// The first run starts the browser and ties its life to ctx, so it
	// gets no deadline (see chromedp's docs/API.md, example 21).
	if err := browserStart(ctx, cancel); err != nil {
		t.Fatalf("start Chromium %s: %v\n%s", chromium, err, chromiumOutput(out.String()))
	}
	return b
}

// browserStart runs the first, empty action on ctx, which starts the browser
// or opens the tab. Its context cannot carry a deadline (that would end the
// browser or the tab with it), so a hang is guarded here: cancel ends it.
func browserStart(ctx context.Context, cancel context.CancelFunc) error {
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * browserStepTimeout):
		cancel()
		return fmt.Errorf("no answer within %s", 2*browserStepTimeout)
	}
}

// chromiumOutput drops the lines a container without D-Bus fills the
// output with.
func chromiumOutput(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// browserTab is one person at the browser: a tab in a browser context of
// their own, so their cookies are theirs.
type browserTab struct {
	t   *testing.T
	b   *testBrowser
	who string
	ctx context.Context
	n   int // pages seen, to number the screenshots
}

func (b *testBrowser) newTab(who string) *browserTab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := browserStart(ctx, cancel); err != nil {
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
	tab := &browserTab{t: b.t, b: b, who: who, ctx: ctx}
	b.tabs = append(b.tabs, tab)
	return tab
}

// checkConsole fails the test if a page logged an error or threw: a script
// or style blocked by the Content-Security-Policy shows up here.
func (b *testBrowser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser console: %s", p)
	}
}

// saveShots writes the screenshots into $HANDOFF_SCREENSHOTS when it is
// set, else, when the test failed, into a new temporary folder that
// outlives the test (t.TempDir would be removed with it) and is logged.
func (b *testBrowser) saveShots() {
	dir := os.Getenv("HANDOFF_SCREENSHOTS")
	if dir == "" && !b.t.Failed() || len(b.shots) == 0 {
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
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.shots {
		if err := os.WriteFile(filepath.Join(dir, s.name+".png"), s.png, 0o644); err != nil {
			b.t.Logf("screenshot %s: %v", s.name, err)
		}
	}
	b.t.Logf("%d screenshots in %s", len(b.shots), dir)
}

// step runs steps with the step timeout and fails the test on an error.
func (p *browserTab) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, with the step timeout.
func browserGet[T any](p *browserTab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.fatalf("%s: %v", what, err)
	}
	return v
}

// fatalf takes a screenshot of where each person is, then fails the test.
func (p *browserTab) fatalf(format string, args ...any) {
	p.t.Helper()
	for _, tab := range p.b.tabs {
		if tab == p {
			tab.takeShot("failed")
		} else {
			tab.takeShot("when-" + p.who + "-failed")
		}
	}
	p.t.Fatalf("%s at %s: %s", p.who, p.location(), fmt.Sprintf(format, args...))
}

// shot keeps a full-page screenshot of the current page when
// $HANDOFF_SCREENSHOTS asks for every page.
func (p *browserTab) shot(label string) {
	if p.b.keepShots {
		p.takeShot(label)
	}
}

func (p *browserTab) takeShot(label string) {
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot of the %s's page: %v", p.who, err)
		return
	}
	p.n++
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.b.shots = append(p.b.shots, browserShot{fmt.Sprintf("%02d-%s-%02d-%s", len(p.b.shots)+1, p.who, p.n, label), png})
}

func (p *browserTab) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// path is the path of the page the person is on.
func (p *browserTab) path() string {
	p.t.Helper()
	u, err := url.Parse(browserGet(p, "read the location", chromedp.Location()))
	if err != nil {
		p.fatalf("location: %v", err)
	}
	return u.Path
}

// open navigates to path and expects 200.
func (p *browserTab) open(path string) {
	p.t.Helper()
	res := browserGet(p, "open "+path, chromedp.NavigateResponse(p.b.base+path))
	p.shot(browserSlug(path))
	if res.Status != 200 {
		p.fatalf("GET %s = %d; want 200", path, res.Status)
	}
}

// submit clicks the element at css (a submit button or a link), waits for
// the page that follows and expects its status.
func (p *browserTab) submit(what, css string, status int64) *network.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	if err != nil {
		p.fatalf("%s (click %s): %v", what, css, err)
	}
	p.shot(browserSlug(what))
	if res.Status != status {
		p.fatalf("%s: the page answered %d; want %d", what, res.Status, status)
	}
	return res
}

// fill replaces the value of a text field by typing, as a person does. It
// clears with Clear, not SetValue(""): chromedp v0.23 drops an empty-string
// argument of a JavaScript call (cdproto's CallArgument.Value is omitempty
// under encoding/json/v2), so SetValue(sel, "") sets the field to
// "undefined" and fails. Clear fails on an empty textarea, so an empty
// field is not cleared.
func (p *browserTab) fill(css, v string) {
	p.t.Helper()
	if p.value(css) != "" {
		p.step("clear "+css, chromedp.Clear(chromedp.CSS(css), chromedp.NodeVisible))
	}
	p.step("fill "+css, chromedp.SendKeys(chromedp.CSS(css), v, chromedp.NodeVisible))
}

func (p *browserTab) click(css string) {
	p.t.Helper()
	p.step("click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

func (p *browserTab) selectOption(css, value string) {
	p.t.Helper()
	p.step("select "+value+" in "+css, chromedp.SetValue(chromedp.CSS(css), value, chromedp.NodeVisible))
}

func (p *browserTab) text(css string) string {
	p.t.Helper()
	return strings.TrimSpace(browserGet(p, "read "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible)))
}

func (p *browserTab) value(css string) string {
	p.t.Helper()
	return browserGet(p, "read the value of "+css, chromedp.Value(chromedp.CSS(css)))
}

func (p *browserTab) checked(css string) bool {
	p.t.Helper()
	return browserGet(p, "read "+css+".checked", chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "checked"))
}

func (p *browserTab) disabled(css string) bool {
	p.t.Helper()
	return browserGet(p, "read "+css+".disabled", chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "disabled"))
}

// browserSlug makes a file-name part from a path or a step name.
func browserSlug(s string) string {
	s = strings.Trim(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(s, "-"), "-")
	if s == "" {
		return "home"
	}
	return s
}
