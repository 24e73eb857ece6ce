package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/models"
)

// simConfig is what `handoff simulate` was asked to do.
type simConfig struct {
	urls             []string
	apiKey           string
	agents           int
	rate             float64 // escalations per second
	duration         time.Duration
	settle           time.Duration
	handleTime       time.Duration // mean, exponentially distributed
	operatorEmail    string
	operatorPassword string
	skills           []string
	language         string
	messages         int // chat messages per conversation, customer and agent together
	prefix           string
	capacity         int
	idle             int // > 0: measure that many idle customer sockets instead
	cpuProfile       string
}

// simAgentPassword is the password of every simulated agent; they are test
// accounts on a test domain, recreated by the next run if missing.
const simAgentPassword = "simulated-agent-password"

// simEmailDomain is where simulated agents and customers live.
const simEmailDomain = "sim.handoff.test"

// urlList is a repeatable --url flag.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(s string) error {
	p, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("want an http(s):// base URL, got %q", s)
	}
	*u = append(*u, p.String())
	return nil
}

// simGCPercent is the simulator's GOGC unless the environment sets one.
const simGCPercent = 400

// cmdSimulate drives running servers the way real users do: simulated
// agents sign in (applying and being approved through the operator's pages
// if they do not exist yet), go online over websockets, accept offers, chat
// and resolve; bots escalate at a fixed rate; customers chat from the link
// each escalation returns. It prints progress on stderr and one JSON line
// of results on stdout. It fails (exit 1) only when the setup fails.
func cmdSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseSimulateFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.idle > 0 {
		return runIdle(ctx, cfg, stdout, stderr)
	}
	if getenv("GOGC") == "" {
		// The simulator times what it receives: its own collector's
		// pauses would count as the server's latency. It holds little
		// memory, so it collects less often.
		debug.SetGCPercent(simGCPercent)
		defer debug.SetGCPercent(100)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	s := newSim(cfg, stderr)
	defer s.client.CloseIdleConnections()
	sum, err := s.run(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func parseSimulateFlags(args []string, getenv func(string) string, stderr io.Writer) (simConfig, error) {
	fs := flag.NewFlagSet("handoff simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls urlList
	fs.Var(&urls, "url", "base `URL` of a running server; repeat to spread agents and bots over several instances (default $HANDOFF_BASE_URL or http://localhost:8080)")
	apiKey := fs.String("api-key", getenv("HANDOFF_API_KEY"), "the brand's bot `KEY`, from \"handoff apikey create --brand acme\" ($HANDOFF_API_KEY)")
	agents := fs.Int("agents", 10, "simulated agents online")
	rate := fs.Float64("rate", 1, "escalations per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to escalate")
	settle := fs.Duration("settle", 10*time.Second, "after --duration, how long to wait at most for the last conversations to end")
	handle := fs.Float64("handle-time", 30, "mean seconds an agent takes to resolve (exponentially distributed)")
	opEmail := fs.String("operator-email", models.DemoLogins[0].Email, "operator who approves new simulated agents")
	opPassword := fs.String("operator-password", models.DemoPassword, "that operator's password")
	skills := fs.String("skills", "billing", "comma-separated skills the escalations need and the agents hold")
	lang := fs.String("language", "en", "language of the escalations and the agents")
	messages := fs.Int("messages", 3, "chat messages per conversation, customer and agent together (the customer writes first)")
	prefix := fs.String("agent-prefix", "sim", "prefix of the simulated agents' emails: PREFIX-agent-0001@"+simEmailDomain)
	capacity := fs.Int("capacity", 1, "chats each simulated agent takes at once (1-3)")
	idle := fs.Int("idle", 0, "instead of a run, open this many idle customer sockets, hold them for --duration and report the server's memory")
	cpuProfile := fs.String("cpuprofile", "", "write the simulator's own CPU profile to `FILE` (go tool pprof), to see its share of the machine")
	if err := fs.Parse(args); err != nil {
		return simConfig{}, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return simConfig{}, errUsage
	}
	if len(urls) == 0 {
		def := getenv("HANDOFF_BASE_URL")
		if def == "" {
			def = "http://localhost:8080"
		}
		if err := urls.Set(def); err != nil {
			fmt.Fprintf(stderr, "$HANDOFF_BASE_URL: %v\n", err)
			return simConfig{}, errUsage
		}
	}
	cfg := simConfig{urls: urls, apiKey: strings.TrimSpace(*apiKey), agents: *agents, rate: *rate, duration: *duration,
		settle: *settle, handleTime: time.Duration(*handle * float64(time.Second)), operatorEmail: *opEmail,
		operatorPassword: *opPassword, language: *lang, messages: *messages, prefix: *prefix, capacity: *capacity, idle: *idle,
		cpuProfile: *cpuProfile}
	for _, sk := range strings.Split(*skills, ",") {
		if sk = strings.TrimSpace(sk); sk != "" {
			cfg.skills = append(cfg.skills, sk)
		}
	}
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	check(cfg.apiKey == "", "--api-key is required (make one with `handoff apikey create --brand acme`)")
	check(cfg.agents < 0, "--agents must be 0 or more")
	check(!(cfg.rate > 0) || math.IsInf(cfg.rate, 0), "--rate must be more than 0")
	check(cfg.duration <= 0, "--duration must be more than 0")
	check(cfg.settle < 0, "--settle must not be negative")
	check(!(*handle >= 0) || math.IsInf(*handle, 0), "--handle-time must be 0 or more seconds")
	check(cfg.messages < 0, "--messages must be 0 or more")
	check(cfg.capacity < 1 || cfg.capacity > 3, "--capacity must be 1, 2 or 3")
	check(len(cfg.skills) == 0, "--skills needs at least one skill")
	check(len(cfg.skills) > 6, "--skills takes at most 6 skills (the application form's rows)")
	check(cfg.prefix == "" || strings.ContainsAny(cfg.prefix, "@ \t"), "--agent-prefix must be a plain word")
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "handoff simulate:", p)
		}
		return simConfig{}, errUsage
	}
	return cfg, nil
}

// simSummary is the one JSON line simulate prints.
type simSummary struct {
	Escalations  int64   `json:"escalations"`
	Assigned     int64   `json:"assigned"`
	Resolved     int64   `json:"resolved"`
	Errors       int64   `json:"errors"`
	OfferP50MS   float64 `json:"offer_p50_ms"`
	OfferP99MS   float64 `json:"offer_p99_ms"`
	MessageP50MS float64 `json:"message_p50_ms"`
	MessageP99MS float64 `json:"message_p99_ms"`
	Messages     int     `json:"messages"`     // messages delivered and timed
	MessageRate  float64 `json:"message_rate"` // of those, per second from the first to the last
	RateLimited  int64   `json:"rate_limited"`
	Shed         int64   `json:"shed"` // refused 503: the server was overloaded
	Agents       int     `json:"agents"`
}

// sim is one simulation run. Everything it measures uses this process's
// monotonic clock: bots, agents and customers all live here.
type sim struct {
	cfg    simConfig
	client *http.Client
	stderr io.Writer
	runID  string

	convs sync.Map // conversation id → *simConv
	sent  sync.Map // msgKey → sentMsg, until the other side receives it

	escalations, assigned, resolved, abandoned, terminal atomic.Int64
	errors, rateLimited, shed, posting                   atomic.Int64
	offersExpired, offersFailed, offersWithdrawn, away   atomic.Int64
	missedActive                                         atomic.Int64

	offerLat, msgLat latencies
	offersShown      int // offer samples the last progress line had seen
	errs             errorSample

	// finishing is closed when the run is over: agents resolve their chats
	// at once and customers stop writing, so the next run starts clean.
	finishing chan struct{}

	wg sync.WaitGroup // agent and customer goroutines
}

func newSim(cfg simConfig, stderr io.Writer) *sim {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 128, // the bots' keep-alive pool; sockets do not count against it
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		// Redirects are answers here (303 after a form), not hops to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &sim{cfg: cfg, client: client, stderr: stderr, finishing: make(chan struct{}),
		runID: "sim-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)}
}

// url returns the base URL for the i-th agent or escalation: round robin.
func (s *sim) url(i int) string { return s.cfg.urls[i%len(s.cfg.urls)] }

// fail counts an error and keeps a few distinct descriptions for the end.
func (s *sim) fail(what string, err error) {
	s.errors.Add(1)
	s.errs.add(what, err)
}

// handleTime draws one handle time: exponential around the mean, capped at
// ten means so one unlucky draw cannot hold the run.
func (s *sim) handleTime() time.Duration {
	return time.Duration(math.Min(mrand.ExpFloat64(), 10) * float64(s.cfg.handleTime))
}

// gap is the pause between two chat messages of one side.
func gap() time.Duration { return 100*time.Millisecond + mrand.N(100*time.Millisecond) }

// customerMessages and agentMessages split --messages: the customer writes
// first, so it has the extra one.
func (s *sim) customerMessages() int { return (s.cfg.messages + 1) / 2 }
func (s *sim) agentMessages() int    { return s.cfg.messages / 2 }

// run sets the agents up, escalates for the duration, lets the last
// conversations settle and closes everything.
func (s *sim) run(parent context.Context) (*simSummary, error) {
	// ctx ends the agents and customers; it outlives the escalation phase.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopOnParent := context.AfterFunc(parent, cancel)
	defer stopOnParent()

	agents, err := s.setup(parent, ctx)
	if err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	fmt.Fprintf(s.stderr, "simulate: %d agents online on %d instance(s); escalating %g/s for %s (run %s)\n",
		len(agents), len(s.cfg.urls), s.cfg.rate, s.cfg.duration, s.runID)

	start := time.Now()
	progressDone := make(chan struct{})
	progressStopped := make(chan struct{})
	go func() {
		defer close(progressStopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				s.progress(time.Since(start))
			}
		}
	}()

	var bots sync.WaitGroup
	s.escalate(parent, ctx, &bots, start)
	bots.Wait() // every POST has been answered (or timed out)

	// Settle: until every escalation ended, or --settle passed.
	settle := time.NewTimer(s.cfg.settle)
	poll := time.NewTicker(50 * time.Millisecond)
settling:
	for s.terminal.Load() < s.escalations.Load() {
		select {
		case <-parent.Done():
			break settling
		case <-settle.C:
			break settling
		case <-poll.C:
		}
	}
	settle.Stop()
	poll.Stop()
	close(progressDone)
	<-progressStopped
	s.progress(time.Since(start))
	sum := s.summary(len(agents))
	s.report()

	s.finish(ctx)
	_ = s.pool(context.Background(), len(agents), 64, func(i int) error {
		agents[i].goOffline()
		return nil
	})
	cancel()
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(s.stderr, "simulate: some sockets did not close within 10s; leaving them")
	}
	return sum, nil
}

// finishing reports whether the run is over.
func (s *sim) finishingNow() bool {
	select {
	case <-s.finishing:
		return true
	default:
		return false
	}
}

// pause waits d, less when the run finishes meanwhile; false when ctx ended.
func (s *sim) pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.finishing:
		return true
	case <-ctx.Done():
		return false
	}
}

// finish leaves the server as the run found it, after the figures are
// taken: the customers still waiting leave (the bot cancels their
// escalation) and the agents resolve the chats still open.
func (s *sim) finish(ctx context.Context) {
	close(s.finishing)
	var waiting, open []*simConv
	s.convs.Range(func(_, v any) bool {
		c := v.(*simConv)
		c.mu.Lock()
		switch {
		case !c.ours || c.resolved || c.abandoned:
		case c.accepted:
			open = append(open, c)
		default:
			waiting = append(waiting, c)
		}
		c.mu.Unlock()
		return true
	})
	if len(waiting)+len(open) == 0 {
		return
	}
	var cancelled atomic.Int64
	_ = s.pool(ctx, len(waiting), 16, func(i int) error {
		if s.cancelConv(ctx, waiting[i]) {
			cancelled.Add(1)
		}
		return nil
	})
	// An agent may have joined a conversation while the bot cancelled it;
	// its chat ends like the others.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		left := 0
		for _, c := range append(open, waiting...) {
			if !c.ended() {
				left++
			}
		}
		if left == 0 {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	fmt.Fprintf(s.stderr, "simulate: cleanup: %d waiting customers left (escalations cancelled), %d open chats resolved early\n", cancelled.Load(), len(open))
}

// cancelConv is the bot telling the server its customer left before a
// person joined. A 409 means someone joined meanwhile.
func (s *sim) cancelConv(ctx context.Context, c *simConv) bool {
	status, err := cancelEscalation(ctx, s.client, s.url(0), s.cfg.apiKey, c.id)
	if err != nil || status != http.StatusOK {
		return false
	}
	s.abandonedConv(c)
	return true
}

// cancelEscalation cancels conversation id as its bot: 200 when it was
// still waiting, 409 when someone joined meanwhile. A rate limit is
// waited out (Retry-After, at most 2 s a time), five tries in all.
func cancelEscalation(ctx context.Context, client *http.Client, base, apiKey, id string) (int, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/conversations/"+id+"/cancel", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode != http.StatusTooManyRequests || attempt == 5 {
			return res.StatusCode, nil
		}
		secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		if !sleepCtx(ctx, min(time.Duration(max(secs, 1))*time.Second, 2*time.Second)) {
			return res.StatusCode, ctx.Err()
		}
	}
}

// escalate posts R escalations a second until the duration is over,
// spreading them over the URLs. It keeps the count right even when the
// ticker falls behind: each tick launches what is due by then.
func (s *sim) escalate(parent, ctx context.Context, bots *sync.WaitGroup, start time.Time) {
	total := int(math.Ceil(s.cfg.duration.Seconds() * s.cfg.rate))
	interval := time.Duration(float64(time.Second) / s.cfg.rate)
	interval = min(max(interval, time.Millisecond), 20*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	launched := 0
	for launched < total {
		due := min(int(time.Since(start).Seconds()*s.cfg.rate)+1, total)
		for ; launched < due; launched++ {
			bots.Add(1)
			s.posting.Add(1)
			go func(j int) {
				defer bots.Done()
				defer s.posting.Add(-1)
				s.postEscalation(ctx, j)
			}(launched)
		}
		if launched >= total {
			return
		}
		select {
		case <-parent.Done():
			return
		case <-tick.C:
		}
	}
}

// progress prints one line on stderr.
func (s *sim) progress(elapsed time.Duration) {
	offer := s.offerLat.sorted()
	recent, n := s.offerLat.since(s.offersShown)
	s.offersShown = n
	line := fmt.Sprintf("simulate: %5.0fs  escalations %d  assigned %d  resolved %d  errors %d  offer p99 %.1f ms",
		elapsed.Seconds(), s.escalations.Load(), s.assigned.Load(), s.resolved.Load(), s.errors.Load(), percentile(offer, 99))
	if len(recent) > 0 {
		line += fmt.Sprintf(" (since the last line: p99 %.1f, max %.1f)", percentile(recent, 99), percentile(recent, 100))
	}
	if n := s.rateLimited.Load(); n > 0 {
		line += fmt.Sprintf("  rate limited %d", n)
	}
	if n := s.shed.Load(); n > 0 {
		line += fmt.Sprintf("  refused (overloaded) %d", n)
	}
	fmt.Fprintln(s.stderr, line)
}

// report explains on stderr what the numbers alone do not.
func (s *sim) report() {
	if n := s.rateLimited.Load(); n > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d escalations were rate limited (429): the server allows fewer bot API requests per key than --rate %g/s; raise HANDOFF_API_RATE (or serve --api-rate), e.g. %d/1s\n",
			n, s.cfg.rate, int(math.Ceil(s.cfg.rate*2)))
	}
	if n := s.shed.Load(); n > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d escalations were refused with 503 (the server was overloaded: its database work queued past HANDOFF_SHED_WRITE_WAIT); --rate %g/s is past this server's limit\n",
			n, s.cfg.rate)
	}
	if open := s.escalations.Load() - s.terminal.Load(); open > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d conversations were still open after --settle %s\n", open, s.cfg.settle)
	}
	if n := s.abandoned.Load(); n > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d conversations were abandoned\n", n)
	}
	if e, f, w, a := s.offersExpired.Load(), s.offersFailed.Load(), s.offersWithdrawn.Load(), s.away.Load(); e+f+w+a > 0 {
		fmt.Fprintf(s.stderr, "simulate: offers expired %d, failed to accept %d, withdrawn %d; agents set away or offline %d times\n", e, f, w, a)
	}
	if n := s.missedActive.Load(); n > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d customers connected but never got the frame saying an agent joined; they wrote anyway\n", n)
	}
	for _, e := range s.errs.list() {
		fmt.Fprintln(s.stderr, "simulate: error:", e)
	}
}

func (s *sim) summary(agents int) *simSummary {
	offer, msg := s.offerLat.sorted(), s.msgLat.sorted()
	return &simSummary{
		Escalations: s.escalations.Load(), Assigned: s.assigned.Load(), Resolved: s.resolved.Load(), Errors: s.errors.Load(),
		OfferP50MS: round2(percentile(offer, 50)), OfferP99MS: round2(percentile(offer, 99)),
		MessageP50MS: round2(percentile(msg, 50)), MessageP99MS: round2(percentile(msg, 99)),
		Messages: len(msg), MessageRate: round2(s.msgLat.rate()),
		RateLimited: s.rateLimited.Load(), Shed: s.shed.Load(), Agents: agents,
	}
}

// errorSample keeps the first few distinct error descriptions; counting
// is done elsewhere, so a storm of errors costs no memory or log lines.
type errorSample struct {
	mu    sync.Mutex
	seen  map[string]int
	order []string
}

const maxErrorKinds = 10

func (e *errorSample) add(what string, err error) {
	msg := what
	if err != nil {
		msg += ": " + err.Error()
	}
	if len(msg) > 300 {
		// The cause is at the end (after a URL with a token, say): keep both ends.
		msg = msg[:150] + "…" + msg[len(msg)-150:]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	if _, ok := e.seen[msg]; !ok {
		if len(e.order) >= maxErrorKinds {
			return
		}
		e.order = append(e.order, msg)
	}
	e.seen[msg]++
}

func (e *errorSample) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.order))
	for _, m := range e.order {
		out = append(out, fmt.Sprintf("%s (×%d)", m, e.seen[m]))
	}
	return out
}
