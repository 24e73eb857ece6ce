package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/models"
)

// serveDemo runs `serve --demo` in this process for the test, on env's
// database, and returns its URL and its stderr.
func serveDemo(t *testing.T, env map[string]string) (base string, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	stderr = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--demo"}, envOf(env), &stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(hangGuard):
			t.Errorf("serve did not stop after cancel")
		}
	})
	return waitForURL(t, &stdout, stderr, done), stderr
}

// TestSimulateAgainstServer starts `serve --demo` in this process, makes a
// bot key for the demo brand, and runs `simulate` against it with three
// new agents: every escalation must be assigned and resolved, with no
// errors and measured latencies. Counts only; no timing assertions.
func TestSimulateAgainstServer(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"HANDOFF_DATABASE_URL": "sqlite:" + t.TempDir() + "/h.db",
		"HANDOFF_API_RATE":     "1000/1s",
	}
	base, stderr := serveDemo(t, env)

	key := runHandoff(t, env, "apikey", "create", "--brand", "acme")
	if key.code != 0 || !strings.HasPrefix(key.stdout, models.APIKeyPrefix) {
		t.Fatalf("apikey create: %v", key)
	}

	profile := t.TempDir() + "/sim.pprof"
	sim := runHandoff(t, env, "simulate", "--url", base, "--api-key", strings.TrimSpace(key.stdout),
		"--agents", "3", "--rate", "2", "--duration", "3s", "--handle-time", "1", "--settle", "15s",
		"--cpuprofile", profile)
	if sim.code != 0 {
		t.Fatalf("simulate: %v\nserver stderr:\n%s", sim, stderr.String())
	}
	// --cpuprofile wrote the simulator's profile: gzipped, as pprof writes it.
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("--cpuprofile %s: %v, %d bytes; want a gzipped pprof profile", profile, err, len(b))
	}
	lines := strings.Split(strings.TrimSpace(sim.stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("simulate printed %d lines on stdout; want exactly one JSON line\n%v", len(lines), sim)
	}
	var got struct {
		Escalations, Assigned, Resolved, Errors, RateLimited, Agents *int64
		OfferP50                                                     *float64 `json:"offer_p50_ms"`
		OfferP99                                                     *float64 `json:"offer_p99_ms"`
		MessageP50                                                   *float64 `json:"message_p50_ms"`
		MessageP99                                                   *float64 `json:"message_p99_ms"`
		Messages                                                     *int64   `json:"messages"`
		MessageRate                                                  *float64 `json:"message_rate"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("simulate stdout is not JSON: %v\n%v", err, sim)
	}
	if got.Escalations == nil || got.Assigned == nil || got.Resolved == nil || got.Errors == nil ||
		got.OfferP50 == nil || got.OfferP99 == nil || got.MessageP50 == nil || got.MessageP99 == nil {
		t.Fatalf("simulate JSON lacks a field: %s", lines[0])
	}
	t.Logf("simulate: %s", lines[0])
	if *got.Escalations < 4 {
		t.Errorf("escalations = %d; want at least 4 (2/s for 3s)\n%v", *got.Escalations, sim)
	}
	if *got.Assigned != *got.Escalations {
		t.Errorf("assigned = %d; want every escalation (%d)\n%v", *got.Assigned, *got.Escalations, sim)
	}
	if *got.Resolved != *got.Assigned {
		t.Errorf("resolved = %d; want every assigned conversation (%d)\n%v", *got.Resolved, *got.Assigned, sim)
	}
	if *got.Errors != 0 {
		t.Errorf("errors = %d; want 0\n%v", *got.Errors, sim)
	}
	if *got.OfferP99 <= 0 || *got.OfferP50 <= 0 || *got.OfferP50 > *got.OfferP99 {
		t.Errorf("offer p50 = %v ms, p99 = %v ms; want 0 < p50 ≤ p99", *got.OfferP50, *got.OfferP99)
	}
	if *got.MessageP99 <= 0 || *got.MessageP50 <= 0 || *got.MessageP50 > *got.MessageP99 {
		t.Errorf("message p50 = %v ms, p99 = %v ms; want 0 < p50 ≤ p99", *got.MessageP50, *got.MessageP99)
	}
	// Three messages per conversation (the default --messages), each timed
	// once, on the side that receives it.
	if got.Messages == nil || got.MessageRate == nil || *got.Messages != 3**got.Resolved || *got.MessageRate <= 0 {
		t.Errorf("messages = %v at %v/s; want 3 per resolved conversation (%d), at a rate above 0", got.Messages, got.MessageRate, *got.Resolved)
	}
	if got.Agents == nil || *got.Agents != 3 {
		t.Errorf("agents = %v; want 3", got.Agents)
	}
	if !strings.Contains(sim.stderr, "escalations") {
		t.Errorf("simulate printed no progress on stderr:\n%s", sim.stderr)
	}
}

func TestSimulatePercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"Empty", nil, 99, 0},
		{"One", []float64{7}, 50, 7},
		{"OneP99", []float64{7}, 99, 7},
		{"P50Odd", []float64{1, 2, 3, 4, 5}, 50, 3},
		{"P50Even", []float64{1, 2, 3, 4}, 50, 2},
		{"P99OfTen", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 100}, 99, 100},
		{"P90OfTen", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 100}, 90, 9},
		{"P50OfHundred", hundred, 50, 50},
		{"P99OfHundred", hundred, 99, 99},
		{"P100", hundred, 100, 100},
		{"TinyP", hundred, 0.001, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v; want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSimulateParsePendingAgents(t *testing.T) {
	t.Parallel()
	page := `<tbody><tr>
<td><a href="/admin/agents/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b">sim agent 0001</a><br><small class="muted">sim-agent-0001@sim.handoff.test</small></td>
<td class="right"><a href="/admin/agents/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" role="button">Review</a></td></tr>
<tr><td><a href="/admin/agents/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c">O&#39;Brien</a><br><small class="muted">ob&#43;x@example.com</small></td></tr>
<tr><td><a href="/admin/agents/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d">No email shown</a></td></tr></tbody>`
	got := parsePendingAgents(page)
	want := map[string]string{
		"sim-agent-0001@sim.handoff.test": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		"ob+x@example.com":                "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
	}
	if len(got) != len(want) {
		t.Fatalf("parsePendingAgents = %v; want %v", got, want)
	}
	for email, id := range want {
		if got[email] != id {
			t.Errorf("parsePendingAgents[%q] = %q; want %q", email, got[email], id)
		}
	}
}

func TestSimulateFlags(t *testing.T) {
	t.Parallel()
	env := dbEnv(sqliteURL(t))
	tests := []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"ErrAPIKeyRequired", []string{"simulate", "--url", "http://127.0.0.1:1"}, "--api-key is required"},
		{"ErrBadURL", []string{"simulate", "--url", "ftp://x", "--api-key", "k"}, "want an http(s):// base URL"},
		{"ErrBadRate", []string{"simulate", "--api-key", "k", "--rate", "0"}, "--rate must be more than 0"},
		{"ErrBadCapacity", []string{"simulate", "--api-key", "k", "--capacity", "4"}, "--capacity must be 1, 2 or 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runHandoff(t, env, tt.args...)
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, tt.inStderr) {
				t.Fatalf("handoff %s: %v\nwant exit 2 with %q on stderr", strings.Join(tt.args, " "), r, tt.inStderr)
			}
		})
	}
	t.Run("ErrServerDown", func(t *testing.T) {
		// Nothing listens on port 1: the setup fails, exit 1, no JSON.
		r := runHandoff(t, env, "simulate", "--url", "http://127.0.0.1:1", "--api-key", "k", "--agents", "1", "--duration", "1s")
		if r.code != 1 || r.stdout != "" {
			t.Fatalf("simulate against nothing: %v\nwant exit 1 and nothing on stdout", r)
		}
	})
}

// TestSimulateCountsChatInHelloAsAssigned: an agent whose socket closed
// between its accept and the answer learns of the chat from the next
// hello. The chat is the agent's, so the conversation counts as assigned
// once, whichever the simulation hears of first, the bot's 201 or the hello.
func TestSimulateCountsChatInHelloAsAssigned(t *testing.T) {
	t.Parallel()
	hello := func(ids ...string) envelope {
		chats := make([]map[string]any, len(ids))
		for i, id := range ids {
			chats[i] = map[string]any{"id": id, "status": "active", "messages": []any{}}
		}
		b, _ := json.Marshal(map[string]any{"offer": nil, "chats": chats})
		return envelope{Type: "hello", Data: b}
	}
	s := newSim(simConfig{}, io.Discard)
	a := &simAgent{s: s, sock: newSimSocket(), chats: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the chats it starts end at once
	s.registered(s.conv("posted-first"), time.Now(), nil)
	for _, env := range []envelope{hello("posted-first", "hello-first"), hello("posted-first", "hello-first")} {
		if err := a.handle(ctx, env, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s.registered(s.conv("hello-first"), time.Now(), nil)
	s.wg.Wait()
	if got := s.assigned.Load(); got != 2 {
		t.Errorf("assigned = %d; want 2 (each chat once)", got)
	}
	if got := s.escalations.Load(); got != 2 {
		t.Errorf("escalations = %d; want 2", got)
	}
}

// TestSimulateIdle runs `simulate --idle` against `serve --demo`: every
// customer socket opens, the server's memory is read, and the bot cancels
// its escalations at the end, so none is left waiting.
func TestSimulateIdle(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite:" + t.TempDir() + "/h.db"
	env := map[string]string{"HANDOFF_DATABASE_URL": dbURL, "HANDOFF_API_RATE": "1000/1s"}
	base, stderr := serveDemo(t, env)
	key := runHandoff(t, env, "apikey", "create", "--brand", "acme")
	if key.code != 0 {
		t.Fatalf("apikey create: %v", key)
	}
	sim := runHandoff(t, env, "simulate", "--url", base, "--api-key", strings.TrimSpace(key.stdout), "--idle", "20", "--duration", "1s")
	if sim.code != 0 {
		t.Fatalf("simulate --idle: %v\nserver stderr:\n%s", sim, stderr.String())
	}
	var got struct {
		IdleSockets *int64 `json:"idle_sockets"`
		Cancelled   *int64 `json:"cancelled"`
		Errors      *int64 `json:"errors"`
		RSS         *int64 `json:"server_rss_bytes"`
		RSSBefore   *int64 `json:"server_rss_before_bytes"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(sim.stdout)), &got); err != nil {
		t.Fatalf("simulate --idle stdout is not one JSON line: %v\n%v", err, sim)
	}
	if got.IdleSockets == nil || *got.IdleSockets != 20 || got.Cancelled == nil || *got.Cancelled != 20 ||
		got.Errors == nil || *got.Errors != 0 || got.RSS == nil || *got.RSS <= 0 || got.RSSBefore == nil || *got.RSSBefore <= 0 {
		t.Fatalf("simulate --idle = %s; want 20 sockets, 20 cancelled, 0 errors and the server's memory", sim.stdout)
	}
	st, err := models.Open(context.Background(), dbURL, models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waiting, err := st.WaitingConversations(context.Background(), "")
	if err != nil || len(waiting) != 0 {
		t.Fatalf("waiting conversations after the run = %d, %v; want none", len(waiting), err)
	}
}

// Progress lines show the samples since the last line beside the run's.
func TestSimulateLatenciesSince(t *testing.T) {
	t.Parallel()
	var l latencies
	for _, ms := range []int{5, 1, 4, 9, 2} {
		l.add(time.Duration(ms) * time.Millisecond)
	}
	for _, tc := range []struct {
		from int
		want []float64
	}{{0, []float64{1, 2, 4, 5, 9}}, {3, []float64{2, 9}}, {5, []float64{}}, {9, []float64{}}} {
		got, n := l.since(tc.from)
		if n != 5 || !slices.Equal(got, tc.want) {
			t.Errorf("since(%d) = %v, %d; want %v, 5", tc.from, got, n, tc.want)
		}
	}
}

// TestSimulateCountsShedEscalations: a 503 with Retry-After is the server
// refusing an escalation it is too busy to take in (nothing stored): it is
// counted as shed and explained, not as an error; a 503 without it (a
// proxy, a crash) is an error.
func TestSimulateCountsShedEscalations(t *testing.T) {
	t.Parallel()
	var retryAfter atomic.Bool
	retryAfter.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/escalations" {
			http.NotFound(w, r)
			return
		}
		if retryAfter.Load() {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"title":"Service Unavailable","status":503,"detail":"The server is overloaded"}`)
	}))
	defer srv.Close()
	var stderr syncBuffer
	s := newSim(simConfig{urls: []string{srv.URL}, apiKey: "k", rate: 400}, &stderr)
	s.postEscalation(context.Background(), 0)
	s.postEscalation(context.Background(), 1)
	retryAfter.Store(false)
	s.postEscalation(context.Background(), 2)
	s.report()
	sum := s.summary(0)
	if sum.Shed != 2 || sum.Errors != 1 || sum.Escalations != 0 {
		t.Errorf("shed %d, errors %d, escalations %d; want 2 shed (503 with Retry-After), 1 error (without), 0 escalations", sum.Shed, sum.Errors, sum.Escalations)
	}
	if out := stderr.String(); !strings.Contains(out, "2 escalations were refused with 503") || !strings.Contains(out, "past this server's limit") {
		t.Errorf("report does not explain the refusals:\n%s", out)
	}
	b, _ := json.Marshal(sum)
	if !strings.Contains(string(b), `"shed":2`) {
		t.Errorf("summary %s lacks \"shed\":2", b)
	}
}

// TestSimulateCustomerMessageCrossingResolve: a customer message that
// crosses the agent's resolve is refused with 409, as a real customer's
// would be. The chat's end explains it, so it is not an error; a 409 that
// no end explains is one, and so is any other refusal.
func TestSimulateCustomerMessageCrossingResolve(t *testing.T) {
	t.Parallel()
	frame := func(typ string, data any) []byte {
		d, _ := json.Marshal(data)
		b, _ := json.Marshal(envelope{Type: typ, Data: d})
		return b
	}
	conflict := frame("error", errorFrame{Command: "message.send", Status: http.StatusConflict, Message: "That was already done."})
	resolved := frame("conversation", map[string]string{"status": "resolved"})
	invalid := frame("error", errorFrame{Command: "message.send", Status: http.StatusUnprocessableEntity, Message: "Too long."})
	for _, c := range []struct {
		name   string
		frames [][]byte
		errors int64
	}{
		{"conflict then resolved", [][]byte{conflict, conflict, resolved}, 0},
		{"conflict and the socket closes", [][]byte{conflict}, 1},
		{"other refusal then resolved", [][]byte{invalid, resolved}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer conn.CloseNow()
				for _, f := range c.frames {
					if err := conn.Write(r.Context(), websocket.MessageText, f); err != nil {
						return
					}
				}
				conn.Close(websocket.StatusNormalClosure, "")
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			s := newSim(simConfig{}, io.Discard)
			cu := &simCustomer{s: s, c: s.conv("c1"), sock: newSimSocket()}
			_, _ = cu.read(ctx, conn)
			cu.settle()
			if got := s.errors.Load(); got != c.errors {
				t.Fatalf("errors = %d (%v); want %d", got, s.errs.list(), c.errors)
			}
		})
	}
}

// TestBackoffSpread checks the simulated users' reconnect waits: doubling
// from 250 ms to 5 s, each spread from half to one and a half times, so
// the users of a dead instance do not all reconnect in the same instant.
func TestBackoffSpread(t *testing.T) {
	for n, base := range []time.Duration{250, 500, 1000, 2000, 4000, 5000, 5000} {
		base *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 100 {
			d := backoff(n)
			if d < base/2 || d >= base*3/2 {
				t.Fatalf("backoff(%d) = %v; want within [%v, %v)", n, d, base/2, base*3/2)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("backoff(%d) gave %d distinct waits in 100; want them spread", n, len(seen))
		}
	}
}
