package models_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models/modeltest"
)

// TestSQLiteCheckpointsOffTheWritePath: the store's connections never
// checkpoint as they commit, and the store's own checkpoints keep the WAL
// from growing: about 6 MB written in 30 transactions leaves a WAL of
// about one transaction's pages, where with no checkpoint it would hold
// all of them, and SQLite's own (every 1,000 pages) about 4 MB.
func TestSQLiteCheckpointsOffTheWritePath(t *testing.T) {
	db := modeltest.SQLite(t)
	var auto int
	if err := db.Store.DB.Raw("PRAGMA wal_autocheckpoint").Scan(&auto).Error; err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, %v; want 0 (the store checkpoints)", auto, err)
	}
	if err := db.Store.DB.Exec("CREATE TABLE ck (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	checkpoints := func() int64 {
		w, _ := db.Store.SQLiteWrites()
		return w.Checkpoints
	}
	body := strings.Repeat("x", 2000)
	for range 30 {
		before := checkpoints()
		rows := make([]string, 100)
		for i := range rows {
			rows[i] = body
		}
		err := db.Store.DB.Exec("INSERT INTO ck (body) SELECT value FROM json_each(?)", `["`+strings.Join(rows, `","`)+`"]`).Error
		if err != nil {
			t.Fatal(err)
		}
		// The next checkpoint comes within checkpointEvery of a write.
		for deadline := time.Now().Add(10 * time.Second); checkpoints() == before; {
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint 10 s after a write (%d so far)", before)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var n int
	if err := db.Store.DB.Raw("SELECT count(*) FROM ck").Scan(&n).Error; err != nil || n != 3000 {
		t.Fatalf("rows = %d, %v; want 3000", n, err)
	}
	st, err := os.Stat(strings.TrimPrefix(db.URL, "sqlite:") + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 2<<20 {
		t.Fatalf("WAL of %d bytes after 30 checkpointed writes of about 200 KB each; want at most 2 MB", st.Size())
	}
	t.Logf("WAL %d bytes after %d checkpoints", st.Size(), checkpoints())
}
