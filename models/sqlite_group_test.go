package models_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm"
)

// groupFixture is a SQLite store with a table of its own, and a way to keep
// the store's writer busy while transactions queue behind it.
type groupFixture struct {
	t  *testing.T
	st *models.Store
}

func newGroupFixture(t *testing.T) *groupFixture {
	db := modeltest.SQLite(t)
	if err := db.Store.DB.Exec("CREATE TABLE g (id INTEGER PRIMARY KEY, who TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	return &groupFixture{t: t, st: db.Store}
}

// busy starts a transaction that holds the writer until the returned
// release is called; release waits for it and checks it committed.
func (f *groupFixture) busy() (release func()) {
	f.t.Helper()
	in, out, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- models.StoreTx(f.st, context.Background(), func(tx *gorm.DB) error {
			close(in)
			<-out
			return tx.Exec("INSERT INTO g (who) VALUES ('busy')").Error
		})
	}()
	<-in
	return func() {
		close(out)
		if err := <-done; err != nil {
			f.t.Errorf("the busy transaction: %v", err)
		}
	}
}

// queue runs fn in a transaction of its own goroutine; the result arrives
// on the channel (a panic as an error saying so).
func (f *groupFixture) queue(ctx context.Context, fn func(tx *gorm.DB) error) <-chan error {
	res := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				res <- fmt.Errorf("panicked: %v", p)
			}
		}()
		res <- models.StoreTx(f.st, ctx, fn)
	}()
	return res
}

// waitQueued polls until n transactions wait for a group.
func (f *groupFixture) waitQueued(n int) {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); models.GroupWaiting(f.st) != n; {
		if time.Now().After(deadline) {
			f.t.Fatalf("%d transactions wait for a group; want %d", models.GroupWaiting(f.st), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// rows lists the g rows' who, in insertion order.
func (f *groupFixture) rows() []string {
	f.t.Helper()
	var who []string
	if err := f.st.DB.Raw("SELECT who FROM g ORDER BY id").Scan(&who).Error; err != nil {
		f.t.Fatal(err)
	}
	return who
}

func insert(who string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error { return tx.Exec("INSERT INTO g (who) VALUES (?)", who).Error }
}

// Transactions that wait together are committed together, each in its own
// savepoint: one that fails or panics is undone alone and answered with
// its error (its panic raised again in its caller), the others are stored,
// and all of them in one commit.
func TestSQLiteGroupCommit(t *testing.T) {
	f := newGroupFixture(t)
	before, _ := f.st.SQLiteWrites()
	release := f.busy()
	ctx := context.Background()
	errBad := errors.New("bad input")
	var results []<-chan error
	for i := range 20 {
		who := fmt.Sprintf("t%02d", i)
		switch {
		case i%5 == 0:
			results = append(results, f.queue(ctx, func(tx *gorm.DB) error {
				if err := insert(who)(tx); err != nil {
					return err
				}
				return fmt.Errorf("%s: %w", who, errBad)
			}))
		case i == 7:
			results = append(results, f.queue(ctx, func(tx *gorm.DB) error {
				if err := insert(who)(tx); err != nil {
					return err
				}
				panic("t07 broke")
			}))
		default:
			results = append(results, f.queue(ctx, insert(who)))
		}
		f.waitQueued(i + 1) // in this order
	}
	release()
	var want []string
	for i, res := range results {
		err := <-res
		switch {
		case i%5 == 0:
			if !errors.Is(err, errBad) {
				t.Errorf("t%02d = %v; want its own error", i, err)
			}
		case i == 7:
			if err == nil || err.Error() != "panicked: t07 broke" {
				t.Errorf("t07 = %v; want its panic raised again in its caller", err)
			}
		default:
			if err != nil {
				t.Errorf("t%02d = %v; want stored", i, err)
			}
			want = append(want, fmt.Sprintf("t%02d", i))
		}
	}
	if got := f.rows(); !slices.Equal(got, append([]string{"busy"}, want...)) {
		t.Fatalf("rows %v; want busy then %v (the failed and the panicked undone)", got, want)
	}
	after, _ := f.st.SQLiteWrites()
	if g, n := after.Groups-before.Groups, after.Transactions-before.Transactions; g != 2 || n != 21 {
		t.Fatalf("%d transactions in %d groups; want 21 in 2 (the busy one, then the 20 that waited)", n, g)
	}
}

// A transaction whose context ended while it waited is not run; those on
// the offer path (Urgent) run first, in a group of their own, the rest in
// arrival order; a gorm transaction nested in a grouped one is its own
// savepoint.
func TestSQLiteGroupOrderAndCancel(t *testing.T) {
	f := newGroupFixture(t)
	models.SetSQLiteLaneWait(f.st, time.Hour) // however slow the machine, none waited too long
	before, _ := f.st.SQLiteWrites()
	release := f.busy()
	ctx := context.Background()
	a := f.queue(ctx, insert("a"))
	f.waitQueued(1)
	gone, cancel := context.WithCancel(ctx)
	ran := false
	b := f.queue(gone, func(tx *gorm.DB) error { ran = true; return insert("b")(tx) })
	f.waitQueued(2)
	c := f.queue(models.Urgent(ctx), insert("c"))
	f.waitQueued(3)
	d := f.queue(ctx, func(tx *gorm.DB) error {
		if err := insert("d")(tx); err != nil {
			return err
		}
		inner := tx.Transaction(func(tx *gorm.DB) error {
			if err := insert("d-inner")(tx); err != nil {
				return err
			}
			return errors.New("inner fails")
		})
		if inner == nil {
			return errors.New("the inner transaction did not fail")
		}
		return insert("d-after")(tx)
	})
	f.waitQueued(4)
	cancel()
	release()
	for name, res := range map[string]<-chan error{"a": a, "c": c, "d": d} {
		if err := <-res; err != nil {
			t.Errorf("%s = %v; want stored", name, err)
		}
	}
	if err := <-b; !errors.Is(err, context.Canceled) || ran {
		t.Errorf("cancelled while waiting = %v (ran %v); want context.Canceled, not run", err, ran)
	}
	if got, want := f.rows(), []string{"busy", "c", "a", "d", "d-after"}; !slices.Equal(got, want) {
		t.Fatalf("rows %v; want %v (urgent first, the inner transaction undone)", got, want)
	}
	if after, _ := f.st.SQLiteWrites(); after.Groups-before.Groups != 3 {
		t.Fatalf("%d groups; want 3: the busy one, the urgent one, the rest", after.Groups-before.Groups)
	}
}

// When the group's transaction breaks (here a function ends it behind the
// group's back, as SQLite does after an I/O error), nothing of the group
// that had run is stored and each of those is told; those after it run in
// the next group.
func TestSQLiteGroupAborted(t *testing.T) {
	f := newGroupFixture(t)
	release := f.busy()
	ctx := context.Background()
	w := f.queue(ctx, insert("w"))
	f.waitQueued(1)
	x := f.queue(ctx, func(tx *gorm.DB) error {
		if err := insert("x")(tx); err != nil {
			return err
		}
		return tx.Exec("ROLLBACK").Error
	})
	f.waitQueued(2)
	y := f.queue(ctx, insert("y"))
	f.waitQueued(3)
	release()
	for name, res := range map[string]<-chan error{"w": w, "x": x} {
		if err := <-res; err == nil || !strings.Contains(err.Error(), "undone with the others of its group") {
			t.Errorf("%s = %v; want told it was undone", name, err)
		}
	}
	if err := <-y; err != nil {
		t.Errorf("y = %v; want stored in the next group", err)
	}
	if got, want := f.rows(), []string{"busy", "y"}; !slices.Equal(got, want) {
		t.Fatalf("rows %v; want %v", got, want)
	}
	if err := models.StoreTx(f.st, ctx, insert("z")); err != nil || !slices.Contains(f.rows(), "z") {
		t.Fatalf("a write after the broken group = %v; want stored", err)
	}
}

// A transaction that waits too long for its group fails without running,
// as at the gate; so does a store transaction begun inside another (which
// would otherwise wait for itself), and the writer goes on.
func TestSQLiteGroupWaitBounded(t *testing.T) {
	f := newGroupFixture(t)
	models.SetSQLiteWriteWait(f.st, 50*time.Millisecond)
	ctx := context.Background()
	var nested error
	err := models.StoreTx(f.st, ctx, func(tx *gorm.DB) error {
		nested = models.StoreTx(f.st, ctx, insert("nested"))
		return insert("outer")(tx)
	})
	if err != nil || nested == nil || !strings.Contains(nested.Error(), "waited too long") {
		t.Fatalf("outer = %v, nested = %v; want the outer stored and the nested refused", err, nested)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := models.StoreTx(f.st, ctx, insert(fmt.Sprintf("after%d", i))); err != nil {
				t.Errorf("after%d = %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := f.rows(); len(got) != 11 || got[0] != "outer" {
		t.Fatalf("rows %v; want outer and the 10 after it", got)
	}
}

// A write off the offer path lets Urgent ones go first only for a while
// (laneMaxWait): one that has waited that long goes before them, at the
// gate and in the groups, so a stream of escalations cannot starve the
// resolves and heartbeats behind it.
func TestSQLiteWaitingWritesAreNotStarved(t *testing.T) {
	f := newGroupFixture(t)
	models.SetSQLiteLaneWait(f.st, 5*time.Millisecond)
	ctx := context.Background()

	// Groups: the normal one waited past the limit, so it runs first.
	release := f.busy()
	n := f.queue(ctx, insert("group-normal"))
	f.waitQueued(1)
	time.Sleep(20 * time.Millisecond)
	u := f.queue(models.Urgent(ctx), insert("group-urgent"))
	f.waitQueued(2)
	release()
	for _, res := range []<-chan error{n, u} {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}

	// The gate (statements outside a transaction): the same.
	release = f.busy()
	done := make(chan error, 2)
	write := func(ctx context.Context, who string) {
		done <- f.st.DB.WithContext(ctx).Exec("INSERT INTO g (who) VALUES (?)", who).Error
	}
	go write(ctx, "gate-normal")
	waitForWaiters(t, f.st, 1)
	time.Sleep(20 * time.Millisecond)
	go write(models.Urgent(ctx), "gate-urgent")
	waitForWaiters(t, f.st, 2)
	release()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"busy", "group-normal", "group-urgent", "busy", "gate-normal", "gate-urgent"}
	if got := f.rows(); !slices.Equal(got, want) {
		t.Fatalf("rows %v; want %v (the writes that waited past the limit first)", got, want)
	}
}

// WriteBacklog says how long the write waiting longest (for a group or at
// the gate) has waited: nothing while the writer is merely busy, at least
// the time slept once writes queue behind it, nothing once they ran.
func TestSQLiteWriteBacklog(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	if d := f.st.WriteBacklog(); d != 0 {
		t.Fatalf("backlog of an idle store = %v; want 0", d)
	}
	release := f.busy()
	if d := f.st.WriteBacklog(); d != 0 {
		t.Fatalf("backlog with one write running, none waiting = %v; want 0", d)
	}
	gate := make(chan error, 1)
	go func() { gate <- f.st.DB.WithContext(ctx).Exec("INSERT INTO g (who) VALUES ('gate')").Error }()
	waitForWaiters(t, f.st, 1)
	time.Sleep(30 * time.Millisecond)
	grouped := f.queue(ctx, insert("grouped"))
	f.waitQueued(1)
	if d := f.st.WriteBacklog(); d < 30*time.Millisecond {
		t.Fatalf("backlog = %v; want at least the 30 ms the gate's waiter has waited", d)
	}
	release()
	for _, res := range []<-chan error{gate, grouped} {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	if d := f.st.WriteBacklog(); d != 0 {
		t.Fatalf("backlog after every write ran = %v; want 0", d)
	}
}
