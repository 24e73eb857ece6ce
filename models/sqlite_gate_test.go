package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm"
)

func TestStatementWrites(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"SELECT 1", false},
		{"  select * from agents WHERE id = ?", false},
		{"\nWITH a AS (SELECT updated_at, inserted FROM t) SELECT * FROM a", false},
		{"WITH c AS (UPDATE conversations SET last_seq = 1 RETURNING id) SELECT id FROM c", true},
		{"WITH m AS (SELECT 1)\nINSERT INTO messages SELECT * FROM m", true},
		{"with d as (select 1) delete from offers", true},
		{"INSERT INTO t VALUES (1)", true},
		{"UPDATE t SET v = 1", true},
		{"DELETE FROM t", true},
		{"CREATE TABLE t (id INTEGER)", true},
		{"PRAGMA foreign_keys", true}, // taken for a write: it only waits its turn
	} {
		if got := models.StatementWrites(tc.query); got != tc.want {
			t.Errorf("StatementWrites(%q) = %v; want %v", tc.query, got, tc.want)
		}
	}
}

// waitForWaiters polls until n writes wait at the store's gate; a write
// that went to SQLite's busy handler instead would never be counted.
func waitForWaiters(t *testing.T, st *models.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for models.SQLiteWritesWaiting(st) != n {
		if time.Now().After(deadline) {
			t.Fatalf("writes waiting at the gate = %d; want %d", models.SQLiteWritesWaiting(st), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdWriteTx begins a transaction on st, runs first in it and keeps it
// open (holding the gate) until the returned commit is called, which
// commits it and returns its error.
func holdWriteTx(t *testing.T, st *models.Store, first func(tx *gorm.DB) error) (commit func() error) {
	t.Helper()
	inTx, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- st.DB.Transaction(func(tx *gorm.DB) error {
			err := first(tx)
			close(inTx)
			<-release
			return err
		})
	}()
	<-inTx
	return func() error {
		close(release)
		return <-done
	}
}

func gateTable(t *testing.T, st *models.Store) {
	t.Helper()
	if err := st.DB.Exec("CREATE TABLE gate_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	if err := st.DB.Exec("INSERT INTO gate_t (id, v) VALUES (1, 0)").Error; err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteWritesTakeTurns checks the gate: while a transaction is open, a
// write of another goroutine waits at the gate (not in SQLite's busy
// handler) and goes on once the transaction commits; a read does not wait;
// a write with RETURNING holds the turn until its rows are closed.
func TestSQLiteWritesTakeTurns(t *testing.T) {
	st := modeltest.SQLite(t).Store
	gateTable(t, st)
	ctx := context.Background()

	commit := holdWriteTx(t, st, func(tx *gorm.DB) error {
		return tx.Exec("UPDATE gate_t SET v = v + 1 WHERE id = 1").Error
	})
	writeDone := make(chan error, 1)
	go func() { writeDone <- st.DB.WithContext(ctx).Exec("UPDATE gate_t SET v = v + 10 WHERE id = 1").Error }()
	waitForWaiters(t, st, 1)

	// A read goes on beside the open transaction, and sees what it has not
	// committed yet as not there.
	var v int
	if err := st.DB.WithContext(ctx).Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil {
		t.Fatalf("read while a transaction is open: %v", err)
	}
	if v != 0 {
		t.Errorf("read while a transaction is open: v = %d; want 0", v)
	}
	select {
	case err := <-writeDone:
		t.Fatalf("a write ended (%v) while another transaction was open; want it to wait", err)
	default:
	}
	if err := commit(); err != nil {
		t.Fatalf("transaction: %v", err)
	}
	if err := <-writeDone; err != nil {
		t.Fatalf("write after the transaction: %v", err)
	}
	if err := st.DB.WithContext(ctx).Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil || v != 11 {
		t.Fatalf("v = %d, %v; want 11 (both writes)", v, err)
	}

	// RETURNING: the turn is held while the rows are open.
	sqlDB, err := st.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sqlDB.QueryContext(ctx, "UPDATE gate_t SET v = v + 100 WHERE id = 1 RETURNING v")
	if err != nil {
		t.Fatal(err)
	}
	go func() { writeDone <- st.DB.WithContext(ctx).Exec("UPDATE gate_t SET v = v + 1000 WHERE id = 1").Error }()
	waitForWaiters(t, st, 1)
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if v != 111 {
		t.Errorf("RETURNING v = %d; want 111", v)
	}
	if err := <-writeDone; err != nil {
		t.Fatalf("write after the RETURNING rows closed: %v", err)
	}
	if models.SQLiteWritesWaiting(st) != 0 {
		t.Errorf("writes waiting at the end = %d; want 0", models.SQLiteWritesWaiting(st))
	}
}

// TestSQLiteWriteWaitIsBounded checks the two ways a wait at the gate ends
// without the turn: the request goes away, or the wait reaches its limit.
func TestSQLiteWriteWaitIsBounded(t *testing.T) {
	st := modeltest.SQLite(t).Store
	gateTable(t, st)
	models.SetSQLiteWriteWait(st, 200*time.Millisecond)
	ctx := context.Background()
	commit := holdWriteTx(t, st, func(tx *gorm.DB) error {
		return tx.Exec("UPDATE gate_t SET v = 1 WHERE id = 1").Error
	})

	err := st.DB.WithContext(ctx).Exec("UPDATE gate_t SET v = 2 WHERE id = 1").Error
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("write past the wait limit = %v; want database is locked", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- st.DB.WithContext(cctx).Transaction(func(tx *gorm.DB) error {
			return tx.Exec("UPDATE gate_t SET v = 3 WHERE id = 1").Error
		})
	}()
	waitForWaiters(t, st, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("transaction whose request went away = %v; want context.Canceled", err)
	}

	if err := commit(); err != nil {
		t.Fatalf("transaction: %v", err)
	}
	var v int
	if err := st.DB.Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil || v != 1 {
		t.Errorf("v = %d, %v; want 1 (only the open transaction's write)", v, err)
	}
	if err := st.DB.Exec("UPDATE gate_t SET v = 4 WHERE id = 1").Error; err != nil {
		t.Errorf("write once the gate is free: %v", err)
	}
}

// TestSQLiteWritersRace runs many writers at once, in transactions and
// outside them: every write lands, none fails.
func TestSQLiteWritersRace(t *testing.T) {
	st := modeltest.SQLite(t).Store
	gateTable(t, st)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				if (w+i)%2 == 0 {
					err = st.DB.Transaction(func(tx *gorm.DB) error {
						var v int
						if err := tx.Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil {
							return err
						}
						return tx.Exec("UPDATE gate_t SET v = ? WHERE id = 1", v+1).Error
					})
				} else {
					err = st.DB.Exec("UPDATE gate_t SET v = v + 1 WHERE id = 1").Error
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("write: %v", err)
	}
	var v int
	if err := st.DB.Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil || v != writers*each {
		t.Errorf("v = %d, %v; want %d (a read-then-write transaction lost an update?)", v, err, writers*each)
	}
}

// TestSQLiteUrgentWritesGoFirst checks the gate's two lanes: of the writes
// waiting while a transaction is open, the urgent one (the offer path) gets
// the turn first, then the others in arrival order.
func TestSQLiteUrgentWritesGoFirst(t *testing.T) {
	st := modeltest.SQLite(t).Store
	models.SetSQLiteLaneWait(st, time.Hour) // however slow the machine, none waited too long
	if err := st.DB.Exec("CREATE TABLE gate_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	commit := holdWriteTx(t, st, func(tx *gorm.DB) error {
		return tx.Exec("INSERT INTO gate_log (who) VALUES ('open')").Error
	})
	done := make(chan error, 3)
	write := func(ctx context.Context, who string) {
		done <- st.DB.WithContext(ctx).Exec("INSERT INTO gate_log (who) VALUES (?)", who).Error
	}
	go write(ctx, "first")
	waitForWaiters(t, st, 1)
	go write(ctx, "second")
	waitForWaiters(t, st, 2)
	go write(models.Urgent(ctx), "urgent")
	waitForWaiters(t, st, 3)
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	if err := st.DB.Raw("SELECT who FROM gate_log ORDER BY seq").Scan(&order).Error; err != nil {
		t.Fatal(err)
	}
	if want := []string{"open", "urgent", "first", "second"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("writes in order %v; want %v", order, want)
	}
}

// TestSQLiteGateRemembersBoundedKinds checks the cap on the statements
// whose kind the gate keeps, and that a statement past it is still judged.
func TestSQLiteGateRemembersBoundedKinds(t *testing.T) {
	st := modeltest.SQLite(t).Store
	base := models.GateKindsRemembered(st) // the migration's statements
	for i := 0; base+i < models.MaxStatementKinds+10; i++ {
		if models.GateWrites(st, fmt.Sprintf("SELECT %d", i)) {
			t.Fatalf("SELECT %d taken for a write", i)
		}
	}
	if got := models.GateKindsRemembered(st); got != models.MaxStatementKinds {
		t.Errorf("kinds remembered = %d; want the cap, %d", got, models.MaxStatementKinds)
	}
	if !models.GateWrites(st, "UPDATE gate_past_cap SET v = 1") || models.GateWrites(st, "SELECT 'past the cap'") {
		t.Error("a statement past the cap is judged wrongly")
	}
	if got := models.GateKindsRemembered(st); got != models.MaxStatementKinds {
		t.Errorf("kinds remembered after the cap = %d; want %d", got, models.MaxStatementKinds)
	}
}

// TestSQLiteWritesCounted: the gate counts each write's turn, the time
// turns were held, and the time a write waited for one; PostgreSQL has no
// gate to count.
func TestSQLiteWritesCounted(t *testing.T) {
	st := modeltest.SQLite(t).Store
	gateTable(t, st)
	before, ok := st.SQLiteWrites()
	if !ok {
		t.Fatal("SQLiteWrites on SQLite: ok = false")
	}
	for i := 0; i < 3; i++ {
		if err := st.DB.Exec("UPDATE gate_t SET v = v + 1 WHERE id = 1").Error; err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := st.DB.Raw("SELECT v FROM gate_t WHERE id = 1").Scan(&v).Error; err != nil {
		t.Fatal(err)
	}
	after, _ := st.SQLiteWrites()
	if got := after.Turns - before.Turns; got != 3 {
		t.Errorf("turns for three writes and a read = %d; want 3", got)
	}
	if after.Held <= before.Held {
		t.Errorf("time held = %v after %v; want more", after.Held, before.Held)
	}

	const hold = 30 * time.Millisecond
	commit := holdWriteTx(t, st, func(tx *gorm.DB) error { return tx.Exec("UPDATE gate_t SET v = v + 1 WHERE id = 1").Error })
	done := make(chan error, 1)
	go func() { done <- st.DB.Exec("UPDATE gate_t SET v = v + 1 WHERE id = 1").Error }()
	waitForWaiters(t, st, 1)
	time.Sleep(hold)
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	last, _ := st.SQLiteWrites()
	if got := last.Turns - after.Turns; got != 2 {
		t.Errorf("turns for a transaction and a write = %d; want 2", got)
	}
	if waited := last.Waited - after.Waited; waited < hold {
		t.Errorf("waited %v behind a transaction held %v; want at least that", waited, hold)
	}
	if held := last.Held - after.Held; held < hold {
		t.Errorf("held %v by a transaction open %v; want at least that", held, hold)
	}
}

func TestPostgresHasNoWriteGate(t *testing.T) {
	st := modeltest.Postgres(t).Store
	if _, ok := st.SQLiteWrites(); ok {
		t.Error("SQLiteWrites on PostgreSQL: ok = true; want false")
	}
	// Its writers do not queue in the process: never a backlog to shed by,
	// even with a transaction open.
	commit := holdWriteTx(t, st, func(tx *gorm.DB) error { return tx.Exec("SELECT 1").Error })
	if d := st.WriteBacklog(); d != 0 {
		t.Errorf("WriteBacklog on PostgreSQL = %v; want 0", d)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
}
