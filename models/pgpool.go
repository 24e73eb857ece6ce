package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL's connections are pgx's pool, under database/sql (which gorm
// needs) keeping none of its own: every statement or transaction takes a
// connection from pgxpool and gives it back after. The point is the order
// of the wait. database/sql hands a connection given back to a random
// waiter (connRequestSet.TakeRandom), so when requests queue for the
// pool (PostgreSQL busy, DefaultConns a few per core) a request could wait
// on and on while later ones went first: under load an accept waited past
// its 5 s deadline while the pool's mean wait stayed under half a second.
// pgxpool serves its waiters in turn (a FIFO semaphore), so a request
// waits for the ones before it, no longer.

// openPgPool opens the pool of at most maxConns connections to dsn. It
// connects lazily; Open pings.
func openPgPool(ctx context.Context, dsn string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return pool, nil
}

// PoolStats is the connection pool's statistics in database/sql's terms:
// on PostgreSQL pgxpool's (the connections, in use, the requests that
// waited and how long in all), on SQLite database/sql's own.
func (s *Store) PoolStats() sql.DBStats {
	if s.pgPool != nil {
		return pgStats(s.pgPool.Stat())
	}
	if sqlDB, err := s.DB.DB(); err == nil {
		return sqlDB.Stats()
	}
	return sql.DBStats{}
}

func pgStats(st *pgxpool.Stat) sql.DBStats {
	return sql.DBStats{
		MaxOpenConnections: int(st.MaxConns()),
		OpenConnections:    int(st.TotalConns()),
		InUse:              int(st.AcquiredConns()),
		Idle:               int(st.IdleConns()),
		WaitCount:          st.EmptyAcquireCount(),
		WaitDuration:       st.EmptyAcquireWaitTime(),
		MaxIdleTimeClosed:  st.MaxIdleDestroyCount(),
		MaxLifetimeClosed:  st.MaxLifetimeDestroyCount(),
	}
}

// SessionConn opens a PostgreSQL connection of its own, outside the pool,
// with the pool's settings (the schema included). It is for what lives in
// a session, such as an advisory lock or a LISTEN: closing it ends the
// session and what it held. A pooled connection would not do: given back (database/sql
// gives it back after a failed ping, or one marked bad), it stays open
// in pgxpool with its session, and a lock with it.
func (s *Store) SessionConn(ctx context.Context) (*pgx.Conn, error) {
	if s.pgPool == nil {
		return nil, fmt.Errorf("session connection: %s has no PostgreSQL pool", s.Dialect)
	}
	return pgx.ConnectConfig(ctx, s.pgPool.Config().ConnConfig.Copy())
}
