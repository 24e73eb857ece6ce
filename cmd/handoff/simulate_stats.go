package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// latencies collects samples in milliseconds. A run of minutes at a few
// hundred events a second keeps every sample; that is a few megabytes.
type latencies struct {
	mu          sync.Mutex
	ms          []float64
	first, last time.Time // when the first and the last sample came
}

func (l *latencies) add(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	now := time.Now()
	l.mu.Lock()
	l.ms = append(l.ms, ms)
	if l.first.IsZero() {
		l.first = now
	}
	l.last = now
	l.mu.Unlock()
}

// rate is the samples per second between the first and the last.
func (l *latencies) rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	span := l.last.Sub(l.first).Seconds()
	if len(l.ms) < 2 || span <= 0 {
		return 0
	}
	return float64(len(l.ms)-1) / span
}

// sorted returns a sorted copy of the samples so far.
func (l *latencies) sorted() []float64 {
	l.mu.Lock()
	out := slices.Clone(l.ms)
	l.mu.Unlock()
	slices.Sort(out)
	return out
}

// since returns a sorted copy of the samples from the i-th on, and how
// many samples there are now: progress shows the last interval's latency
// beside the run's, so a stall shows when it happens.
func (l *latencies) since(i int) ([]float64, int) {
	l.mu.Lock()
	n := len(l.ms)
	out := slices.Clone(l.ms[min(i, n):])
	l.mu.Unlock()
	slices.Sort(out)
	return out, n
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted values by
// the nearest-rank method: the smallest value with at least p% of the
// values at or below it. It is 0 for no values.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// round2 rounds to hundredths: latencies here are a few milliseconds, and
// sub-millisecond differences matter.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
