package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	sqlite "github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// SQLitePragmas are appended to every SQLite DSN. _txlock=immediate makes
// every transaction take the write lock at BEGIN, so concurrent claims queue
// on busy_timeout instead of failing with SQLITE_BUSY at their first write.
// Times are written as "2006-01-02 15:04:05.999999999-07:00" in UTC
// (_time_format=sqlite, _timezone=UTC) and read back in UTC: the text the
// earlier driver wrote, so older database files read the same.
const SQLitePragmas = "_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_txlock=immediate&_time_format=sqlite&_timezone=UTC"

// Store is the database with the domain's transactional methods. Every method
// takes ctx first and owns its transaction.
type Store struct {
	// PasswordCost is the bcrypt cost for new passwords (0: bcrypt.DefaultCost).
	PasswordCost int
	// LapseBatch caps the offers and the agents one LapsePresence
	// handles (0: DefaultLapseBatch).
	LapseBatch int
	DB         *gorm.DB
	Dialect    Dialect
	Clock      Clock
	Log        *slog.Logger

	// Brands whose money_recorded_at is known to be set (it never goes
	// back), so resolves skip the update that would set it.
	moneyRecorded sync.Map

	messages messageWriter // message batches
	gate     *sqliteGate   // SQLite: this process's writes take turns (nil on PostgreSQL)
	stmts    *stmtStats    // SQLite: the connections' kept statements (nil on PostgreSQL)
	group    *txGroup      // SQLite: write transactions committed together (nil on PostgreSQL)
	pool     poolWatch     // PostgreSQL: the pool's waits, for PoolWait
	pgPool   *pgxpool.Pool // PostgreSQL: the connections, handed out in turn (pgpool.go)
}

// Options tunes Open.
type Options struct {
	Clock Clock
	Log   *slog.Logger
	// MaxOpenConns caps the pool (0: a default per dialect).
	MaxOpenConns int
}

// ParseURL splits a database URL into its dialect and the driver's DSN.
// "sqlite:PATH" (or "sqlite://PATH") is the embedded default; "postgres://…"
// and "postgresql://…" are PostgreSQL.
func ParseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		query := ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, query = path[:i], path[i+1:]
		}
		if path == "" {
			return "", "", fmt.Errorf("database url %q: empty sqlite path", raw)
		}
		if q, err := url.ParseQuery(query); err != nil {
			return "", "", fmt.Errorf("database url %q: %w", raw, err)
		} else if q.Has("_time_format") || q.Has("_timezone") || q.Has("_txlock") {
			return "", "", fmt.Errorf("database url %q: _time_format, _timezone and _txlock are set by Handoff", raw)
		}
		dsn := "file:" + path + "?" + SQLitePragmas
		if query != "" {
			dsn += "&" + query
		}
		return SQLite, dsn, nil
	default:
		return "", "", fmt.Errorf("database url %q: want sqlite:PATH or postgres://…", raw)
	}
}

// DefaultConns is the pool size when Options.MaxOpenConns is 0. On
// PostgreSQL it is four connections per CPU of this process, at least four:
// more busy connections than PostgreSQL has cores only queue in its run
// queue, where they cost context switches and delay everyone, while
// requests waiting here for a connection cost nothing. (At 200
// escalations/s on the 2-core development machine, 20 connections gave an
// offer p99 of 42–95 ms over ten runs, median 55 ms; 8 gave 31–63 ms over
// five, median 49 ms: within the runs' spread, and not worse.) SQLite keeps
// 20: its writes queue on its lock whatever the pool.
func DefaultConns(dialect Dialect) int {
	if dialect == Postgres {
		return max(4, 4*runtime.GOMAXPROCS(0))
	}
	return 20
}

// Open connects to the database named by rawURL. It does not migrate.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	dialect, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	clock := opt.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var dialector gorm.Dialector
	var gate *sqliteGate
	var stmts *stmtStats
	var pgPool *pgxpool.Pool
	maxOpen := opt.MaxOpenConns
	if maxOpen == 0 {
		maxOpen = DefaultConns(dialect)
	}
	switch dialect {
	case SQLite:
		path := strings.TrimPrefix(dsn[:strings.IndexByte(dsn, '?')], "file:")
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create database folder: %w", err)
			}
		}
		// The driver registered as "sqlite", opened behind this file's
		// write gate (sqlite_gate.go), keeping compiled statements
		// (sqlite_stmts.go).
		registered, err := sql.Open(sqlite.DriverName, dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		gate, stmts = newSQLiteGate(sqliteWriteWait), &stmtStats{}
		dialector = sqlite.Dialector{Conn: sql.OpenDB(&sqliteConnector{drv: registered.Driver(), dsn: dsn, gate: gate, stmts: stmts})}
		_ = registered.Close() // it never opened a connection
	case Postgres:
		pgPool, err = openPgPool(ctx, dsn, maxOpen)
		if err != nil {
			return nil, err
		}
		dialector = postgres.New(postgres.Config{Conn: stdlib.OpenDBFromPool(pgPool)})
	}
	// Raw statements end in Find, not Scan: gorm's Scan records every
	// statement with its arguments spelled out (regexps over the SQL) for
	// a trace, whatever the log level; it was 9 % of the server's
	// allocations in a chat-heavy run.
	db, err := gorm.Open(dialector, &gorm.Config{
		NowFunc:                func() time.Time { return clock.Now().UTC() },
		Logger:                 logger.Discard,
		TranslateError:         true,
		SkipDefaultTransaction: true,
	})
	if err != nil {
		if pgPool != nil {
			pgPool.Close()
		}
		return nil, fmt.Errorf("open %s: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if pgPool == nil { // on PostgreSQL pgxpool holds the connections, database/sql none (pgpool.go)
		sqlDB.SetMaxOpenConns(maxOpen)
		sqlDB.SetMaxIdleConns(maxOpen)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		if pgPool != nil {
			pgPool.Close()
		}
		return nil, fmt.Errorf("connect to %s: %w", dialect, err)
	}
	s := &Store{DB: db, Dialect: dialect, Clock: clock, Log: log, gate: gate, stmts: stmts, pgPool: pgPool}
	if gate != nil {
		s.group = &txGroup{store: s}
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	err = sqlDB.Close()
	if s.pgPool != nil {
		s.pgPool.Close()
	}
	return err
}

// Ping checks that the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// AutovacuumOff reports whether PostgreSQL's autovacuum is off (never on
// SQLite). Without it nothing analyzes the tables as they grow, so the
// statements each connection prepared while they were small keep plans
// that read them whole, and dead rows pile up.
func (s *Store) AutovacuumOff(ctx context.Context) (bool, error) {
	if s.Dialect != Postgres {
		return false, nil
	}
	var v string
	if err := s.DB.WithContext(ctx).Raw("SHOW autovacuum").Find(&v).Error; err != nil {
		return false, err
	}
	return v == "off", nil
}

// Now is the store's clock reading, in UTC.
func (s *Store) Now() time.Time { return s.Clock.Now().UTC() }

// tx runs fn in one transaction. On SQLite the transaction is IMMEDIATE.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.group != nil {
		return s.group.run(ctx, fn) // SQLite: with the others waiting (sqlite_group.go)
	}
	return s.DB.WithContext(ctx).Transaction(fn)
}

// rowsByID reads the rows of T whose id is in ids, in one statement, by
// id (id reads a row's); ids that name nothing are left out, and no ids
// read nothing.
func rowsByID[T any](ctx context.Context, db *gorm.DB, ids []string, id func(*T) string) (map[string]*T, error) {
	out := make(map[string]*T, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Room for every row asked for: gorm makes a slice with room for
	// 20 rows when given none (8 KB of conversations for the one row the
	// listener reads, say), and fills the one it is given.
	rows := make([]T, 0, len(ids))
	if err := db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		out[id(&rows[i])] = &rows[i]
	}
	return out, nil
}

// notFound turns gorm's record-not-found into ErrNotFound with context.
func notFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

// isUniqueViolation reports whether err is a unique constraint failure.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
