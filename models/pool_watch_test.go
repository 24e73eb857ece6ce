package models_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestPoolWaitReckoning scripts the pool's readings: the mean wait of the
// connections handed out between two readings, kept while a full pool
// serves nobody, 0 when a connection was free or the last reading is old.
func TestPoolWaitReckoning(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var p models.PoolWaitAt
	full := func(count int64, total time.Duration) sql.DBStats {
		return sql.DBStats{MaxOpenConnections: 8, InUse: 8, WaitCount: count, WaitDuration: total}
	}
	steps := []struct {
		name string
		st   sql.DBStats
		at   time.Duration
		want time.Duration
	}{
		{"first reading: no window yet", full(10, time.Second), 0, 0},
		{"too soon: the last figure", full(20, 9*time.Second), 100 * time.Millisecond, 0},
		{"ten waits of 400 ms", full(20, 5*time.Second), 300 * time.Millisecond, 400 * time.Millisecond},
		{"full, nobody served: kept", full(20, 5*time.Second), 600 * time.Millisecond, 400 * time.Millisecond},
		{"a connection free: 0", sql.DBStats{MaxOpenConnections: 8, InUse: 7, WaitCount: 20, WaitDuration: 5 * time.Second},
			900 * time.Millisecond, 0},
		{"two waits of 1 ms", full(22, 5*time.Second+2*time.Millisecond), 1200 * time.Millisecond, time.Millisecond},
		{"an old reading says nothing", full(122, 105*time.Second), 3 * time.Second, 0},
		{"then a window again", full(124, 106*time.Second), 3300 * time.Millisecond, 500 * time.Millisecond},
	}
	for _, s := range steps {
		if got := p.Wait(s.st, t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: PoolWait = %v; want %v", s.name, got, s.want)
		}
	}
}

// TestPoolWaitOnPostgres holds the only connection of a pool while
// requests queue for it, and reads their wait once they are served.
func TestPoolWaitOnPostgres(t *testing.T) {
	st, _, held := holdOnlyConn(t)
	if got := st.PoolWait(); got != 0 {
		t.Fatalf("PoolWait before any wait = %v; want 0", got)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var one int
			if err := st.DB.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error; err != nil {
				t.Error(err)
			}
		})
	}
	// pgxpool counts a wait once it is served: the three have queued
	// long before this sleep ends.
	time.Sleep(350 * time.Millisecond)
	held.Close()
	wg.Wait()
	if got := st.PoolWait(); got < 250*time.Millisecond {
		t.Fatalf("PoolWait after three requests queued 300 ms = %v; want about 300 ms", got)
	}
	// Quiet again: the next window finds a free connection.
	time.Sleep(300 * time.Millisecond)
	if got := st.PoolWait(); got != 0 {
		t.Fatalf("PoolWait once nobody waits = %v; want 0", got)
	}
	sq := modeltest.SQLite(t)
	if got := sq.Store.PoolWait(); got != 0 {
		t.Fatalf("PoolWait on SQLite = %v; want 0", got)
	}
}
