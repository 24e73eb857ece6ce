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

// TestPostgresPoolServesInTurn holds the only connection of a pool while
// requests queue for it one after another, then lets it go: they get the
// connection in the order they asked for it. (database/sql's own pool
// hands it to a random waiter: the ten here came out in order about once
// in 3.6 million runs.)
func TestPostgresPoolServesInTurn(t *testing.T) {
	_, sqlDB, held := holdOnlyConn(t)
	ctx := context.Background()
	const n = 10
	var mu sync.Mutex
	var served []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served = append(served, i)
			mu.Unlock()
			c.Close()
		})
		// Each request is queued before the next asks: nothing here
		// measures time, the pause only orders the arrivals.
		time.Sleep(50 * time.Millisecond)
	}
	held.Close()
	wg.Wait()
	for i, got := range served {
		if got != i {
			t.Fatalf("requests served in the order %v; want the order they queued, 0 to %d", served, n-1)
		}
	}
}

// holdOnlyConn opens a store on a fresh PostgreSQL database with a pool of
// one connection and takes it: what asks for another waits until the
// caller closes held.
func holdOnlyConn(t *testing.T) (st *models.Store, sqlDB *sql.DB, held *sql.Conn) {
	t.Helper()
	db := modeltest.Postgres(t)
	st, err := models.Open(context.Background(), db.URL, models.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if sqlDB, err = st.DB.DB(); err != nil {
		t.Fatal(err)
	}
	if held, err = sqlDB.Conn(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, sqlDB, held
}
