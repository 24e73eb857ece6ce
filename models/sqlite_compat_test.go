package models_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
)

// testdata/glebarez-v1.21.db was written by the build before the SQLite
// driver changed (b108085, glebarez/go-sqlite v1.21): `handoff serve
// --demo`, then `handoff simulate --agents 3 --rate 2 --duration 3s
// --handle-time 1` (six conversations escalated, offered, accepted,
// chatted and resolved).

// TestSQLiteReadsEarlierDriversFile: a file the earlier driver wrote
// migrates, and every time in it reads back as the instant its stored
// text names, in UTC; the store's own reads work on it.
func TestSQLiteReadsEarlierDriversFile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "glebarez-v1.21.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "handoff.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := models.Open(ctx, "sqlite:"+path, models.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate the earlier file: %v", err)
	}
	sqlDB, err := st.DB.DB()
	if err != nil {
		t.Fatal(err)
	}

	type column struct{ table, name string }
	var cols []column
	rows, err := sqlDB.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND lower(p.type) = 'datetime' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(cols) < 30 {
		t.Fatalf("datetime columns found = %d; want the schema's 40 or so", len(cols))
	}
	read := 0
	for _, c := range cols {
		q := "SELECT CAST(" + c.name + " AS TEXT), " + c.name + " FROM " + c.table + " WHERE " + c.name + " IS NOT NULL"
		rows, err := sqlDB.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var raw string
			var got time.Time
			if err := rows.Scan(&raw, &got); err != nil {
				t.Fatalf("%s.%s: %v", c.table, c.name, err)
			}
			want, err := time.Parse("2006-01-02 15:04:05.999999999-07:00", raw)
			if err != nil {
				t.Fatalf("%s.%s stored as %q: %v", c.table, c.name, raw, err)
			}
			if !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%s.%s stored as %q read back as %v; want %v in UTC", c.table, c.name, raw, got, want.UTC())
			}
			read++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if read < 100 {
		t.Errorf("times read = %d; want the fixture's hundreds", read)
	}

	// The store's reads on it: each resolved conversation's messages and
	// its agent's earning.
	var convs []models.Conversation
	if err := st.DB.Where("status = ?", models.ConvResolved).Order("created_at").Find(&convs).Error; err != nil {
		t.Fatal(err)
	}
	if len(convs) != 6 {
		t.Fatalf("resolved conversations = %d; want 6", len(convs))
	}
	for _, c := range convs {
		if c.AgentID == nil || c.ResolvedAt == nil || !c.ResolvedAt.After(c.CreatedAt) {
			t.Errorf("conversation %s: agent %v, created %v, resolved %v", c.ID, c.AgentID, c.CreatedAt, c.ResolvedAt)
			continue
		}
		msgs, err := st.Messages(ctx, c.ID, 0, 0)
		if err != nil || len(msgs) == 0 {
			t.Errorf("messages of %s = %d, %v; want some", c.ID, len(msgs), err)
		}
		earned, err := st.Earnings(ctx, *c.AgentID, 100)
		if err != nil || len(earned) == 0 {
			t.Errorf("earnings of %s = %d, %v; want some", *c.AgentID, len(earned), err)
		}
	}
}
