package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"time"

	"github.com/handoffhq/handoff/models"
)

// The PostgreSQL advisory lock that lets one instance at a time run offer
// passes and the sweep's maintenance ("disp" in ASCII). It is taken with
// the schema's hash as its second key, so deployments (or tests) in
// different schemas of one database never wait for each other.
const dispatchLockID int32 = 0x64697370

// The dispatch lock is held as a lease: the instance that takes it keeps
// it, on a connection of its own, across offer passes, so a pass costs no
// lock statements. The others follow: their work reaches the holder by
// NOTIFY (every batch from another instance wakes its dispatcher), and
// they try the lock again at most every leaseFollow, so one takes over
// soon after the holder dies (its session ends and the lock with it).
// The holder pings its connection at most every leaseCheck; a lost
// connection (a PostgreSQL restart) drops the lease.
const (
	leaseFollow = 250 * time.Millisecond
	leaseCheck  = time.Second
)

// lease is an advisory lock held on a connection between passes.
type lease struct {
	mu          sync.Mutex
	conn        *sql.Conn
	checked     time.Time
	followUntil time.Time
}

// exclusivePass runs pass while holding the dispatch lease on PostgreSQL
// (above), so several instances share the dispatcher's work without doing
// it twice: offer passes and the sweep's maintenance run where the lease
// is, and are skipped elsewhere. On SQLite (one instance) the pass just
// runs.
func (s *Server) exclusivePass(ctx context.Context, pass func(context.Context) error) error {
	if s.ds.Dialect != models.Postgres {
		return pass(ctx)
	}
	sqlDB, err := s.ds.DB.DB()
	if err != nil {
		return err
	}
	held, err := s.dispatchLease.hold(ctx, sqlDB, dispatchLockID, s.wake)
	if err != nil || !held {
		return err
	}
	return pass(ctx)
}

// hold reports whether this instance holds the lease, taking it when it
// is free. A follower looks again only after leaseFollow, and then wakes
// itself (retry) to do so.
func (l *lease) hold(ctx context.Context, db *sql.DB, lockID int32, retry func()) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.conn != nil {
		if now.Sub(l.checked) < leaseCheck {
			return true, nil
		}
		if err := l.conn.PingContext(ctx); err == nil {
			l.checked = now
			return true, nil
		}
		l.dropLocked(lockID)
	}
	if now.Before(l.followUntil) {
		return false, nil
	}
	conn, got, err := tryLock(ctx, db, lockID)
	if err != nil {
		return false, err
	}
	if !got {
		l.followUntil = now.Add(leaseFollow)
		time.AfterFunc(leaseFollow, retry)
		return false, nil
	}
	l.conn, l.checked = conn, now
	return true, nil
}

// release gives the lease up (shutdown), so another instance takes over
// at once.
func (l *lease) release(lockID int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(lockID)
}

func (l *lease) dropLocked(lockID int32) {
	if l.conn == nil {
		return
	}
	unlock(l.conn, lockID)
	l.conn.Close()
	l.conn = nil
}

// tryLock takes the advisory lock on a connection of its own; the caller
// unlocks and closes it when got.
func tryLock(ctx context.Context, db *sql.DB, lockID int32) (conn *sql.Conn, got bool, err error) {
	conn, err = db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", lockID).Scan(&got); err != nil || !got {
		conn.Close()
		return nil, false, err
	}
	return conn, true, nil
}

// unlock releases the lock before the connection goes back to the pool.
func unlock(conn *sql.Conn, lockID int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1, hashtext(current_schema()))", lockID); err != nil {
		// The lock dies with the session: make sure this one is not reused.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
