package app

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/handoffhq/handoff/models"
	"golang.org/x/sync/singleflight"
)

// ttlCache keeps values read from the database for a short while, for the
// reads every conversation repeats (its brand, its agent's name) and which
// may lag a change by the TTL. Nothing that decides an offer, an accept or
// money reads through it. A TTL of zero turns it off (tests), and it holds
// at most cacheMaxEntries, starting afresh when full.
//
// Readers that miss the same key at once share one load: when an entry
// expires under load, every request in flight would otherwise read the
// database for it, and the slower those reads, the more requests miss.
type ttlCache[V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	now   func() time.Time // time.Now unless a test sets it
	m     map[string]cacheEntry[V]
	gen   uint64 // bumped by forget: a load begun before a change is not shared or kept after it
	loads singleflight.Group
}

type cacheEntry[V any] struct {
	at time.Time
	v  V
}

const cacheMaxEntries = 50_000

// cacheLoadTimeout bounds a shared load, which runs without its first
// reader's deadline.
const cacheLoadTimeout = 10 * time.Second

func (c *ttlCache[V]) get(ctx context.Context, key string, load func(context.Context, string) (V, error)) (V, error) {
	if c.ttl <= 0 {
		return load(ctx, key)
	}
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	c.mu.Lock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.v, nil
	}
	// The shared load must not fail because the reader who started it
	// went away, but it may not run for ever either: every reader of the
	// key waits for it.
	ch := c.loads.DoChan(strconv.FormatUint(gen, 10)+"\x00"+key, func() (any, error) {
		shared, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheLoadTimeout)
		defer cancel()
		v, err := load(shared, key)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.gen == gen {
			if c.m == nil || len(c.m) >= cacheMaxEntries {
				c.m = map[string]cacheEntry[V]{}
			}
			c.m[key] = cacheEntry[V]{at: now, v: v}
		}
		c.mu.Unlock()
		return v, nil
	})
	var zero V
	select {
	case r := <-ch: // each reader stops waiting when its own request ends
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// forget drops a key, after a change made here, so this instance reads it
// afresh at once (others within the TTL).
func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.gen++
	c.mu.Unlock()
}

// forgetAll drops every key, after a change that may touch any of them
// (or news of changes that may have been missed).
func (c *ttlCache[V]) forgetAll() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// apiKey returns the live key a bot presented, at most cfg.SnapshotTTL
// old, cached by its digest (never in clear) and only when live: an
// unknown or revoked key is read every time. A revocation here forgets
// every cached key at once, and so does news of one from another instance
// (peers); an instance that misses that news stops the key within the TTL.
func (s *Server) apiKey(ctx context.Context, key string) (*models.APIKey, error) {
	k, err := s.apiKeys.get(ctx, models.APIKeyDigest(key), func(ctx context.Context, _ string) (models.APIKey, error) {
		k, err := s.store.APIKeyOf(ctx, key)
		if err != nil {
			return models.APIKey{}, err
		}
		return *k, nil
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// apiKeysChanged forgets the cached keys here and tells the other
// instances to do the same.
func (s *Server) apiKeysChanged() {
	s.apiKeys.forgetAll()
	s.peers.notify(peerEvent{K: "k"})
}

// brandSkills returns the brand's skill catalogue, at most cfg.SnapshotTTL
// old; a change made on this instance shows at once. Shared: do not modify.
func (s *Server) brandSkills(ctx context.Context, brandID string) ([]models.BrandSkill, error) {
	return s.skills.get(ctx, brandID, s.store.Skills)
}

// brand returns a brand for display and estimates, at most cfg.SnapshotTTL
// old. The copy is the caller's.
func (s *Server) brand(ctx context.Context, id string) (*models.Brand, error) {
	b, err := s.brands.get(ctx, id, func(ctx context.Context, id string) (models.Brand, error) {
		b, err := s.store.Brand(ctx, id)
		if err != nil {
			return models.Brand{}, err
		}
		return *b, nil
	})
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// agentName returns an agent's display name, at most profileTTL old.
func (s *Server) agentName(ctx context.Context, id string) (string, error) {
	return s.agentNames.get(ctx, id, s.store.AgentName)
}
