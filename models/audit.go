package models

import (
	"context"
	"encoding/json"

	"gorm.io/gorm"
)

// audit writes one audit entry inside tx. detail is marshalled to JSON.
func (s *Store) audit(tx *gorm.DB, actorID, brandID, action, targetType, targetID string, detail any) error {
	e := AuditEntry{ID: NewID(), Action: action, TargetType: targetType, TargetID: targetID, CreatedAt: s.Now()}
	if actorID != "" {
		e.ActorID = &actorID
	}
	if brandID != "" {
		e.BrandID = &brandID
	}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		e.Detail = string(b)
	}
	return tx.Create(&e).Error
}

// AuditFilter narrows ListAudit.
type AuditFilter struct {
	BrandID string // only this brand's entries when set
	Limit   int    // default 100, at most 500
}

// ListAudit returns audit entries, newest first, with their actors.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q := s.DB.WithContext(ctx).Preload("Actor").Order("created_at DESC, id DESC").Limit(f.Limit)
	if f.BrandID != "" {
		q = q.Where("brand_id = ?", f.BrandID)
	}
	var out []AuditEntry
	return out, q.Find(&out).Error
}
