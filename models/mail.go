package models

import (
	"context"
)

// QueueMail puts a message in the outbox. The mailer sends it when SMTP is
// configured; otherwise it stays there for the operator to read.
func (s *Store) QueueMail(ctx context.Context, to, subject, body string) (*Mail, error) {
	m := &Mail{ID: NewID(), ToAddr: to, Subject: subject, Body: body, CreatedAt: s.Now()}
	return m, s.DB.WithContext(ctx).Create(m).Error
}

// MarkMailSent records a delivery attempt: sent when errText is empty.
func (s *Store) MarkMailSent(ctx context.Context, id, errText string) error {
	upd := map[string]any{"error": truncate(errText, 500)}
	if errText == "" {
		upd["sent_at"] = s.Now()
	}
	return s.DB.WithContext(ctx).Model(&Mail{}).Where("id = ?", id).Updates(upd).Error
}

// ListOutbox returns the newest mails first.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]Mail, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var out []Mail
	return out, s.DB.WithContext(ctx).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
}
