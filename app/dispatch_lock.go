package app

import (
	"context"
	"sync"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/jackc/pgx/v5"
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

// lease is an advisory lock held in a session of its own: the connection
// is opened outside the pool (Store.SessionConn) and kept while following
// too, so a try costs one statement, not a connection. Whenever the lease
// is dropped the connection is closed, which ends the session and the
// lock with it; held is never false while the lock lives on somewhere.
// (It was a pooled connection: after a ping failed on a cancelled context,
// database/sql gave the connection back to the pool with the lock still
// in its session, and no instance could take the lease until the pool
// closed it.)
type lease struct {
	mu          sync.Mutex
	conn        *pgx.Conn // the lease's session; nil until the first try
	held        bool
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
	held, err := s.dispatchLease.hold(ctx, s.ds.SessionConn, dispatchLockID, s.wake)
	if err != nil || !held {
		return err
	}
	return pass(ctx)
}

// hold reports whether this instance holds the lease, taking it when it
// is free. A follower looks again only after leaseFollow, and then wakes
// itself (retry) to do so.
func (l *lease) hold(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), lockID int32, retry func()) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.held {
		if now.Sub(l.checked) < leaseCheck {
			return true, nil
		}
		if err := l.conn.Ping(ctx); err == nil {
			l.checked = now
			return true, nil
		}
		l.closeLocked()
	}
	if now.Before(l.followUntil) {
		return false, nil
	}
	if l.conn == nil {
		conn, err := connect(ctx)
		if err != nil {
			return false, err
		}
		l.conn = conn
	}
	var got bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", lockID).Scan(&got); err != nil {
		l.closeLocked() // whether the lock was taken is unknown: end the session
		return false, err
	}
	if !got {
		l.followUntil = now.Add(leaseFollow)
		time.AfterFunc(leaseFollow, retry)
		return false, nil
	}
	l.held, l.checked = true, now
	return true, nil
}

// release gives the lease up (shutdown), so another instance takes over
// at once.
func (l *lease) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

// closeLocked ends the lease's session, which releases the lock if it was
// held (PostgreSQL drops a session's advisory locks when it ends).
func (l *lease) closeLocked() {
	l.held = false
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
	l.conn = nil
}
