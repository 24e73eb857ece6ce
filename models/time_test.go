package models_test

import (
	"context"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/Los_Angeles without the system's zoneinfo

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestTimeInLosAngeles runs with the process's local zone set to
// America/Los_Angeles (what TZ=America/Los_Angeles does): anything stored
// in local time instead of UTC would break expiry on SQLite, which compares
// times as text. It must not run in parallel with other tests, since it
// changes time.Local.
func TestTimeInLosAngeles(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	saved := time.Local
	time.Local = la
	t.Cleanup(func() { time.Local = saved })
	if _, off := time.Now().Zone(); off == 0 {
		t.Fatalf("time.Now() zone offset = 0; want Los Angeles")
	}

	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		owner, _ := mustSignUpBrand(t, db, "Acme", "owner@acme.example")
		start := db.Clock.Now()
		s, err := db.Store.CreateSession(ctx, owner.ID, "", "", time.Hour)
		if err != nil {
			t.Fatalf("CreateSession: %v", err)
		}

		t.Run("OKBeforeExpiry", func(t *testing.T) {
			db.Clock.Advance(59 * time.Minute)
			if _, _, err := db.Store.SessionUser(ctx, s.ID); err != nil {
				t.Errorf("SessionUser after 59m of 1h = %v; want valid", err)
			}
		})
		t.Run("ErrExpired", func(t *testing.T) {
			db.Clock.Advance(2 * time.Minute)
			_, _, err := db.Store.SessionUser(ctx, s.ID)
			wantErr(t, "SessionUser after 61m of 1h", err, models.ErrUnauthorized)
		})
		t.Run("OKStoredInUTC", func(t *testing.T) {
			var got models.Session
			if err := db.Store.DB.Where("id = ?", s.ID).Take(&got).Error; err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(start) || !got.ExpiresAt.Equal(start.Add(time.Hour)) {
				t.Errorf("stored session times = %v, %v; want %v, %v", got.CreatedAt, got.ExpiresAt, start, start.Add(time.Hour))
			}
			if db.Name != "sqlite" {
				// timestamptz is an instant; pgx hands it back in time.Local.
				return
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Errorf("created_at read back as %v (zone %q); want UTC", got.CreatedAt, got.CreatedAt.Location())
			}
			var raw string
			if err := db.Store.DB.Raw("SELECT CAST(created_at AS TEXT) FROM sessions WHERE id = ?", s.ID).Scan(&raw).Error; err != nil {
				t.Fatal(err)
			}
			if want := start.Format("2006-01-02 15:04:05"); !strings.HasPrefix(raw, want) || !strings.HasSuffix(raw, "+00:00") {
				t.Errorf("created_at stored as %q; want %s…+00:00 (UTC)", raw, want)
			}
		})
	})
}
