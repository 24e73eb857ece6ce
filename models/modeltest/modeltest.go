// Package modeltest opens fresh, migrated databases for tests: an embedded
// SQLite file always, and a PostgreSQL schema when TEST_DATABASE_URL is set.
// Under CI=true a missing TEST_DATABASE_URL fails the test instead of
// skipping PostgreSQL.
package modeltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"golang.org/x/crypto/bcrypt"
)

// Epoch is where fake clocks start: a fixed UTC instant.
var Epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// DB is one database under test.
type DB struct {
	Name  string // "sqlite" or "postgres"
	URL   string // the database URL a server would be given
	Store *models.Store
	Clock *models.FakeClock
}

var seq atomic.Int64

// PostgresURL returns TEST_DATABASE_URL, failing the test under CI when it
// is missing and skipping otherwise.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("TEST_DATABASE_URL is not set; under CI PostgreSQL is required")
		}
		tb.Skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
	}
	return u
}

// Each runs fn as a subtest on a fresh database of every dialect available:
// "sqlite" always, "postgres" when TEST_DATABASE_URL is set (required under
// CI=true).
func Each(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh, migrated SQLite database in a temporary folder.
func SQLite(tb testing.TB) *DB {
	tb.Helper()
	u := "sqlite:" + filepath.Join(tb.TempDir(), "handoff.db")
	return open(tb, "sqlite", u)
}

// Postgres returns a fresh, migrated PostgreSQL schema, dropped at cleanup.
func Postgres(tb testing.TB) *DB {
	tb.Helper()
	base := PostgresURL(tb)
	schema := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, seq.Add(1))
	admin, err := models.Open(context.Background(), base, models.Options{Log: quiet(), MaxOpenConns: 1})
	if err != nil {
		tb.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	if err := admin.DB.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		_ = admin.DB.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		_ = admin.Close()
	})
	return open(tb, "postgres", WithSearchPath(base, schema))
}

// WithSearchPath returns a PostgreSQL URL whose connections use schema.
func WithSearchPath(base, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(tb testing.TB, name, u string) *DB {
	tb.Helper()
	clock := models.NewFakeClock(Epoch)
	st, err := models.Open(context.Background(), u, models.Options{Clock: clock, Log: quiet()})
	if err != nil {
		tb.Fatalf("open %s: %v", name, err)
	}
	st.PasswordCost = bcrypt.MinCost
	tb.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate %s: %v", name, err)
	}
	return &DB{Name: name, URL: u, Store: st, Clock: clock}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// IsPostgres reports whether a database URL names PostgreSQL.
func IsPostgres(u string) bool { return strings.HasPrefix(u, "postgres") }
