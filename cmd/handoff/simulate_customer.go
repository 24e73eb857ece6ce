package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// simEscalation is the body a simulated bot posts.
type simEscalation struct {
	ExternalID string `json:"external_id"`
	Customer   struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"customer"`
	Language   string             `json:"language"`
	Skills     []string           `json:"skills"`
	Reason     string             `json:"reason"`
	Summary    string             `json:"summary"`
	Transcript []simTranscriptRow `json:"transcript"`
}

type simTranscriptRow struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

// postEscalation is one bot handing one customer over, to instance j (mod
// the URLs); on success the customer opens the link on the same instance.
func (s *sim) postEscalation(ctx context.Context, j int) {
	base := s.url(j)
	var body simEscalation
	body.ExternalID = fmt.Sprintf("%s-%06d", s.runID, j+1)
	body.Customer.Name = fmt.Sprintf("Sim customer %d", j+1)
	body.Customer.Email = fmt.Sprintf("customer-%d@%s", j+1, simEmailDomain)
	body.Language, body.Skills, body.Reason = s.cfg.language, s.cfg.skills, "asked for a human"
	body.Summary = "Simulated escalation: charged twice, the bot could not refund."
	body.Transcript = []simTranscriptRow{{"customer", "I was charged twice."}, {"bot", "I can't refund that, let me get you a person."}}
	b, err := json.Marshal(body)
	if err != nil {
		s.fail("escalate", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/escalations", bytes.NewReader(b))
	if err != nil {
		s.fail("escalate", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	postAt := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.fail("POST /api/v1/escalations", err)
		}
		return
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		s.fail("POST /api/v1/escalations: read answer", err)
		return
	}
	switch res.StatusCode {
	case http.StatusCreated, http.StatusOK:
	case http.StatusTooManyRequests:
		s.rateLimited.Add(1)
		return
	case http.StatusServiceUnavailable:
		if res.Header.Get("Retry-After") != "" { // refused, not broken: nothing was stored
			s.shed.Add(1)
			return
		}
		fallthrough
	default:
		var p struct{ Title, Detail string }
		_ = json.Unmarshal(raw, &p)
		s.fail("POST /api/v1/escalations", fmt.Errorf("answered %d %s %s", res.StatusCode, p.Title, p.Detail))
		return
	}
	var out struct {
		ID          string `json:"id"`
		CustomerURL string `json:"customer_url"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" || out.CustomerURL == "" {
		s.fail("POST /api/v1/escalations", fmt.Errorf("answer without id and customer_url: %.200s", raw))
		return
	}
	link, err := url.Parse(out.CustomerURL)
	if err != nil || !strings.HasPrefix(link.Path, "/c/") {
		s.fail("POST /api/v1/escalations", fmt.Errorf("customer_url is not a /c/… link"))
		return
	}
	c := s.conv(out.ID)
	cu := &simCustomer{s: s, c: c, path: link.Path, sock: newSimSocket()}
	if !s.registered(c, postAt, cu) {
		return
	}
	s.wg.Add(1)
	go cu.run(ctx, j)
}

// simCustomer is the person behind one escalation, on the chat page's
// websocket.
type simCustomer struct {
	s       *sim
	c       *simConv
	path    string // /c/<token>
	sock    *simSocket
	up      atomic.Bool
	lastSeq atomic.Int64
	started atomic.Bool
	// conflicts are the 409s its messages got (its run's goroutine only):
	// a message that crossed the agent's resolve. The end of the chat
	// explains them; a chat that did not end leaves them errors (settle).
	conflicts []errorFrame
}

// settle counts as errors the conflicts that the chat's end did not
// explain, when the customer stops.
func (cu *simCustomer) settle() {
	for _, d := range cu.conflicts {
		cu.s.fail("customer error frame", d)
	}
	cu.conflicts = nil
}

func (cu *simCustomer) isUp() bool { return cu.up.Load() }

// run connects to instance j and, when the socket drops, reconnects to the
// next one, resuming after the last message seen, until the conversation
// ends or ctx does.
func (cu *simCustomer) run(ctx context.Context, instance int) {
	s := cu.s
	defer s.wg.Done()
	defer cu.settle()
	for attempt := 0; ; {
		path := cu.path + "/ws"
		if n := cu.lastSeq.Load(); n > 0 {
			path += "?after=" + strconv.FormatInt(n, 10)
		}
		conn, err := s.dial(ctx, s.url(instance), path, nil)
		if err != nil {
			if ctx.Err() != nil || cu.c.ended() {
				return
			}
			s.fail("customer connect", err)
			if attempt++; attempt >= 10 {
				return
			}
			if !sleepCtx(ctx, backoff(attempt)) {
				return
			}
			instance++
			continue
		}
		attempt = 0
		cu.sock.set(conn)
		done, err := cu.read(ctx, conn)
		cu.sock.clear()
		if done {
			conn.Close(websocket.StatusNormalClosure, "")
			return
		}
		conn.CloseNow()
		if ctx.Err() != nil {
			return
		}
		s.fail("customer socket closed", err)
		instance++
	}
}

// read handles the customer's frames until the conversation ends (done)
// or the socket fails.
func (cu *simCustomer) read(ctx context.Context, conn *websocket.Conn) (done bool, err error) {
	s, c := cu.s, cu.c
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return false, err
		}
		at := time.Now()
		var env envelope
		if err := json.Unmarshal(b, &env); err != nil {
			s.fail("customer frame", err)
			continue
		}
		switch env.Type {
		case "hello":
			var d struct {
				Conversation struct {
					Status string `json:"status"`
				} `json:"conversation"`
			}
			if err := json.Unmarshal(env.Data, &d); err != nil {
				s.fail("customer hello frame", err)
				continue
			}
			cu.up.Store(true)
			c.upOnce.Do(func() { close(c.custUp) })
			if cu.status(ctx, d.Conversation.Status) {
				return true, nil
			}
		case "conversation":
			var d struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(env.Data, &d); err != nil {
				s.fail("customer conversation frame", err)
				continue
			}
			if cu.status(ctx, d.Status) {
				return true, nil
			}
		case "message":
			var m simMessage
			if err := json.Unmarshal(env.Data, &m); err != nil {
				s.fail("customer message frame", err)
				continue
			}
			if int64(m.Seq) > cu.lastSeq.Load() {
				cu.lastSeq.Store(int64(m.Seq))
			}
			s.received(m, sideCustomer, at)
		case "error":
			var d errorFrame
			_ = json.Unmarshal(env.Data, &d)
			if d.Command == "message.send" && d.Status == http.StatusConflict {
				cu.conflicts = append(cu.conflicts, d) // the chat's end may explain it
				continue
			}
			s.fail("customer error frame", d)
		}
	}
}

// status acts on the conversation's state; it reports whether the
// conversation is over for the customer.
func (cu *simCustomer) status(ctx context.Context, status string) (over bool) {
	switch status {
	case "active":
		cu.startSending(ctx)
	case "resolved", "closed":
		// The agent's own "resolved" reply may have been lost with a
		// dying instance; the customer seeing it is as good. A message
		// that crossed the resolve was refused (409), as it would be a
		// real customer's: not an error.
		cu.s.resolvedConv(cu.c)
		cu.conflicts = nil
		return true
	case "abandoned":
		cu.s.abandonedConv(cu.c)
		cu.conflicts = nil
		return true
	}
	return false
}

// startSending writes the customer's messages, a short gap apart, once;
// it reports whether this call started them.
func (cu *simCustomer) startSending(ctx context.Context) bool {
	if !cu.started.CompareAndSwap(false, true) {
		return false
	}
	s := cu.s
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for k := 1; k <= s.customerMessages(); k++ {
			if k > 1 && !sleepCtx(ctx, gap()) {
				return
			}
			if cu.c.ended() || s.finishingNow() {
				return
			}
			id := fmt.Sprintf("c%d", k)
			s.sending(cu.c.id, id, sideCustomer)
			if err := cu.sock.send(ctx, "message.send", map[string]string{"text": fmt.Sprintf("Customer message %d: it is still not fixed.", k), "client_id": id}); err != nil && ctx.Err() == nil {
				s.fail("customer message.send", err)
			}
		}
	}()
	return true
}
