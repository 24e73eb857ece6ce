package models

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// The offer path on PostgreSQL sends its statements as one pgx batch: one
// round trip, and no BEGIN or COMMIT of its own, since the statements of a
// batch run in one implicit transaction (pgx queues them with a single Sync
// at the end; a failing statement rolls back all of them). In READ
// COMMITTED each statement still takes its own snapshot, which is what lets
// a statement that locks an agent row be followed by one that counts the
// agent's chats and sees every chat committed before the lock.

// lockOfferAgentsSQL locks the agents of a batch of offers ($1), in id
// order, before createOffersSQL reads or writes anything of theirs.
const lockOfferAgentsSQL = "SELECT id FROM agents WHERE id = ANY($1) ORDER BY id FOR UPDATE"

// createOffersSQL decides and writes a batch of offers in one statement,
// once the agents' rows are locked. $1…$8 are the decisions in dispatcher
// order, $9 is now. A decision is made only if its agent is still approved,
// online and below capacity and its conversation still queued. The insert
// runs in decision order and does nothing on a pending offer's unique
// index, so one offer per agent and per conversation is made, the first
// that can be, as one by one would; a conversation it moved to offered
// without an offer is put back by createOffersRequeueSQL. If any agent of
// the batch does not exist nothing is written and a NULL id says so.
var createOffersSQL = `
WITH d AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[])
        WITH ORDINALITY AS d(id, conversation_id, agent_id, pay_minor, surge_minor, currency, explanation, expires_at, ord)
), missing AS (
    SELECT 1 FROM d LEFT JOIN agents a ON a.id = d.agent_id WHERE a.id IS NULL LIMIT 1
), ok AS (
    SELECT d.* FROM d JOIN agents a ON a.id = d.agent_id
    WHERE a.status = 'approved' AND a.presence = 'online'
        AND ` + activeChatsSQL("a.id") + ` < a.max_concurrent
        AND NOT EXISTS (SELECT 1 FROM missing)
), c AS (
    UPDATE conversations c SET status = 'offered', updated_at = $9
    WHERE c.id IN (SELECT conversation_id FROM ok) AND (c.status = 'queued') IS TRUE -- by primary key (see openFor)
    RETURNING c.id
), o AS (
    INSERT INTO offers (id, conversation_id, agent_id, status, pay_minor, surge_minor, currency, explanation, created_at, expires_at)
    SELECT ok.id, ok.conversation_id, ok.agent_id, 'pending', ok.pay_minor, ok.surge_minor, ok.currency, ok.explanation, $9, ok.expires_at
    FROM ok JOIN c ON c.id = ok.conversation_id
    ORDER BY ok.ord
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id FROM o UNION ALL SELECT NULL FROM missing`

// createOffersRequeueSQL puts back in the queue the batch's conversations
// that are offered without a pending offer: those whose offer met another
// pending offer of its agent. Any other offered conversation has its
// pending offer, committed with it. The pending offers are read once, as a
// set, rather than looked up per conversation: a planner that believes
// them few may look each up by scanning them all (see agentStates).
const createOffersRequeueSQL = `
UPDATE conversations c SET status = 'queued', updated_at = $2
WHERE c.id = ANY($1) AND (c.status = 'offered') IS TRUE -- by primary key (see openFor)
    AND c.id NOT IN (SELECT o.conversation_id FROM offers o WHERE o.status = 'pending')`

// createOffersPostgres is CreateOffers on PostgreSQL: three statements in
// one round trip. The agents' rows are locked first, in id order, as every
// change to their seats takes them; the decision counts their chats in the
// next statement.
func (s *Store) createOffersPostgres(ctx context.Context, in []NewOffer) ([]Offer, error) {
	now := s.Now()
	n := len(in)
	ids, convs, agents, currencies, explanations := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	pays, surges := make([]int64, n), make([]int64, n)
	expires := make([]time.Time, n)
	for i, o := range in {
		ids[i], convs[i], agents[i], pays[i], surges[i], currencies[i], explanations[i], expires[i] =
			NewID(), o.ConversationID, o.AgentID, o.PayMinor, o.SurgeMinor, o.Currency, o.Explanation, now.Add(o.Timeout)
	}
	lock := slices.Clone(agents)
	slices.Sort(lock)
	lock = slices.Compact(lock)

	made := map[string]bool{}
	missing := false
	err := s.withPgxConn(ctx, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(lockOfferAgentsSQL, lock)
		b.Queue(createOffersSQL, ids, convs, agents, pays, surges, currencies, explanations, expires, now)
		b.Queue(createOffersRequeueSQL, convs, now)
		br := conn.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			return errors.Join(err, br.Close())
		}
		rows, err := br.Query()
		if err != nil {
			return errors.Join(err, br.Close())
		}
		for rows.Next() {
			var id *string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return errors.Join(err, br.Close())
			}
			if id == nil {
				missing = true
			} else {
				made[*id] = true
			}
		}
		if err := rows.Err(); err != nil {
			return errors.Join(err, br.Close())
		}
		if _, err := br.Exec(); err != nil {
			return errors.Join(err, br.Close())
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, fmt.Errorf("agent: %w", ErrNotFound)
	}
	var out []Offer
	for i, o := range in {
		if made[ids[i]] {
			out = append(out, Offer{ID: ids[i], ConversationID: o.ConversationID, AgentID: o.AgentID, Status: OfferPending,
				PayMinor: o.PayMinor, SurgeMinor: o.SurgeMinor, Currency: o.Currency, Explanation: o.Explanation,
				CreatedAt: now, ExpiresAt: expires[i]})
		}
	}
	return out, nil
}

// acceptOfferSQL decides and writes an accept in one statement, once the
// agent's row is locked: $1 agent, $2 offer, $3 now. It locks the offer
// and its conversation if the offer is pending and unexpired and the
// conversation offered (after the agent, as the old one-by-one accept did,
// and nothing the accept would not have claimed), so what it reads of them
// is their latest state and nothing else changes them before its writes.
// The three writes then happen together if the agent has a free seat, or
// none of them does. It returns the offer and the conversation as written
// (%s and %s: their columns), or no row.
var acceptOfferSQL = `
WITH s AS (
    SELECT o.conversation_id, a.max_concurrent,
        ` + activeChatsSQL("a.id") + ` AS active
    FROM offers o JOIN conversations c ON c.id = o.conversation_id JOIN agents a ON a.id = o.agent_id
    WHERE o.id = $2 AND o.agent_id = $1 AND (o.status = 'pending') IS TRUE AND o.expires_at > $3
        AND (c.status = 'offered') IS TRUE -- by primary keys, not partial indexes (see openFor)
    FOR NO KEY UPDATE OF o, c
), ok AS (
    SELECT conversation_id FROM s WHERE active < max_concurrent
), a AS (
    UPDATE agents SET missed_offers = 0, updated_at = $3 WHERE id = $1 AND EXISTS (SELECT 1 FROM ok)
), o AS (
    UPDATE offers SET status = 'accepted', answered_at = $3 WHERE id = $2 AND EXISTS (SELECT 1 FROM ok)
    RETURNING %s
), c AS (
    UPDATE conversations SET status = 'active', agent_id = $1, assigned_at = $3, updated_at = $3
    WHERE id = (SELECT conversation_id FROM ok)
    RETURNING %s
)
SELECT o.*, c.* FROM o CROSS JOIN c`

// acceptOfferPostgres is AcceptOffer on PostgreSQL: two statements in one
// round trip. The first locks the agent's row, as every change to their
// seats does, so the second's count of their chats sees all committed
// before; concurrent accepts of one offer queue on that lock and the first
// wins. A refused accept costs one read more, to say why. With chat, a
// third statement in the same round trip reads the messages of the
// offer's conversation once the accept has made it this agent's (no rows
// when it did not).
func (s *Store) acceptOfferPostgres(ctx context.Context, agentID, offerID string, chat bool) (*Offer, *Conversation, []Message, error) {
	var o Offer
	var c Conversation
	offerCols, offerDst, err := scanTargets(s.DB, &o)
	if err != nil {
		return nil, nil, nil, err
	}
	convCols, convDst, err := scanTargets(s.DB, &c)
	if err != nil {
		return nil, nil, nil, err
	}
	var m Message // with chat, the row scanMessages scans into
	var msgCols []string
	var msgDst []any
	if chat {
		if msgCols, msgDst, err = scanTargets(s.DB, &m); err != nil {
			return nil, nil, nil, err
		}
	}
	query := fmt.Sprintf(acceptOfferSQL, strings.Join(offerCols, ", "), strings.Join(convCols, ", "))
	now := s.Now()
	accepted := false
	var msgs []Message
	err = s.withPgxConn(ctx, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("SELECT 1 FROM agents WHERE id = $1 FOR NO KEY UPDATE", agentID)
		b.Queue(query, agentID, offerID, now)
		if chat {
			b.Queue("SELECT "+strings.Join(msgCols, ", ")+` FROM messages
				WHERE conversation_id = (SELECT conversation_id FROM offers
					WHERE id = $1 AND agent_id = $2 AND status = 'accepted' AND answered_at = $3)
				ORDER BY seq LIMIT $4`, offerID, agentID, now, messageLimit(0))
		}
		br := conn.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			return errors.Join(err, br.Close())
		}
		rows, err := br.Query()
		if err != nil {
			return errors.Join(err, br.Close())
		}
		if rows.Next() {
			accepted = true
			err = rows.Scan(slices.Concat(offerDst, convDst)...)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil || !chat {
			return errors.Join(err, br.Close())
		}
		if rows, err = br.Query(); err != nil {
			return errors.Join(err, br.Close())
		}
		msgs, err = scanMessages(rows, &m, msgDst)
		return errors.Join(err, br.Close())
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if !accepted {
		return nil, nil, nil, s.acceptRefusal(ctx, agentID, offerID, now)
	}
	return &o, &c, msgs, nil
}

// scanMessages reads the rows of a messages query whose columns are the
// scan targets dst of m (scanTargets), in order, and closes them. Each row
// is scanned into m, then copied: pgx gives the pointer fields (client id,
// sent at) a new value per row.
func scanMessages(rows pgx.Rows, m *Message, dst []any) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		*m = Message{}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

// acceptRefusal says why an accept at now changed nothing, in the words of
// the one-by-one accept, from a fresh read.
func (s *Store) acceptRefusal(ctx context.Context, agentID, offerID string, now time.Time) error {
	var r struct {
		AgentFound         bool
		OfferStatus        *string
		Live               *bool
		ConversationStatus *string
		MaxConcurrent      *int
		Active             int64
	}
	err := s.DB.WithContext(ctx).Raw(`
SELECT EXISTS (SELECT 1 FROM agents WHERE id = @agent) AS agent_found,
    o.status AS offer_status, o.expires_at > @now AS live, c.status AS conversation_status, a.max_concurrent,
    `+activeChatsSQL("@agent")+` AS active
FROM (SELECT) one
    LEFT JOIN offers o ON o.id = @offer AND o.agent_id = @agent
    LEFT JOIN conversations c ON c.id = o.conversation_id
    LEFT JOIN agents a ON a.id = @agent`,
		map[string]any{"agent": agentID, "offer": offerID, "now": now}).Find(&r).Error
	switch {
	case err != nil:
		return err
	case !r.AgentFound:
		return fmt.Errorf("agent: %w", ErrNotFound)
	case r.OfferStatus == nil:
		return fmt.Errorf("offer: %w", ErrNotFound)
	case *r.OfferStatus != OfferPending:
		return fmt.Errorf("offer already %s: %w", *r.OfferStatus, ErrConflict)
	case !*r.Live:
		return fmt.Errorf("offer expired: %w", ErrConflict)
	case r.Active >= int64(*r.MaxConcurrent):
		return fmt.Errorf("agent has no free seat: %w", ErrConflict)
	case *r.ConversationStatus != ConvOffered:
		return fmt.Errorf("conversation no longer waiting: %w", ErrConflict)
	default: // it changed between the accept and this read
		return fmt.Errorf("offer changed while it was being accepted: %w", ErrConflict)
	}
}

// withPgxConn runs fn on the *pgx.Conn of a pooled connection, for what
// database/sql cannot express: several statements sent at once.
func (s *Store) withPgxConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres connection is a %T, not a *stdlib.Conn", dc)
		}
		return fn(c.Conn())
	})
}

// scanTargets returns the columns GORM maps for the struct dst points to,
// in field order, and a pointer to each of those fields to scan into, so a
// statement that names them fills the struct as GORM would.
func scanTargets(db *gorm.DB, dst any) ([]string, []any, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(dst); err != nil {
		return nil, nil, err
	}
	v := reflect.ValueOf(dst).Elem()
	cols := make([]string, 0, len(stmt.Schema.DBNames))
	ptrs := make([]any, 0, len(stmt.Schema.DBNames))
	for _, name := range stmt.Schema.DBNames {
		f := stmt.Schema.FieldsByDBName[name]
		if !f.Readable {
			continue
		}
		cols = append(cols, name)
		ptrs = append(ptrs, v.FieldByIndex(f.StructField.Index).Addr().Interface())
	}
	return cols, ptrs, nil
}
