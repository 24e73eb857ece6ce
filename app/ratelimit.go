package app

import (
	"sync"
	"time"
)

// limiter counts events per key in a sliding window. It guards sign-in per
// account and per client IP on this instance; with several instances each
// keeps its own count, so the effective limit is per instance.
type limiter struct {
	now   func() time.Time
	mu    sync.Mutex
	hits  map[string][]time.Time
	sweep time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, hits: map[string][]time.Time{}}
}

// Blocked reports whether key has had r.N events within r.Per, and if so
// how long until the oldest of them leaves the window.
func (l *limiter) Blocked(key string, r Rate) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	hs := l.prune(key, now, r.Per)
	if len(hs) < r.N {
		return false, 0
	}
	return true, hs[0].Add(r.Per).Sub(now)
}

// Hit records one event for key.
func (l *limiter) Hit(key string, r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	hs := l.prune(key, now, r.Per)
	l.hits[key] = append(hs, now)
	if now.Sub(l.sweep) > time.Minute {
		l.sweep = now
		for k, v := range l.hits {
			if len(v) == 0 || now.Sub(v[len(v)-1]) > 24*time.Hour {
				delete(l.hits, k)
			}
		}
	}
}

// Reset forgets key (after a successful sign-in).
func (l *limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}

func (l *limiter) prune(key string, now time.Time, per time.Duration) []time.Time {
	hs := l.hits[key]
	i := 0
	for i < len(hs) && !hs[i].After(now.Add(-per)) {
		i++
	}
	hs = hs[i:]
	if len(hs) == 0 {
		delete(l.hits, key)
		return nil
	}
	l.hits[key] = hs
	return hs
}
