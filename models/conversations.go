package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Conversation statuses.
const (
	ConvQueued    = "queued"
	ConvOffered   = "offered"
	ConvActive    = "active"
	ConvResolved  = "resolved"
	ConvClosed    = "closed"
	ConvAbandoned = "abandoned"
)

// Message senders.
const (
	SenderCustomer = "customer"
	SenderAgent    = "agent"
	SenderBot      = "bot"
	SenderSystem   = "system"
)

// Limits of the bot API's escalation body.
const (
	MaxExternalIDLen     = 200
	MaxTranscriptEntries = 200
	MaxMessageLen        = 4000
	MaxSummaryLen        = 2000
	MaxMetadataKeys      = 50
	MaxMetadataValueLen  = 500
	MaxEscalationSkills  = 10
	MaxClientIDLen       = 100
)

// Conversation is one customer's handoff from a bot to a person.
type Conversation struct {
	ID             string
	BrandID        string
	ExternalID     string
	Status         string
	CustomerName   string
	CustomerEmail  string `json:"-"`
	Language       string
	Skills         string // comma-separated skill slugs
	Priority       int
	Reason         string
	Summary        string
	Metadata       string // JSON object of strings
	AgentID        *string
	QueuedAt       time.Time
	CreatedAt      time.Time
	AssignedAt     *time.Time
	ResolvedAt     *time.Time
	ClosedAt       *time.Time
	AbandonedAt    *time.Time
	AbandonReason  string
	ResolutionNote string
	Rating         *int
	RatingComment  string
	RatedAt        *time.Time
	LastSeq        int
	UpdatedAt      time.Time
}

// SkillList returns the required skills.
func (c *Conversation) SkillList() []string { return splitList(c.Skills) }

// Open reports whether the conversation is still waiting or in progress.
func (c *Conversation) Open() bool {
	return c.Status == ConvQueued || c.Status == ConvOffered || c.Status == ConvActive
}

// Message is one line of a conversation, numbered by Seq within it.
type Message struct {
	ID             string
	ConversationID string
	Seq            int
	Sender         string
	SenderID       string
	ClientID       *string
	Body           string
	SentAt         *time.Time // when the bot says it was said, for transcripts
	CreatedAt      time.Time
}

// TranscriptEntry is one line of the bot's transcript.
type TranscriptEntry struct {
	Role string    `json:"role"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Escalation is a bot's request to hand a customer over.
type Escalation struct {
	ExternalID    string
	CustomerName  string
	CustomerEmail string
	Language      string
	Skills        []string
	Priority      *int
	Reason        string
	Summary       string
	Transcript    []TranscriptEntry
	Metadata      map[string]string
}

// ValidateEscalation checks an escalation against the brand's catalogue and
// returns it normalised.
func ValidateEscalation(in Escalation, catalogue map[string]bool) (Escalation, error) {
	v := &ValidationError{}
	in.ExternalID = strings.TrimSpace(in.ExternalID)
	switch {
	case in.ExternalID == "":
		v.Add("external_id", "is required")
	case utf8.RuneCountInString(in.ExternalID) > MaxExternalIDLen:
		v.Add("external_id", fmt.Sprintf("must be at most %d characters", MaxExternalIDLen))
	}
	in.CustomerName = checkText(v, "customer.name", in.CustomerName, false, MaxNameLen)
	if strings.TrimSpace(in.CustomerEmail) != "" {
		in.CustomerEmail = checkEmail(v, "customer.email", in.CustomerEmail)
	}
	if tag, ok := CanonicalLanguage(in.Language); ok {
		in.Language = tag
	} else if strings.TrimSpace(in.Language) == "" {
		v.Add("language", "is required")
	} else {
		v.Add("language", "must be a BCP 47 language tag like en or pt-BR")
	}
	seen := map[string]bool{}
	var skills []string
	for i, s := range in.Skills {
		s = strings.TrimSpace(s)
		field := fmt.Sprintf("skills[%d]", i)
		switch {
		case !catalogue[s]:
			v.Add(field, fmt.Sprintf("%q is not in the brand's skill catalogue", truncate(s, 60)))
		case !seen[s]:
			seen[s] = true
			skills = append(skills, s)
		}
	}
	if len(in.Skills) > MaxEscalationSkills {
		v.Add("skills", fmt.Sprintf("at most %d skills", MaxEscalationSkills))
	}
	in.Skills = skills
	if in.Priority == nil {
		p := 5
		in.Priority = &p
	} else if *in.Priority < 0 || *in.Priority > 9 {
		v.Add("priority", "must be between 0 and 9")
	}
	in.Reason = checkText(v, "reason", in.Reason, false, MaxReasonLen)
	in.Summary = checkText(v, "summary", in.Summary, false, MaxSummaryLen)
	if len(in.Transcript) > MaxTranscriptEntries {
		v.Add("transcript", fmt.Sprintf("at most %d entries", MaxTranscriptEntries))
	} else {
		for i, e := range in.Transcript {
			field := fmt.Sprintf("transcript[%d]", i)
			if e.Role != SenderCustomer && e.Role != SenderBot {
				v.Add(field+".role", "must be customer or bot")
			}
			if strings.TrimSpace(e.Text) == "" {
				v.Add(field+".text", "is required")
			} else if utf8.RuneCountInString(e.Text) > MaxMessageLen {
				v.Add(field+".text", fmt.Sprintf("must be at most %d characters", MaxMessageLen))
			}
		}
	}
	if len(in.Metadata) > MaxMetadataKeys {
		v.Add("metadata", fmt.Sprintf("at most %d keys", MaxMetadataKeys))
	}
	for k, val := range in.Metadata {
		if len(k) > 100 || utf8.RuneCountInString(val) > MaxMetadataValueLen {
			v.Add("metadata", fmt.Sprintf("keys are at most 100 and values %d characters", MaxMetadataValueLen))
			break
		}
	}
	return in, v.Err()
}

// Escalate opens a conversation for a brand's bot. While a conversation with
// the same external_id is open it is returned instead, with created=false,
// and the body is not applied again. Concurrent calls with one new
// external_id make exactly one conversation: the partial unique index on
// open (brand_id, external_id) decides, and the losers read the winner.
func (s *Store) Escalate(ctx context.Context, brandID string, in Escalation) (*Conversation, bool, error) {
	skills, err := s.Skills(ctx, brandID)
	if err != nil {
		return nil, false, err
	}
	return s.EscalateWith(ctx, brandID, skills, in)
}

// EscalateWith is Escalate with the brand's skill catalogue already read
// (a caller that caches it saves a read per escalation).
func (s *Store) EscalateWith(ctx context.Context, brandID string, skills []BrandSkill, in Escalation) (*Conversation, bool, error) {
	e, err := s.EscalatePlaced(ctx, brandID, skills, in)
	if err != nil {
		return nil, false, err
	}
	return e.Conversation, e.Created, nil
}

// Escalated is what an escalation made: the conversation, whether it is
// new, and its place in the brand's queue (1 is next; 0 when it is not
// waiting; PlaceCountLimit+1 is "at least that") as of the escalation.
type Escalated struct {
	Conversation *Conversation
	Created      bool
	Place        int
}

// EscalatePlaced is EscalateWith that also places the conversation in its
// brand's queue; on PostgreSQL a new conversation is stored and placed in
// one statement.
func (s *Store) EscalatePlaced(ctx context.Context, brandID string, skills []BrandSkill, in Escalation) (Escalated, error) {
	var err error
	catalogue := map[string]bool{}
	for _, sk := range skills {
		catalogue[sk.Slug] = true
	}
	in, err = ValidateEscalation(in, catalogue)
	if err != nil {
		return Escalated{}, err
	}
	meta := "{}"
	if len(in.Metadata) > 0 {
		b, err := json.Marshal(in.Metadata)
		if err != nil {
			return Escalated{}, err
		}
		meta = string(b)
	}
	now := s.Now()
	conv := &Conversation{ID: NewID(), BrandID: brandID, ExternalID: in.ExternalID, Status: ConvQueued,
		CustomerName: in.CustomerName, CustomerEmail: in.CustomerEmail, Language: in.Language,
		Skills: strings.Join(in.Skills, ","), Priority: *in.Priority, Reason: in.Reason, Summary: in.Summary,
		Metadata: meta, QueuedAt: now, CreatedAt: now, UpdatedAt: now, LastSeq: len(in.Transcript)}
	msgs := make([]Message, len(in.Transcript))
	for i, e := range in.Transcript {
		at := e.At.UTC()
		msgs[i] = Message{ID: NewID(), ConversationID: conv.ID, Seq: i + 1, Sender: e.Role, Body: e.Text, CreatedAt: now}
		if !e.At.IsZero() {
			msgs[i].SentAt = &at
		}
	}
	// The open conversation's unique (brand, external id) index decides
	// between two requests for the same chat: the insert that loses does
	// nothing, and that request answers with the winner's conversation.
	// Without a transcript the insert is the whole change, one statement.
	insert := func(tx *gorm.DB) (bool, error) {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(conv)
		if res.Error != nil || res.RowsAffected == 0 {
			return false, res.Error
		}
		if len(msgs) > 0 {
			return true, tx.Create(&msgs).Error
		}
		return true, nil
	}
	for range 3 {
		var created bool
		var err error
		place := 0
		switch {
		case s.Dialect == Postgres:
			created, place, err = s.insertEscalation(ctx, conv, msgs)
		case len(msgs) == 0:
			created, err = insert(s.DB.WithContext(ctx))
		default:
			err = s.tx(ctx, func(tx *gorm.DB) error {
				created, err = insert(tx)
				return err
			})
		}
		if err != nil {
			return Escalated{}, err
		}
		if created {
			if place == 0 {
				place, err = s.QueuePosition(ctx, conv)
			}
			return Escalated{Conversation: conv, Created: true, Place: place}, err
		}
		c, err := s.openByExternalID(s.DB.WithContext(ctx), brandID, in.ExternalID)
		if err == nil {
			place, err = s.QueuePosition(ctx, c)
			return Escalated{Conversation: c, Place: place}, err
		}
		if !errors.Is(err, ErrNotFound) {
			return Escalated{}, err
		}
		// It ended between the insert and the read: try again.
	}
	return Escalated{}, fmt.Errorf("escalation %q keeps colliding with conversations that end: %w", in.ExternalID, ErrConflict)
}

// insertEscalation stores a new conversation and its transcript in one
// statement on PostgreSQL, and places it in its brand's queue; false when
// an open conversation with its external id exists (the insert did
// nothing).
func (s *Store) insertEscalation(ctx context.Context, c *Conversation, msgs []Message) (bool, int, error) {
	n := len(msgs)
	ids, senders, bodies := make([]string, n), make([]string, n), make([]string, n)
	seqs := make([]int32, n)
	sent := make([]*time.Time, n)
	for i, m := range msgs {
		ids[i], senders[i], bodies[i], seqs[i], sent[i] = m.ID, m.Sender, m.Body, int32(m.Seq), m.SentAt
	}
	sqlDB, err := s.DB.DB()
	if err != nil {
		return false, 0, err
	}
	// The place counts the waiting conversations ahead in dispatch order
	// (QueuePosition's rule) in the statement's snapshot, which does not
	// hold the new row.
	var created, ahead int
	err = sqlDB.QueryRowContext(ctx, `
WITH c AS (
    INSERT INTO conversations (id, brand_id, external_id, status, customer_name, customer_email, language, skills,
        priority, reason, summary, metadata, queued_at, created_at, updated_at, last_seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13, $14)
    ON CONFLICT DO NOTHING
    RETURNING id
), t AS (
    INSERT INTO messages (id, conversation_id, seq, sender, body, sent_at, created_at)
    SELECT m.id, c.id, m.seq, m.sender, m.body, m.sent_at, $13
    FROM c CROSS JOIN unnest($15::text[], $16::int[], $17::text[], $18::text[], $19::timestamptz[]) AS m(id, seq, sender, body, sent_at)
    RETURNING 1
)
SELECT count(*), `+waitingAheadSQL("$2", "$9", "$13", "$1")+`
FROM c`,
		c.ID, c.BrandID, c.ExternalID, c.Status, c.CustomerName, c.CustomerEmail, c.Language, c.Skills,
		c.Priority, c.Reason, c.Summary, c.Metadata, c.CreatedAt, c.LastSeq,
		ids, seqs, senders, bodies, sent).Scan(&created, &ahead)
	if err != nil || created != 1 {
		return false, 0, err
	}
	return true, ahead + 1, nil
}

func (s *Store) openByExternalID(db *gorm.DB, brandID, externalID string) (*Conversation, error) {
	var c Conversation
	// Literal statuses: the open conversations' unique index is partial,
	// and SQLite cannot match a bound parameter to its WHERE.
	err := db.Where("brand_id = ? AND external_id = ? AND status IN ('"+ConvQueued+"', '"+ConvOffered+"', '"+ConvActive+"')",
		brandID, externalID).Take(&c).Error
	if err != nil {
		return nil, notFound(err, "conversation")
	}
	return &c, nil
}

// Conversation returns one of the brand's conversations; another brand's id
// is ErrNotFound.
func (s *Store) Conversation(ctx context.Context, brandID, id string) (*Conversation, error) {
	var c Conversation
	if err := s.DB.WithContext(ctx).Where("id = ? AND brand_id = ?", id, brandID).Take(&c).Error; err != nil {
		return nil, notFound(err, "conversation")
	}
	return &c, nil
}

// ConversationByID returns a conversation whatever its brand; only for
// callers that have already scoped access (the customer's link, the agent
// it is assigned to).
func (s *Store) ConversationByID(ctx context.Context, id string) (*Conversation, error) {
	var c Conversation
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, notFound(err, "conversation")
	}
	return &c, nil
}

// ConversationsByID returns the conversations with the given ids that
// exist, by id, whatever their brand (as ConversationByID).
func (s *Store) ConversationsByID(ctx context.Context, ids []string) (map[string]*Conversation, error) {
	return rowsByID(ctx, s.DB, ids, func(c *Conversation) string { return c.ID })
}

// MessageKey names one message: its conversation and sequence number.
type MessageKey struct {
	ConversationID string
	Seq            int
}

// MessagesAt returns the messages with the given keys that exist, by key.
func (s *Store) MessagesAt(ctx context.Context, keys []MessageKey) (map[MessageKey]*Message, error) {
	out := make(map[MessageKey]*Message, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pairs := make([][]any, len(keys))
	for i, k := range keys {
		pairs[i] = []any{k.ConversationID, k.Seq}
	}
	rows := make([]Message, 0, len(keys)) // room for all (see rowsByID)
	if err := s.DB.WithContext(ctx).Where("(conversation_id, seq) IN ?", pairs).Find(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		out[MessageKey{rows[i].ConversationID, rows[i].Seq}] = &rows[i]
	}
	return out, nil
}

// Messages returns the conversation's messages after seq afterSeq, in order.
func (s *Store) Messages(ctx context.Context, convID string, afterSeq, limit int) ([]Message, error) {
	var out []Message
	return out, s.DB.WithContext(ctx).Where("conversation_id = ? AND seq > ?", convID, afterSeq).
		Order("seq").Limit(messageLimit(limit)).Find(&out).Error
}

// messageLimit is the page size of a read of messages asked for limit:
// 1,000 when limit is 0 or more than that.
func messageLimit(limit int) int {
	if limit <= 0 || limit > 1000 {
		return 1000
	}
	return limit
}

// AddMessage stores a message with the conversation's next sequence number.
// A repeated clientID from the same sender returns the stored message with
// created=false, so a resend is never stored twice. The conversation must be
// open.
func (s *Store) AddMessage(ctx context.Context, convID, sender, senderID, clientID, body string) (*Message, bool, error) {
	v := &ValidationError{}
	if strings.TrimSpace(body) == "" {
		v.Add("text", "is required")
	} else if utf8.RuneCountInString(body) > MaxMessageLen {
		v.Add("text", fmt.Sprintf("must be at most %d characters", MaxMessageLen))
	}
	if len(clientID) > MaxClientIDLen {
		v.Add("client_id", fmt.Sprintf("must be at most %d characters", MaxClientIDLen))
	}
	if err := v.Err(); err != nil {
		return nil, false, err
	}
	return s.addMessageBatched(ctx, convID, sender, senderID, clientID, body)
}

// addMessageInTx stores one message inside tx, the SQLite way, in two
// statements under the transaction's write lock: the insert, numbered
// after the conversation's last message and only while it is open for the
// sender (openFor), then the conversation's last_seq. A resend meets the
// unique index on its client id, which undoes only that statement, and
// answers the stored message, as it does when the conversation has closed
// since. An error that is the message's answer (not found, not open,
// invalid) changed nothing.
func (s *Store) addMessageInTx(tx *gorm.DB, r *messageReq) (*Message, bool, error) {
	msg := &Message{ID: NewID(), ConversationID: r.convID, Sender: r.sender, SenderID: r.senderID, Body: r.body, CreatedAt: r.at}
	var clientID any // NULL without one, as gorm stores a nil *string
	if r.clientID != "" {
		msg.ClientID = &r.clientID
		clientID = r.clientID
	}
	// The two statements go to the transaction's connection directly, not
	// through gorm: they run in SQLite's one write turn, for every
	// message, and gorm's processing of them (and of a []int it cannot
	// parse as a model) was a fifth of the turn's CPU in a profile of
	// messages alone.
	pool, ctx := tx.Statement.ConnPool, tx.Statement.Context
	where, args := openFor(r.convID, r.sender, r.senderID)
	res, err := pool.ExecContext(ctx, `INSERT INTO messages (id, conversation_id, seq, sender, sender_id, client_id, body, created_at)
		SELECT ?, id, last_seq + 1, ?, ?, ?, ?, ? FROM conversations WHERE `+where,
		append([]any{msg.ID, r.sender, r.senderID, clientID, r.body, r.at}, args...)...)
	var inserted int64
	if err == nil {
		inserted, err = res.RowsAffected()
	}
	if err != nil || inserted == 0 {
		if err == nil || isUniqueViolation(err) {
			if m, err := resentMessage(tx, r.convID, r.sender, r.clientID); m != nil || err != nil {
				return m, false, err
			}
		}
		if err != nil {
			return nil, false, err
		}
		return nil, false, notOpenFor(tx, r.convID, r.sender, r.senderID)
	}
	err = pool.QueryRowContext(ctx, "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", r.convID).Scan(&msg.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("conversation %s vanished under its message", r.convID)
	}
	if err != nil {
		return nil, false, err
	}
	return msg, true, nil
}

// addMessageAlone stores one message in its own transaction (SQLite); a
// resend that raced its original answers the stored message.
func (s *Store) addMessageAlone(ctx context.Context, r *messageReq) (*Message, bool, error) {
	var msg *Message
	var created bool
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		msg, created, err = s.addMessageInTx(tx, r)
		return err
	})
	if isUniqueViolation(err) && r.clientID != "" {
		m, err := storedMessage(s.DB.WithContext(ctx), r.convID, r.sender, r.clientID)
		return m, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return msg, created, nil
}

// addMessageOneStatement stores one message on PostgreSQL, for a batch
// that could not store it (see storeMessages): one statement takes the next
// sequence number and inserts. A resend loses on the unique (conversation,
// sender, client id) index; the whole statement, sequence number included,
// is then undone and the stored message returned. A resend to a
// conversation closed since answers the stored message too.
func (s *Store) addMessageOneStatement(ctx context.Context, convID, sender, senderID, clientID, body string, at time.Time) (*Message, bool, error) {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return nil, false, err
	}
	msg := &Message{ID: NewID(), ConversationID: convID, Sender: sender, SenderID: senderID, Body: body, CreatedAt: at}
	if clientID != "" {
		msg.ClientID = &clientID
	}
	// database/sql, not gorm: this is the statement of every chat message,
	// and gorm's statement building and scanning were a fifth of the
	// server's allocations in a chat-heavy run.
	query, args := addMessageSQL(convID, sender, senderID)
	args = append(args, msg.ID, sender, senderID, msg.ClientID, body, msg.CreatedAt)
	var seq int
	err = sqlDB.QueryRowContext(ctx, query, args...).Scan(&seq)
	if isUniqueViolation(err) && clientID != "" {
		m, err := storedMessage(s.DB.WithContext(ctx), convID, sender, clientID)
		return m, false, err
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Not open for the sender (any more): a resend still answers the
		// message it repeats, as on SQLite.
		db := s.DB.WithContext(ctx)
		if m, err := resentMessage(db, convID, sender, clientID); m != nil || err != nil {
			return m, false, err
		}
		return nil, false, notOpenFor(db, convID, sender, senderID)
	}
	if err != nil {
		return nil, false, err
	}
	msg.Seq = seq
	return msg, true, nil
}

// addMessageSQL is addMessageOneStatement's statement for a message from
// sender, with openFor's condition, and its first arguments; the message's
// id, sender, sender id, client id, body and time follow them.
func addMessageSQL(convID, sender, senderID string) (string, []any) {
	if sender == SenderAgent {
		return addAgentMessageSQL, []any{convID, ConvActive, senderID}
	}
	return addCustomerMessageSQL, []any{convID, ConvQueued, ConvOffered, ConvActive}
}

// The two forms of addMessageOneStatement's statement: a customer writes
// while the conversation is open, an agent only in their own chat in
// progress (openFor, whose IS TRUE they keep).
const (
	addAgentMessageSQL = `WITH c AS (UPDATE conversations SET last_seq = last_seq + 1
        WHERE id = $1 AND (status = $2) IS TRUE AND agent_id = $3 RETURNING id, last_seq)
    INSERT INTO messages (id, conversation_id, seq, sender, sender_id, client_id, body, created_at)
    SELECT $4, c.id, c.last_seq, $5, $6, $7, $8, $9 FROM c RETURNING seq`
	addCustomerMessageSQL = `WITH c AS (UPDATE conversations SET last_seq = last_seq + 1
        WHERE id = $1 AND (status IN ($2, $3, $4)) IS TRUE RETURNING id, last_seq)
    INSERT INTO messages (id, conversation_id, seq, sender, sender_id, client_id, body, created_at)
    SELECT $5, c.id, c.last_seq, $6, $7, $8, $9, $10 FROM c RETURNING seq`
)

// resentMessage is the message a sender already stored under clientID,
// or nil (and no error) when there is no client id or no such message.
func resentMessage(db *gorm.DB, convID, sender, clientID string) (*Message, error) {
	if clientID == "" {
		return nil, nil
	}
	m, err := storedMessage(db, convID, sender, clientID)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return m, err
}

// storedMessage is the message a sender already stored under clientID
// (gorm.ErrRecordNotFound when none).
func storedMessage(db *gorm.DB, convID, sender, clientID string) (*Message, error) {
	var m Message
	if err := db.Where("conversation_id = ? AND sender = ? AND client_id = ?", convID, sender, clientID).Take(&m).Error; err != nil {
		return nil, err
	}
	return &m, nil
}

// openFor is the condition on the conversation for a message from sender:
// a customer writes while it is open, an agent only in their own chat in
// progress.
//
// The status test is wrapped in IS TRUE (the same truth in a WHERE) so the
// planner looks the row up by its primary key. A plain status test implies
// the predicate of the partial indexes on open conversations, and when the
// planner's statistics say those are empty (gathered while nothing was
// open) it rates a scan of one of them cheaper than the key lookup: every
// message would then read every open conversation. Every argument is a
// scalar, so database/sql (which expands no slice) takes them as they are.
func openFor(convID, sender, senderID string) (string, []any) {
	if sender == SenderAgent {
		return "id = ? AND (status = ?) IS TRUE AND agent_id = ?", []any{convID, ConvActive, senderID}
	}
	return "id = ? AND (status IN (?, ?, ?)) IS TRUE", []any{convID, ConvQueued, ConvOffered, ConvActive}
}

// notOpenFor explains why openFor matched nothing: no such conversation
// (or, for an agent, not theirs) is ErrNotFound; an agent's chat no longer
// in progress is invalid; a closed one for the customer is ErrConflict.
func notOpenFor(db *gorm.DB, convID, sender, senderID string) error {
	var c Conversation
	if err := db.Select("status, agent_id").Where("id = ?", convID).Take(&c).Error; err != nil {
		return notFound(err, "conversation")
	}
	if sender == SenderAgent {
		if c.AgentID == nil || *c.AgentID != senderID {
			return fmt.Errorf("conversation: %w", ErrNotFound)
		}
		return Invalid("conversation", "is not in progress")
	}
	return fmt.Errorf("conversation is closed: %w", ErrConflict)
}

func (s *Store) convStatus(tx *gorm.DB, id string) (string, error) {
	var c Conversation
	if err := tx.Select("status").Where("id = ?", id).Take(&c).Error; err != nil {
		return "", notFound(err, "conversation")
	}
	return c.Status, nil
}

// CancelConversation abandons a conversation nobody has joined yet (the
// customer left, or the bot cancelled), withdrawing any pending offer.
// Returns ErrConflict once a person has joined or it has ended.
func (s *Store) CancelConversation(ctx context.Context, brandID, id, reason string) (*Conversation, error) {
	var c *Conversation
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		// The pending offer before the conversation, in the lock order
		// of every writer of both (see lockAgent). A conversation with a
		// pending offer is offered; if it is not waiting (or another
		// brand's), the rollback undoes the withdrawal.
		if err := tx.Model(&Offer{}).Where("conversation_id = ? AND status = ?", id, OfferPending).
			Updates(map[string]any{"status": OfferRescinded, "answered_at": now}).Error; err != nil {
			return err
		}
		res := tx.Model(&Conversation{}).Where("id = ? AND brand_id = ? AND status IN ?", id, brandID, []string{ConvQueued, ConvOffered}).
			Updates(map[string]any{"status": ConvAbandoned, "abandoned_at": now, "abandon_reason": reason, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var cur Conversation
			if err := tx.Where("id = ? AND brand_id = ?", id, brandID).Take(&cur).Error; err != nil {
				return notFound(err, "conversation")
			}
			return fmt.Errorf("conversation is %s: %w", cur.Status, ErrConflict)
		}
		var cur Conversation
		if err := tx.Where("id = ?", id).Take(&cur).Error; err != nil {
			return err
		}
		c = &cur
		return nil
	})
	return c, err
}
