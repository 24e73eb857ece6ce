package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"time"

	"github.com/handoffhq/handoff/models"
)

// PostgreSQL advisory locks that let one instance at a time run an offer
// pass ("dispatch" in ASCII) and one at a time a sweep ("sweeping").
const (
	dispatchLockID = 0x6469737061746368
	sweepLockID    = 0x7377656570696e67
)

// exclusivePass runs pass while holding the dispatch lock on PostgreSQL, so
// several instances share the dispatcher's work without doing it twice.
// When another instance holds it, this one skips and looks again shortly:
// that instance's pass or the next one sees the same rows. On SQLite (one
// instance) the pass just runs.
func (s *Server) exclusivePass(ctx context.Context, lockID int64, pass func(context.Context) error) error {
	if s.ds.Dialect != models.Postgres {
		return pass(ctx)
	}
	sqlDB, err := s.ds.DB.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lockID).Scan(&got); err != nil {
		return err
	}
	if !got {
		if lockID == dispatchLockID {
			time.AfterFunc(5*time.Millisecond, s.wake)
		}
		return nil // a sweep is skipped: another instance is doing it
	}
	defer unlock(conn, lockID)
	return pass(ctx)
}

func unlock(conn *sql.Conn, lockID int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lockID); err != nil {
		// The lock dies with the session: make sure this one is not reused.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
