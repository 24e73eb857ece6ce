// Package realtime fans events out to the websockets of one process. Each
// event is marshalled once and offered to every subscriber of its topic
// without blocking: a subscriber that cannot keep up is dropped (its
// channel closed), and its client reconnects and resumes from the last
// sequence number it saw, so nothing is lost, only re-read from the
// database.
package realtime

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
)

// Envelope is the JSON frame on every websocket: {"type": …, "data": …}.
type Envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Encode builds a frame from a type and any JSON-serialisable data: the
// bytes json.Marshal gives for the Envelope, written around the data's
// encoding instead of marshalling (and so re-scanning) it a second time as
// a RawMessage. Every frame sent goes through here.
func Encode(typ string, data any) ([]byte, error) {
	t, err := json.Marshal(typ)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return slices.Concat([]byte(`{"type":`), t, []byte(`}`)), nil
	}
	d, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return slices.Concat([]byte(`{"type":`), t, []byte(`,"data":`), d, []byte(`}`)), nil
}

// SubscriberBuffer is how many frames a subscriber may fall behind before
// it is dropped.
const SubscriberBuffer = 64

// Sub is one subscriber: a websocket connection listening to topics.
type Sub struct {
	C      chan []byte // frames; closed when the hub drops the subscriber
	topics []string
	once   sync.Once
}

// Hub routes frames by topic ("agent:<id>", "conv:<id>", "brand:<id>").
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Sub]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Sub]struct{}{}} }

// Subscribe registers a subscriber to topics.
func (h *Hub) Subscribe(topics ...string) *Sub {
	s := &Sub{C: make(chan []byte, SubscriberBuffer), topics: topics}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		m := h.subs[t]
		if m == nil {
			m = map[*Sub]struct{}{}
			h.subs[t] = m
		}
		m[s] = struct{}{}
	}
	return s
}

// AddTopic subscribes an existing subscriber to one more topic (an agent
// who accepted a conversation).
func (h *Hub) AddTopic(s *Sub, topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[topic]
	if m == nil {
		m = map[*Sub]struct{}{}
		h.subs[topic] = m
	}
	if _, ok := m[s]; !ok {
		m[s] = struct{}{}
		s.topics = append(s.topics, topic)
	}
}

// Unsubscribe removes the subscriber and closes its channel.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (h *Hub) removeLocked(s *Sub) {
	for _, t := range s.topics {
		if m := h.subs[t]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.subs, t)
			}
		}
	}
	s.once.Do(func() { close(s.C) })
}

// Publish sends a frame to every subscriber of topic and returns how many
// received it. Slow subscribers are dropped.
func (h *Hub) Publish(topic string, frame []byte) int { return h.PublishExcept(topic, frame, nil) }

// PublishExcept is Publish to every subscriber but one (the socket a
// message came from, which has its own answer).
func (h *Hub) PublishExcept(topic string, frame []byte, except *Sub) int {
	h.mu.RLock()
	var slow []*Sub
	n := 0
	for s := range h.subs[topic] {
		if s == except {
			continue
		}
		select {
		case s.C <- frame:
			n++
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	if len(slow) > 0 {
		h.mu.Lock()
		for _, s := range slow {
			h.removeLocked(s)
		}
		h.mu.Unlock()
	}
	return n
}

// Close drops every subscriber of topic (an agent suspended: their sockets
// close at once).
func (h *Hub) Close(topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[topic] {
		h.removeLocked(s)
	}
}

// CloseAll drops every subscriber and returns how many there were: after
// this process may have missed events (its listener lost its connection),
// every client resumes from the database.
func (h *Hub) CloseAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := map[*Sub]struct{}{}
	for _, m := range h.subs {
		for s := range m {
			all[s] = struct{}{}
		}
	}
	for s := range all {
		h.removeLocked(s)
	}
	return len(all)
}

// Count returns the number of subscribers of a topic.
func (h *Hub) Count(topic string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[topic])
}

// MaxTypeLen bounds an envelope's type.
const MaxTypeLen = 64

// DecodeEnvelope parses a client frame: a JSON object with a short "type"
// and optional "data".
func DecodeEnvelope(b []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return env, errors.New("frame is not a JSON envelope {\"type\": …, \"data\": …}")
	}
	if env.Type == "" || len(env.Type) > MaxTypeLen {
		return env, errors.New("frame has no valid type")
	}
	return env, nil
}
