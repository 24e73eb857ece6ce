package models_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/models"
	"gorm.io/gorm"
)

// oneConnSQLite opens a SQLite store with a single connection, so that
// the statements it keeps are that connection's.
func oneConnSQLite(t *testing.T) *models.Store {
	t.Helper()
	st, err := models.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "stmts.db"),
		models.Options{MaxOpenConns: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gateTable(t, st)
	for id := 2; id <= 5; id++ {
		if err := st.DB.Exec("INSERT INTO gate_t (id, v) VALUES (?, ?)", id, id*10).Error; err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func compiledSince(st *models.Store, before int) int {
	return models.SQLiteStatementsCompiled(st) - before
}

// TestSQLiteKeepsCompiledStatements: a statement run again, with other
// arguments, runs on the statement compiled the first time, in and out of
// transactions, and gives the right answers.
func TestSQLiteKeepsCompiledStatements(t *testing.T) {
	st := oneConnSQLite(t)
	before := models.SQLiteStatementsCompiled(st)
	for i := 1; i <= 10; i++ {
		if err := st.DB.Exec("UPDATE gate_t SET v = ? WHERE id = ?", i, 1).Error; err != nil {
			t.Fatal(err)
		}
		var v int
		if err := st.DB.Raw("SELECT v FROM gate_t WHERE id = ?", 1).Scan(&v).Error; err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("run %d: v = %d; want %d", i, v, i)
		}
	}
	if got := compiledSince(st, before); got != 2 {
		t.Errorf("statements compiled for 10 runs of one UPDATE and one SELECT = %d; want 2", got)
	}

	before = models.SQLiteStatementsCompiled(st)
	for i := 0; i < 5; i++ {
		err := st.DB.Transaction(func(tx *gorm.DB) error {
			var v int
			if err := tx.Raw("SELECT v FROM gate_t WHERE id = ?", 2).Scan(&v).Error; err != nil {
				return err
			}
			return tx.Exec("UPDATE gate_t SET v = ? WHERE id = ?", v+1, 2).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := st.DB.Raw("SELECT v FROM gate_t WHERE id = ?", 2).Scan(&v).Error; err != nil {
		t.Fatal(err)
	}
	if v != 25 {
		t.Errorf("after 5 read-then-add transactions v = %d; want 25", v)
	}
	// BEGIN and COMMIT are the driver's own; the two statements were kept.
	if got := compiledSince(st, before); got != 0 {
		t.Errorf("statements compiled for 5 transactions of kept statements = %d; want 0", got)
	}
}

// TestSQLiteKeptStatementInUse: the same text run again while rows of the
// kept statement are still open gets a statement of its own; both read
// the right rows, and the kept one is used again afterwards.
func TestSQLiteKeptStatementInUse(t *testing.T) {
	st := oneConnSQLite(t)
	const q = "SELECT id FROM gate_t WHERE id >= ? ORDER BY id"
	ids := func(rows interface {
		Next() bool
		Scan(...any) error
	}, n int) []int {
		var out []int
		for len(out) < n && rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		return out
	}
	before := models.SQLiteStatementsCompiled(st)
	err := st.DB.Transaction(func(tx *gorm.DB) error {
		outer, err := tx.Raw(q, 1).Rows()
		if err != nil {
			return err
		}
		defer outer.Close()
		if got := ids(outer, 2); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("outer rows first = %v; want [1 2]", got)
		}
		inner, err := tx.Raw(q, 4).Rows()
		if err != nil {
			return err
		}
		if got := ids(inner, 10); fmt.Sprint(got) != "[4 5]" {
			t.Errorf("inner rows = %v; want [4 5]", got)
		}
		if err := inner.Close(); err != nil {
			return err
		}
		if got := ids(outer, 10); fmt.Sprint(got) != "[3 4 5]" {
			t.Errorf("outer rows after the inner query = %v; want [3 4 5]", got)
		}
		return outer.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := compiledSince(st, before); got != 2 {
		t.Errorf("compiled for a text run twice at once = %d; want 2", got)
	}
	var got []int
	if err := st.DB.Raw(q, 3).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[3 4 5]" {
		t.Errorf("the kept statement run again = %v; want [3 4 5]", got)
	}
	if got := compiledSince(st, before); got != 2 {
		t.Errorf("compiled after the kept statement ran again = %d; want 2", got)
	}
}

// TestSQLiteKeptStatementsAreBounded: a connection keeps at most
// MaxKeptStatements, the least recently used out first, and a statement
// pushed out while its rows are open still reads them to the end.
func TestSQLiteKeptStatementsAreBounded(t *testing.T) {
	st := oneConnSQLite(t)
	const q = "SELECT id FROM gate_t ORDER BY id"
	err := st.DB.Connection(func(c *gorm.DB) error {
		rows, err := c.Raw(q).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatal("no first row")
		}
		for i := 0; i < models.MaxKeptStatements+10; i++ {
			var n int
			if err := c.Raw(fmt.Sprintf("SELECT %d + ?", i), 1).Scan(&n).Error; err != nil {
				return err
			}
			if n != i+1 {
				t.Fatalf("SELECT %d + 1 = %d", i, n)
			}
		}
		if got := models.SQLiteStatementsKept(st); got != models.MaxKeptStatements {
			t.Errorf("kept after %d texts = %d; want %d", models.MaxKeptStatements+10, got, models.MaxKeptStatements)
		}
		n := 1
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				return err
			}
			n++
		}
		if n != 5 {
			t.Errorf("rows read through a statement pushed out meanwhile = %d; want 5", n)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteKeptStatementSeesNewColumns: a kept SELECT * run after the
// table changed reads the new column (SQLite compiles it again).
func TestSQLiteKeptStatementSeesNewColumns(t *testing.T) {
	st := oneConnSQLite(t)
	const q = "SELECT * FROM gate_t WHERE id = ?"
	var before map[string]any
	if err := st.DB.Raw(q, 1).Scan(&before).Error; err != nil {
		t.Fatal(err)
	}
	if _, ok := before["w"]; ok || len(before) != 2 {
		t.Fatalf("row before ALTER = %v; want id and v", before)
	}
	if err := st.DB.Exec("ALTER TABLE gate_t ADD COLUMN w INTEGER NOT NULL DEFAULT 7").Error; err != nil {
		t.Fatal(err)
	}
	var after map[string]any
	if err := st.DB.Raw(q, 1).Scan(&after).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after["w"]) != "7" {
		t.Errorf("row after ALTER = %v; want w = 7", after)
	}
}
