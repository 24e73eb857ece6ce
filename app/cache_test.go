package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models/modeltest"
)

func TestTTLCache(t *testing.T) {
	ctx := context.Background()
	loads := 0
	load := func(_ context.Context, key string) (string, error) {
		loads++
		if key == "bad" {
			return "", errors.New("boom")
		}
		return key + "!", nil
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &ttlCache[string]{ttl: time.Second, now: func() time.Time { return now }}
	get := func(key, want string, wantLoads int) {
		t.Helper()
		got, err := c.get(ctx, key, load)
		if got != want || err != nil || loads != wantLoads {
			t.Fatalf("get(%q) = %q, %v after %d loads; want %q after %d", key, got, err, loads, want, wantLoads)
		}
	}
	get("a", "a!", 1)
	get("a", "a!", 1) // cached
	now = now.Add(999 * time.Millisecond)
	get("a", "a!", 1)
	now = now.Add(time.Millisecond)
	get("a", "a!", 2)          // expired: read again
	now = now.Add(time.Second) // expired again
	get("a", "a!", 3)
	if _, err := c.get(ctx, "bad", load); err == nil {
		t.Fatal("a failed load returned no error")
	}
	if _, err := c.get(ctx, "bad", load); err == nil || loads != 5 {
		t.Fatalf("a failed load was cached (loads %d)", loads)
	}
	c.forget("a") // a change made here: read again at once
	get("a", "a!", 6)
	get("a", "a!", 6)

	off := &ttlCache[string]{}
	loads = 0
	for i := 0; i < 3; i++ {
		if _, err := off.get(ctx, "a", load); err != nil {
			t.Fatal(err)
		}
	}
	if loads != 3 {
		t.Fatalf("with no TTL %d loads for 3 gets; want 3", loads)
	}
}

func TestTTLCacheIsBounded(t *testing.T) {
	c := &ttlCache[int]{ttl: time.Hour}
	load := func(context.Context, string) (int, error) { return 1, nil }
	for i := 0; i <= cacheMaxEntries; i++ {
		if _, err := c.get(context.Background(), string(rune('a'+i%26))+time.Duration(i).String(), load); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n > cacheMaxEntries {
		t.Fatalf("cache holds %d entries; want at most %d", n, cacheMaxEntries)
	}
}

// A skill the brand adds is accepted on escalations at once by the
// instance that added it, though the catalogue is cached.
func TestSkillCatalogueFollowsChanges(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Hour })
		esc := func(id string, skill string) int {
			t.Helper()
			body := fmt.Sprintf(`{"external_id": %q, "customer": {"name": "Ada"}, "language": "en", "skills": [%q]}`, id, skill)
			req, _ := http.NewRequest(http.MethodPost, w.ts.ts.URL+"/api/v1/escalations", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+w.key)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if code := esc("chat-1", "refunds"); code != http.StatusUnprocessableEntity {
			t.Fatalf("escalation needing an unknown skill = %d; want 422", code)
		}
		if _, err := w.ts.srv.store.AddSkill(context.Background(), "", w.brand.ID, "refunds"); err != nil {
			t.Fatal(err)
		}
		w.ts.srv.skills.forget(w.brand.ID) // what the skills page does after its change
		if code := esc("chat-2", "refunds"); code != http.StatusCreated {
			t.Fatalf("escalation needing the skill just added = %d; want 201", code)
		}
	})
}
