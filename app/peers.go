package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/models"
	"golang.org/x/sync/errgroup"
)

// Cross-instance fan-out over PostgreSQL LISTEN/NOTIFY. Each instance
// batches the ids that changed and sends at most one NOTIFY every
// notifyEvery, after the change committed and outside any transaction (a
// NOTIFY inside a busy transaction serialises every commit). Payloads carry
// ids and Handoff's own small frames, never message bodies; listeners read
// the rows and deliver the frames to their own sockets.
const (
	notifyChannel  = "handoff_events"
	notifyEvery    = 5 * time.Millisecond
	notifyMaxBytes = 7000 // PostgreSQL refuses payloads of 8,000 bytes
	peerQueue      = 1 << 13
	// The listener hands what it receives to the deliverer through an
	// inbox of at most peerInboxMax payloads (about 28 MB at 7,000 bytes
	// each); past that it drops them and the deliverer resynchronises, as
	// after a gap. The deliverer reads the rows of at most peerDeliverMax
	// events at once (a message's key is two parameters of the read).
	peerInboxMax   = 1 << 12
	peerDeliverMax = 2000
)

// peerEvent is one change for the other instances.
type peerEvent struct {
	K string          `json:"k"`           // m message, c conversation, o offer, f frame, x close agent, k API keys revoked
	C string          `json:"c,omitempty"` // conversation id
	S int             `json:"s,omitempty"` // message sequence number
	O string          `json:"o,omitempty"` // offer id
	A string          `json:"a,omitempty"` // agent id
	B string          `json:"b,omitempty"` // brand id of a conversation
	T string          `json:"t,omitempty"` // topic of a frame
	Y string          `json:"y,omitempty"` // type of a frame
	D json.RawMessage `json:"d,omitempty"` // data of a frame (no user content)
}

// peerBatch is one NOTIFY payload. Gap says the sender lost events since
// its last batch (its queue was full, or a NOTIFY failed for good): the
// receivers cannot know which, so they resynchronise as after a gap of
// their own listener.
type peerBatch struct {
	From   string      `json:"i"`
	Events []peerEvent `json:"e"`
	Gap    bool        `json:"g,omitempty"`
}

// peers sends this instance's events to the others and delivers theirs.
type peers struct {
	s       *Server
	id      string
	in      chan peerEvent
	dropped atomic.Int64
	log     *slog.Logger
	ready   chan struct{} // closed once the first LISTEN is in place
	once    sync.Once
	pid     atomic.Uint32 // the listening session's backend (tests end it)
	gap     bool          // a listener was lost: events may have been missed

	// The inbox between the listener and the deliverer (deliver).
	inMu      sync.Mutex
	inbox     []peerPayload
	inflight  time.Time     // when the oldest payload being delivered arrived (zero: none)
	overflow  bool          // payloads were dropped from a full inbox
	toDeliver chan struct{} // signals the deliverer; capacity 1
}

// peerPayload is a NOTIFY payload as the listener received it.
type peerPayload struct {
	data string
	at   time.Time
}

func newPeers(s *Server) *peers {
	return &peers{s: s, id: models.NewID(), in: make(chan peerEvent, peerQueue),
		log: s.log.With("component", "peers"), ready: make(chan struct{}), toDeliver: make(chan struct{}, 1)}
}

// own reports whether a payload is one of this instance's batches, from
// its first bytes, without parsing the rest: every batch comes back, and
// with one instance parsing each only to drop it was most of the
// listener's 1.5 % of the server's CPU (a profile at 200/s). json.Marshal
// writes a peerBatch's fields in order, "i" first.
func (p *peers) own(payload string) bool {
	return strings.HasPrefix(payload, `{"i":"`+p.id+`",`)
}

// notify queues an event for the other instances. It never blocks: when
// the queue is full the event is dropped and counted, and clients catch up
// from the database when they resume.
func (p *peers) notify(ev peerEvent) {
	if p == nil {
		return
	}
	select {
	case p.in <- ev:
	default:
		p.dropped.Add(1)
	}
}

// run sends batches and listens until ctx ends, reconnecting after errors.
func (p *peers) run(ctx context.Context) {
	go p.send(ctx)
	go p.deliver(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// send flushes queued events as NOTIFY payloads, at most one every
// notifyEvery.
//
// Events it loses (dropped from a full queue, or in a batch that failed
// three times) are announced: the next batch that goes says so (Gap), and
// the other instances close their sockets so each client resumes from the
// database, as when their own listener was away.
func (p *peers) send(ctx context.Context) {
	var payload []byte
	lost := false      // a batch failed for good since the last that went
	var reported int64 // the drops the last batch that went covered
	batchEvents(ctx, p.in, notifyEvery, func(events [][]byte) {
		dropped := p.dropped.Load()
		payload = p.payload(payload[:0], events, lost || dropped != reported)
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			err = p.s.ds.DB.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", notifyChannel, string(payload)).Error
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err == nil {
			lost, reported = false, dropped
		} else if ctx.Err() == nil {
			lost = true
			p.log.Warn("notify failed; the next batch will tell the others to resynchronise", "err", err, "events", len(events), "bytes", len(payload))
		}
	}, func(ev peerEvent, why string) {
		p.dropped.Add(1) // the next batch announces it
		p.log.Warn("event dropped: "+why, "kind", ev.K, "topic", ev.T, "type", ev.Y)
	})
}

// payload appends the NOTIFY payload of encoded events to buf: the
// peerBatch json.Marshal would write, "i" first (see own).
func (p *peers) payload(buf []byte, events [][]byte, gap bool) []byte {
	buf = append(buf, `{"i":"`...)
	buf = append(buf, p.id...) // an id: nothing to escape
	buf = append(buf, `","e":[`...)
	for i, e := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e...)
	}
	if gap {
		return append(buf, `],"g":true}`...)
	}
	return append(buf, "]}"...)
}

// batchEvents hands the events from in to flush, encoded, in batches of at
// most notifyMaxBytes (their encoded lengths and a comma each), at most one
// batch every `every`, until ctx ends. The size is measured, not estimated:
// an estimate that missed a field let batches of conversation news reach
// 8,000 bytes, which PostgreSQL refuses, and every event in them was lost.
// An event that does not fit the batch opens the next one; one that could
// not fit any batch, or cannot be encoded, goes to drop. An event that finds the last batch
// older than the interval goes at once, with what is queued beside it; one
// that comes sooner waits for the rest of the interval, collecting the
// events that follow. So a quiet instance's event waits for nothing, and a
// busy one still sends one NOTIFY per interval. flush must not keep the
// slice it is given.
func batchEvents(ctx context.Context, in <-chan peerEvent, every time.Duration,
	flush func([][]byte), drop func(ev peerEvent, why string)) {
	var batch [][]byte
	var next []byte    // the event that did not fit the last batch
	var last time.Time // when the last batch went
	size := 0
	// add encodes ev into the batch and reports whether the batch is full.
	add := func(ev peerEvent) (full bool) {
		b, err := json.Marshal(ev)
		switch {
		case err != nil: // a frame's data that is not JSON
			drop(ev, err.Error())
			return false
		case len(b)+1 > notifyMaxBytes:
			drop(ev, fmt.Sprintf("%d bytes encoded, over the batch's %d", len(b), notifyMaxBytes))
			return false
		case size+len(b)+1 > notifyMaxBytes:
			next = b
			return true
		}
		batch = append(batch, b)
		size += len(b) + 1
		return false
	}
	for {
		full := false
		if next != nil {
			batch, size, next = append(batch, next), len(next)+1, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case ev := <-in:
				full = add(ev)
			}
			if len(batch) == 0 {
				continue // too large: dropped
			}
		}
		var deadline <-chan time.Time // nil: take only what is queued now
		var timer *time.Timer
		if wait := every - time.Since(last); wait > 0 {
			timer = time.NewTimer(wait)
			deadline = timer.C
		}
	collect:
		for !full {
			if deadline == nil {
				select {
				case ev := <-in:
					full = add(ev)
					continue
				default:
					break collect
				}
			}
			select {
			case ev := <-in:
				full = add(ev)
			case <-deadline:
				break collect
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
		if timer != nil {
			timer.Stop()
		}
		last = time.Now()
		flush(batch)
		batch, size = batch[:0], 0
	}
}

// listen holds one LISTEN connection and delivers what the others send.
func (p *peers) listen(ctx context.Context) error {
	conn, err := p.s.store.SessionConn(ctx) // LISTEN lives in the session
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	p.pid.Store(conn.PgConn().PID())
	if p.gap {
		// What the others sent while nobody here listened is lost.
		p.gap = false
		p.resync("listener back after a gap")
	}
	p.once.Do(func() { close(p.ready) })
	defer func() { p.gap = true }()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if p.own(n.Payload) {
			continue // PostgreSQL sends the sender's batches back to its listener
		}
		p.enqueue(n.Payload, time.Now())
	}
}

// enqueue hands a payload to the deliverer. It never waits for the
// deliverer's reads: the listener goes straight back to the connection.
// A full inbox is emptied and the deliverer told to resynchronise.
func (p *peers) enqueue(payload string, at time.Time) {
	p.inMu.Lock()
	if len(p.inbox) >= peerInboxMax {
		p.inbox, p.overflow = p.inbox[:0], true
	}
	p.inbox = append(p.inbox, peerPayload{data: payload, at: at})
	p.inMu.Unlock()
	select {
	case p.toDeliver <- struct{}{}:
	default:
	}
}

// deliver delivers what the listener received until ctx ends, taking
// every payload waiting in the inbox at once: their events share one set
// of reads (deliverBatch). Delivered one payload at a time, with the
// listener waiting for each one's reads, a listener that fell behind (two
// instances past the machine's limit, each read taking milliseconds) fell
// further behind with every batch, and offers and messages reached the
// other instance's sockets seconds late.
func (p *peers) deliver(ctx context.Context) {
	var spare []peerPayload
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.toDeliver:
		}
		p.inMu.Lock()
		items, overflow := p.inbox, p.overflow
		p.inbox, p.overflow = spare[:0], false
		if len(items) > 0 {
			p.inflight = items[0].at
		}
		p.inMu.Unlock()
		if overflow {
			p.resync(fmt.Sprintf("more than %d batches from the others waited here", peerInboxMax))
		}
		p.deliverPayloads(ctx, items)
		p.inMu.Lock()
		p.inflight = time.Time{}
		p.inMu.Unlock()
		clear(items) // no payload kept alive by the spare
		spare = items
	}
}

// backlog is how long the oldest payload from the other instances not yet
// delivered here has waited since it arrived: 0 when there is none. A
// server whose deliveries fall behind sheds new escalations (shed), as
// when its requests queue for connections.
func (p *peers) backlog() time.Duration {
	if p == nil {
		return 0
	}
	p.inMu.Lock()
	oldest := p.inflight
	if oldest.IsZero() && len(p.inbox) > 0 {
		oldest = p.inbox[0].at
	}
	p.inMu.Unlock()
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest)
}

// deliverPayloads delivers payloads from the other instances in the order
// received, with one set of reads for up to peerDeliverMax events; a
// payload that says its sender lost events first delivers those before
// it, then resynchronises.
func (p *peers) deliverPayloads(ctx context.Context, items []peerPayload) {
	var evs []peerEvent
	var arrived []time.Time // of the payloads whose events are in evs
	flush := func() {
		if len(evs) > 0 {
			p.deliverBatch(ctx, evs)
		}
		for _, at := range arrived {
			p.s.metrics.peerDelivery.Observe(time.Since(at).Seconds())
		}
		evs, arrived = evs[:0], arrived[:0]
	}
	for _, it := range items {
		var b peerBatch
		if json.Unmarshal([]byte(it.data), &b) != nil || b.From == p.id {
			continue
		}
		if b.Gap {
			flush()
			p.resync("another instance lost events it meant to send")
		}
		if len(evs) > 0 && len(evs)+len(b.Events) > peerDeliverMax {
			flush()
		}
		evs = append(evs, b.Events...)
		arrived = append(arrived, it.at)
	}
	flush()
}

// resync closes every socket here, so each client resumes from the
// database (its pending offer, its chats, the messages after the last it
// saw), and forgets the API keys it knows, since a revocation may be among
// what was lost.
func (p *peers) resync(why string) {
	p.s.apiKeys.forgetAll()
	n := p.s.hub.CloseAll()
	p.log.Warn(why+"; closed sockets so their clients resume", "sockets", n)
}

// deliverBatch wakes the dispatcher for another instance's events and
// turns them into frames for this instance's sockets, in their order. The
// rows they name are read only when someone here is listening, and
// together: the messages in one statement, the offers in one, the
// conversations in one, side by side. (Delivered event by event, a read or
// two each, an offer waited behind the reads of the messages before it in
// its batch.) A read that fails loses its frames, as a lost NOTIFY would:
// each client finds the state again when it acts or reconnects.
func (p *peers) deliverBatch(ctx context.Context, evs []peerEvent) {
	s := p.s
	var msgKeys []models.MessageKey
	var offerIDs, convIDs []string
	for _, ev := range evs {
		// Whatever happened to an agent there, the offer passes here read
		// them again.
		if ev.A != "" {
			s.touchAgent(ev.A)
		}
		if id, ok := strings.CutPrefix(ev.T, "agent:"); ok {
			s.touchAgent(id)
		}
		switch ev.K {
		case "m":
			if s.hub.Count(convTopic(ev.C)) > 0 {
				msgKeys = append(msgKeys, models.MessageKey{ConversationID: ev.C, Seq: ev.S})
			}
		case "c":
			// Its brand says who could be listening before any read (an
			// event without one, from an older instance, is read anyway).
			if ev.B == "" || s.hub.Count(convTopic(ev.C))+s.hub.Count(brandTopic(ev.B)) > 0 {
				convIDs = append(convIDs, ev.C)
			}
		case "o":
			if s.hub.Count(agentTopic(ev.A)) > 0 {
				offerIDs = append(offerIDs, ev.O)
				if ev.C != "" { // an older instance's offer names no conversation: read it after
					convIDs = append(convIDs, ev.C)
				}
			}
		}
	}
	// Whatever changed there may be dispatch work, and the dispatch lease
	// may be held here: the dispatcher is woken now, with the agents
	// named touched, not after the reads below (an escalation there does
	// not wait for the frames of the messages beside it).
	s.queue.changed()
	s.wake()
	// The reads go through the dispatcher's pool (when it has its own):
	// they carry offers and messages to the sockets here, and in the
	// server's pool they waited behind every request. With two instances
	// past the machine's limit (150/s on a slow machine), that pool's
	// eight connections were all busy and a payload took 1.3–2.8 s on
	// average from its NOTIFY to its frames.
	var msgs map[models.MessageKey]*models.Message
	var offers map[string]*models.Offer
	var convs map[string]*models.Conversation
	var reads errgroup.Group
	if len(msgKeys) > 0 {
		reads.Go(func() (err error) { msgs, err = s.ds.MessagesAt(ctx, msgKeys); return err })
	}
	if len(offerIDs) > 0 {
		reads.Go(func() (err error) { offers, err = s.ds.OffersByID(ctx, offerIDs); return err })
	}
	if len(convIDs) > 0 {
		reads.Go(func() (err error) { convs, err = s.ds.ConversationsByID(ctx, convIDs); return err })
	}
	if err := reads.Wait(); err != nil {
		s.log.Warn("could not read what another instance announced", "err", err, "events", len(evs))
	}
	for _, ev := range evs {
		switch ev.K {
		case "f":
			if s.hub.Count(ev.T) > 0 {
				s.publish(ev.T, ev.Y, ev.D)
			}
		case "m":
			if m := msgs[models.MessageKey{ConversationID: ev.C, Seq: ev.S}]; m != nil {
				s.publish(convTopic(ev.C), "message", messageFrameOf(m))
			}
		case "c":
			if conv := convs[ev.C]; conv != nil && s.hub.Count(convTopic(conv.ID))+s.hub.Count(brandTopic(conv.BrandID)) > 0 {
				s.deliverConversation(ctx, conv)
			}
		case "o":
			o := offers[ev.O]
			if o == nil || o.Status != models.OfferPending {
				continue
			}
			// An older instance's offer names no conversation: read here.
			if card, err := s.offerCardOf(ctx, o, convs[o.ConversationID]); err == nil {
				s.publish(agentTopic(o.AgentID), "offer", card)
			}
		case "x":
			s.hub.Close(agentTopic(ev.A))
		case "k":
			s.apiKeys.forgetAll()
		}
	}
}
