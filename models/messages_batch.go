package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// maxMessageBatch caps how many messages one statement stores.
const maxMessageBatch = 256

// messageWriter groups the messages that arrive while a batch is being
// stored into the next batch: one commit for all of them (one statement on
// PostgreSQL, one transaction on SQLite), so a busy chat costs a commit per
// round trip rather than per message, and a quiet one waits for nothing. A
// message that finds no batch in flight starts a goroutine that stores
// batches until none is left; every request waits for its own answer only.
type messageWriter struct {
	mu       sync.Mutex
	pending  []*messageReq
	flushing bool
}

type messageReq struct {
	convID, sender, senderID, clientID, body string
	at                                       time.Time
	done                                     chan struct{}
	msg                                      *Message
	created                                  bool
	err                                      error
}

// addMessageBatched stores a message with the batch in flight or the next.
func (s *Store) addMessageBatched(ctx context.Context, convID, sender, senderID, clientID, body string) (*Message, bool, error) {
	r := &messageReq{convID: convID, sender: sender, senderID: senderID, clientID: clientID, body: body,
		at: s.Now(), done: make(chan struct{})}
	w := &s.messages
	w.mu.Lock()
	w.pending = append(w.pending, r)
	start := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	if start {
		// The batches hold other requests' messages: they are stored even
		// if this request goes away meanwhile, and by a goroutine of their
		// own, so this request answers as soon as its message is stored
		// rather than after every batch that follows.
		go s.flushMessages(context.WithoutCancel(ctx))
	}
	select {
	case <-r.done:
		return r.msg, r.created, r.err
	case <-ctx.Done():
		// It may still be stored; a resend with the same client id
		// finds it.
		return nil, false, ctx.Err()
	}
}

// flushMessages stores batches until none is pending.
func (s *Store) flushMessages(ctx context.Context) {
	w := &s.messages
	for {
		w.mu.Lock()
		n := min(len(w.pending), maxMessageBatch)
		if n == 0 {
			w.pending = nil
			w.flushing = false
			w.mu.Unlock()
			return
		}
		batch := w.pending[:n:n]
		w.pending = w.pending[n:]
		w.mu.Unlock()
		s.storeMessages(ctx, batch)
	}
}

// storeMessages stores a batch. On PostgreSQL it is one statement: each conversation's
// last_seq moves past its messages in the batch and the messages take the
// numbers in between, in arrival order. A conversation that is not open
// for all its senders in the batch (closed, another agent's) stores none
// of them there; those messages, and a whole batch that met a resend on the
// unique index, are then stored one by one, which gives each its own
// answer.
func (s *Store) storeMessages(ctx context.Context, batch []*messageReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if s.Dialect != Postgres {
		s.storeMessagesTx(ctx, batch)
		return
	}
	if len(batch) == 1 { // the plain statement is cheaper for one
		r := batch[0]
		r.msg, r.created, r.err = s.addMessageOneStatement(ctx, r.convID, r.sender, r.senderID, r.clientID, r.body, r.at)
		return
	}
	n := len(batch)
	ids, convs, senders, senderIDs, clientIDs, bodies := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	for i, r := range batch {
		ids[i], convs[i], senders[i], senderIDs[i], clientIDs[i], bodies[i], ats[i] =
			NewID(), r.convID, r.sender, r.senderID, r.clientID, r.body, r.at
	}
	sqlDB, err := s.DB.DB()
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return
	}
	rows, err := sqlDB.QueryContext(ctx, `
WITH m AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
        WITH ORDINALITY AS m(id, conversation_id, sender, sender_id, client_id, body, created_at, ord)
), k AS (
    SELECT conversation_id, count(*) AS n,
        count(DISTINCT sender_id) FILTER (WHERE sender = 'agent') AS agents,
        max(sender_id) FILTER (WHERE sender = 'agent') AS agent_id
    FROM m GROUP BY conversation_id
), c AS (
    UPDATE conversations c SET last_seq = c.last_seq + k.n
    FROM k
    WHERE c.id = k.conversation_id AND k.agents <= 1 -- the status test below is in a CASE: no partial index (openFor)
        AND (CASE WHEN k.agents = 0 THEN c.status IN ('queued', 'offered', 'active')
                  ELSE c.status = 'active' AND c.agent_id = k.agent_id END)
    RETURNING c.id, c.last_seq - k.n AS base
)
INSERT INTO messages (id, conversation_id, seq, sender, sender_id, client_id, body, created_at)
SELECT m.id, m.conversation_id, c.base + row_number() OVER (PARTITION BY m.conversation_id ORDER BY m.ord),
    m.sender, m.sender_id, NULLIF(m.client_id, ''), m.body, m.created_at
FROM m JOIN c ON c.id = m.conversation_id
RETURNING id, seq`, ids, convs, senders, senderIDs, clientIDs, bodies, ats)
	stored := map[string]int{}
	if err == nil {
		for rows.Next() {
			var id string
			var seq int
			if err = rows.Scan(&id, &seq); err != nil {
				break
			}
			stored[id] = seq
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
	}
	if err != nil && !isUniqueViolation(err) {
		for _, r := range batch {
			r.err = fmt.Errorf("storing messages: %w", err)
		}
		return
	}
	for i, r := range batch {
		if seq, ok := stored[ids[i]]; ok && err == nil {
			m := &Message{ID: ids[i], ConversationID: r.convID, Seq: seq, Sender: r.sender, SenderID: r.senderID,
				Body: r.body, CreatedAt: r.at}
			if r.clientID != "" {
				m.ClientID = &r.clientID
			}
			r.msg, r.created = m, true
			continue
		}
		r.msg, r.created, r.err = s.addMessageOneStatement(ctx, r.convID, r.sender, r.senderID, r.clientID, r.body, r.at)
	}
}

// storeMessagesTx stores a batch on SQLite: the messages one after another
// in one transaction, so the batch costs one commit. A message whose answer
// is an error (not open, not found) changed nothing and the others go on;
// any other failure undoes the batch, and each message is then stored in
// its own transaction.
func (s *Store) storeMessagesTx(ctx context.Context, batch []*messageReq) {
	type result struct {
		msg     *Message
		created bool
		err     error
	}
	results := make([]result, len(batch))
	err := s.tx(ctx, func(tx *gorm.DB) error {
		for i, r := range batch {
			m, created, err := s.addMessageInTx(tx, r)
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
				return err
			}
			results[i] = result{m, created, err}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			r.msg, r.created, r.err = s.addMessageAlone(ctx, r)
			continue
		}
		r.msg, r.created, r.err = results[i].msg, results[i].created, results[i].err
	}
}
