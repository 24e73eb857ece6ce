package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Offer statuses.
const (
	OfferPending   = "pending"
	OfferAccepted  = "accepted"
	OfferDeclined  = "declined"
	OfferExpired   = "expired"
	OfferRescinded = "rescinded"
)

// MissedOffersBeforeAway is how many offers in a row an agent may miss
// before they are set away.
const MissedOffersBeforeAway = 2

// Offer proposes one conversation to one agent until ExpiresAt.
type Offer struct {
	ID             string
	ConversationID string
	AgentID        string
	Status         string
	PayMinor       int64
	SurgeMinor     int64
	Currency       string
	Explanation    string // JSON: why this agent (matching.Explanation)
	DeclineReason  string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	AnsweredAt     *time.Time
}

// NewOffer is what the dispatcher decided to offer.
type NewOffer struct {
	ConversationID string
	AgentID        string
	PayMinor       int64
	SurgeMinor     int64
	Currency       string
	Explanation    string
	Timeout        time.Duration
}

// CreateOffer records an offer and moves the conversation from queued to
// offered, in one transaction. It answers ErrConflict when the conversation
// is no longer queued or either side already has a pending offer: the
// partial unique indexes on pending offers decide, even across instances.
func (s *Store) CreateOffer(ctx context.Context, in NewOffer) (*Offer, error) {
	var o *Offer
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		// The dispatcher decided on a snapshot; the agent may have filled
		// their last seat since. Accepts lock the same row, so the two
		// cannot interleave.
		if err := seatFree(tx, in.AgentID, true); err != nil {
			return err
		}
		res := tx.Model(&Conversation{}).Where("id = ? AND status = ?", in.ConversationID, ConvQueued).
			Updates(map[string]any{"status": ConvOffered, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("conversation not queued: %w", ErrConflict)
		}
		o = &Offer{ID: NewID(), ConversationID: in.ConversationID, AgentID: in.AgentID, Status: OfferPending,
			PayMinor: in.PayMinor, SurgeMinor: in.SurgeMinor, Currency: in.Currency, Explanation: in.Explanation,
			CreatedAt: now, ExpiresAt: now.Add(in.Timeout)}
		return tx.Create(o).Error
	})
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("a pending offer exists: %w", ErrConflict)
	}
	return o, err
}

// CreateOffers records a batch of offers in one transaction, so a busy
// dispatcher pays for one commit per pass instead of one per offer. Each
// offer is made only if its conversation is still queued, its agent still
// has a free seat and neither has a pending offer (checked with
// conditional statements that skip instead of failing, so one stale
// decision does not undo the others). It returns the offers made. On
// PostgreSQL the whole batch is one round trip (createOffersPostgres).
func (s *Store) CreateOffers(ctx context.Context, in []NewOffer) ([]Offer, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if s.Dialect == Postgres {
		return s.createOffersPostgres(ctx, in)
	}
	var made []Offer
	err := s.tx(ctx, func(tx *gorm.DB) error {
		made = made[:0]
		now := s.Now()
		for _, n := range in {
			if err := seatFree(tx, n.AgentID, true); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return err
			}
			res := tx.Model(&Conversation{}).Where("id = ? AND status = ?", n.ConversationID, ConvQueued).
				Updates(map[string]any{"status": ConvOffered, "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue
			}
			o := Offer{ID: NewID(), ConversationID: n.ConversationID, AgentID: n.AgentID, Status: OfferPending,
				PayMinor: n.PayMinor, SurgeMinor: n.SurgeMinor, Currency: n.Currency, Explanation: n.Explanation,
				CreatedAt: now, ExpiresAt: now.Add(n.Timeout)}
			res = tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&o)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 { // a pending offer exists for one side
				if err := requeue(tx, n.ConversationID, now); err != nil {
					return err
				}
				continue
			}
			made = append(made, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return made, nil
}

// Offer returns an offer by id.
func (s *Store) Offer(ctx context.Context, id string) (*Offer, error) {
	var o Offer
	if err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&o).Error; err != nil {
		return nil, notFound(err, "offer")
	}
	return &o, nil
}

// OffersByID returns the offers with the given ids that exist, by id.
func (s *Store) OffersByID(ctx context.Context, ids []string) (map[string]*Offer, error) {
	return rowsByID(ctx, s.DB, ids, func(o *Offer) string { return o.ID })
}

// AcceptOffer claims a pending, unexpired offer for the agent and makes the
// conversation active with them. Accepts take the agent's row lock in
// turn and claim the offer only if it is still pending under it, so
// exactly one of any number of concurrent accepts wins; the others, and any
// accept at or after expires_at (even before the sweep has run), get
// ErrConflict. Another agent's offer is ErrNotFound. On PostgreSQL it is
// one round trip (acceptOfferPostgres).
func (s *Store) AcceptOffer(ctx context.Context, agentID, offerID string) (*Offer, *Conversation, error) {
	if s.Dialect == Postgres {
		o, c, _, err := s.acceptOfferPostgres(ctx, agentID, offerID, false)
		return o, c, err
	}
	return s.acceptOfferTx(ctx, agentID, offerID)
}

// AcceptOfferChat is AcceptOffer with the conversation's first page of
// messages (as Messages with afterSeq and limit 0), read after the accept:
// what the agent's console shows once the chat is theirs. On PostgreSQL
// the read shares the accept's round trip and transaction.
func (s *Store) AcceptOfferChat(ctx context.Context, agentID, offerID string) (*Offer, *Conversation, []Message, error) {
	if s.Dialect == Postgres {
		return s.acceptOfferPostgres(ctx, agentID, offerID, true)
	}
	o, c, err := s.acceptOfferTx(ctx, agentID, offerID)
	if err != nil {
		return nil, nil, nil, err
	}
	msgs, err := s.Messages(ctx, c.ID, 0, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	return o, c, msgs, nil
}

// acceptOfferTx is AcceptOffer as a transaction of its own (SQLite).
func (s *Store) acceptOfferTx(ctx context.Context, agentID, offerID string) (*Offer, *Conversation, error) {
	var o Offer
	var c Conversation
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		// The agent's row lock first, as every change to their seats takes
		// it; the same statement clears their run of missed offers, which
		// the rollback undoes if the accept fails.
		var a Agent
		res := tx.Raw("UPDATE agents SET missed_offers = 0, updated_at = ? WHERE id = ? RETURNING id, max_concurrent",
			now, agentID).Find(&a)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("agent: %w", ErrNotFound)
		}
		res = tx.Raw("UPDATE offers SET status = ?, answered_at = ? WHERE id = ? AND agent_id = ? AND status = ? AND expires_at > ? RETURNING *",
			OfferAccepted, now, offerID, agentID, OfferPending, now).Find(&o)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Where("id = ? AND agent_id = ?", offerID, agentID).Take(&o).Error; err != nil {
				return notFound(err, "offer")
			}
			if o.Status == OfferPending {
				return fmt.Errorf("offer expired: %w", ErrConflict)
			}
			return fmt.Errorf("offer already %s: %w", o.Status, ErrConflict)
		}
		// The offer was made while the agent had a free seat; make sure
		// they still have one (their capacity may have dropped meanwhile).
		if err := seatLeft(tx, &a); err != nil {
			return err
		}
		res = tx.Raw("UPDATE conversations SET status = ?, agent_id = ?, assigned_at = ?, updated_at = ? WHERE id = ? AND status = ? RETURNING *",
			ConvActive, agentID, now, now, o.ConversationID, ConvOffered).Find(&c)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("conversation no longer waiting: %w", ErrConflict)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &o, &c, nil
}

// DeclineOffer records the agent's no with a reason and puts the
// conversation back in the queue.
func (s *Store) DeclineOffer(ctx context.Context, agentID, offerID, reason string) (*Offer, error) {
	v := &ValidationError{}
	reason = checkText(v, "reason", reason, true, MaxReasonLen)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var o Offer
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		// The agent's row lock first (see lockAgent); the same statement
		// clears their run of missed offers, which the rollback undoes if
		// the decline fails.
		if err := tx.Model(&Agent{}).Where("id = ?", agentID).Update("missed_offers", 0).Error; err != nil {
			return err
		}
		res := tx.Model(&Offer{}).Where("id = ? AND agent_id = ? AND status = ?", offerID, agentID, OfferPending).
			Updates(map[string]any{"status": OfferDeclined, "answered_at": now, "decline_reason": reason})
		if res.Error != nil {
			return res.Error
		}
		if err := tx.Where("id = ? AND agent_id = ?", offerID, agentID).Take(&o).Error; err != nil {
			return notFound(err, "offer")
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("offer already %s: %w", o.Status, ErrConflict)
		}
		return requeue(tx, o.ConversationID, now)
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// requeue puts an offered conversation back in the queue.
func requeue(tx *gorm.DB, convID string, now time.Time) error {
	return tx.Model(&Conversation{}).Where("id = ? AND status = ?", convID, ConvOffered).
		Updates(map[string]any{"status": ConvQueued, "updated_at": now}).Error
}

// ExpiredOffer is an offer the sweep expired, with whether it sent its agent
// away for missing offers in a row.
type ExpiredOffer struct {
	Offer
	SetAway bool
}

// ExpireOffers expires every pending offer whose expires_at has passed,
// puts their conversations back in the queue and counts the miss against
// each agent; MissedOffersBeforeAway misses in a row set the agent away.
// Each offer is claimed with a conditional update, so several sweepers (or
// instances) never expire one twice, under its agent's row lock (see
// lockAgent).
// dueOffersSQL reads the pending offers whose time is up, at most 500 a
// sweep. The status is spelled out, not bound, so a prepared plan still uses
// the partial index on pending offers' expiry (migration 0008).
const dueOffersSQL = `SELECT * FROM offers WHERE status = '` + OfferPending + `' AND expires_at <= ? ORDER BY expires_at LIMIT 500`

func (s *Store) ExpireOffers(ctx context.Context) ([]ExpiredOffer, error) {
	now := s.Now()
	var due []Offer
	if err := s.DB.WithContext(ctx).Raw(dueOffersSQL, now).Find(&due).Error; err != nil {
		return nil, err
	}
	var out []ExpiredOffer
	for _, o := range due {
		var away bool
		err := s.tx(ctx, func(tx *gorm.DB) error {
			if err := lockAgent(tx, o.AgentID); err != nil {
				return err
			}
			res := tx.Model(&Offer{}).Where("id = ? AND status = ?", o.ID, OfferPending).
				Updates(map[string]any{"status": OfferExpired, "answered_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			if err := requeue(tx, o.ConversationID, now); err != nil {
				return err
			}
			var missed []int
			if err := tx.Raw("UPDATE agents SET missed_offers = missed_offers + 1 WHERE id = ? RETURNING missed_offers", o.AgentID).Find(&missed).Error; err != nil {
				return err
			}
			if len(missed) == 1 && missed[0] >= MissedOffersBeforeAway {
				away = true
				return tx.Model(&Agent{}).Where("id = ? AND presence = ?", o.AgentID, PresenceOnline).
					Updates(map[string]any{"presence": PresenceAway, "missed_offers": 0, "updated_at": now}).Error
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		o.Status = OfferExpired
		out = append(out, ExpiredOffer{Offer: o, SetAway: away})
	}
	return out, nil
}

// Offers returns a conversation's offers, oldest first.
func (s *Store) Offers(ctx context.Context, convID string) ([]Offer, error) {
	var out []Offer
	return out, s.DB.WithContext(ctx).Where("conversation_id = ?", convID).Order("created_at, id").Find(&out).Error
}

// PendingOffer returns the agent's pending offer, or ErrNotFound.
func (s *Store) PendingOffer(ctx context.Context, agentID string) (*Offer, error) {
	var o Offer
	err := s.DB.WithContext(ctx).Where("agent_id = ? AND status = ?", agentID, OfferPending).Take(&o).Error
	if err != nil {
		return nil, notFound(err, "offer")
	}
	return &o, nil
}

// lockAgent takes the agent's row lock, first in a transaction that goes
// on to change their pending offer. Every writer of a pending offer takes
// its locks in one order, skipping what it does not change: the agent's
// row, then the offer, then its conversation. (The offer batch moves
// conversations to offered before it inserts their offers, but only queued
// ones, which have no pending offer for another writer to hold.) Out of
// order two of them deadlock on PostgreSQL: an expiry that held the offer
// and then asked for the agent would wait for an offer batch
// (createOffersPostgres) holding the agent, whose insert into the partial
// unique index on pending offers waits for the transaction changing the
// agent's pending offer. The agent's chats in progress follow the same
// rule: the presence lapse and suspension lock the agent and then re-queue
// their chats, so a resolve locks the agent before its conversation. On
// SQLite a transaction takes the one write lock at BEGIN, and the locking
// clause is dropped.
func lockAgent(tx *gorm.DB, agentID string) error {
	return tx.Clauses(clause.Locking{Strength: "NO KEY UPDATE"}).Select("id").Where("id = ?", agentID).Find(&[]Agent{}).Error
}

// seatFree locks the agent and answers ErrConflict unless they have fewer
// chats in progress than their capacity and, for a new offer, are still
// approved and online (the sweep may have set them away or offline since
// the dispatcher read them).
func seatFree(tx *gorm.DB, agentID string, forOffer bool) error {
	var a Agent
	if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("id, max_concurrent, status, presence").Where("id = ?", agentID).Take(&a).Error; err != nil {
		return notFound(err, "agent")
	}
	if forOffer && (a.Status != AgentApproved || a.Presence != PresenceOnline) {
		return fmt.Errorf("agent is %s and %s: %w", a.Status, a.Presence, ErrConflict)
	}
	return seatLeft(tx, &a)
}

// seatLeft answers ErrConflict unless the agent, whose row lock the caller
// holds, has fewer chats in progress than their capacity. The count is its
// own statement, after the lock, so it sees every chat committed before.
func seatLeft(tx *gorm.DB, a *Agent) error {
	var active int64
	if err := tx.Model(&Conversation{}).Where("agent_id = ? AND status = ?", a.ID, ConvActive).Count(&active).Error; err != nil {
		return err
	}
	if active >= int64(a.MaxConcurrent) {
		return fmt.Errorf("agent has no free seat: %w", ErrConflict)
	}
	return nil
}
