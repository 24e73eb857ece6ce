package app

import (
	"context"
	"encoding/json"
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

	"github.com/chromedp/chromedp"
)

// The harness of the browser tests: one headless Chromium per test, driven
// with chromedp, and a tab per person in a browser context of their own.

// browserStepTimeout bounds one browser step. It only turns a hang into a
// failure; nothing asserts how fast a page is.
const browserStepTimeout = 30 * time.Second

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
	base string      // the server's URL, which open's paths are under
	out  *syncBuffer // Chromium's own output, shown when the test fails

	// keepShots is set by $HANDOFF_SCREENSHOTS: a screenshot of every page
	// then. Otherwise only a failure takes them (each costs about half a
	// second under -race).
	keepShots bool

	mu       sync.Mutex
	tabs     []*browserTab
	shots    []browserShot
	problems []string // console errors and uncaught exceptions
}

type browserShot struct {
	name string
	png  []byte
}

// newTestBrowser starts Chromium (found with chromiumPath) for a test on the
// server at base; it ends with the test.
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

// newTab opens a tab for one person in a browser context of their own, so
// their cookies are theirs, and records what its pages log as errors.
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
	b.mu.Lock()
	b.tabs = append(b.tabs, tab)
	b.mu.Unlock()
	return tab
}

// allTabs is a copy of the tabs opened so far.
func (b *testBrowser) allTabs() []*browserTab {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*browserTab(nil), b.tabs...)
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

// phoneShots keeps a screenshot of every tab at a phone's width, when
// screenshots are kept, and goes back to the desktop width.
func (b *testBrowser) phoneShots(label string) {
	if !b.keepShots {
		return
	}
	for _, p := range b.allTabs() {
		p.step("phone width", chromedp.EmulateViewport(390, 844))
		p.takeShot("phone-" + label)
		p.step("desktop width", chromedp.EmulateViewport(1280, 900))
	}
}

// saveShots writes the screenshots into $HANDOFF_SCREENSHOTS/<test> when it
// is set, else, when the test failed, into a new temporary folder that
// outlives the test (t.TempDir would be removed with it) and is logged.
func (b *testBrowser) saveShots() {
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

// browserTab is one person at the browser: a tab in a browser context of
// their own, so their cookies are theirs.
type browserTab struct {
	t   *testing.T
	b   *testBrowser
	who string
	ctx context.Context
	n   int // screenshots taken, to number them
}

// step runs steps with the step timeout and fails the test on an error.
func (p *browserTab) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, steps...)
	for try := 0; try < 3 && navigatedAway(err); try++ {
		err = chromedp.Do(ctx, steps...)
	}
	if err != nil {
		p.fatalf("%s: %v", what, err)
	}
}

// navigatedAway reports the error Chromium gives when a page load replaced
// the JavaScript context between finding a node and using it; the step is
// safe to run again on the new page.
func navigatedAway(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Cannot find context with specified id")
}

// browserGet runs one action that returns a value, with the step timeout,
// and fails the test on an error.
func browserGet[T any](p *browserTab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	for try := 0; try < 3 && navigatedAway(err); try++ {
		v, err = chromedp.Run(ctx, a)
	}
	if err != nil {
		p.fatalf("%s: %v", what, err)
	}
	return v
}

// fatalf takes a screenshot of where each person is, then fails the test.
func (p *browserTab) fatalf(format string, args ...any) {
	p.t.Helper()
	for _, tab := range p.b.allTabs() {
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
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	p.n++
	p.b.shots = append(p.b.shots, browserShot{fmt.Sprintf("%02d-%s-%02d-%s", len(p.b.shots)+1, p.who, p.n, label), png})
}

// location is the URL of the page the person is on, or "?"; it never fails
// the test, so fatalf can use it.
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

// open navigates to a path of the server and expects 200.
func (p *browserTab) open(path string) {
	p.t.Helper()
	p.openURL(p.b.base + path)
}

// openURL navigates to a full URL and expects 200.
func (p *browserTab) openURL(u string) {
	p.t.Helper()
	res := browserGet(p, "open "+u, chromedp.NavigateResponse(u))
	label := u
	if pu, err := url.Parse(u); err == nil {
		label = pu.Path
	}
	p.shot(browserSlug(label))
	if res.Status != 200 {
		p.fatalf("GET %s = %d; want 200", u, res.Status)
	}
}

// submit clicks the element at css (a submit button or a link), waits for
// the page that follows and expects 200.
func (p *browserTab) submit(what, css string) {
	p.t.Helper()
	p.submitStatus(what, css, 200)
}

// submitStatus clicks the element at css (a submit button or a link), waits
// for the page that follows and expects status. A click that does not load
// a page (a script's button) is click.
func (p *browserTab) submitStatus(what, css string, status int64) {
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
	p.typeInto(css, v)
}

// typeInto types text into a field as a person does, after what it holds
// (fill replaces it).
func (p *browserTab) typeInto(css, text string) {
	p.t.Helper()
	p.step("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

// click clicks the element at css, once it is visible, and waits for no page.
func (p *browserTab) click(css string) {
	p.t.Helper()
	p.step("click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

func (p *browserTab) selectOption(css, value string) {
	p.t.Helper()
	p.step("select "+value+" in "+css, chromedp.SetValue(chromedp.CSS(css), value, chromedp.NodeVisible))
}

// waitVisible waits until the element at css is visible.
func (p *browserTab) waitVisible(css string) {
	p.t.Helper()
	p.step("wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// waitFor waits until a JavaScript expression is true on the page.
func (p *browserTab) waitFor(what, expr string) {
	p.t.Helper()
	browserGet(p, "wait for "+what, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(browserStepTimeout)))
}

// text is the visible text of the element at css, trimmed.
func (p *browserTab) text(css string) string {
	p.t.Helper()
	return strings.TrimSpace(browserGet(p, "read "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible)))
}

func (p *browserTab) value(css string) string {
	p.t.Helper()
	return browserGet(p, "read the value of "+css, chromedp.Value(chromedp.CSS(css)))
}

// attr is the attribute name of the element at css; "" when either is missing.
func (p *browserTab) attr(css, name string) string {
	p.t.Helper()
	return browserGet(p, "read "+css+"["+name+"]", chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%s) || {getAttribute: function () { return ""; }}).getAttribute(%s) || ""`, jsQuote(css), jsQuote(name))))
}

func (p *browserTab) checked(css string) bool {
	p.t.Helper()
	return browserGet(p, "read "+css+".checked", chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "checked"))
}

func (p *browserTab) disabled(css string) bool {
	p.t.Helper()
	return browserGet(p, "read "+css+".disabled", chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "disabled"))
}

// visible reports whether an element is rendered (not hidden, not display:none).
func (p *browserTab) visible(css string) bool {
	p.t.Helper()
	return browserGet(p, "is "+css+" visible", chromedp.Evaluate[bool](
		fmt.Sprintf(`(function (n) { return !!n && n.getClientRects().length > 0; })(document.querySelector(%s))`, jsQuote(css))))
}

// browserSlug makes a file-name part from a path or a step name, cut to 60
// characters so that a token in a path (a customer's link) keeps the name
// within what a file system takes.
func browserSlug(s string) string {
	s = strings.Trim(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(s, "-"), "-")
	if len(s) > 60 {
		s = strings.TrimRight(s[:60], "-")
	}
	if s == "" {
		return "home"
	}
	return s
}

// jsQuote quotes s as a JavaScript string.
func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
