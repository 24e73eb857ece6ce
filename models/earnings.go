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

// feeInForce returns the platform fee in basis points at now.
func feeInForce(tx *gorm.DB, now time.Time) (int, error) {
	var bps []int
	if err := tx.Raw("SELECT basis_points FROM platform_fees WHERE effective_at <= ? ORDER BY effective_at DESC LIMIT 1", now).Scan(&bps).Error; err != nil {
		return 0, err
	}
	if len(bps) == 0 {
		return 0, fmt.Errorf("no platform fee in force at %s", now)
	}
	return bps[0], nil
}

// ResolveConversation ends the agent's active conversation with a note and
// records the agent's earning in the same transaction: the pay fixed on the
// accepted offer (base + surge) and the platform fee in force now. It also
// fixes the brand's currency, since money is now recorded in it.
func (s *Store) ResolveConversation(ctx context.Context, agentID, convID, note string) (*Conversation, *Earning, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > MaxSummaryLen {
		return nil, nil, Invalid("note", fmt.Sprintf("must be at most %d characters", MaxSummaryLen))
	}
	var c Conversation
	var e *Earning
	err := s.tx(ctx, func(tx *gorm.DB) error {
		now := s.Now()
		res := tx.Model(&Conversation{}).Where("id = ? AND agent_id = ? AND status = ?", convID, agentID, ConvActive).
			Updates(map[string]any{"status": ConvResolved, "resolved_at": now, "resolution_note": note, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Where("id = ? AND agent_id = ?", convID, agentID).Take(&c).Error; err != nil {
				return notFound(err, "conversation")
			}
			return fmt.Errorf("conversation is %s: %w", c.Status, ErrConflict)
		}
		if err := tx.Where("id = ?", convID).Take(&c).Error; err != nil {
			return err
		}
		var o Offer
		if err := tx.Where("conversation_id = ? AND agent_id = ? AND status = ?", convID, agentID, OfferAccepted).
			Order("answered_at DESC").Take(&o).Error; err != nil {
			return notFound(err, "accepted offer")
		}
		bps, err := feeInForce(tx, now)
		if err != nil {
			return err
		}
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
		return tx.Model(&Brand{}).Where("id = ? AND money_recorded_at IS NULL", c.BrandID).Update("money_recorded_at", now).Error
	})
	if err != nil {
		return nil, nil, err
	}
	return &c, e, nil
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
