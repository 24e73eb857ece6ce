package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/app/realtime"
)

// simConv is what the simulation knows of one conversation. Either side
// may see it first: an agent can get the offer before the bot has read
// the answer to its POST, so the facts are merged here and counted once
// both are known.
type simConv struct {
	id       string
	notify   chan struct{} // a customer message arrived or the conversation ended
	custUp   chan struct{} // closed when the customer's socket said hello
	upOnce   sync.Once
	custRecv atomic.Int32 // customer messages the agent received

	mu                            sync.Mutex
	ours                          bool // escalated by this run
	postAt, offerAt               time.Time
	accepted, resolved, abandoned bool
	cust                          *simCustomer
}

func (s *sim) conv(id string) *simConv {
	if v, ok := s.convs.Load(id); ok {
		return v.(*simConv)
	}
	v, _ := s.convs.LoadOrStore(id, &simConv{id: id, notify: make(chan struct{}, 1), custUp: make(chan struct{})})
	return v.(*simConv)
}

func (c *simConv) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// registered records the bot's escalation of c, posted at postAt.
func (s *sim) registered(c *simConv, postAt time.Time, cust *simCustomer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ours {
		return false // the same conversation answered twice (200)
	}
	c.ours, c.postAt, c.cust = true, postAt, cust
	s.escalations.Add(1)
	if !c.offerAt.IsZero() {
		s.offerLat.add(c.offerAt.Sub(postAt))
	}
	if c.accepted {
		s.assigned.Add(1)
	}
	if c.resolved {
		s.resolved.Add(1)
	}
	if c.abandoned {
		s.abandoned.Add(1)
	}
	if c.resolved || c.abandoned {
		s.terminal.Add(1)
	}
	return true
}

// offered records when an agent first saw an offer for c.
func (s *sim) offered(c *simConv, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offerAt.IsZero() {
		c.offerAt = at
		if c.ours {
			s.offerLat.add(at.Sub(c.postAt))
		}
	}
}

func (s *sim) acceptedConv(c *simConv) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.accepted {
		c.accepted = true
		if c.ours {
			s.assigned.Add(1)
		}
	}
}

func (s *sim) resolvedConv(c *simConv) {
	c.mu.Lock()
	if !c.resolved && !c.abandoned {
		c.resolved = true
		if c.ours {
			s.resolved.Add(1)
			s.terminal.Add(1)
		}
	}
	c.mu.Unlock()
	c.signal()
}

func (s *sim) abandonedConv(c *simConv) {
	c.mu.Lock()
	if !c.resolved && !c.abandoned {
		c.abandoned = true
		if c.ours {
			s.abandoned.Add(1)
			s.terminal.Add(1)
		}
	}
	c.mu.Unlock()
	c.signal()
}

func (c *simConv) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resolved || c.abandoned
}

func (c *simConv) isOurs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ours
}

func (c *simConv) customer() *simCustomer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cust
}

// Message delivery is timed from the moment one side writes a message to
// the moment the other side reads it; both are in this process.
type side uint8

const (
	sideCustomer side = iota + 1
	sideAgent
)

type msgKey struct{ conv, clientID string }

type sentMsg struct {
	at   time.Time
	from side
}

func (s *sim) sending(convID, clientID string, from side) {
	s.sent.Store(msgKey{convID, clientID}, sentMsg{time.Now(), from})
}

// messageFrame is the part of a "message" frame the simulation reads.
type simMessage struct {
	ConversationID string  `json:"conversation_id"`
	Seq            int     `json:"seq"`
	Sender         string  `json:"sender"`
	ClientID       *string `json:"client_id"`
}

// received times a message that reached side to: the first delivery to the
// other side counts; the sender's own echo and repeats after a reconnect
// do not.
func (s *sim) received(m simMessage, to side, at time.Time) {
	if m.ClientID == nil {
		return
	}
	key := msgKey{m.ConversationID, *m.ClientID}
	v, ok := s.sent.Load(key)
	if !ok || v.(sentMsg).from == to {
		return
	}
	if _, ok := s.sent.LoadAndDelete(key); !ok {
		return
	}
	s.msgLat.add(at.Sub(v.(sentMsg).at))
	if to == sideAgent {
		c := s.conv(m.ConversationID)
		c.custRecv.Add(1)
		c.signal()
	}
}

// simSocket is a websocket that may be replaced by a reconnect; writers
// wait a little for the next connection instead of failing at once.
type simSocket struct {
	mu   sync.Mutex
	conn *websocket.Conn
	up   chan struct{} // closed while conn is set
}

func newSimSocket() *simSocket { return &simSocket{up: make(chan struct{})} }

func (k *simSocket) set(conn *websocket.Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conn = conn
	close(k.up)
}

func (k *simSocket) clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil {
		k.conn = nil
		k.up = make(chan struct{})
	}
}

func (k *simSocket) current() *websocket.Conn {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.conn
}

var errNotConnected = errors.New("socket not connected")

// send writes one frame. coder/websocket allows concurrent writers.
func (k *simSocket) send(ctx context.Context, typ string, data any) error {
	frame, err := realtime.Encode(typ, data)
	if err != nil {
		return err
	}
	var wait <-chan time.Time
	for {
		k.mu.Lock()
		conn, up := k.conn, k.up
		k.mu.Unlock()
		if conn != nil {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Write(wctx, websocket.MessageText, frame)
			cancel()
			return err
		}
		if wait == nil {
			wait = time.After(15 * time.Second)
		}
		select {
		case <-up:
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
			return errNotConnected
		}
	}
}

// envelope is a frame from the server, its data read later by type.
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// errorFrame is the data of an "error" frame.
type errorFrame struct {
	Command string `json:"command"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (e errorFrame) Error() string {
	return fmt.Sprintf("%q answered %d %s", e.Command, e.Status, e.Message)
}

// dial opens a websocket at base+path with the given headers.
func (s *sim) dial(ctx context.Context, base, path string, h http.Header) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + path
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: s.client, HTTPHeader: h})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("answered %d", res.StatusCode)
		}
		return nil, err
	}
	conn.SetReadLimit(4 << 20)
	return conn, nil
}

// sleepCtx waits d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the wait before reconnect attempt n (0-based): doubling from
// 250 ms to 5 s, spread from half to one and a half times as the pages'
// reconnects are (Handoff.retryIn), so that the users of an instance that
// died do not all come back to another in the same instant.
func backoff(n int) time.Duration {
	d := min(250*time.Millisecond<<min(n, 5), 5*time.Second)
	return d/2 + mrand.N(d)
}
