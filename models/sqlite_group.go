package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Group commit on SQLite. The file has one writer, and every write
// transaction paid for a turn of its own: the hand-over to the next
// writer's goroutine, BEGIN, and a COMMIT that appends its pages to the
// WAL and waits for fdatasync. At 200 escalations/s the turn was held
// 95–99 % of the time, about a quarter of it in commits.
//
// So the write transactions that wait for the turn are run together: one
// of the waiting callers (the leader) takes the transactions queued at
// that moment, up to maxGroup (those on the offer path, Urgent, in a group
// of their own while any wait), and runs them one after another in one
// BEGIN … COMMIT, each inside a savepoint of its own. A transaction whose
// function fails (or panics) is rolled back to its savepoint and the
// others go on; each caller is answered after the COMMIT, so what a caller
// sees as committed is durable, as before. Functions run serially, in
// arrival order within their lane: each sees what the ones before it
// wrote, as if each had had its own turn.
//
// If the transaction itself breaks (the COMMIT fails, or a savepoint is
// gone because SQLite rolled everything back after an I/O error), every
// transaction of the group that had run gets the error, and nothing of it
// is stored; those not yet run wait for the next group.

// maxGroup caps the transactions one COMMIT carries, so the first of a
// group is not kept waiting for many after it.
const maxGroup = 32

// errGroupAborted answers the transactions of a group whose transaction
// broke after they had run: nothing they wrote was stored.
var errGroupAborted = errors.New("the write was undone with the others of its group")

// txGroup queues the store's write transactions on SQLite.
type txGroup struct {
	store   *Store
	mu      sync.Mutex
	urgent  []*groupTx
	normal  []*groupTx
	leading bool // a caller is running groups

	groups atomic.Int64 // groups committed or rolled back
	txs    atomic.Int64 // transactions run in them
}

// groupTx is one caller's transaction.
type groupTx struct {
	ctx   context.Context
	fn    func(tx *gorm.DB) error
	wake  chan struct{} // signalled once: answered, or asked to lead
	since time.Time     // when it was queued

	// Set under the group's mu before wake is signalled.
	answered bool
	lead     bool
	err      error
	panicked bool
	panicVal any
}

// run runs fn in a savepoint of the next group and answers its error once
// the group has committed. A panic in fn is raised again here. A
// transaction that waits longer than sqliteWriteWait for its group fails
// with errSQLiteBusy without having run, as a write waiting that long at
// the gate does (and as a store method called inside another's
// transaction would, instead of waiting for itself forever).
func (g *txGroup) run(ctx context.Context, fn func(tx *gorm.DB) error) error {
	r := &groupTx{ctx: ctx, fn: fn, wake: make(chan struct{}, 1), since: time.Now()}
	g.mu.Lock()
	g.lane(r, false)
	first := !g.leading
	if first {
		g.leading, r.lead = true, true
	}
	g.mu.Unlock()
	// The wait ignores ctx, as the leader skips a transaction whose ctx
	// ended before it runs.
	if !first && !g.wait(r) {
		return errSQLiteBusy
	}
	g.mu.Lock()
	lead := r.lead && !r.answered
	g.mu.Unlock()
	if lead {
		g.lead(r)
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// wait waits for r's answer or its turn to lead, for at most
// g.store.gate.wait. It reports false if r gave up: it left the queue
// without having run.
func (g *txGroup) wait(r *groupTx) bool {
	t := time.NewTimer(g.store.gate.wait)
	defer t.Stop()
	select {
	case <-r.wake:
		return true
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.answered || r.lead { // the signal is on its way
		<-r.wake
		return true
	}
	for _, lane := range []*[]*groupTx{&g.urgent, &g.normal} {
		if i := slices.Index(*lane, r); i >= 0 {
			*lane = slices.Delete(*lane, i, i+1)
			return false
		}
	}
	// Taken into a group that is running: wait for its answer.
	g.mu.Unlock()
	<-r.wake
	g.mu.Lock()
	return true
}

// lane adds r to the back of its lane, or to the front.
func (g *txGroup) lane(r *groupTx, front bool) {
	lane := &g.normal
	if urgent, _ := r.ctx.Value(urgentKey{}).(bool); urgent {
		lane = &g.urgent
	}
	if front {
		*lane = append([]*groupTx{r}, *lane...)
	} else {
		*lane = append(*lane, r)
	}
}

// lead runs groups until own is answered (its group is the first or, if
// a group broke before own ran, a later one), then hands the lead to the
// first transaction waiting, if any.
func (g *txGroup) lead(own *groupTx) {
	defer func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		// The first waiting leads; it stays in its lane, to run in the
		// group it takes.
		for _, lane := range [][]*groupTx{g.urgent, g.normal} {
			if len(lane) > 0 {
				lane[0].lead = true
				lane[0].wake <- struct{}{}
				return
			}
		}
		g.leading = false
	}()
	for {
		g.mu.Lock()
		if own.answered {
			g.mu.Unlock()
			return
		}
		batch := g.take(maxGroup)
		g.mu.Unlock()
		g.requeue(g.runGroup(batch))
	}
}

// take removes up to n transactions from the front of a lane (g.mu
// held): the urgent ones while any wait, so a group on the offer path is
// answered without waiting for other writes run in it, else the others;
// but the others first once their first waited laneMaxWait.
func (g *txGroup) take(n int) []*groupTx {
	lane := &g.normal
	var since time.Time
	if len(g.normal) > 0 {
		since = g.normal[0].since
	}
	if g.store.gate.urgentFirst(len(g.urgent), since, time.Now()) {
		lane = &g.urgent
	}
	k := min(n, len(*lane))
	out := slices.Clone((*lane)[:k])
	*lane = (*lane)[k:]
	return out
}

// oldest is when the transaction that has waited longest for a group was
// queued (zero when none waits). Lanes are in arrival order: those put
// back in front are older still.
func (g *txGroup) oldest() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	var t time.Time
	for _, lane := range [][]*groupTx{g.urgent, g.normal} {
		if len(lane) > 0 && (t.IsZero() || lane[0].since.Before(t)) {
			t = lane[0].since
		}
	}
	return t
}

// requeue puts transactions not run back at the front of their lanes, in
// their order.
func (g *txGroup) requeue(rs []*groupTx) {
	if len(rs) == 0 {
		return // the common case: every transaction of the group ran
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(rs) - 1; i >= 0; i-- {
		g.lane(rs[i], true)
	}
}

// answer tells the transactions their outcome.
func (g *txGroup) answer(rs []*groupTx) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range rs {
		r.answered = true
		if !r.lead {
			r.wake <- struct{}{}
		}
	}
}

// runGroup runs batch in one transaction and answers each. It returns the
// transactions it did not run (the transaction broke before them).
func (g *txGroup) runGroup(batch []*groupTx) (notRun []*groupTx) {
	g.groups.Add(1)
	var tx *gorm.DB
	defer func() {
		// A panic here outside the functions (they are recovered in call)
		// must not keep the turn nor leave the others waiting forever.
		if p := recover(); p != nil {
			if tx != nil {
				_ = tx.Rollback() // database/sql ignores it after a commit
			}
			var left []*groupTx
			g.mu.Lock()
			for _, r := range batch {
				if !r.answered {
					r.err = fmt.Errorf("%w: %v", errGroupAborted, p)
					left = append(left, r)
				}
			}
			g.mu.Unlock()
			g.answer(left)
			panic(p)
		}
	}()
	// The first transaction's context takes the turn (Urgent goes first);
	// the statements do not end with any caller's context.
	tx = g.store.DB.WithContext(context.WithoutCancel(batch[0].ctx)).Begin()
	if tx.Error != nil {
		for _, r := range batch {
			r.err = tx.Error
		}
		g.answer(batch)
		return nil
	}
	savepoints := len(batch) > 1
	var ran []*groupTx
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			g.answer([]*groupTx{r})
			continue
		}
		// One name serves: each savepoint is released before the next.
		const sp = "handoff_group"
		if savepoints {
			if err := tx.Exec("SAVEPOINT " + sp).Error; err != nil {
				return g.abort(tx, ran, batch[i:], err)
			}
		}
		g.txs.Add(1)
		ran = append(ran, r)
		r.err = g.call(tx.WithContext(context.WithoutCancel(r.ctx)), r)
		if !savepoints {
			continue
		}
		var err error
		if r.err != nil {
			err = tx.Exec("ROLLBACK TO " + sp).Error
		}
		if err == nil {
			// RELEASE fails if the transaction is gone: then nothing of
			// the group is stored, whatever the functions returned.
			err = tx.Exec("RELEASE " + sp).Error
		}
		if err != nil {
			return g.abort(tx, ran, batch[i+1:], err)
		}
	}
	var err error
	if !savepoints && len(ran) == 1 && ran[0].err != nil {
		err = tx.Rollback().Error
		if err == nil {
			g.answer(ran)
			return nil
		}
	} else {
		err = tx.Commit().Error
	}
	if err != nil {
		for _, r := range ran {
			if r.err == nil {
				r.err = err
			}
		}
	}
	g.answer(ran)
	return nil
}

// call runs one function, turning a panic into an error here (raised again
// in its caller).
func (g *txGroup) call(tx *gorm.DB, r *groupTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked, r.panicVal = true, p
			err = fmt.Errorf("panic in a write transaction: %v", p)
		}
	}()
	return r.fn(tx)
}

// abort rolls the broken transaction back: the transactions that ran get
// the error (their own if they had one), the rest go back to the queue.
func (g *txGroup) abort(tx *gorm.DB, ran, rest []*groupTx, cause error) []*groupTx {
	_ = tx.Rollback() // may fail: SQLite may have rolled back already
	for _, r := range ran {
		if r.err == nil {
			r.err = fmt.Errorf("%w: %v", errGroupAborted, cause)
		}
	}
	g.answer(ran)
	return rest
}
