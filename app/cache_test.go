package app

import (
	"context"
	"errors"
	"testing"
	"time"
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
