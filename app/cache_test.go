package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/models"
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

// A skill the brand adds on its skills page is accepted on escalations at
// once by the instance that added it, though the catalogue is cached.
func TestSkillCatalogueFollowsChanges(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Hour })
		esc := func(id string, skill string) int {
			t.Helper()
			res := w.postEscalation(t, fmt.Sprintf(`{"external_id": %q, "customer": {"name": "Ada"}, "language": "en", "skills": [%q]}`, id, skill))
			res.Body.Close()
			return res.StatusCode
		}
		if code := esc("chat-1", "refunds"); code != http.StatusUnprocessableEntity {
			t.Fatalf("escalation needing an unknown skill = %d; want 422", code)
		}
		owner := w.ts.client()
		owner.login("owner@acme.test", testPassword)
		res, body := owner.post("/brand/"+w.brand.ID+"/skills", formValues("skill", "Refunds"))
		formRedirect(t, "POST skills", res, body)
		if code := esc("chat-2", "refunds"); code != http.StatusCreated {
			t.Fatalf("escalation needing the skill just added = %d; want 201", code)
		}
	})
}

// The head count behind wait estimates is cached per kind of
// conversation: another language or another skill is counted afresh, not
// answered from the cache.
func TestHeadcountsPerKindOfConversation(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Hour })
		ctx := context.Background()
		owner := w.ts.client()
		owner.login("owner@acme.test", testPassword)
		res, body := owner.post("/brand/"+w.brand.ID+"/skills", formValues("skill", "Refunds"))
		formRedirect(t, "POST skills", res, body)
		for _, a := range []*models.Agent{w.maya, w.tom} {
			if err := db.Store.SetPresence(ctx, a.ID, models.PresenceOnline); err != nil {
				t.Fatal(err)
			}
		}
		eligible := func(id, lang, skill string) int {
			t.Helper()
			res := w.postEscalation(t, fmt.Sprintf(`{"external_id": %q, "customer": {"name": "Ada"}, "language": %q, "skills": [%q]}`, id, lang, skill))
			defer res.Body.Close()
			var out escalationResponse
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
				t.Fatalf("escalate %s = %d, %v", id, res.StatusCode, err)
			}
			return out.EligibleAgentsOnline
		}
		if n := eligible("chat-1", "en", "billing"); n != 2 {
			t.Fatalf("English billing: %d eligible; want 2", n)
		}
		if n := eligible("chat-2", "de", "billing"); n != 0 {
			t.Fatalf("German billing: %d eligible; want 0 (nobody speaks German)", n)
		}
		if n := eligible("chat-3", "en", "refunds"); n != 0 {
			t.Fatalf("English refunds: %d eligible; want 0 (nobody has the skill)", n)
		}
		if n := eligible("chat-4", "en", "billing"); n != 2 {
			t.Fatalf("English billing again: %d eligible; want 2", n)
		}
	})
}

// Readers that miss one key at once share one load; a forget during a load
// makes the next reader load afresh instead of sharing the older read.
func TestTTLCacheSharesLoads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var loads atomic.Int32
		release := make(chan struct{})
		load := func(_ context.Context, key string) (string, error) {
			n := loads.Add(1)
			<-release
			return fmt.Sprintf("%s#%d", key, n), nil
		}
		c := &ttlCache[string]{ttl: time.Second}
		const readers = 20
		got := make([]string, readers)
		var wg sync.WaitGroup
		for i := range readers {
			wg.Go(func() {
				v, err := c.get(ctx, "a", load)
				if err != nil {
					t.Error(err)
				}
				got[i] = v
			})
		}
		synctest.Wait() // every reader is waiting: one in the load, the rest for it
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d readers missing one key started %d loads; want 1", readers, n)
		}
		close(release)
		wg.Wait()
		for i, v := range got {
			if v != "a#1" {
				t.Fatalf("reader %d got %q; want the shared load's a#1", i, v)
			}
		}

		// A change made here while a load is in flight: readers after it
		// do not share the load begun before it, and that load is not kept.
		release = make(chan struct{})
		c.forget("a")
		var before, after string
		wg.Go(func() { before, _ = c.get(ctx, "a", load) })
		synctest.Wait()
		c.forget("a")
		wg.Go(func() { after, _ = c.get(ctx, "a", load) })
		synctest.Wait()
		if n := loads.Load(); n != 3 {
			t.Fatalf("loads = %d; want 3 (the reader after the change loads afresh)", n)
		}
		close(release)
		wg.Wait()
		if before != "a#2" || after != "a#3" {
			t.Fatalf("before the change %q, after %q; want a#2 and a#3", before, after)
		}
		if v, _ := c.get(ctx, "a", load); v != "a#3" {
			t.Fatalf("cached %q; want a#3, the load begun after the change", v)
		}
	})
}

// A reader waiting for a shared load stops when its own request ends, and
// a load that never returns fails after cacheLoadTimeout instead of
// holding every reader of its key.
func TestTTLCacheLoadsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := func(ctx context.Context, key string) (string, error) {
			<-ctx.Done() // a database that does not answer
			return "", ctx.Err()
		}
		c := &ttlCache[string]{ttl: time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		cancelled, patient := make(chan error, 1), make(chan error, 1)
		go func() { _, err := c.get(ctx, "a", stuck); cancelled <- err }()
		go func() { _, err := c.get(context.Background(), "a", stuck); patient <- err }()
		synctest.Wait()
		start := time.Now()
		cancel()
		synctest.Wait()
		select {
		case err := <-cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("reader whose request ended: %v; want context.Canceled", err)
			}
		default:
			t.Fatal("the reader whose request ended still waits for the load")
		}
		select {
		case err := <-patient:
			t.Fatalf("the other reader returned (%v) before the load's timeout", err)
		default:
		}
		if err := <-patient; !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != cacheLoadTimeout {
			t.Fatalf("reader without a deadline: %v after %v; want DeadlineExceeded after %v", err, time.Since(start), cacheLoadTimeout)
		}
	})
}

// A bot's key is read once per cfg.SnapshotTTL, and a revocation on the
// brand's keys page stops it at once all the same; a revocation this
// instance did not see (here: straight in the store) stops it within the
// TTL. Another key of the brand goes on working.
func TestAPIKeyCacheFollowsRevocation(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db, func(c *Config) { c.SnapshotTTL = time.Minute })
		ctx := context.Background()
		now := time.Now()
		var clockMu sync.Mutex
		w.ts.srv.apiKeys.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
		owner := w.ts.client()
		owner.login("owner@acme.test", testPassword)
		n := 0
		status := func(key string) int {
			t.Helper()
			n++
			kw := *w
			kw.key = key
			res := kw.postEscalation(t, fmt.Sprintf(`{"external_id": "k-%d", "customer": {"name": "Ada"}, "language": "en", "skills": ["billing"]}`, n))
			res.Body.Close()
			return res.StatusCode
		}
		newKey := func(name string) (string, string) {
			t.Helper()
			key, k, err := db.Store.CreateAPIKey(ctx, w.owner.ID, w.brand.ID, name)
			if err != nil {
				t.Fatal(err)
			}
			return key, k.ID
		}

		// Behind the server's back: the cached key works until the TTL.
		quiet, quietID := newKey("quiet")
		if code := status(quiet); code != http.StatusCreated {
			t.Fatalf("new key = %d; want 201", code)
		}
		if err := db.Store.RevokeAPIKey(ctx, w.owner.ID, w.brand.ID, quietID); err != nil {
			t.Fatal(err)
		}
		if code := status(quiet); code != http.StatusCreated {
			t.Fatalf("key revoked in the store, within the TTL = %d; want 201 (the cache answers)", code)
		}
		clockMu.Lock()
		now = now.Add(time.Minute)
		clockMu.Unlock()
		if code := status(quiet); code != http.StatusUnauthorized {
			t.Fatalf("key revoked in the store, after the TTL = %d; want 401", code)
		}

		// On the keys page: at once.
		loud, loudID := newKey("loud")
		if code := status(loud); code != http.StatusCreated {
			t.Fatalf("new key = %d; want 201", code)
		}
		res, body := owner.post("/brand/"+w.brand.ID+"/keys/"+loudID+"/revoke", nil)
		formRedirect(t, "POST revoke", res, body)
		if code := status(loud); code != http.StatusUnauthorized {
			t.Fatalf("key revoked on the keys page = %d; want 401 at once", code)
		}
		if code := status(w.key); code != http.StatusCreated {
			t.Fatalf("the brand's other key = %d; want 201", code)
		}
	})
}
