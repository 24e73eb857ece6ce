package models_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestMigrateTwiceIsNoop(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		applied, err := db.Store.Migrate(context.Background())
		if err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Fatalf("second Migrate applied %v; want nothing", applied)
		}
		keys, err := db.Store.SigningKeys(context.Background())
		if err != nil || len(keys) != 1 {
			t.Fatalf("SigningKeys = %d keys, %v; want exactly 1", len(keys), err)
		}
	})
}

// TestMigrateConcurrently starts two instances on one fresh database at
// once: both migrations succeed and each version is recorded once.
func TestMigrateConcurrently(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testMigrateConcurrently(t, "sqlite:"+filepath.Join(t.TempDir(), "race.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		testMigrateConcurrently(t, freshPostgresSchema(t))
	})
}

// freshPostgresSchema creates an empty schema, dropped at cleanup, and
// returns a URL whose connections use it.
func freshPostgresSchema(tb testing.TB) string {
	tb.Helper()
	base := modeltest.PostgresURL(tb)
	admin, err := models.Open(context.Background(), base, models.Options{Log: quietLog(), MaxOpenConns: 1})
	if err != nil {
		tb.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	schema := fmt.Sprintf("t_race_%d_%d", os.Getpid(), time.Now().UnixNano())
	if err := admin.DB.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		_ = admin.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := admin.DB.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	return modeltest.WithSearchPath(base, schema)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testMigrateConcurrently(t *testing.T, url string) {
	ctx := context.Background()
	var stores [2]*models.Store
	for i := range stores {
		st, err := models.Open(ctx, url, models.Options{Log: quietLog()})
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores[i] = st
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	applied := make([][]string, len(stores))
	errs := make([]error, len(stores))
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = st.Migrate(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate #%d = %v; want nil", i, err)
		}
	}
	ms, err := models.Migrations(stores[0].Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(applied[0]) + len(applied[1]); n != len(ms) {
		t.Errorf("migrations applied by the two instances = %q and %q; want %d in total", applied[0], applied[1], len(ms))
	}
	var rows []struct {
		Version int
		N       int
	}
	if err := stores[0].DB.Raw("SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version ORDER BY version").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ms) {
		t.Errorf("schema_migrations holds %d versions; want %d", len(rows), len(ms))
	}
	for i, r := range rows {
		if r.N != 1 || i >= len(ms) || r.Version != ms[i].Version {
			t.Errorf("schema_migrations version %d recorded %d times; want each of %d versions once", r.Version, r.N, len(ms))
		}
	}
	keys, err := stores[1].SigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Errorf("SigningKeys after concurrent Migrate = %d keys, %v; want exactly 1", len(keys), err)
	}
}
