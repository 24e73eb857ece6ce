package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestAuthenticate(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, _ := mustSignUpBrand(t, db, "Acme", "Owner@Acme.example")
		op := mustOperator(t, db)
		agent := mustApprovedAgent(t, db, op, "suspended@agents.example")
		if _, err := db.Store.SuspendAgent(ctx, op.ID, agent.ID, "fraud"); err != nil {
			t.Fatalf("SuspendAgent: %v", err)
		}

		tests := []struct {
			name, email, password string
			wantID                string // "" when ErrUnauthorized is expected
		}{
			{"OK", "owner@acme.example", testPassword, owner.ID},
			{"OKEmailCaseInsensitive", "  OWNER@acme.EXAMPLE ", testPassword, owner.ID},
			{"ErrWrongPassword", "owner@acme.example", testPassword + "x", ""},
			{"ErrEmptyPassword", "owner@acme.example", "", ""},
			{"ErrUnknownEmail", "nobody@acme.example", testPassword, ""},
			{"ErrSuspended", "suspended@agents.example", testPassword, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u, err := db.Store.Authenticate(ctx, tt.email, tt.password)
				call := "Authenticate(" + tt.email + ")"
				if tt.wantID == "" {
					wantErr(t, call, err, models.ErrUnauthorized)
					if u != nil {
						t.Errorf("%s returned user %s with the error; want nil", call, u.ID)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s = %v; want user %s", call, err, tt.wantID)
				}
				if u.ID != tt.wantID || u.Email != "owner@acme.example" {
					t.Errorf("%s = user %s <%s>; want %s <owner@acme.example>", call, u.ID, u.Email, tt.wantID)
				}
			})
		}
	})
}

func TestSessions(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, _ := mustSignUpBrand(t, db, "Acme", "owner@acme.example")

		t.Run("OK", func(t *testing.T) {
			s := mustSession(t, db, owner.ID)
			if want := db.Clock.Now().Add(time.Hour); !s.ExpiresAt.Equal(want) {
				t.Errorf("CreateSession: ExpiresAt = %v; want %v", s.ExpiresAt, want)
			}
			u, got, err := db.Store.SessionUser(ctx, s.ID)
			if err != nil {
				t.Fatalf("SessionUser(%s) = %v; want the owner", s.ID, err)
			}
			if u.ID != owner.ID || got.ID != s.ID {
				t.Errorf("SessionUser(%s) = user %s, session %s; want %s, %s", s.ID, u.ID, got.ID, owner.ID, s.ID)
			}
		})
		t.Run("ErrUnknown", func(t *testing.T) {
			_, _, err := db.Store.SessionUser(ctx, models.NewID())
			wantErr(t, "SessionUser(unknown id)", err, models.ErrUnauthorized)
		})
		t.Run("ErrRevoked", func(t *testing.T) {
			s := mustSession(t, db, owner.ID)
			other := mustSession(t, db, owner.ID)
			if err := db.Store.RevokeSession(ctx, s.ID); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
			_, _, err := db.Store.SessionUser(ctx, s.ID)
			wantErr(t, "SessionUser(revoked)", err, models.ErrUnauthorized)
			if _, _, err := db.Store.SessionUser(ctx, other.ID); err != nil {
				t.Errorf("SessionUser(other session of the same user) = %v; want it still valid", err)
			}
			if err := db.Store.RevokeSession(ctx, s.ID); err != nil {
				t.Errorf("RevokeSession twice = %v; want nil", err)
			}
		})
		t.Run("ErrExpired", func(t *testing.T) {
			s, err := db.Store.CreateSession(ctx, owner.ID, "", "", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			db.Clock.Advance(time.Minute)
			_, _, err = db.Store.SessionUser(ctx, s.ID)
			wantErr(t, "SessionUser(expired at now)", err, models.ErrUnauthorized)
		})
		t.Run("ErrUserSuspended", func(t *testing.T) {
			// A suspended account is refused even when its sessions were
			// not revoked.
			_, b := mustSignUpBrand(t, db, "Beta", "owner@beta.example")
			m, err := db.Store.Members(ctx, b.ID)
			if err != nil || len(m) != 1 {
				t.Fatalf("Members = %d, %v; want 1", len(m), err)
			}
			s := mustSession(t, db, m[0].UserID)
			if err := db.Store.DB.Exec("UPDATE users SET status = 'suspended' WHERE id = ?", m[0].UserID).Error; err != nil {
				t.Fatal(err)
			}
			_, _, err = db.Store.SessionUser(ctx, s.ID)
			wantErr(t, "SessionUser(suspended user)", err, models.ErrUnauthorized)
		})
		t.Run("ErrSuspendedAgent", func(t *testing.T) {
			op := mustOperator(t, db)
			a := mustApprovedAgent(t, db, op, "maya@agents.example")
			s1, s2 := mustSession(t, db, a.UserID), mustSession(t, db, a.UserID)
			if _, _, err := db.Store.SessionUser(ctx, s1.ID); err != nil {
				t.Fatalf("SessionUser before suspension = %v; want nil", err)
			}
			if _, err := db.Store.SuspendAgent(ctx, op.ID, a.ID, "abusive to customers"); err != nil {
				t.Fatalf("SuspendAgent: %v", err)
			}
			for _, s := range []*models.Session{s1, s2} {
				_, _, err := db.Store.SessionUser(ctx, s.ID)
				wantErr(t, "SessionUser(session of suspended agent)", err, models.ErrUnauthorized)
			}
			if n := count(t, db, "sessions", "user_id = ? AND revoked_at IS NULL", a.UserID); n != 0 {
				t.Errorf("live sessions of the suspended agent = %d; want 0", n)
			}
		})
	})
}
