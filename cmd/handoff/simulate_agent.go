package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// simAgent is one simulated freelance agent: a session, a socket that
// reconnects (to the next instance) when it drops, and a goroutine per
// chat in progress.
type simAgent struct {
	s      *sim
	n      int // 0-based; its first instance is s.url(n)
	email  string
	cookie string // the session, valid on every instance
	sock   *simSocket

	online     chan struct{} // closed when the server first confirms online
	onlineOnce sync.Once
	stopping   atomic.Bool
	lastOnline atomic.Int64 // unix nanoseconds of the last "go online"

	mu    sync.Mutex
	chats map[string]bool // conversations with a chat goroutine
}

func (s *sim) agentEmail(n int) string {
	return fmt.Sprintf("%s-agent-%04d@%s", strings.ToLower(s.cfg.prefix), n+1, simEmailDomain)
}

// setup makes every agent exist, approved and signed in, connects their
// sockets and waits until each is online. parent cancels the setup;
// ctx is the lifetime of the agents' goroutines.
func (s *sim) setup(parent, ctx context.Context) ([]*simAgent, error) {
	n := s.cfg.agents
	agents := make([]*simAgent, n)
	if n == 0 {
		return agents, nil
	}
	fmt.Fprintf(s.stderr, "simulate: signing in %d agents (%s … %s)\n", n, s.agentEmail(0), s.agentEmail(n-1))
	var signedIn atomic.Int64
	stopProgress := s.setupProgress("agents signed in", &signedIn, n)
	applied, err := s.signInAgents(parent, agents, &signedIn)
	stopProgress()
	if err != nil {
		return nil, err
	}
	if err := s.approveAgents(parent, agents, applied); err != nil {
		return nil, err
	}

	var connected atomic.Int64
	stopProgress = s.setupProgress("agents online", &connected, n)
	defer stopProgress()
	err = s.pool(parent, n, 32, func(i int) error {
		a := agents[i]
		conn, err := a.connect(ctx, s.url(i))
		if err != nil {
			return fmt.Errorf("agent %s: connect to %s: %w", a.email, s.url(i), err)
		}
		s.wg.Add(2)
		go a.loop(ctx, conn, i)
		go a.heartbeat(ctx)
		select {
		case <-a.online:
			connected.Add(1)
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("agent %s: the server did not confirm going online within 30s (errors: %s)", a.email, strings.Join(s.errs.list(), "; "))
		case <-parent.Done():
			return parent.Err()
		}
	})
	if err != nil {
		return nil, err
	}
	return agents, nil
}

// setupProgress prints done/total every second until stopped.
func (s *sim) setupProgress(what string, done *atomic.Int64, total int) (stop func()) {
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fmt.Fprintf(s.stderr, "simulate: setup: %d/%d %s\n", done.Load(), total, what)
			}
		}
	}()
	return func() { close(quit); <-stopped }
}

// pool runs fn(0…n-1) on workers goroutines and returns the first error;
// after an error it starts no more.
func (s *sim) pool(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// signInAgents gives every agent a session. Agents are numbered, and a
// previous run made a prefix of them, so it signs in until the first
// refusal and from there applies first: failed sign-ins count against the
// server's per-IP limit, applications do not. It returns the emails that
// applied in this run.
func (s *sim) signInAgents(ctx context.Context, agents []*simAgent, done *atomic.Int64) (map[string]bool, error) {
	var (
		signInFirst atomic.Bool
		mu          sync.Mutex
		applied     = map[string]bool{}
	)
	signInFirst.Store(true)
	// Applications write (and hash a password) in one transaction; on
	// SQLite they take turns anyway, and many at once time out waiting.
	applySlots := make(chan struct{}, 2)
	err := s.pool(ctx, len(agents), 8, func(i int) error {
		email := s.agentEmail(i)
		web := newWebSession(s.client, s.url(i))
		signedIn := false
		if signInFirst.Load() {
			err := web.login(ctx, email, simAgentPassword)
			switch {
			case err == nil:
				signedIn = true
			case errors.Is(err, errBadLogin):
				signInFirst.Store(false)
				web = newWebSession(s.client, s.url(i))
			default:
				return fmt.Errorf("agent %s: %w", email, err)
			}
		}
		if !signedIn {
			ok, err := s.applyAgent(ctx, web, applySlots, i, email)
			if err != nil {
				return fmt.Errorf("agent %s: %w", email, err)
			}
			if ok {
				mu.Lock()
				applied[email] = true
				mu.Unlock()
			} else if err := web.login(ctx, email, simAgentPassword); err != nil {
				if errors.Is(err, errBadLogin) {
					return fmt.Errorf("agent %s: the application form was refused (422) and signing in failed: check --skills and --language, or the account exists with another password (use another --agent-prefix)", email)
				}
				return fmt.Errorf("agent %s: %w", email, err)
			}
		}
		agents[i] = &simAgent{s: s, n: i, email: email, cookie: web.cookies[simSessionCookie], sock: newSimSocket(),
			online: make(chan struct{}), chats: map[string]bool{}}
		done.Add(1)
		return nil
	})
	return applied, err
}

// applyAgent submits agent i's application, retrying a server error a
// few times: a retry of one that did commit is refused (422) and the
// caller signs in instead.
func (s *sim) applyAgent(ctx context.Context, web *webSession, slots chan struct{}, i int, email string) (bool, error) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-slots }()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 && !sleepCtx(ctx, backoff(attempt+1)) {
			return false, ctx.Err()
		}
		var ok bool
		ok, err = web.apply(ctx, fmt.Sprintf("%s agent %04d", s.cfg.prefix, i+1), email, simAgentPassword,
			s.cfg.language, s.cfg.capacity, s.cfg.skills)
		if !errors.Is(err, errServer) {
			return ok, err
		}
	}
	return false, err
}

// approveAgents approves, through the operator's pages, every simulated
// agent whose application is pending: those applied just now and any left
// pending by an earlier run.
func (s *sim) approveAgents(ctx context.Context, agents []*simAgent, applied map[string]bool) error {
	op := newWebSession(s.client, s.cfg.urls[0])
	if err := op.login(ctx, s.cfg.operatorEmail, s.cfg.operatorPassword); err != nil {
		if len(applied) == 0 {
			// Nothing new to approve; agents still pending will fail to
			// connect with a clear message.
			fmt.Fprintf(s.stderr, "simulate: could not sign in as operator %s (%v); not checking for pending agents\n", s.cfg.operatorEmail, err)
			return nil
		}
		return fmt.Errorf("sign in as operator %s to approve %d new agents: %w (set --operator-email and --operator-password)", s.cfg.operatorEmail, len(applied), err)
	}
	want := make(map[string]bool, len(agents))
	for _, a := range agents {
		want[a.email] = true
	}
	approved, err := op.approvePending(ctx, want)
	if err != nil {
		return fmt.Errorf("approve agents as %s: %w", s.cfg.operatorEmail, err)
	}
	if approved < len(applied) {
		return fmt.Errorf("applied %d new agents but found only %d of them pending on /admin/agents?status=pending", len(applied), approved)
	}
	if approved > 0 || len(applied) > 0 {
		fmt.Fprintf(s.stderr, "simulate: %d agents applied, %d approved by %s\n", len(applied), approved, s.cfg.operatorEmail)
	}
	return nil
}

// connect opens the agent's socket at base and asks to go online.
func (a *simAgent) connect(ctx context.Context, base string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Cookie", simSessionCookie+"="+a.cookie)
	conn, err := a.s.dial(ctx, base, "/ws/agent", h)
	if err != nil {
		if strings.Contains(err.Error(), "answered 403") {
			return nil, fmt.Errorf("%w: is the agent approved? (a rejected or suspended %s cannot go online; use another --agent-prefix)", err, a.email)
		}
		return nil, err
	}
	a.sock.set(conn)
	if err := a.goOnline(ctx); err != nil {
		a.sock.clear()
		conn.CloseNow()
		return nil, err
	}
	return conn, nil
}

func (a *simAgent) goOnline(ctx context.Context) error {
	a.lastOnline.Store(time.Now().UnixNano())
	return a.sock.send(ctx, "presence", map[string]any{"status": "online", "capacity": a.s.cfg.capacity})
}

// goOffline ends the agent's run: offline, then a normal close.
func (a *simAgent) goOffline() {
	a.stopping.Store(true)
	conn := a.sock.current()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.sock.send(ctx, "presence", map[string]any{"status": "offline"})
	conn.Close(websocket.StatusNormalClosure, "simulation over")
}

// heartbeat renews the presence lease every 10 s, starting at a random
// point so a thousand agents do not beat together.
func (a *simAgent) heartbeat(ctx context.Context) {
	defer a.s.wg.Done()
	if !sleepCtx(ctx, time.Duration(a.n%100)*100*time.Millisecond) {
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.sock.current() != nil {
				_ = a.sock.send(ctx, "heartbeat", struct{}{})
			}
		}
	}
}

// loop reads the agent's socket and reconnects, to the next instance,
// when it drops, until ctx ends.
func (a *simAgent) loop(ctx context.Context, conn *websocket.Conn, instance int) {
	defer a.s.wg.Done()
	for {
		err := a.read(ctx, conn)
		a.sock.clear()
		conn.CloseNow()
		if ctx.Err() != nil || a.stopping.Load() {
			return
		}
		a.s.fail("agent socket closed", err)
		for attempt := 0; ; attempt++ {
			if !sleepCtx(ctx, backoff(attempt)) {
				return
			}
			instance++
			conn, err = a.connect(ctx, a.s.url(instance))
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			a.s.fail("agent reconnect", err)
		}
	}
}

// Frames the agent reads.
type (
	simOffer struct {
		OfferID        string `json:"offer_id"`
		ConversationID string `json:"conversation_id"`
	}
	simChat struct {
		ID       string       `json:"id"`
		Status   string       `json:"status"`
		Messages []simMessage `json:"messages"`
	}
)

func (a *simAgent) read(ctx context.Context, conn *websocket.Conn) error {
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		at := time.Now()
		var env envelope
		if err := json.Unmarshal(b, &env); err != nil {
			a.s.fail("agent frame", err)
			continue
		}
		if err := a.handle(ctx, env, at); err != nil {
			a.s.fail("agent "+env.Type+" frame", err)
		}
	}
}

// handle acts on one frame: accept offers at once, chat, count outcomes.
func (a *simAgent) handle(ctx context.Context, env envelope, at time.Time) error {
	s := a.s
	switch env.Type {
	case "hello":
		var d struct {
			Offer *simOffer `json:"offer"`
			Chats []simChat `json:"chats"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		for _, ch := range d.Chats {
			for _, m := range ch.Messages {
				s.received(m, sideAgent, at)
			}
			if ch.Status == "active" {
				// A chat from before a reconnect, or left by an earlier run:
				// finish it, or it holds the agent's capacity. It is this
				// agent's, so it was assigned, even when the socket died
				// before the accept's answer arrived.
				c := s.conv(ch.ID)
				s.acceptedConv(c)
				a.startChat(ctx, c, at)
			}
		}
		if d.Offer != nil {
			a.accept(ctx, *d.Offer, at)
		}
	case "offer":
		var d simOffer
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		a.accept(ctx, d, at)
	case "offer.accepted":
		var d struct {
			Chat simChat `json:"chat"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		c := s.conv(d.Chat.ID)
		s.acceptedConv(c)
		for _, m := range d.Chat.Messages {
			s.received(m, sideAgent, at)
		}
		a.startChat(ctx, c, at)
	case "offer.failed":
		s.offersFailed.Add(1)
	case "offer.expired":
		var d struct {
			SetAway bool `json:"set_away"`
		}
		_ = json.Unmarshal(env.Data, &d)
		s.offersExpired.Add(1)
		if d.SetAway && !a.stopping.Load() {
			s.away.Add(1)
			_ = a.goOnline(ctx) // a failed write shows as the socket closing
		}
	case "offer.withdrawn":
		s.offersWithdrawn.Add(1)
	case "presence":
		var d struct {
			Presence string `json:"presence"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		if d.Presence == "online" {
			a.onlineOnce.Do(func() { close(a.online) })
			return nil
		}
		// The server set us away or offline (missed offers, a lapsed
		// lease): a simulated agent goes back online, at most once a second.
		if !a.stopping.Load() && time.Since(time.Unix(0, a.lastOnline.Load())) > time.Second {
			s.away.Add(1)
			_ = a.goOnline(ctx)
		}
	case "message":
		var m simMessage
		if err := json.Unmarshal(env.Data, &m); err != nil {
			return err
		}
		s.received(m, sideAgent, at)
	case "conversation":
		var d struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		if d.Status == "abandoned" {
			s.abandonedConv(s.conv(d.ID))
		}
	case "resolved":
		var d struct {
			ConversationID string `json:"conversation_id"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return err
		}
		s.resolvedConv(s.conv(d.ConversationID))
	case "error":
		var d errorFrame
		_ = json.Unmarshal(env.Data, &d)
		return d
	}
	return nil
}

// accept takes an offer the moment it arrives. A failed write shows as
// the socket closing, counted there.
func (a *simAgent) accept(ctx context.Context, o simOffer, at time.Time) {
	a.s.offered(a.s.conv(o.ConversationID), at)
	_ = a.sock.send(ctx, "offer.accept", map[string]string{"offer_id": o.OfferID})
}

// startChat runs one chat unless this agent already runs it.
func (a *simAgent) startChat(ctx context.Context, c *simConv, at time.Time) {
	a.mu.Lock()
	if a.chats[c.id] {
		a.mu.Unlock()
		return
	}
	a.chats[c.id] = true
	a.mu.Unlock()
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		a.chat(ctx, c, at)
		a.mu.Lock()
		delete(a.chats, c.id)
		a.mu.Unlock()
	}()
}

// chat is the agent's side of one conversation: its messages a short gap
// apart once the customer is there, then, after the handle time and once
// the customer's messages have all arrived (so none comes after the end),
// the resolution. When the run finishes, it resolves at once.
func (a *simAgent) chat(ctx context.Context, c *simConv, acceptedAt time.Time) {
	s := a.s
	deadline := acceptedAt.Add(s.handleTime())
	ours, ok := a.waitCustomer(ctx, c, acceptedAt)
	if !ok {
		return
	}
	if ours {
		for k := 1; k <= s.agentMessages(); k++ {
			if !s.pause(ctx, gap()) {
				return
			}
			if c.ended() || s.finishingNow() {
				break
			}
			id := fmt.Sprintf("a%d", k)
			s.sending(c.id, id, sideAgent)
			if err := a.sock.send(ctx, "message.send", map[string]string{"conversation_id": c.id, "text": fmt.Sprintf("Agent reply %d: let me look into that.", k), "client_id": id}); err != nil && ctx.Err() == nil {
				s.fail("agent message.send", err)
			}
		}
		if !a.waitCustomerMessages(ctx, c, acceptedAt, deadline) {
			return
		}
	}
	if !s.pause(ctx, time.Until(deadline)) || c.ended() {
		return
	}
	a.resolve(ctx, c)
}

// resolve ends the chat the way a person would: when the server answers
// with an error (its database restarting, say), or the socket dies and
// reconnects to another instance, and the chat stays open, click again, a
// few times.
func (a *simAgent) resolve(ctx context.Context, c *simConv) {
	s := a.s
	var lastErr error
	// An overloaded server may take seconds to answer: wait long enough
	// not to resolve twice (a 409) before trying again.
	for attempt := 0; attempt < 3; attempt++ {
		if err := a.sock.send(ctx, "resolve", map[string]string{"conversation_id": c.id, "note": "Resolved by the simulator."}); err != nil {
			if ctx.Err() != nil {
				return
			}
			lastErr = err // the socket is reconnecting: try again on the new one
			if !sleepCtx(ctx, 500*time.Millisecond) {
				return
			}
		} else {
			for wait := 0; wait < 100 && !c.ended(); wait++ {
				if !sleepCtx(ctx, 100*time.Millisecond) {
					return
				}
			}
		}
		if c.ended() {
			return
		}
	}
	if lastErr == nil {
		lastErr = errors.New("the chat is still open after 3 tries")
	}
	s.fail("agent resolve", lastErr)
}

// waitCustomer waits until the customer's socket is there, so the first
// message's delivery time does not include their connecting. ours is false
// for a conversation this run did not escalate (left by an earlier run):
// nobody will connect to it. ok is false when ctx ended.
func (a *simAgent) waitCustomer(ctx context.Context, c *simConv, acceptedAt time.Time) (ours, ok bool) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.custUp:
			return true, true
		case <-ctx.Done():
			return false, false
		case <-a.s.finishing:
			return false, true
		case <-t.C:
		}
		// The bot reads its POST's answer within moments of the offer;
		// a conversation still unknown after a second is not this run's.
		since := time.Since(acceptedAt)
		if !c.isOurs() && since > time.Second {
			return false, true
		}
		if since > 5*time.Second {
			return true, true
		}
	}
}

// waitCustomerMessages waits for all the customer's messages, at most until
// 15 s after the deadline. It is false when ctx ended.
func (a *simAgent) waitCustomerMessages(ctx context.Context, c *simConv, acceptedAt, deadline time.Time) bool {
	s := a.s
	need := int32(s.customerMessages())
	limit := time.NewTimer(time.Until(deadline) + 15*time.Second)
	defer limit.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for c.custRecv.Load() < need && !c.ended() {
		if time.Since(acceptedAt) > 2*time.Second && c.custRecv.Load() == 0 {
			if cu := c.customer(); cu != nil && cu.isUp() && cu.startSending(ctx) {
				// The customer's socket never said an agent joined.
				s.missedActive.Add(1)
			}
		}
		select {
		case <-c.notify:
		case <-tick.C:
		case <-limit.C:
			return true
		case <-s.finishing:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}
