package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// testPassword is long enough for every password check.
const testPassword = "correct-horse-battery"

// mustSignUpBrand signs up a brand named name whose owner has email.
func mustSignUpBrand(tb testing.TB, db *modeltest.DB, name, email string) (*models.User, *models.Brand) {
	tb.Helper()
	u, b, err := db.Store.SignUpBrand(context.Background(), models.BrandSignup{Name: name, Email: email, Password: testPassword})
	if err != nil {
		tb.Fatalf("SignUpBrand(%q, %q): %v", name, email, err)
	}
	return u, b
}

// mustOperator returns an operator account.
func mustOperator(tb testing.TB, db *modeltest.DB) *models.User {
	tb.Helper()
	u, err := db.Store.EnsureOperator(context.Background(), "operator@handoff.test", "Olivia", testPassword)
	if err != nil {
		tb.Fatalf("EnsureOperator: %v", err)
	}
	return u
}

// application returns a valid agent application for email.
func application(email string) models.AgentApplication {
	return models.AgentApplication{
		DisplayName:   "Maya",
		Email:         email,
		Password:      testPassword,
		Languages:     []string{"en", "pt-br"},
		Skills:        map[string]int{"Billing Disputes": 4, "refunds": 2},
		Bio:           "Five years of billing support.",
		MaxConcurrent: 2,
	}
}

// mustApplyAsAgent creates a pending agent.
func mustApplyAsAgent(tb testing.TB, db *modeltest.DB, email string) *models.Agent {
	tb.Helper()
	a, err := db.Store.ApplyAsAgent(context.Background(), application(email))
	if err != nil {
		tb.Fatalf("ApplyAsAgent(%q): %v", email, err)
	}
	return a
}

// mustApprovedAgent creates an agent and approves it as op.
func mustApprovedAgent(tb testing.TB, db *modeltest.DB, op *models.User, email string) *models.Agent {
	tb.Helper()
	a := mustApplyAsAgent(tb, db, email)
	if err := db.Store.DecideApplication(context.Background(), op.ID, a.ID, true, ""); err != nil {
		tb.Fatalf("DecideApplication(approve %s): %v", email, err)
	}
	return a
}

// mustSession opens a one-hour session for the user.
func mustSession(tb testing.TB, db *modeltest.DB, userID string) *models.Session {
	tb.Helper()
	s, err := db.Store.CreateSession(context.Background(), userID, "192.0.2.1", "test", time.Hour)
	if err != nil {
		tb.Fatalf("CreateSession(%s): %v", userID, err)
	}
	return s
}

// count returns the number of rows of table matching where.
func count(tb testing.TB, db *modeltest.DB, table, where string, args ...any) int64 {
	tb.Helper()
	var n int64
	q := db.Store.DB.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		tb.Fatalf("count %s where %s: %v", table, where, err)
	}
	return n
}

// counts returns the row counts of the tables a write may leave half-done.
func counts(tb testing.TB, db *modeltest.DB) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for _, t := range []string{"users", "brands", "brand_members", "brand_skills", "agents", "agent_skills", "agent_languages", "invitations", "api_keys", "audit_log", "sessions"} {
		out[t] = count(tb, db, t, "")
	}
	return out
}

// wantInvalid fails unless err is a *models.ValidationError naming field.
// call describes the call for the failure message.
func wantInvalid(tb testing.TB, call string, err error, field string) {
	tb.Helper()
	var ve *models.ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("%s = %v; want *models.ValidationError on %q", call, err, field)
	}
	if _, ok := ve.Map()[field]; !ok {
		tb.Fatalf("%s = ValidationError%v; want a message on %q", call, ve.Fields, field)
	}
	if !errors.Is(err, models.ErrInvalid) {
		tb.Fatalf("%s: errors.Is(err, ErrInvalid) = false; want true", call)
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(tb testing.TB, call string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s = %v; want %v", call, err, target)
	}
}

// auditEntry is one audit_log row with its detail decoded.
type auditEntry struct {
	ActorID, BrandID string
	Detail           map[string]any
}

// auditFor returns the audit entries with action about target, oldest first.
func auditFor(tb testing.TB, db *modeltest.DB, action, targetID string) []auditEntry {
	tb.Helper()
	var rows []models.AuditEntry
	err := db.Store.DB.Where("action = ? AND target_id = ?", action, targetID).Order("created_at, id").Find(&rows).Error
	if err != nil {
		tb.Fatalf("read audit_log: %v", err)
	}
	out := make([]auditEntry, len(rows))
	for i, r := range rows {
		if r.ActorID != nil {
			out[i].ActorID = *r.ActorID
		}
		if r.BrandID != nil {
			out[i].BrandID = *r.BrandID
		}
		if r.Detail != "" {
			if err := json.Unmarshal([]byte(r.Detail), &out[i].Detail); err != nil {
				tb.Fatalf("audit %s detail %q: %v", action, r.Detail, err)
			}
		}
	}
	return out
}

// mustOneAudit returns the single audit entry with action about target.
func mustOneAudit(tb testing.TB, db *modeltest.DB, action, targetID string) auditEntry {
	tb.Helper()
	es := auditFor(tb, db, action, targetID)
	if len(es) != 1 {
		tb.Fatalf("audit entries %q for %s = %d; want 1", action, targetID, len(es))
	}
	return es[0]
}
