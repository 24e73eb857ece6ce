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
		res := tx.Raw("UPDATE conversations SET status = ?, resolved_at = ?, resolution_note = ?, updated_at = ? WHERE id = ? AND agent_id = ? AND status = ? RETURNING *",
			ConvResolved, now, note, now, convID, agentID, ConvActive).Scan(&c)
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
			now, convID, agentID, OfferAccepted).Scan(&pay).Error
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
	s.moneyRecorded.Store(c.BrandID, struct{}{})
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
