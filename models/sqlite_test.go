package models_test

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// TestSQLitePragmas checks that the DSN options took effect on the store's
// own connections; the driver drops options silently when misused.
func TestSQLitePragmas(t *testing.T) {
	db := modeltest.SQLite(t)
	var mode string
	var fk, timeout int
	err := db.Store.DB.Connection(func(c *gorm.DB) error {
		if err := c.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
			return err
		}
		if err := c.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil {
			return err
		}
		return c.Raw("PRAGMA busy_timeout").Scan(&timeout).Error
	})
	if err != nil {
		t.Fatalf("read pragmas: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q; want wal", mode)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d; want 1", fk)
	}
	if timeout != 5000 {
		t.Errorf("busy_timeout = %d; want 5000", timeout)
	}
	err = db.Store.DB.Exec("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		models.NewID(), models.NewID(), db.Clock.Now(), db.Clock.Now()).Error
	if !errors.Is(err, gorm.ErrForeignKeyViolated) && (err == nil || !strings.Contains(err.Error(), "FOREIGN KEY")) {
		t.Errorf("insert a session of no user = %v; want a FOREIGN KEY error", err)
	}
}

// TestSQLiteImmediateTransactions checks _txlock=immediate: a transaction
// begun through gorm holds the write lock from BEGIN, so a second
// connection that will not wait cannot begin one until the first commits.
// With deferred transactions the second BEGIN would succeed at once.
func TestSQLiteImmediateTransactions(t *testing.T) {
	db := modeltest.SQLite(t)
	path := strings.TrimPrefix(db.URL, "sqlite:")
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)

	tx := db.Store.DB.Begin()
	if tx.Error != nil {
		t.Fatalf("Begin: %v", tx.Error)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()

	ctx := context.Background()
	t.Run("ErrLockedWhileOpen", func(t *testing.T) {
		tx2, err := other.BeginTx(ctx, nil)
		if err == nil {
			_ = tx2.Rollback()
			t.Fatal("second BEGIN IMMEDIATE succeeded while a gorm transaction was open; want database is locked (is _txlock=immediate in effect?)")
		}
		if msg := err.Error(); !strings.Contains(msg, "database is locked") && !strings.Contains(msg, "SQLITE_BUSY") {
			t.Fatalf("second BEGIN = %v; want database is locked (SQLITE_BUSY)", err)
		}
	})
	if err := tx.Commit().Error; err != nil {
		t.Fatalf("Commit: %v", err)
	}
	committed = true
	t.Run("OKAfterCommit", func(t *testing.T) {
		tx2, err := other.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("second BEGIN after commit = %v; want nil", err)
		}
		if err := tx2.Rollback(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name, url   string
		wantDialect models.Dialect
		wantDSN     string // "" when an error is expected
	}{
		{"OKSQLite", "sqlite:data/handoff.db", models.SQLite, "file:data/handoff.db?" + models.SQLitePragmas},
		{"OKSQLiteSlashes", "sqlite:///tmp/h.db", models.SQLite, "file:/tmp/h.db?" + models.SQLitePragmas},
		{"OKSQLiteExtraPragma", "sqlite:h.db?_pragma=cache_size(-2000)", models.SQLite, "file:h.db?" + models.SQLitePragmas + "&_pragma=cache_size(-2000)"},
		{"OKPostgres", "postgres://u@db:5432/h?sslmode=disable", models.Postgres, "postgres://u@db:5432/h?sslmode=disable"},
		{"OKPostgresql", "postgresql://u@db/h", models.Postgres, "postgresql://u@db/h"},
		{"ErrTimeFormat", "sqlite:h.db?_time_format=sqlite", "", ""},
		{"ErrTimezone", "sqlite:h.db?_timezone=Local", "", ""},
		{"ErrTxlock", "sqlite:h.db?_txlock=deferred", "", ""},
		{"ErrTxlockAfterOther", "sqlite:h.db?_pragma=cache_size(1)&_txlock=exclusive", "", ""},
		{"ErrEmptyPath", "sqlite:", "", ""},
		{"ErrBadQuery", "sqlite:h.db?%zz", "", ""},
		{"ErrMySQL", "mysql://u@db/h", "", ""},
		{"ErrFile", "file:h.db", "", ""},
		{"ErrBarePath", "data/handoff.db", "", ""},
		{"ErrEmpty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dsn, err := models.ParseURL(tt.url)
			if tt.wantDSN == "" {
				if err == nil {
					t.Errorf("ParseURL(%q) = %s, %q; want an error", tt.url, d, dsn)
				}
				return
			}
			if err != nil || d != tt.wantDialect || dsn != tt.wantDSN {
				t.Errorf("ParseURL(%q) = %s, %q, %v; want %s, %q, nil", tt.url, d, dsn, err, tt.wantDialect, tt.wantDSN)
			}
		})
	}
}

// The pool holds DefaultConns connections unless told otherwise: 4 per CPU
// (at least 4) on PostgreSQL, 20 on SQLite.
func TestPoolSize(t *testing.T) {
	if got, want := models.DefaultConns(models.Postgres), max(4, 4*runtime.GOMAXPROCS(0)); got != want {
		t.Fatalf("DefaultConns(postgres) = %d; want %d", got, want)
	}
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		for _, n := range []int{0, 3} {
			st, err := models.Open(context.Background(), db.URL, models.Options{MaxOpenConns: n, Log: db.Store.Log})
			if err != nil {
				t.Fatal(err)
			}
			want := n
			if n == 0 {
				want = models.DefaultConns(st.Dialect)
			}
			if got := st.PoolStats().MaxOpenConnections; got != want {
				t.Errorf("MaxOpenConns %d: pool of %d; want %d", n, got, want)
			}
			st.Close()
		}
	})
}
