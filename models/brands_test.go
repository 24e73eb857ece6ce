package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestSignUpBrand(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()

		t.Run("OK", func(t *testing.T) {
			u, b, err := db.Store.SignUpBrand(ctx, models.BrandSignup{Name: "  Acme Support! ", Email: "Owner@Acme.example", Password: testPassword})
			if err != nil {
				t.Fatalf("SignUpBrand = %v; want nil", err)
			}
			if b.Slug != "acme-support" || b.Name != "Acme Support!" {
				t.Errorf("brand name, slug = %q, %q; want %q, %q", b.Name, b.Slug, "Acme Support!", "acme-support")
			}
			if b.Currency != "USD" || b.OfferTimeoutSeconds != 20 || b.TimeZone != "UTC" || b.Languages != "en" {
				t.Errorf("brand defaults = %s, %ds, %s, %q; want USD, 20s, UTC, \"en\"", b.Currency, b.OfferTimeoutSeconds, b.TimeZone, b.Languages)
			}
			if u.Email != "owner@acme.example" || u.Kind != models.KindBrand || u.Status != "active" {
				t.Errorf("owner = <%s> %s %s; want <owner@acme.example> brand active", u.Email, u.Kind, u.Status)
			}
			m, err := db.Store.Membership(ctx, b.ID, u.ID)
			if err != nil {
				t.Fatalf("Membership(owner) = %v", err)
			}
			if m.Role != models.RoleOwner || m.Brand == nil || m.Brand.ID != b.ID {
				t.Errorf("Membership(owner) = role %q, brand %v; want owner of %s", m.Role, m.Brand, b.ID)
			}
			e := mustOneAudit(t, db, "brand.created", b.ID)
			if e.ActorID != u.ID || e.BrandID != b.ID || e.Detail["slug"] != "acme-support" {
				t.Errorf("audit brand.created = %+v; want actor %s, brand %s, slug acme-support", e, u.ID, b.ID)
			}
		})

		t.Run("OKSlugTaken", func(t *testing.T) {
			var slugs []string
			for i, email := range []string{"a@acme.example", "b@acme.example", "c@acme.example"} {
				_, b, err := db.Store.SignUpBrand(ctx, models.BrandSignup{Name: "Acme", Email: email, Password: testPassword})
				if err != nil {
					t.Fatalf("SignUpBrand(Acme #%d) = %v", i+1, err)
				}
				slugs = append(slugs, b.Slug)
			}
			if want := []string{"acme", "acme-2", "acme-3"}; !reflect.DeepEqual(slugs, want) {
				t.Errorf("slugs of three brands named Acme = %q; want %q", slugs, want)
			}
		})

		t.Run("ErrEmailTaken", func(t *testing.T) {
			mustSignUpBrand(t, db, "Taken", "taken@example.com")
			before := counts(t, db)
			_, _, err := db.Store.SignUpBrand(ctx, models.BrandSignup{Name: "Copycat", Email: "TAKEN@example.com", Password: testPassword})
			wantInvalid(t, "SignUpBrand(taken email)", err, "email")
			if after := counts(t, db); !reflect.DeepEqual(before, after) {
				t.Errorf("row counts after a refused sign-up = %v; want unchanged %v", after, before)
			}
			if n := count(t, db, "brands", "name = ?", "Copycat"); n != 0 {
				t.Errorf("brands named Copycat = %d; want 0", n)
			}
		})

		long := strings.Repeat("a", 101)
		tests := []struct {
			name  string
			in    models.BrandSignup
			field string
		}{
			{"ErrNameEmpty", models.BrandSignup{Name: " ", Email: "x@example.com", Password: testPassword}, "name"},
			{"ErrNameTooLong", models.BrandSignup{Name: long, Email: "x@example.com", Password: testPassword}, "name"},
			{"ErrNameNoLetters", models.BrandSignup{Name: "!!!", Email: "x@example.com", Password: testPassword}, "name"},
			{"ErrEmailEmpty", models.BrandSignup{Name: "X", Email: "", Password: testPassword}, "email"},
			{"ErrEmailTooLong", models.BrandSignup{Name: "X", Email: strings.Repeat("a", 250) + "@example.com", Password: testPassword}, "email"},
			{"ErrEmailMalformed", models.BrandSignup{Name: "X", Email: "not-an-email", Password: testPassword}, "email"},
			{"ErrEmailWithName", models.BrandSignup{Name: "X", Email: "Bob <bob@example.com>", Password: testPassword}, "email"},
			{"ErrEmailNoDot", models.BrandSignup{Name: "X", Email: "bob@localhost", Password: testPassword}, "email"},
			{"ErrPasswordEmpty", models.BrandSignup{Name: "X", Email: "x@example.com", Password: ""}, "password"},
			{"ErrPasswordShort", models.BrandSignup{Name: "X", Email: "x@example.com", Password: "123456789"}, "password"},
			{"ErrPasswordTooLong", models.BrandSignup{Name: "X", Email: "x@example.com", Password: strings.Repeat("p", 73)}, "password"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := count(t, db, "brands", "")
				_, _, err := db.Store.SignUpBrand(ctx, tt.in)
				wantInvalid(t, fmt.Sprintf("SignUpBrand(%q, %q, %d-byte password)", truncate(tt.in.Name), truncate(tt.in.Email), len(tt.in.Password)), err, tt.field)
				if after := count(t, db, "brands", ""); after != before {
					t.Errorf("brands after a refused sign-up = %d; want %d", after, before)
				}
			})
		}
	})
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func TestUpdateBrandSettings(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, b := mustSignUpBrand(t, db, "Acme", "owner@acme.example")

		t.Run("OK", func(t *testing.T) {
			in := models.SettingsOf(b)
			in.Name = "Acme Inc"
			in.Languages = []string{"en", "pt-br", "EN"}
			in.Currency = "eur"
			in.OfferTimeoutSeconds = 30
			in.MinRating = 4.2
			got, err := db.Store.UpdateBrandSettings(ctx, owner.ID, b.ID, in)
			if err != nil {
				t.Fatalf("UpdateBrandSettings = %v; want nil", err)
			}
			if got.Name != "Acme Inc" || got.Languages != "en,pt-BR" || got.Currency != "EUR" || got.OfferTimeoutSeconds != 30 || got.MinRating != 4.2 {
				t.Errorf("brand after update = %q %q %s %ds %.1f; want \"Acme Inc\" \"en,pt-BR\" EUR 30s 4.2",
					got.Name, got.Languages, got.Currency, got.OfferTimeoutSeconds, got.MinRating)
			}
			if got.Slug != "acme" {
				t.Errorf("slug after rename = %q; want it kept as acme", got.Slug)
			}
			e := mustOneAudit(t, db, "brand.settings_changed", b.ID)
			var keys []string
			for k := range e.Detail {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if want := []string{"currency", "languages", "min_rating", "name", "offer_timeout_seconds"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("audit detail fields = %q; want %q", keys, want)
			}
			if e.ActorID != owner.ID || e.BrandID != b.ID {
				t.Errorf("audit actor, brand = %s, %s; want %s, %s", e.ActorID, e.BrandID, owner.ID, b.ID)
			}
			if d, want := fmt.Sprint(e.Detail["offer_timeout_seconds"]), "[20 30]"; d != want {
				t.Errorf("audit offer_timeout_seconds = %s; want %s", d, want)
			}
		})

		t.Run("OKUnchangedWritesNoAudit", func(t *testing.T) {
			cur, err := db.Store.Brand(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			before := count(t, db, "audit_log", "action = 'brand.settings_changed'")
			if _, err := db.Store.UpdateBrandSettings(ctx, owner.ID, b.ID, models.SettingsOf(cur)); err != nil {
				t.Fatalf("UpdateBrandSettings(same) = %v", err)
			}
			if after := count(t, db, "audit_log", "action = 'brand.settings_changed'"); after != before {
				t.Errorf("audit entries after a no-op save = %d; want %d", after, before)
			}
		})

		invalid := []struct {
			name  string
			edit  func(*models.BrandSettings)
			field string
		}{
			{"ErrOfferTimeoutTooShort", func(s *models.BrandSettings) { s.OfferTimeoutSeconds = 4 }, "offer_timeout_seconds"},
			{"ErrOfferTimeoutTooLong", func(s *models.BrandSettings) { s.OfferTimeoutSeconds = 121 }, "offer_timeout_seconds"},
			{"ErrMaxWaitTooShort", func(s *models.BrandSettings) { s.MaxWaitSeconds = 29 }, "max_wait_seconds"},
			{"ErrMaxWaitTooLong", func(s *models.BrandSettings) { s.MaxWaitSeconds = 86401 }, "max_wait_seconds"},
			{"ErrMinRatingTooHigh", func(s *models.BrandSettings) { s.MinRating = 5.1 }, "min_rating"},
			{"ErrMinRatingNegative", func(s *models.BrandSettings) { s.MinRating = -0.1 }, "min_rating"},
			{"ErrMinQAScoreTooHigh", func(s *models.BrandSettings) { s.MinQAScore = 101 }, "min_qa_score"},
			{"ErrLanguage", func(s *models.BrandSettings) { s.Languages = []string{"en", "english!!"} }, "languages"},
			{"ErrNoLanguage", func(s *models.BrandSettings) { s.Languages = nil }, "languages"},
			{"ErrTimeZone", func(s *models.BrandSettings) { s.TimeZone = "Mars/Olympus_Mons" }, "time_zone"},
			{"ErrTimeZoneLocal", func(s *models.BrandSettings) { s.TimeZone = "Local" }, "time_zone"},
			{"ErrCurrency", func(s *models.BrandSettings) { s.Currency = "XYZ" }, "currency"},
			{"ErrPayRateNegative", func(s *models.BrandSettings) { s.PayRateMinor = -1 }, "pay_rate"},
			{"ErrNameEmpty", func(s *models.BrandSettings) { s.Name = "" }, "name"},
		}
		for _, tt := range invalid {
			t.Run(tt.name, func(t *testing.T) {
				before, err := db.Store.Brand(ctx, b.ID)
				if err != nil {
					t.Fatal(err)
				}
				in := models.SettingsOf(before)
				in.MaxWaitSeconds = 600 // one valid change alongside the invalid one
				tt.edit(&in)
				_, err = db.Store.UpdateBrandSettings(ctx, owner.ID, b.ID, in)
				wantInvalid(t, fmt.Sprintf("UpdateBrandSettings(%+v)", in), err, tt.field)
				after, err := db.Store.Brand(ctx, b.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(models.SettingsOf(after), models.SettingsOf(before)) || !after.UpdatedAt.Equal(before.UpdatedAt) {
					t.Errorf("brand after refused update = %+v; want unchanged %+v", models.SettingsOf(after), models.SettingsOf(before))
				}
			})
		}

		t.Run("ErrNotFound", func(t *testing.T) {
			in := models.SettingsOf(b)
			in.Name = "Ghost"
			_, err := db.Store.UpdateBrandSettings(ctx, owner.ID, models.NewID(), in)
			wantErr(t, "UpdateBrandSettings(unknown brand)", err, models.ErrNotFound)
		})

		t.Run("ErrCurrencyLocked", func(t *testing.T) {
			_, c := mustSignUpBrand(t, db, "Coin", "owner@coin.example")
			if err := db.Store.DB.Exec("UPDATE brands SET money_recorded_at = ? WHERE id = ?", db.Clock.Now(), c.ID).Error; err != nil {
				t.Fatal(err)
			}
			in := models.SettingsOf(c)
			in.Currency = "EUR"
			_, err := db.Store.UpdateBrandSettings(ctx, owner.ID, c.ID, in)
			wantInvalid(t, "UpdateBrandSettings(USD→EUR after money recorded)", err, "currency")
			got, err := db.Store.Brand(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Currency != "USD" {
				t.Errorf("currency after refused change = %s; want USD", got.Currency)
			}
			// Other settings may still change.
			in.Currency, in.OfferTimeoutSeconds = "usd", 45
			if _, err := db.Store.UpdateBrandSettings(ctx, owner.ID, c.ID, in); err != nil {
				t.Errorf("UpdateBrandSettings(same currency) = %v; want nil", err)
			}
		})
	})
}

func TestMembership(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ownerA, a := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		_, b := mustSignUpBrand(t, db, "Beta", "owner@beta.example")

		t.Run("OK", func(t *testing.T) {
			m, err := db.Store.Membership(ctx, a.ID, ownerA.ID)
			if err != nil || m.Role != models.RoleOwner {
				t.Fatalf("Membership(own brand) = %+v, %v; want owner", m, err)
			}
			ms, err := db.Store.Memberships(ctx, ownerA.ID)
			if err != nil || len(ms) != 1 || ms[0].Brand == nil || ms[0].Brand.ID != a.ID {
				t.Errorf("Memberships(ownerA) = %+v, %v; want only Acme", ms, err)
			}
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			m, err := db.Store.Membership(ctx, b.ID, ownerA.ID)
			wantErr(t, "Membership(other brand)", err, models.ErrNotFound)
			if m != nil {
				t.Errorf("Membership(other brand) returned %+v with the error; want nil", m)
			}
		})
	})
}

func TestSkills(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ownerA, a := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		ownerB, b := mustSignUpBrand(t, db, "Beta", "owner@beta.example")

		sk, err := db.Store.AddSkill(ctx, ownerA.ID, a.ID, "  Billing Disputes ")
		if err != nil {
			t.Fatalf("AddSkill = %v", err)
		}
		t.Run("OK", func(t *testing.T) {
			if sk.Slug != "billing-disputes" || sk.Name != "Billing Disputes" {
				t.Errorf("AddSkill = %q (%q); want billing-disputes (Billing Disputes)", sk.Slug, sk.Name)
			}
			mustOneAudit(t, db, "brand.skill_added", sk.ID)
			// The same slug in another brand's catalogue is fine.
			if _, err := db.Store.AddSkill(ctx, ownerB.ID, b.ID, "Billing Disputes"); err != nil {
				t.Errorf("AddSkill(same name, other brand) = %v; want nil", err)
			}
		})
		t.Run("ErrDuplicate", func(t *testing.T) {
			for _, name := range []string{"billing disputes", "BILLING-DISPUTES!"} {
				_, err := db.Store.AddSkill(ctx, ownerA.ID, a.ID, name)
				wantInvalid(t, fmt.Sprintf("AddSkill(%q) again", name), err, "skill")
			}
			if n := count(t, db, "brand_skills", "brand_id = ?", a.ID); n != 1 {
				t.Errorf("skills after refused duplicates = %d; want 1", n)
			}
		})
		t.Run("ErrName", func(t *testing.T) {
			for _, name := range []string{"", "???", strings.Repeat("s", 61)} {
				_, err := db.Store.AddSkill(ctx, ownerA.ID, a.ID, name)
				wantInvalid(t, fmt.Sprintf("AddSkill(%q)", truncate(name)), err, "skill")
			}
		})
		t.Run("ErrRemoveOtherBrands", func(t *testing.T) {
			err := db.Store.RemoveSkill(ctx, ownerB.ID, b.ID, sk.ID)
			wantErr(t, "RemoveSkill(other brand's skill)", err, models.ErrNotFound)
			if n := count(t, db, "brand_skills", "id = ?", sk.ID); n != 1 {
				t.Errorf("skill rows after refused removal = %d; want 1", n)
			}
		})
		t.Run("OKRemove", func(t *testing.T) {
			if err := db.Store.RemoveSkill(ctx, ownerA.ID, a.ID, sk.ID); err != nil {
				t.Fatalf("RemoveSkill = %v", err)
			}
			list, err := db.Store.Skills(ctx, a.ID)
			if err != nil || len(list) != 0 {
				t.Errorf("Skills after removal = %v, %v; want none", list, err)
			}
			mustOneAudit(t, db, "brand.skill_removed", sk.ID)
		})
	})
}

func TestAPIKeys(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ownerA, a := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		ownerB, b := mustSignUpBrand(t, db, "Beta", "owner@beta.example")

		key, k, err := db.Store.CreateAPIKey(ctx, ownerA.ID, a.ID, "support bot")
		if err != nil {
			t.Fatalf("CreateAPIKey = %v", err)
		}

		t.Run("OK", func(t *testing.T) {
			if !strings.HasPrefix(key, models.APIKeyPrefix) || len(key) < 40 {
				t.Errorf("CreateAPIKey = %q; want hk_ and at least 40 characters", key)
			}
			sum := sha256.Sum256([]byte(key))
			var stored models.APIKey
			if err := db.Store.DB.Where("id = ?", k.ID).Take(&stored).Error; err != nil {
				t.Fatal(err)
			}
			if want := hex.EncodeToString(sum[:]); stored.Digest != want {
				t.Errorf("stored digest = %q; want SHA-256 hex %q", stored.Digest, want)
			}
			if !strings.HasPrefix(key, stored.Prefix) {
				t.Errorf("stored prefix %q is not the start of the key", stored.Prefix)
			}
			got, gk, err := db.Store.BrandByAPIKey(ctx, key)
			if err != nil || got.ID != a.ID || gk.ID != k.ID {
				t.Fatalf("BrandByAPIKey = %v, %v; want brand %s key %s", got, err, a.ID, k.ID)
			}
			mustOneAudit(t, db, "brand.api_key_created", k.ID)
		})

		t.Run("OKSecretNotStored", func(t *testing.T) {
			// Nothing in api_keys holds the key, nor the secret beyond the
			// displayed prefix.
			secret := key[len(k.Prefix):]
			rows, err := db.Store.DB.Raw("SELECT * FROM api_keys").Rows()
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			n := 0
			for rows.Next() {
				n++
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if s := fmt.Sprintf("%s", v); strings.Contains(s, secret) {
						t.Errorf("api_keys.%s = %q holds the key's secret", cols[i], s)
					}
				}
			}
			if n == 0 {
				t.Fatal("api_keys is empty; want the created key")
			}
		})

		t.Run("ErrUnknownKey", func(t *testing.T) {
			for _, bad := range []string{"", "hk_", "hk_" + strings.Repeat("x", 43), "sk_" + key[3:], key + "x", strings.ToUpper(key)} {
				_, _, err := db.Store.BrandByAPIKey(ctx, bad)
				wantErr(t, fmt.Sprintf("BrandByAPIKey(%q)", truncate(bad)), err, models.ErrUnauthorized)
			}
		})

		t.Run("ErrRevokeOtherBrands", func(t *testing.T) {
			err := db.Store.RevokeAPIKey(ctx, ownerB.ID, b.ID, k.ID)
			wantErr(t, "RevokeAPIKey(other brand's key)", err, models.ErrNotFound)
			if _, _, err := db.Store.BrandByAPIKey(ctx, key); err != nil {
				t.Errorf("BrandByAPIKey after refused revoke = %v; want still valid", err)
			}
		})

		t.Run("ErrRevoked", func(t *testing.T) {
			if err := db.Store.RevokeAPIKey(ctx, ownerA.ID, a.ID, k.ID); err != nil {
				t.Fatalf("RevokeAPIKey = %v", err)
			}
			_, _, err := db.Store.BrandByAPIKey(ctx, key)
			wantErr(t, "BrandByAPIKey(revoked)", err, models.ErrUnauthorized)
			if err := db.Store.RevokeAPIKey(ctx, ownerA.ID, a.ID, k.ID); err != nil {
				t.Errorf("RevokeAPIKey twice = %v; want nil", err)
			}
			mustOneAudit(t, db, "brand.api_key_revoked", k.ID)
		})
	})
}

func TestInvitations(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, a := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		invite := func(tb testing.TB, email, role string) *models.Invitation {
			tb.Helper()
			inv, err := db.Store.CreateInvitation(ctx, owner.ID, a.ID, email, role)
			if err != nil {
				tb.Fatalf("CreateInvitation(%q, %q) = %v", email, role, err)
			}
			return inv
		}

		t.Run("OK", func(t *testing.T) {
			inv := invite(t, "Rita@Acme.example", models.RoleReviewer)
			if inv.Email != "rita@acme.example" || inv.State(db.Clock.Now()) != "pending" {
				t.Errorf("CreateInvitation = <%s> %s; want <rita@acme.example> pending", inv.Email, inv.State(db.Clock.Now()))
			}
			u, err := db.Store.AcceptInvitation(ctx, inv.ID, "Rita", testPassword)
			if err != nil {
				t.Fatalf("AcceptInvitation(new person) = %v", err)
			}
			if u.Email != "rita@acme.example" || u.Kind != models.KindBrand {
				t.Errorf("AcceptInvitation made <%s> %s; want <rita@acme.example> brand", u.Email, u.Kind)
			}
			m, err := db.Store.Membership(ctx, a.ID, u.ID)
			if err != nil || m.Role != models.RoleReviewer {
				t.Fatalf("Membership(invitee) = %+v, %v; want reviewer", m, err)
			}
			if _, err := db.Store.Authenticate(ctx, "rita@acme.example", testPassword); err != nil {
				t.Errorf("Authenticate(invitee) = %v; want nil", err)
			}
			mustOneAudit(t, db, "brand.teammate_joined", u.ID)

			_, err = db.Store.AcceptInvitation(ctx, inv.ID, "Rita", testPassword)
			wantInvalid(t, "AcceptInvitation twice", err, "invitation")
		})

		t.Run("OKExistingBrandAccount", func(t *testing.T) {
			other, _ := mustSignUpBrand(t, db, "Beta", "boss@beta.example")
			inv := invite(t, "boss@beta.example", models.RoleOwner)
			_, err := db.Store.AcceptInvitation(ctx, inv.ID, "", "wrong-password")
			wantInvalid(t, "AcceptInvitation(existing account, wrong password)", err, "password")
			if _, err := db.Store.Membership(ctx, a.ID, other.ID); err == nil {
				t.Fatal("membership created despite the wrong password")
			}
			u, err := db.Store.AcceptInvitation(ctx, inv.ID, "", testPassword)
			if err != nil || u.ID != other.ID {
				t.Fatalf("AcceptInvitation(existing account) = %v, %v; want user %s", u, err, other.ID)
			}
		})

		t.Run("ErrAlreadyOnTeam", func(t *testing.T) {
			_, err := db.Store.CreateInvitation(ctx, owner.ID, a.ID, "owner@acme.example", models.RoleOwner)
			wantInvalid(t, "CreateInvitation(current member)", err, "email")
		})

		t.Run("ErrInvalidInput", func(t *testing.T) {
			_, err := db.Store.CreateInvitation(ctx, owner.ID, a.ID, "x@acme.example", "admin")
			wantInvalid(t, "CreateInvitation(role admin)", err, "role")
			_, err = db.Store.CreateInvitation(ctx, owner.ID, a.ID, "nope", models.RoleOwner)
			wantInvalid(t, "CreateInvitation(bad email)", err, "email")
			inv := invite(t, "short@acme.example", models.RoleReviewer)
			_, err = db.Store.AcceptInvitation(ctx, inv.ID, "Shorty", "short")
			wantInvalid(t, "AcceptInvitation(short password)", err, "password")
			_, err = db.Store.AcceptInvitation(ctx, inv.ID, "", testPassword)
			wantInvalid(t, "AcceptInvitation(no name)", err, "display_name")
			if n := count(t, db, "users", "email = ?", "short@acme.example"); n != 0 {
				t.Errorf("users after refused accepts = %d; want 0", n)
			}
		})

		t.Run("ErrNotFound", func(t *testing.T) {
			_, err := db.Store.AcceptInvitation(ctx, models.NewID(), "X", testPassword)
			wantErr(t, "AcceptInvitation(unknown)", err, models.ErrNotFound)
		})

		t.Run("ErrRevoked", func(t *testing.T) {
			inv := invite(t, "revoked@acme.example", models.RoleReviewer)
			if err := db.Store.RevokeInvitation(ctx, owner.ID, a.ID, inv.ID); err != nil {
				t.Fatalf("RevokeInvitation = %v", err)
			}
			_, err := db.Store.AcceptInvitation(ctx, inv.ID, "Rev", testPassword)
			wantInvalid(t, "AcceptInvitation(revoked)", err, "invitation")
			wantErr(t, "RevokeInvitation twice", db.Store.RevokeInvitation(ctx, owner.ID, a.ID, inv.ID), models.ErrNotFound)
		})

		t.Run("ErrRevokeOtherBrands", func(t *testing.T) {
			ownerC, c := mustSignUpBrand(t, db, "Gamma", "owner@gamma.example")
			inv := invite(t, "other@acme.example", models.RoleReviewer)
			err := db.Store.RevokeInvitation(ctx, ownerC.ID, c.ID, inv.ID)
			wantErr(t, "RevokeInvitation(other brand's invitation)", err, models.ErrNotFound)
		})

		// Last: it moves the clock.
		t.Run("ErrExpired", func(t *testing.T) {
			inv := invite(t, "late@acme.example", models.RoleReviewer)
			db.Clock.Advance(8 * 24 * time.Hour)
			_, err := db.Store.AcceptInvitation(ctx, inv.ID, "Late", testPassword)
			wantInvalid(t, "AcceptInvitation(8 days later)", err, "invitation")
			if n := count(t, db, "users", "email = ?", "late@acme.example"); n != 0 {
				t.Errorf("users after expired accept = %d; want 0", n)
			}
		})
	})
}

// TestAcceptInvitationConcurrently: twelve clicks on one invitation make
// exactly one teammate, on PostgreSQL and on SQLite (IMMEDIATE transactions).
func TestAcceptInvitationConcurrently(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, a := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		existing, _ := mustSignUpBrand(t, db, "Beta", "boss@beta.example")
		for _, tc := range []struct{ name, email string }{
			{"OKNewPerson", "rita@acme.example"},
			{"OKExistingAccount", existing.Email},
		} {
			t.Run(tc.name, func(t *testing.T) {
				inv, err := db.Store.CreateInvitation(ctx, owner.ID, a.ID, tc.email, models.RoleReviewer)
				if err != nil {
					t.Fatal(err)
				}
				const n = 12
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, errs[i] = db.Store.AcceptInvitation(ctx, inv.ID, "Rita", testPassword)
					}()
				}
				close(start)
				wg.Wait()
				ok := 0
				for i, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, models.ErrInvalid):
						t.Errorf("AcceptInvitation #%d = %v; want success or a ValidationError", i, err)
					}
				}
				if ok != 1 {
					t.Errorf("successful concurrent AcceptInvitation = %d of %d; want exactly 1 (errors: %v)", ok, n, errs)
				}
				if got := count(t, db, "brand_members", "brand_id = ? AND user_id IN (SELECT id FROM users WHERE email = ?)", a.ID, tc.email); got != 1 {
					t.Errorf("memberships for %s = %d; want 1", tc.email, got)
				}
				if got := count(t, db, "users", "email = ?", tc.email); got != 1 {
					t.Errorf("users with %s = %d; want 1", tc.email, got)
				}
			})
		}
	})
}

// TestSignUpBrandConcurrently: sign-ups racing for one slug each get the
// next free one instead of a duplicate-key error.
func TestSignUpBrandConcurrently(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		const n = 6
		slugs := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, b, err := db.Store.SignUpBrand(context.Background(), models.BrandSignup{Name: "Acme", Email: fmt.Sprintf("owner%d@acme.example", i), Password: testPassword})
				errs[i] = err
				if err == nil {
					slugs[i] = b.Slug
				}
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent SignUpBrand(Acme) #%d = %v; want nil", i, err)
			}
		}
		sort.Strings(slugs)
		if want := []string{"acme", "acme-2", "acme-3", "acme-4", "acme-5", "acme-6"}; !reflect.DeepEqual(slugs, want) {
			t.Errorf("slugs of concurrent sign-ups = %q; want %q", slugs, want)
		}
	})
}
