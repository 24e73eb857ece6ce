package models

import (
	"container/list"
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// SQLite compiles every statement before it runs it, and the compiling
// (sqlite3_prepare) was a fifth of the server's CPU on SQLite under load:
// gorm runs statements straight on the connection, and the driver compiles
// and throws away each one. The statements repeat (placeholders, not
// values), so each connection keeps its most recently used compiled
// statements and runs a repeated text on the one it kept; the driver
// resets a kept statement after each run instead of finalizing it.

// maxKeptStatements caps the statements one connection keeps compiled,
// least recently used first out. The store's hot path has about forty
// texts; an IN list makes one per length.
const maxKeptStatements = 128

// stmtCache is one connection's kept statements. database/sql uses a
// connection from one goroutine at a time, so it needs no lock.
type stmtCache struct {
	conn  driver.ConnPrepareContext
	stats *stmtStats
	bySQL map[string]*list.Element // → *keptStmt
	order list.List                // front: most recently used
}

// keptStmt is a compiled statement; busy while rows it returned are open
// (the same text run again meanwhile compiles a statement of its own).
type keptStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool
}

// stmtStats counts over all of a store's connections (tests, metrics).
type stmtStats struct {
	compiled atomic.Int64 // statements compiled
	kept     atomic.Int64 // statements kept now
}

func newStmtCache(conn driver.ConnPrepareContext, stats *stmtStats) *stmtCache {
	return &stmtCache{conn: conn, stats: stats, bySQL: make(map[string]*list.Element)}
}

// get returns a statement for query and a done func (never nil after a nil
// error) that gives it back: a kept statement is kept, any other closed.
func (c *stmtCache) get(ctx context.Context, query string) (driver.Stmt, func(), error) {
	if e, ok := c.bySQL[query]; ok {
		k := e.Value.(*keptStmt)
		if !k.busy {
			c.order.MoveToFront(e)
			k.busy = true
			return k.stmt, k.done(k.stmt), nil
		}
	}
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	c.stats.compiled.Add(1)
	if _, ok := c.bySQL[query]; ok {
		// The kept one is busy: this one is used once.
		return st, func() { _ = st.Close() }, nil
	}
	k := &keptStmt{query: query, stmt: st, busy: true}
	c.bySQL[query] = c.order.PushFront(k)
	c.stats.kept.Add(1)
	for c.order.Len() > maxKeptStatements {
		c.evict(c.order.Back())
	}
	return st, k.done(st), nil
}

// done gives st back: kept for the next run, or closed if it was evicted
// while in use.
func (k *keptStmt) done(st driver.Stmt) func() {
	return func() {
		if k.stmt == nil {
			_ = st.Close()
			return
		}
		k.busy = false
	}
}

// evict forgets a kept statement, closing it unless rows of it are open
// (their done func closes it then).
func (c *stmtCache) evict(e *list.Element) {
	k := e.Value.(*keptStmt)
	c.order.Remove(e)
	delete(c.bySQL, k.query)
	c.stats.kept.Add(-1)
	if !k.busy {
		_ = k.stmt.Close()
	}
	k.stmt = nil
}

// close closes every kept statement; the connection is closing.
func (c *stmtCache) close() {
	for c.order.Len() > 0 {
		c.evict(c.order.Back())
	}
}

// stmtExec and stmtQuery run a driver statement with a context.
func stmtExec(ctx context.Context, st driver.Stmt, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := st.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return st.Exec(plainValues(args)) //nolint:staticcheck // the driver's only form
}

func stmtQuery(ctx context.Context, st driver.Stmt, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := st.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return st.Query(plainValues(args)) //nolint:staticcheck // the driver's only form
}
