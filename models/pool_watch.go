package models

import (
	"database/sql"
	"sync"
	"time"
)

// poolWatchEvery is how often PoolWait reads the pool's statistics: it
// reports the mean wait of the connections handed out between two reads.
const poolWatchEvery = 250 * time.Millisecond

// poolWatch keeps the last reading of the pool's statistics and the mean
// wait found then.
type poolWatch struct {
	mu   sync.Mutex
	at   time.Time
	last sql.DBStats
	mean time.Duration
}

// PoolWait is how long, on average, the requests that got a connection from
// this process's PostgreSQL pool over the last quarter second or so had
// waited for it: 0 when none waited, and on SQLite, whose writes queue at
// its write turn instead (WriteBacklog). The pool holds a few connections
// per core (DefaultConns), so when PostgreSQL falls behind, requests queue
// here, and their wait says by how much. A call more than a second after
// the last one starts a new window and answers 0: an old reading says
// nothing about now.
func (s *Store) PoolWait() time.Duration {
	if s.Dialect != Postgres {
		return 0
	}
	return s.pool.wait(s.PoolStats, time.Now())
}

func (w *poolWatch) wait(stats func() sql.DBStats, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := now.Sub(w.at)
	if since < poolWatchEvery {
		return w.mean
	}
	st := stats()
	switch n := st.WaitCount - w.last.WaitCount; {
	case since > 4*poolWatchEvery:
		w.mean = 0
	case n > 0:
		w.mean = (st.WaitDuration - w.last.WaitDuration) / time.Duration(n)
	case st.InUse < st.MaxOpenConnections || st.MaxOpenConnections == 0:
		w.mean = 0 // a connection was free
	default:
		// Every connection in use and nobody served since: keep the
		// last figure rather than call a stalled pool idle.
	}
	w.at, w.last = now, st
	return w.mean
}
