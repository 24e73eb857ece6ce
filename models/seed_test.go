package models_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestSeed(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		created, err := db.Store.Seed(ctx)
		if err != nil || !created {
			t.Fatalf("Seed() = %v, %v; want true, nil", created, err)
		}

		t.Run("OK", func(t *testing.T) {
			b, err := db.Store.BrandBySlug(ctx, "acme")
			if err != nil {
				t.Fatalf("BrandBySlug(acme) = %v", err)
			}
			if b.Languages != "en" || b.PayRateMinor != 450 {
				t.Errorf("acme languages, pay = %q, %d; want \"en\", 450", b.Languages, b.PayRateMinor)
			}
			skills, err := db.Store.Skills(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			var slugs []string
			for _, s := range skills {
				slugs = append(slugs, s.Slug)
			}
			if want := []string{"billing", "refunds", "shipping", "technical"}; !reflect.DeepEqual(slugs, want) {
				t.Errorf("acme skills = %q; want %q", slugs, want)
			}
			agents, err := db.Store.Agents(ctx, models.AgentApproved, 0)
			if err != nil || len(agents) != 3 {
				t.Fatalf("approved agents = %d, %v; want 3", len(agents), err)
			}
			if n := count(t, db, "agents", ""); n != 3 {
				t.Errorf("agents = %d; want 3, all approved", n)
			}
			for _, l := range models.DemoLogins {
				if _, err := db.Store.Authenticate(ctx, l.Email, l.Password); err != nil {
					t.Errorf("Authenticate(%s, demo password) = %v; want nil", l.Email, err)
				}
			}
		})

		t.Run("OKTwiceIsNoop", func(t *testing.T) {
			before := counts(t, db)
			created, err := db.Store.Seed(ctx)
			if err != nil || created {
				t.Fatalf("second Seed() = %v, %v; want false, nil", created, err)
			}
			if after := counts(t, db); !reflect.DeepEqual(before, after) {
				t.Errorf("row counts after second Seed = %v; want unchanged %v", after, before)
			}
		})
	})
}
