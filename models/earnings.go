package models

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Earning statuses.
const (
	EarningHeld           = "held"
	EarningAwaitingStripe = "awaiting_stripe"
)

// Earning is what an agent earned for one resolved conversation.
type Earning struct {
	ID             string
	ConversationID string
	AgentID        string
	BrandID        string
	BaseMinor      int64
	SurgeMinor     int64
	FeeMinor       int64 // the platform's fee
	NetMinor       int64 // what the agent gets: base + surge - fee
	Currency       string
	FeeBasisPoints int
	Status         string
	CreatedAt      time.Time
}

// Fee returns basisPoints of gross in minor units, rounded half-up once.
func Fee(gross int64, basisPoints int) int64 {
	return (gross*int64(basisPoints) + 5000) / 10000
}

// ResolveConversation ends the agent's active conversation with a note and
// records the agent's earning at once: the pay fixed on the accepted offer
// (base + surge) and the platform fee in force now. It also fixes the
// brand's currency, since money is now recorded in it. Another agent's or
// an unknown conversation is ErrNotFound, one no longer active ErrConflict;
// without an accepted offer or a fee in force it fails and changes nothing.
func (s *Store) ResolveConversation(ctx context.Context, agentID, convID, note string) (*Conversation, *Earning, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > MaxSummaryLen {
		return nil, nil, Invalid("note", fmt.Sprintf("must be at most %d characters", MaxSummaryLen))
	}
	var c *Conversation
	var e *Earning
	var err error
	if s.Dialect == Postgres {
		c, e, err = s.resolveOneStatement(ctx, agentID, convID, note)
	}
	if c == nil && err == nil {
		// SQLite, or the statement changed nothing: the transaction
		// finds out why (or resolves, if things changed meanwhile).
		c, e, err = s.resolveTx(ctx, agentID, convID, note)
	}
	if err != nil {
		return nil, nil, err
	}
	s.moneyRecorded.Store(c.BrandID, struct{}{})
	return c, e, nil
}

// resolveTx is ResolveConversation in one transaction, step by step.
func (s *Store) resolveTx(ctx context.Context, agentID, convID, note string) (*Conversation, *Earning, error) {
	var c Conversation
	var e *Earning
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		// The agent's row before the conversation's, as the presence
		// lapse and suspension take them when they re-queue the agent's
		// chats (see lockAgent).
		if err := lockAgent(tx, agentID); err != nil {
			return err
		}
		res := tx.Raw("UPDATE conversations SET status = ?, resolved_at = ?, resolution_note = ?, updated_at = ? WHERE id = ? AND agent_id = ? AND status = ? RETURNING *",
			ConvResolved, now, note, now, convID, agentID, ConvActive).Find(&c)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Where("id = ? AND agent_id = ?", convID, agentID).Take(&c).Error; err != nil {
				return notFound(err, "conversation")
			}
			return fmt.Errorf("conversation is %s: %w", c.Status, ErrConflict)
		}
		// The pay fixed on the accepted offer and the fee in force, in
		// one read.
		var pay []struct {
			PayMinor, SurgeMinor int64
			Currency             string
			Bps                  *int
		}
		err := tx.Raw(`SELECT pay_minor, surge_minor, currency,
			(SELECT basis_points FROM platform_fees WHERE effective_at <= ? ORDER BY effective_at DESC LIMIT 1) AS bps
			FROM offers WHERE conversation_id = ? AND agent_id = ? AND status = ? ORDER BY answered_at DESC LIMIT 1`,
			now, convID, agentID, OfferAccepted).Find(&pay).Error
		if err != nil {
			return err
		}
		if len(pay) == 0 {
			return fmt.Errorf("accepted offer: %w", ErrNotFound)
		}
		if pay[0].Bps == nil {
			return fmt.Errorf("no platform fee in force at %s", now)
		}
		o, bps := pay[0], *pay[0].Bps
		gross := o.PayMinor + o.SurgeMinor
		fee := Fee(gross, bps)
		e = &Earning{ID: NewID(), ConversationID: convID, AgentID: agentID, BrandID: c.BrandID, BaseMinor: o.PayMinor,
			SurgeMinor: o.SurgeMinor, FeeMinor: fee, NetMinor: gross - fee, Currency: o.Currency, FeeBasisPoints: bps,
			Status: EarningHeld, CreatedAt: now}
		if err := tx.Create(e).Error; err != nil {
			return err
		}
		if err := tx.Model(&Agent{}).Where("id = ?", agentID).Updates(map[string]any{
			"free_since": now, "resolved_count": gorm.Expr("resolved_count + 1")}).Error; err != nil {
			return err
		}
		if _, known := s.moneyRecorded.Load(c.BrandID); known {
			return nil
		}
		return tx.Model(&Brand{}).Where("id = ? AND money_recorded_at IS NULL", c.BrandID).Update("money_recorded_at", now).Error
	})
	if err != nil {
		return nil, nil, err
	}
	return &c, e, nil
}

// resolveOneStatement is resolveTx on PostgreSQL in one statement (one
// round trip instead of six): the conversation, the earning (the fee
// rounded half-up like Fee), the agent's free_since and resolved_count, and
// the brand's money_recorded_at unless already set (a key lookup then, no
// write), with updated_at where resolveTx's updates set it. The
// conversation is updated only together with its accepted offer and a fee
// in force, so the statement changes all or nothing; nothing is a nil
// conversation and no error, for resolveTx to find out why. The agent's
// row is locked first (lk, which pay joins, so it runs before the update
// takes the conversation's row): the presence lapse and suspension lock the
// agent, then re-queue their chats, and the other order would deadlock
// with them (see lockAgent).
func (s *Store) resolveOneStatement(ctx context.Context, agentID, convID, note string) (*Conversation, *Earning, error) {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return nil, nil, err
	}
	now := s.Now()
	e := &Earning{ID: NewID(), ConversationID: convID, AgentID: agentID, Status: EarningHeld, CreatedAt: now}
	rows, err := sqlDB.QueryContext(ctx, `
WITH lk AS MATERIALIZED (
    SELECT id FROM agents WHERE id = $3 FOR NO KEY UPDATE
), pay AS (
    SELECT o.pay_minor, o.surge_minor, o.pay_minor + o.surge_minor AS gross, o.currency, f.basis_points
    FROM lk, offers o,
        (SELECT basis_points FROM platform_fees WHERE effective_at <= $1 ORDER BY effective_at DESC LIMIT 1) f
    WHERE o.conversation_id = $2 AND o.agent_id = $3 AND o.status = 'accepted'
    ORDER BY o.answered_at DESC LIMIT 1
), c AS (
    UPDATE conversations SET status = 'resolved', resolved_at = $1, resolution_note = $4, updated_at = $1
    FROM pay
    WHERE id = $2 AND agent_id = $3 AND (status = 'active') IS TRUE -- by primary key (see openFor)
    RETURNING conversations.*
), e AS (
    INSERT INTO earnings (id, conversation_id, agent_id, brand_id, base_minor, surge_minor, fee_minor, net_minor,
        currency, fee_basis_points, status, created_at)
    SELECT $5, c.id, c.agent_id, c.brand_id, pay.pay_minor, pay.surge_minor, fee.minor, pay.gross - fee.minor,
        pay.currency, pay.basis_points, 'held', $1
    FROM c, pay, LATERAL (SELECT (pay.gross * pay.basis_points + 5000) / 10000 AS minor) fee
    RETURNING base_minor, surge_minor, fee_minor, net_minor, currency, fee_basis_points
), a AS (
    UPDATE agents SET free_since = $1, resolved_count = resolved_count + 1, updated_at = $1
    FROM c WHERE agents.id = c.agent_id
), b AS (
    UPDATE brands SET money_recorded_at = $1, updated_at = $1
    FROM c WHERE brands.id = c.brand_id AND brands.money_recorded_at IS NULL
)
SELECT c.*, e.base_minor AS earn_base_minor, e.surge_minor AS earn_surge_minor, e.fee_minor AS earn_fee_minor,
    e.net_minor AS earn_net_minor, e.currency AS earn_currency, e.fee_basis_points AS earn_fee_basis_points
FROM c, e`, now, convID, agentID, note, e.ID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var r struct {
		Conversation
		EarnBaseMinor, EarnSurgeMinor, EarnFeeMinor, EarnNetMinor int64
		EarnCurrency                                              string
		EarnFeeBasisPoints                                        int
	}
	found := false
	// Read to the end: the agent's and brand's updates run after the row
	// is sent, and their failure fails the statement.
	for rows.Next() {
		if err := s.DB.ScanRows(rows, &r); err != nil {
			return nil, nil, err
		}
		found = true
	}
	if err := rows.Err(); err != nil || !found {
		return nil, nil, err
	}
	e.BrandID, e.BaseMinor, e.SurgeMinor, e.FeeMinor, e.NetMinor, e.Currency, e.FeeBasisPoints =
		r.BrandID, r.EarnBaseMinor, r.EarnSurgeMinor, r.EarnFeeMinor, r.EarnNetMinor, r.EarnCurrency, r.EarnFeeBasisPoints
	return &r.Conversation, e, nil
}

// Earnings lists an agent's earnings, newest first.
func (s *Store) Earnings(ctx context.Context, agentID string, limit int) ([]Earning, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var out []Earning
	return out, s.DB.WithContext(ctx).Where("agent_id = ?", agentID).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
}

// RateConversation records the customer's 1–5 rating and comment once,
// after the conversation was resolved.
func (s *Store) RateConversation(ctx context.Context, convID string, rating int, comment string) error {
	v := &ValidationError{}
	if rating < 1 || rating > 5 {
		v.Add("rating", "must be 1 to 5")
	}
	comment = checkText(v, "comment", comment, false, MaxReasonLen)
	if err := v.Err(); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		res := tx.Model(&Conversation{}).Where("id = ? AND status = ? AND rating IS NULL", convID, ConvResolved).
			Updates(map[string]any{"rating": rating, "rating_comment": comment, "rated_at": now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if _, err := s.convStatus(tx, convID); err != nil {
				return err
			}
			return fmt.Errorf("conversation cannot be rated now: %w", ErrConflict)
		}
		// The agent's rating is kept as a running sum and count, so the
		// dispatcher never aggregates every conversation.
		return tx.Exec(`UPDATE agents SET rating_sum = rating_sum + ?, rating_count = rating_count + 1
			WHERE id = (SELECT agent_id FROM conversations WHERE id = ?)`, rating, convID).Error
	})
}
