package models_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestApplyAsAgent(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()

		t.Run("OK", func(t *testing.T) {
			in := application("Maya@Agents.example")
			in.Languages = []string{"pt-br", "EN", "en-us", "en"}
			a, err := db.Store.ApplyAsAgent(ctx, in)
			if err != nil {
				t.Fatalf("ApplyAsAgent = %v; want nil", err)
			}
			if a.Status != models.AgentPending || a.Presence != models.PresenceOffline || a.MaxConcurrent != 2 {
				t.Errorf("agent = %s, %s, max %d; want pending, offline, max 2", a.Status, a.Presence, a.MaxConcurrent)
			}
			if a.User == nil || a.User.Email != "maya@agents.example" || a.User.Kind != models.KindAgent {
				t.Errorf("agent user = %+v; want <maya@agents.example> agent", a.User)
			}
			if got, want := a.LanguageTags(), []string{"en", "en-US", "pt-BR"}; !reflect.DeepEqual(got, want) {
				t.Errorf("languages = %q; want %q", got, want)
			}
			skills := map[string]int{}
			for _, s := range a.Skills {
				skills[s.Skill] = s.Level
			}
			if want := map[string]int{"billing-disputes": 4, "refunds": 2}; !reflect.DeepEqual(skills, want) {
				t.Errorf("skills = %v; want %v", skills, want)
			}
			byUser, err := db.Store.AgentByUser(ctx, a.UserID)
			if err != nil || byUser.ID != a.ID {
				t.Errorf("AgentByUser = %v, %v; want %s", byUser, err, a.ID)
			}
			pending, err := db.Store.Agents(ctx, models.AgentPending, 0)
			if err != nil || len(pending) != 1 || pending[0].ID != a.ID {
				t.Errorf("Agents(pending) = %d agents, %v; want just %s", len(pending), err, a.ID)
			}
		})

		t.Run("ErrEmailTaken", func(t *testing.T) {
			before := counts(t, db)
			_, err := db.Store.ApplyAsAgent(ctx, application("MAYA@agents.example"))
			wantInvalid(t, "ApplyAsAgent(taken email)", err, "email")
			if after := counts(t, db); !reflect.DeepEqual(before, after) {
				t.Errorf("row counts after refused application = %v; want %v", after, before)
			}
		})

		tests := []struct {
			name  string
			edit  func(*models.AgentApplication)
			field string
		}{
			{"ErrNoSkills", func(a *models.AgentApplication) { a.Skills = nil }, "skills"},
			{"ErrSkillLevel0", func(a *models.AgentApplication) { a.Skills = map[string]int{"billing": 0} }, "skills"},
			{"ErrSkillLevel6", func(a *models.AgentApplication) { a.Skills = map[string]int{"billing": 6} }, "skills"},
			{"ErrSkillName", func(a *models.AgentApplication) { a.Skills = map[string]int{"!!!": 3} }, "skills"},
			{"ErrMaxConcurrent0", func(a *models.AgentApplication) { a.MaxConcurrent = 0 }, "max_concurrent"},
			{"ErrMaxConcurrent4", func(a *models.AgentApplication) { a.MaxConcurrent = 4 }, "max_concurrent"},
			{"ErrLanguage", func(a *models.AgentApplication) { a.Languages = []string{"en", "english!!"} }, "languages"},
			{"ErrNoLanguage", func(a *models.AgentApplication) { a.Languages = []string{" "} }, "languages"},
			{"ErrBioTooLong", func(a *models.AgentApplication) { a.Bio = strings.Repeat("b", 1001) }, "bio"},
			{"ErrBioEmpty", func(a *models.AgentApplication) { a.Bio = "" }, "bio"},
			{"ErrNameEmpty", func(a *models.AgentApplication) { a.DisplayName = "" }, "display_name"},
			{"ErrPasswordShort", func(a *models.AgentApplication) { a.Password = "short" }, "password"},
			{"ErrEmail", func(a *models.AgentApplication) { a.Email = "maya@" }, "email"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := application("new@agents.example")
				tt.edit(&in)
				before := count(t, db, "agents", "")
				_, err := db.Store.ApplyAsAgent(ctx, in)
				wantInvalid(t, fmt.Sprintf("ApplyAsAgent(%s)", tt.name), err, tt.field)
				if after := count(t, db, "agents", ""); after != before {
					t.Errorf("agents after refused application = %d; want %d", after, before)
				}
			})
		}
	})
}

func TestDecideApplication(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		op := mustOperator(t, db)

		t.Run("OKApprove", func(t *testing.T) {
			a := mustApplyAsAgent(t, db, "approve@agents.example")
			if err := db.Store.DecideApplication(ctx, op.ID, a.ID, true, ""); err != nil {
				t.Fatalf("DecideApplication(approve) = %v", err)
			}
			got, err := db.Store.Agent(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != models.AgentApproved || got.DecidedBy == nil || *got.DecidedBy != op.ID || got.DecidedAt == nil || !got.DecidedAt.Equal(db.Clock.Now()) {
				t.Errorf("agent after approval = %s by %v at %v; want approved by %s at %v", got.Status, got.DecidedBy, got.DecidedAt, op.ID, db.Clock.Now())
			}
			if e := mustOneAudit(t, db, "agent.approved", a.ID); e.ActorID != op.ID {
				t.Errorf("audit agent.approved actor = %q; want %s", e.ActorID, op.ID)
			}
			err = db.Store.DecideApplication(ctx, op.ID, a.ID, false, "changed my mind")
			wantErr(t, "DecideApplication(reject after approve)", err, models.ErrConflict)
		})

		t.Run("OKReject", func(t *testing.T) {
			a := mustApplyAsAgent(t, db, "reject@agents.example")
			err := db.Store.DecideApplication(ctx, op.ID, a.ID, false, "  ")
			wantInvalid(t, "DecideApplication(reject without reason)", err, "reason")
			if err := db.Store.DecideApplication(ctx, op.ID, a.ID, false, "No support experience"); err != nil {
				t.Fatalf("DecideApplication(reject) = %v", err)
			}
			got, err := db.Store.Agent(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != models.AgentRejected || got.DecisionReason != "No support experience" {
				t.Errorf("agent after rejection = %s (%q); want rejected (No support experience)", got.Status, got.DecisionReason)
			}
			e := mustOneAudit(t, db, "agent.rejected", a.ID)
			if e.ActorID != op.ID || e.Detail["reason"] != "No support experience" {
				t.Errorf("audit agent.rejected = %+v; want actor %s and the reason", e, op.ID)
			}
			err = db.Store.DecideApplication(ctx, op.ID, a.ID, true, "")
			wantErr(t, "DecideApplication(approve after reject)", err, models.ErrConflict)
		})

		t.Run("ErrConflict", func(t *testing.T) {
			a := mustApprovedAgent(t, db, op, "twice@agents.example")
			err := db.Store.DecideApplication(ctx, op.ID, a.ID, true, "")
			wantErr(t, "DecideApplication(approve twice)", err, models.ErrConflict)
			if n := len(auditFor(t, db, "agent.approved", a.ID)); n != 1 {
				t.Errorf("audit agent.approved entries = %d; want 1", n)
			}
		})

		t.Run("ErrNotFound", func(t *testing.T) {
			err := db.Store.DecideApplication(ctx, op.ID, models.NewID(), true, "")
			wantErr(t, "DecideApplication(unknown agent)", err, models.ErrNotFound)
		})
	})
}

func TestSetPresence(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		op := mustOperator(t, db)
		pending := mustApplyAsAgent(t, db, "pending@agents.example")
		rejected := mustApplyAsAgent(t, db, "rejected@agents.example")
		if err := db.Store.DecideApplication(ctx, op.ID, rejected.ID, false, "no"); err != nil {
			t.Fatal(err)
		}
		suspended := mustApprovedAgent(t, db, op, "suspended@agents.example")
		if _, err := db.Store.SuspendAgent(ctx, op.ID, suspended.ID, "fraud"); err != nil {
			t.Fatal(err)
		}
		approved := mustApprovedAgent(t, db, op, "approved@agents.example")

		t.Run("OK", func(t *testing.T) {
			for _, p := range []string{models.PresenceOnline, models.PresenceAway, models.PresenceOffline, models.PresenceOnline} {
				if err := db.Store.SetPresence(ctx, approved.ID, p); err != nil {
					t.Fatalf("SetPresence(approved, %s) = %v; want nil", p, err)
				}
			}
			got, err := db.Store.Agent(ctx, approved.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Presence != models.PresenceOnline || got.LastSeenAt == nil || !got.LastSeenAt.Equal(db.Clock.Now()) {
				t.Errorf("agent presence = %s, last seen %v; want online at %v", got.Presence, got.LastSeenAt, db.Clock.Now())
			}
		})
		for _, tc := range []struct {
			name string
			a    *models.Agent
		}{{"ErrForbiddenPending", pending}, {"ErrForbiddenRejected", rejected}, {"ErrForbiddenSuspended", suspended}} {
			t.Run(tc.name, func(t *testing.T) {
				for _, p := range []string{models.PresenceOnline, models.PresenceAway} {
					err := db.Store.SetPresence(ctx, tc.a.ID, p)
					wantErr(t, fmt.Sprintf("SetPresence(%s agent, %s)", tc.name[len("ErrForbidden"):], p), err, models.ErrForbidden)
				}
				got, err := db.Store.Agent(ctx, tc.a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Presence != models.PresenceOffline {
					t.Errorf("presence after refusal = %s; want offline", got.Presence)
				}
				if err := db.Store.SetPresence(ctx, tc.a.ID, models.PresenceOffline); err != nil {
					t.Errorf("SetPresence(offline) = %v; want nil for anyone", err)
				}
			})
		}
		t.Run("ErrInvalid", func(t *testing.T) {
			wantInvalid(t, "SetPresence(busy)", db.Store.SetPresence(ctx, approved.ID, "busy"), "presence")
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			wantErr(t, "SetPresence(unknown)", db.Store.SetPresence(ctx, models.NewID(), models.PresenceOnline), models.ErrNotFound)
		})
	})
}

func TestSuspendAgent(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		op := mustOperator(t, db)
		a := mustApprovedAgent(t, db, op, "maya@agents.example")
		bystander := mustApprovedAgent(t, db, op, "tom@agents.example")
		if err := db.Store.SetPresence(ctx, a.ID, models.PresenceOnline); err != nil {
			t.Fatal(err)
		}
		sess := mustSession(t, db, a.UserID)
		other := mustSession(t, db, bystander.UserID)

		t.Run("ErrReasonRequired", func(t *testing.T) {
			_, err := db.Store.SuspendAgent(ctx, op.ID, a.ID, "")
			wantInvalid(t, "SuspendAgent(no reason)", err, "reason")
		})
		t.Run("OK", func(t *testing.T) {
			if _, err := db.Store.SuspendAgent(ctx, op.ID, a.ID, "abusive to customers"); err != nil {
				t.Fatalf("SuspendAgent = %v", err)
			}
			got, err := db.Store.Agent(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != models.AgentSuspended || got.Presence != models.PresenceOffline || got.User.Status != "suspended" {
				t.Errorf("after suspension: agent %s, presence %s, user %s; want suspended, offline, suspended", got.Status, got.Presence, got.User.Status)
			}
			_, _, err = db.Store.SessionUser(ctx, sess.ID)
			wantErr(t, "SessionUser(suspended agent's session)", err, models.ErrUnauthorized)
			if _, _, err := db.Store.SessionUser(ctx, other.ID); err != nil {
				t.Errorf("SessionUser(another agent) = %v; want still valid", err)
			}
			_, err = db.Store.Authenticate(ctx, "maya@agents.example", testPassword)
			wantErr(t, "Authenticate(suspended agent)", err, models.ErrUnauthorized)
			e := mustOneAudit(t, db, "agent.suspended", a.ID)
			if e.ActorID != op.ID || e.Detail["reason"] != "abusive to customers" {
				t.Errorf("audit agent.suspended = %+v; want actor %s and the reason", e, op.ID)
			}
		})
		t.Run("ErrConflict", func(t *testing.T) {
			_, err := db.Store.SuspendAgent(ctx, op.ID, a.ID, "again")
			wantErr(t, "SuspendAgent twice", err, models.ErrConflict)
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			_, err := db.Store.SuspendAgent(ctx, op.ID, models.NewID(), "who")
			wantErr(t, "SuspendAgent(unknown)", err, models.ErrNotFound)
		})
	})
}
