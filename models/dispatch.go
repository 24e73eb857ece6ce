package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"
)

// AgentState is an online agent as the dispatcher needs to see them.
type AgentState struct {
	ID            string
	MaxConcurrent int
	Presence      string
	LastSeenAt    *time.Time
	FreeSince     *time.Time
	CreatedAt     time.Time
	Active        int  // conversations in progress
	PendingOffer  bool // an offer is waiting for their answer
	Languages     []string
	Skills        map[string]int
	RatingSum     float64
	RatingCount   int
	ResolvedCount int
}

// OnlineAgents returns approved, active agents who are online and whose
// presence lease (last_seen_at) is younger than lease. It runs on every
// dispatch pass, so it is a handful of lean queries: the agents with their
// chats in progress and pending offers, then their languages and skills;
// resolved counts and ratings are kept on the agent row as they happen.
func (s *Store) OnlineAgents(ctx context.Context, lease time.Duration) ([]AgentState, error) {
	out, err := s.OnlineAgentStates(ctx, lease)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i := range out {
		ids[i] = out[i].ID
	}
	profiles, err := s.AgentProfiles(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		p := profiles[out[i].ID]
		out[i].Languages, out[i].Skills = p.Languages, p.Skills
	}
	return out, nil
}

// AgentProfile is what rarely changes about an agent: languages and skills.
type AgentProfile struct {
	Languages []string
	Skills    map[string]int
}

// AgentProfiles reads the languages and skills of the given agents.
func (s *Store) AgentProfiles(ctx context.Context, ids []string) (map[string]AgentProfile, error) {
	db := s.DB.WithContext(ctx)
	out := make(map[string]AgentProfile, len(ids))
	for _, id := range ids {
		out[id] = AgentProfile{Skills: map[string]int{}}
	}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		var langs []AgentLanguage
		if err := db.Raw("SELECT agent_id, language FROM agent_languages WHERE agent_id IN ? ORDER BY agent_id, language", part).Find(&langs).Error; err != nil {
			return nil, err
		}
		for _, l := range langs {
			p := out[l.AgentID]
			p.Languages = append(p.Languages, l.Language)
			out[l.AgentID] = p
		}
		var skills []AgentSkill
		if err := db.Raw("SELECT agent_id, skill, level FROM agent_skills WHERE agent_id IN ?", part).Find(&skills).Error; err != nil {
			return nil, err
		}
		for _, sk := range skills {
			out[sk.AgentID].Skills[sk.Skill] = sk.Level
		}
	}
	return out, nil
}

// OnlineAgentStates is OnlineAgents without languages and skills: what
// changes from one dispatch pass to the next.
func (s *Store) OnlineAgentStates(ctx context.Context, lease time.Duration) ([]AgentState, error) {
	return s.agentStates(ctx, lease, nil)
}

// AgentStates is OnlineAgentStates for the given agents only: those of
// them still online, for a dispatcher that keeps the rest from its last
// full read.
func (s *Store) AgentStates(ctx context.Context, lease time.Duration, ids []string) ([]AgentState, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []AgentState
	// 500 at a time: SQLite takes a parameter per id.
	for start := 0; start < len(ids); start += 500 {
		part, err := s.agentStates(ctx, lease, ids[start:min(start+500, len(ids))])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// activeChatsSQL counts the chats in progress of the agent whose id is
// agentCol, through the (agent_id, status) index. The status is a range of
// one value rather than an equality: an equality implies the predicate of
// the partial indexes on open conversations, and when the planner's
// statistics say those are empty (gathered while nothing was open) it
// would scan one of them whole for every agent instead.
func activeChatsSQL(agentCol string) string {
	return `(SELECT count(*) FROM conversations x WHERE x.agent_id = ` + agentCol +
		` AND x.status BETWEEN '` + ConvActive + `' AND '` + ConvActive + `')`
}

// agentStates reads the online agents, all of them (ids nil) or some, in
// id order, with their chats in progress and whether an offer waits for
// them, in one statement. The statuses are literals so that a prepared plan
// can use the partial indexes on chats and pending offers. On PostgreSQL
// the ids are one text[] parameter, so every subset is the same prepared
// statement.
//
// Its cost must not grow with the queue: the chats in progress are counted
// per agent through the (agent_id, status) index, and the agents with a
// pending offer are read once, as a set (at most one pending offer per
// agent). It used to count every agent's chats in one grouped pass and
// join the pending offers, which the planner, believing from statistics
// gathered at a quiet time that few agents were online, ran as nested
// loops: every agent rescanned every open conversation and every pending
// offer. With the queue long and most agents holding an offer that read
// took 529 ms, ran every second, and drove an overloaded PostgreSQL into
// collapse (two instances at 200/s: offer p99 25 s).
func (s *Store) agentStates(ctx context.Context, lease time.Duration, ids []string) ([]AgentState, error) {
	q := agentStatesSQL(s.Dialect, ids != nil)
	args := []any{s.Now().Add(-lease)}
	switch {
	case ids == nil:
	case s.Dialect == Postgres:
		args = append(args, textArray(ids))
	default:
		args = append(args, ids)
	}
	var rows []struct {
		ID            string
		MaxConcurrent int
		Presence      string
		LastSeenAt    *time.Time
		FreeSince     *time.Time
		CreatedAt     time.Time
		ResolvedCount int
		RatingSum     float64
		RatingCount   int
		Active        int
		PendingOffer  bool
	}
	if err := s.DB.WithContext(ctx).Raw(q, args...).Find(&rows).Error; err != nil || len(rows) == 0 {
		return nil, err
	}
	out := make([]AgentState, len(rows))
	for i, r := range rows {
		out[i] = AgentState{ID: r.ID, MaxConcurrent: r.MaxConcurrent, Presence: r.Presence,
			LastSeenAt: r.LastSeenAt, FreeSince: r.FreeSince, CreatedAt: r.CreatedAt, Active: r.Active,
			PendingOffer: r.PendingOffer, Skills: map[string]int{},
			ResolvedCount: r.ResolvedCount, RatingSum: r.RatingSum, RatingCount: r.RatingCount}
	}
	return out, nil
}

// agentStatesSQL is agentStates' statement: its parameters are the lease's
// start and, for some agents only (subset), their ids.
func agentStatesSQL(dialect Dialect, subset bool) string {
	// Suspension sets the agent's status and presence in the same
	// transaction as the account's, so the agents row alone decides.
	q := `SELECT a.id, a.max_concurrent, a.presence, a.last_seen_at, a.free_since, a.created_at,
		a.resolved_count, a.rating_sum, a.rating_count, ` + activeChatsSQL("a.id") + ` AS active,
		a.id IN (SELECT o.agent_id FROM offers o WHERE o.status = '` + OfferPending + `') AS pending_offer
		FROM agents a
		WHERE a.status = 'approved' AND a.presence = 'online' AND a.last_seen_at > ?`
	switch {
	case !subset:
	case dialect == Postgres:
		q += " AND a.id = ANY(?)"
	default:
		q += " AND a.id IN ?"
	}
	return q + " ORDER BY a.id"
}

// textArray is ids as one PostgreSQL text[] parameter: GORM would spell a
// slice out as one parameter per element, a statement per length.
func textArray(ids []string) pgtype.Array[string] {
	return pgtype.Array[string]{Elements: ids, Valid: true,
		Dims: []pgtype.ArrayDimension{{Length: int32(len(ids)), LowerBound: 1}}}
}

// QueuedConversations returns the first conversations waiting for an
// offer in dispatch order (priority, then time waiting).
func (s *Store) QueuedConversations(ctx context.Context, limit int) ([]Conversation, error) {
	page, err := s.QueuedConversationsAfter(ctx, nil, limit)
	out := make([]Conversation, len(page))
	for i := range page {
		out[i] = page[i].Conversation
	}
	return out, err
}

// QueuedConversation is a conversation waiting for an offer, and whether
// it was ever offered: only then has it an offer history, which the
// dispatcher reads (OfferHistory) for the re-offer rule.
type QueuedConversation struct {
	Conversation  `gorm:"embedded"`
	OfferedBefore bool
}

// QueuedConversationsAfter returns the next limit queued conversations in
// dispatch order after the conversation after (nil: from the head of the
// queue), so a reader can page through the queue by keys, however long.
// Each says whether it had an offer before, from the offers' index on
// conversation_id, so a pass whose page was never offered needs no second
// read for the history.
func (s *Store) QueuedConversationsAfter(ctx context.Context, after *Conversation, limit int) ([]QueuedConversation, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []QueuedConversation
	// The status is a literal, so a prepared plan can use the partial
	// index on queued conversations (migration 0004).
	q := s.DB.WithContext(ctx).Model(&Conversation{}).
		Select("conversations.*, EXISTS (SELECT 1 FROM offers o WHERE o.conversation_id = conversations.id) AS offered_before").
		Where("status = '" + ConvQueued + "'")
	if after != nil {
		q = q.Where("(priority < @p OR (priority = @p AND (queued_at > @q OR (queued_at = @q AND id > @id))))",
			map[string]any{"p": after.Priority, "q": after.QueuedAt, "id": after.ID})
	}
	return out, q.Order("priority DESC, queued_at, id").Limit(limit).Find(&out).Error
}

// PlaceCountLimit bounds the count behind a place in line. A conversation
// with this many or more of its brand's conversations waiting ahead gets
// place PlaceCountLimit+1, meaning "at least": its exact place would cost
// a walk along the whole line for every escalation and every customer's
// hello, which under a backlog (when the line is long) grows with it. The
// app refines such a place from the line its sweep last read (at most a
// second old).
const PlaceCountLimit = 100

// QueuePosition is the conversation's place among its brand's waiting
// conversations in dispatch order (1 is next), or 0 when it is not waiting;
// past PlaceCountLimit, PlaceCountLimit+1. It is one count over an index,
// of at most PlaceCountLimit rows, so every escalation can afford it.
func (s *Store) QueuePosition(ctx context.Context, c *Conversation) (int, error) {
	if c.Status != ConvQueued && c.Status != ConvOffered {
		return 0, nil
	}
	var n int64
	err := s.DB.WithContext(ctx).Raw("SELECT "+waitingAheadSQL("@brand", "@priority", "@queued", "@id"),
		map[string]any{"brand": c.BrandID, "priority": c.Priority, "queued": c.QueuedAt, "id": c.ID}).Find(&n).Error
	return int(n) + 1, err
}

// waitingAheadSQL counts the waiting conversations of brand that come
// before the one with priority, queuedAt and id in dispatch order (priority,
// then time queued, then id), up to PlaceCountLimit: the place-in-line
// rule, written once for every statement that places a conversation.
//
// Those ahead are two ranges of the partial index on waiting conversations
// (brand_id, priority, queued_at, id; migration 0004): the same priority
// queued before, walked backwards from the conversation's own entry, and
// any higher priority. The statuses are literals so a prepared plan can use
// that index. Walking backwards visits the entries nearest the
// conversation first, the ones still waiting: the entries at the head of
// the line are mostly conversations that have just left it (offered,
// assigned), which stay in the index until vacuum removes them and cost a
// visit to the table each. Counted from the head, as before, a backlog made
// every escalation and every customer's hello walk past them: 703 buffers
// an escalation on a PostgreSQL without autovacuum (session 22), against
// about 50 without a backlog; two instances at 150/s, 460 buffers an
// escalation counted from the head, 160 counted backwards (session 23).
func waitingAheadSQL(brand, priority, queuedAt, id string) string {
	limit := strconv.Itoa(PlaceCountLimit)
	waiting := `FROM conversations w WHERE w.brand_id = ` + brand +
		` AND w.status IN ('` + ConvQueued + `', '` + ConvOffered + `')`
	return `(SELECT count(*) FROM (
        SELECT 1 FROM (SELECT 1 AS one ` + waiting + ` AND w.priority = ` + priority + `
            AND (w.queued_at, w.id) < (` + queuedAt + `, ` + id + `)
            ORDER BY w.queued_at DESC, w.id DESC LIMIT ` + limit + `) same
        UNION ALL
        SELECT 1 FROM (SELECT 1 AS one ` + waiting + ` AND w.priority > ` + priority + `
            ORDER BY w.priority, w.queued_at, w.id LIMIT ` + limit + `) higher
        LIMIT ` + limit + `) ahead)`
}

// ConversationPlaced is ConversationByID with the conversation's
// QueuePosition, in one read: a customer's page opening asks for both.
func (s *Store) ConversationPlaced(ctx context.Context, id string) (*Conversation, int, error) {
	var rows []struct {
		Conversation `gorm:"embedded"`
		Ahead        *int
	}
	err := s.DB.WithContext(ctx).Raw(conversationPlacedSQL("c.*", "?"), id).Find(&rows).Error
	if err != nil {
		return nil, 0, err
	}
	if len(rows) == 0 {
		return nil, 0, fmt.Errorf("conversation: %w", ErrNotFound)
	}
	// A copy, not a pointer into rows: GORM's scan gives rows room for
	// many, about 8 KB, which a customer's socket would keep for its life
	// (66 MB over 10,000 idle sockets).
	c := rows[0].Conversation
	return &c, placeOf(rows[0].Ahead), nil
}

// conversationPlacedSQL reads the columns cols of conversation id (a
// placeholder) and, while it waits, how many wait ahead of it.
func conversationPlacedSQL(cols, id string) string {
	return `SELECT ` + cols + `,
    CASE WHEN c.status IN ('` + ConvQueued + `', '` + ConvOffered + `') THEN
        ` + waitingAheadSQL("c.brand_id", "c.priority", "c.queued_at", "c.id") + `
    END AS ahead
FROM conversations c WHERE c.id = ` + id
}

// placeOf is the place in line of a conversation with ahead waiting
// before it, 0 when it does not wait (nil).
func placeOf(ahead *int) int {
	if ahead == nil {
		return 0
	}
	return *ahead + 1
}

// ConversationResumed is ConversationPlaced with the messages after
// afterSeq, at most limit of them (as Messages): what a customer's socket
// sends when it opens. On PostgreSQL both reads share one round trip.
func (s *Store) ConversationResumed(ctx context.Context, id string, afterSeq, limit int) (*Conversation, int, []Message, error) {
	if s.Dialect != Postgres {
		c, place, err := s.ConversationPlaced(ctx, id)
		if err != nil || c.LastSeq <= afterSeq {
			return c, place, nil, err
		}
		msgs, err := s.Messages(ctx, id, afterSeq, limit)
		if err != nil {
			return nil, 0, nil, err
		}
		return c, place, msgs, nil
	}
	var c Conversation
	var ahead *int
	convCols, convDst, err := scanTargets(s.DB, &c)
	if err != nil {
		return nil, 0, nil, err
	}
	var m Message // the row scanMessages scans into
	msgCols, msgDst, err := scanTargets(s.DB, &m)
	if err != nil {
		return nil, 0, nil, err
	}
	found := false
	var msgs []Message
	err = s.withPgxConn(ctx, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(conversationPlacedSQL("c."+strings.Join(convCols, ", c."), "$1"), id)
		b.Queue("SELECT "+strings.Join(msgCols, ", ")+" FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
			id, afterSeq, messageLimit(limit))
		br := conn.SendBatch(ctx, b)
		rows, err := br.Query()
		if err != nil {
			return errors.Join(err, br.Close())
		}
		if rows.Next() {
			found = true
			err = rows.Scan(append(convDst, &ahead)...)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return errors.Join(err, br.Close())
		}
		if rows, err = br.Query(); err != nil {
			return errors.Join(err, br.Close())
		}
		msgs, err = scanMessages(rows, &m, msgDst)
		return errors.Join(err, br.Close())
	})
	if err != nil {
		return nil, 0, nil, err
	}
	if !found {
		return nil, 0, nil, fmt.Errorf("conversation: %w", ErrNotFound)
	}
	return &c, placeOf(ahead), msgs, nil
}

// WaitingConversations returns every queued or offered conversation.
func (s *Store) WaitingConversations(ctx context.Context, brandID string) ([]Conversation, error) {
	// Literal statuses, so SQLite (which cannot match a bound parameter
	// to an index's WHERE) uses the waiting conversations' partial index.
	q := s.DB.WithContext(ctx).Where("status IN ('" + ConvQueued + "', '" + ConvOffered + "')").Order("queued_at, id")
	if brandID != "" {
		q = q.Where("brand_id = ?", brandID)
	}
	var out []Conversation
	return out, q.Find(&out).Error
}

// QueueEntry is a waiting conversation as its place in line needs it.
type QueueEntry struct {
	ID        string
	BrandID   string
	Status    string
	Language  string
	Skills    string // comma-separated skill slugs
	Priority  int
	QueuedAt  time.Time
	CreatedAt time.Time
}

// SkillList returns the required skills.
func (q *QueueEntry) SkillList() []string { return splitList(q.Skills) }

// WaitingQueue returns every queued or offered conversation, in line
// order, with just what its place in line needs. The sweep reads it every
// second for the customers' places, so it leaves the customer's details,
// summary and metadata unread, and scans into rows a third the size of a
// Conversation.
func (s *Store) WaitingQueue(ctx context.Context) ([]QueueEntry, error) {
	var out []QueueEntry
	return out, s.DB.WithContext(ctx).Model(&Conversation{}).
		Select("id, brand_id, status, language, skills, priority, queued_at, created_at").
		Where("status IN ('" + ConvQueued + "', '" + ConvOffered + "')").Order("queued_at, id").Find(&out).Error
}

// OfferHistory returns, per conversation, when each agent was last offered
// it.
func (s *Store) OfferHistory(ctx context.Context, convIDs []string) (map[string]map[string]time.Time, error) {
	out := map[string]map[string]time.Time{}
	if len(convIDs) == 0 {
		return out, nil
	}
	var rows []Offer
	for start := 0; start < len(convIDs); start += 500 {
		end := min(start+500, len(convIDs))
		var part []Offer
		if err := s.DB.WithContext(ctx).Select("conversation_id, agent_id, created_at").
			Where("conversation_id IN ?", convIDs[start:end]).Find(&part).Error; err != nil {
			return nil, err
		}
		rows = append(rows, part...)
	}
	for _, o := range rows {
		m := out[o.ConversationID]
		if m == nil {
			m = map[string]time.Time{}
			out[o.ConversationID] = m
		}
		if o.CreatedAt.After(m[o.AgentID]) {
			m[o.AgentID] = o.CreatedAt
		}
	}
	return out, nil
}

// Brands returns the brands with the given ids.
func (s *Store) Brands(ctx context.Context, ids []string) (map[string]*Brand, error) {
	return rowsByID(ctx, s.DB, ids, func(b *Brand) string { return b.ID })
}

// Heartbeat renews an agent's presence lease.
func (s *Store) Heartbeat(ctx context.Context, agentID string) error {
	return s.DB.WithContext(ctx).Exec("UPDATE agents SET last_seen_at = ? WHERE id = ?", s.Now(), agentID).Error
}

// Heartbeats renews the presence leases of many agents at once: one
// statement (one commit) per 500 agents, however many beats were batched.
// On PostgreSQL it skips agents whose row another transaction holds (an
// offer, an accept, a resolve) rather than wait for it and hold the other
// rows meanwhile; it returns those, for the caller to renew next time.
func (s *Store) Heartbeats(ctx context.Context, agentIDs []string) (skipped []string, err error) {
	now := s.Now()
	for start := 0; start < len(agentIDs); start += 500 {
		part := agentIDs[start:min(start+500, len(agentIDs))]
		if s.Dialect != Postgres {
			if err := s.DB.WithContext(ctx).Exec("UPDATE agents SET last_seen_at = ? WHERE id IN ?", now, part).Error; err != nil {
				return nil, err
			}
			continue
		}
		var done []string
		err := s.DB.WithContext(ctx).Raw(`UPDATE agents SET last_seen_at = ? WHERE id IN
			(SELECT id FROM agents WHERE id IN ? ORDER BY id FOR NO KEY UPDATE SKIP LOCKED) RETURNING id`, now, part).Find(&done).Error
		if err != nil {
			return nil, err
		}
		if len(done) < len(part) {
			renewed := make(map[string]bool, len(done))
			for _, id := range done {
				renewed[id] = true
			}
			for _, id := range part {
				if !renewed[id] {
					skipped = append(skipped, id)
				}
			}
		}
	}
	return skipped, nil
}

// AbandonOverdue abandons every waiting conversation older than its brand's
// maximum wait, withdrawing its pending offer, and returns them.
//
// The sweep calls it every second, so it reads only the waiting
// conversations older than the shortest maximum wait of any brand (through
// conversations_waiting_age_idx), not the whole queue: with a backlog of
// young conversations it reads none of them.
func (s *Store) AbandonOverdue(ctx context.Context) ([]Conversation, []Offer, error) {
	var shortest []*int
	if err := s.DB.WithContext(ctx).Raw("SELECT min(max_wait_seconds) FROM brands").Find(&shortest).Error; err != nil {
		return nil, nil, err
	}
	if len(shortest) == 0 || shortest[0] == nil {
		return nil, nil, nil // no brand, so nothing waits
	}
	cutoff := s.Now().Add(-time.Duration(*shortest[0]) * time.Second)
	var waiting []Conversation
	// Literal statuses, so SQLite uses the partial index (as in
	// WaitingConversations).
	if err := s.DB.WithContext(ctx).Where("status IN ('"+ConvQueued+"', '"+ConvOffered+"') AND created_at <= ?", cutoff).
		Order("created_at, id").Find(&waiting).Error; err != nil || len(waiting) == 0 {
		return nil, nil, err
	}
	ids := map[string]bool{}
	for _, c := range waiting {
		ids[c.BrandID] = true
	}
	brandIDs := make([]string, 0, len(ids))
	for id := range ids {
		brandIDs = append(brandIDs, id)
	}
	brands, err := s.Brands(ctx, brandIDs)
	if err != nil {
		return nil, nil, err
	}
	now := s.Now()
	var done []Conversation
	var rescinded []Offer
	for _, c := range waiting {
		b := brands[c.BrandID]
		if b == nil || now.Sub(c.CreatedAt) < time.Duration(b.MaxWaitSeconds)*time.Second {
			continue
		}
		err := s.tx(ctx, func(tx *gorm.DB) error {
			// The pending offer before the conversation, in the lock
			// order of every writer of both (see lockAgent); the offers
			// as withdrawn, not as read before an expiry or an answer.
			var os []Offer
			if err := tx.Raw("UPDATE offers SET status = ?, answered_at = ? WHERE conversation_id = ? AND status = ? RETURNING *",
				OfferRescinded, now, c.ID, OfferPending).Find(&os).Error; err != nil {
				return err
			}
			res := tx.Model(&Conversation{}).Where("id = ? AND status IN ?", c.ID, []string{ConvQueued, ConvOffered}).
				Updates(map[string]any{"status": ConvAbandoned, "abandoned_at": now, "abandon_reason": "waited past the brand's maximum", "updated_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error // not waiting any more, so it had no pending offer
			}
			c.Status, c.AbandonedAt = ConvAbandoned, &now
			done = append(done, c)
			rescinded = append(rescinded, os...)
			return nil
		})
		if err != nil {
			return done, rescinded, err
		}
	}
	return done, rescinded, nil
}

// LapseResult is what LapsePresence changed.
type LapseResult struct {
	Withdrawn []Offer        // pending offers of agents whose lease lapsed
	Requeued  []Conversation // active chats of agents past the grace period
	Offline   []string       // agents set offline after the grace period
}

// DefaultLapseBatch is how many offers, and how many agents, one
// LapsePresence handles at most. Each is a transaction of its own, and
// when many leases lapse at once (a restart after an outage: 1,000 agents
// took 26 s) the sweep that runs it would hold back the offer expiries
// and abandonments after it; the next sweeps handle the rest.
const DefaultLapseBatch = 100

// lapsedOffersSQL reads the pending offers of agents whose lease lapsed,
// those expiring first first. The status is spelled out, not bound, so a
// prepared plan can use the partial index on pending offers' expiry rather
// than read every offer ever made; the order is that index's, so SQLite
// too reads through it instead of walking every offer in id order.
const lapsedOffersSQL = `SELECT offers.* FROM offers JOIN agents ON agents.id = offers.agent_id
	WHERE offers.status = '` + OfferPending + `' AND (agents.last_seen_at IS NULL OR agents.last_seen_at <= ?)
	ORDER BY offers.expires_at, offers.id LIMIT ?`

// LapsePresence applies the presence lease: an online or away agent whose
// last heartbeat is older than lease loses their pending offer; older than
// grace, their active chats go back to the queue (unpaid) and they are set
// offline. It handles at most LapseBatch offers (those expiring first) and
// LapseBatch agents (oldest ids first); a later call handles the rest.
func (s *Store) LapsePresence(ctx context.Context, lease, grace time.Duration) (LapseResult, error) {
	var out LapseResult
	now := s.Now()
	db := s.DB.WithContext(ctx)
	batch := s.LapseBatch
	if batch <= 0 {
		batch = DefaultLapseBatch
	}
	var lapsed []Offer
	err := db.Raw(lapsedOffersSQL, now.Add(-lease), batch).Find(&lapsed).Error
	if err != nil {
		return out, err
	}
	for _, o := range lapsed {
		err := s.tx(ctx, func(tx *gorm.DB) error {
			res := tx.Model(&Offer{}).Where("id = ? AND status = ?", o.ID, OfferPending).
				Updates(map[string]any{"status": OfferRescinded, "answered_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			out.Withdrawn = append(out.Withdrawn, o)
			return requeue(tx, o.ConversationID, now)
		})
		if err != nil {
			return out, err
		}
	}
	var gone []Agent
	if err := db.Where("presence IN ? AND (last_seen_at IS NULL OR last_seen_at <= ?)",
		[]string{PresenceOnline, PresenceAway}, now.Add(-grace)).Order("id").Limit(batch).Find(&gone).Error; err != nil {
		return out, err
	}
	for _, a := range gone {
		err := s.tx(ctx, func(tx *gorm.DB) error {
			res := tx.Model(&Agent{}).Where("id = ? AND presence IN ? AND (last_seen_at IS NULL OR last_seen_at <= ?)",
				a.ID, []string{PresenceOnline, PresenceAway}, now.Add(-grace)).
				Updates(map[string]any{"presence": PresenceOffline, "updated_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			var chats []Conversation
			if err := tx.Where("agent_id = ? AND status = ?", a.ID, ConvActive).Find(&chats).Error; err != nil {
				return err
			}
			if len(chats) > 0 {
				if err := tx.Model(&Conversation{}).Where("agent_id = ? AND status = ?", a.ID, ConvActive).
					Updates(map[string]any{"status": ConvQueued, "agent_id": nil, "assigned_at": nil, "queued_at": now, "updated_at": now}).Error; err != nil {
					return err
				}
			}
			out.Offline = append(out.Offline, a.ID)
			out.Requeued = append(out.Requeued, chats...)
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// AgentConversations returns the agent's conversations in progress.
func (s *Store) AgentConversations(ctx context.Context, agentID string) ([]Conversation, error) {
	var out []Conversation
	return out, s.DB.WithContext(ctx).Where("agent_id = ? AND status = ?", agentID, ConvActive).Order("assigned_at, id").Find(&out).Error
}

// RecentTimes returns the brand's mean handle time (accept to resolve) and
// mean offer-to-accept time over its last 50 resolved conversations, zero
// when unknown. It is one query bounded by those 50 rows (an index scan on
// brand and resolution time, then each one's accepted offer through the
// (conversation, agent) index), so
// it costs the same with a year of history as with a day's.
func (s *Store) RecentTimes(ctx context.Context, brandID string) (handle, accept time.Duration, err error) {
	var rows []struct {
		ID         string
		AssignedAt time.Time
		ResolvedAt time.Time
		OfferedAt  *time.Time
	}
	// A conversation re-queued and accepted again by the same agent has two
	// accepted offers: the later one counts.
	err = s.DB.WithContext(ctx).Raw(recentTimesSQL, brandID, OfferAccepted).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return 0, 0, err
	}
	var handleSum, acceptSum time.Duration
	convs, accepted := 0, 0
	for i, r := range rows {
		if i > 0 && rows[i-1].ID == r.ID {
			continue // an earlier accepted offer of the same conversation
		}
		convs++
		handleSum += r.ResolvedAt.Sub(r.AssignedAt)
		if r.OfferedAt != nil {
			acceptSum += r.AssignedAt.Sub(*r.OfferedAt)
			accepted++
		}
	}
	handle = handleSum / time.Duration(convs)
	if accepted > 0 {
		accept = acceptSum / time.Duration(accepted)
	}
	return handle, accept, nil
}

// recentTimesSQL reads a brand's last 50 resolved conversations with their
// accepted offers. resolved_at IS NOT NULL is the predicate of the partial
// index it scans (migration 0008).
const recentTimesSQL = `SELECT c.id, c.assigned_at, c.resolved_at, o.created_at AS offered_at
	FROM (SELECT id, agent_id, assigned_at, resolved_at FROM conversations
		WHERE brand_id = ? AND resolved_at IS NOT NULL AND assigned_at IS NOT NULL
		ORDER BY resolved_at DESC LIMIT 50) c
	LEFT JOIN offers o ON o.conversation_id = c.id AND o.agent_id = c.agent_id AND o.status = ?
	ORDER BY c.id, o.created_at DESC`

// RecentConversations returns the brand's newest conversations.
func (s *Store) RecentConversations(ctx context.Context, brandID string, limit int) ([]Conversation, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var out []Conversation
	return out, s.DB.WithContext(ctx).Where("brand_id = ?", brandID).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
}

// RatingWindow is how long after resolution a customer may rate; after it
// the conversation closes and its customer link stops working.
const RatingWindow = 24 * time.Hour

// CloseResolved closes resolved conversations whose rating window is over
// and returns how many.
func (s *Store) CloseResolved(ctx context.Context) (int64, error) {
	now := s.Now()
	// The status is spelled out, not bound, so a generic plan still uses
	// the partial index on resolved conversations.
	res := s.DB.WithContext(ctx).Model(&Conversation{}).Where("status = '"+ConvResolved+"' AND resolved_at <= ?", now.Add(-RatingWindow)).
		Updates(map[string]any{"status": ConvClosed, "closed_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}
