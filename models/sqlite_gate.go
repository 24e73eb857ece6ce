package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite lets one connection write at a time. Left to itself, a connection
// that finds the write lock taken polls for it in SQLite's busy handler,
// sleeping 1, 2, 5, 10 … 100 ms between tries: the lock often sits free
// while every waiter sleeps, and a waiter that keeps losing the race to
// newcomers meets busy_timeout and fails with SQLITE_BUSY. Under load that
// was most of an escalation's wait on SQLite, and a 500 now and then (a
// resolve, an accept, an escalation) at 100 escalations/s.
//
// So this process's connections take turns before SQLite's lock: a gate
// that one write holds at a time, from its BEGIN to its COMMIT or ROLLBACK
// (every transaction here is BEGIN IMMEDIATE, a write), or for the one
// statement that writes outside a transaction until its rows are closed.
// Writers wait in the gate in arrival order (those on the offer path
// first) and the next starts the moment the last one ends. Reads outside a
// transaction never wait for it (WAL mode lets them run beside the
// writer). Another process on the same file (the admin commands) still
// meets busy_timeout, as before.

// sqliteWriteWait caps how long a write waits for its turn, as SQLite's
// busy_timeout (SQLitePragmas) caps the wait for the lock itself.
const sqliteWriteWait = 5 * time.Second

// errSQLiteBusy answers a write that waited sqliteWriteWait for its turn.
var errSQLiteBusy = errors.New("database is locked: waited too long for the other writes of this process")

// laneMaxWait is how long a write that is not on the offer path waits
// while Urgent ones are served before it. Past it, it goes first: under a
// stream of escalations a resolve or a heartbeat would otherwise wait
// until its caller gave up.
const laneMaxWait = 100 * time.Millisecond

// urgentFirst reports whether the urgent lane is served next: it has
// waiters (urgent of them), and the first of the other lane, waiting since
// normalSince (zero: none waits), has not waited the gate's laneWait.
func (g *sqliteGate) urgentFirst(urgent int, normalSince, now time.Time) bool {
	return urgent > 0 && (normalSince.IsZero() || now.Sub(normalSince) < g.laneWait)
}

// sqliteGate is the turn of the process's connections to one database
// file. Writes on the offer path (Urgent) are served before the others
// that wait, each lane first come, first served: an escalation's offer
// should not queue behind a burst of chat messages (but see laneMaxWait).
type sqliteGate struct {
	mu       sync.Mutex
	busy     bool         // a write has the turn
	urgent   []gateWaiter // waiting, in arrival order
	normal   []gateWaiter
	wait     time.Duration
	laneWait time.Duration // laneMaxWait (tests change it)
	waiting  atomic.Int32  // writes waiting for the turn now (tests)
	at       time.Time     // when the turn was last taken (under mu)
	turns    atomic.Int64  // turns taken
	heldNs   atomic.Int64  // time the turn was held, summed
	waitNs   atomic.Int64  // time writes waited for it, summed
	kinds    sync.Map      // statement text → bool (writes); statements repeat
	nkinds   atomic.Int32  // entries in kinds, at most maxStatementKinds
}

// maxStatementKinds caps the statements whose kind the gate remembers:
// the texts repeat (placeholders, not values), but an IN list makes one
// per length, and a statement past the cap is only read again.
const maxStatementKinds = 4096

// gateWaiter is a write waiting for the turn: ch is closed to hand it over.
type gateWaiter struct {
	ch    chan struct{}
	since time.Time
}

func newSQLiteGate(wait time.Duration) *sqliteGate {
	return &sqliteGate{wait: wait, laneWait: laneMaxWait}
}

type urgentKey struct{}

// Urgent marks ctx's writes as on the offer path: on SQLite they take the
// write turn before the other writes waiting for it. PostgreSQL ignores it.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// enter waits for the turn, for at most g.wait.
func (g *sqliteGate) enter(ctx context.Context) error {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.at = time.Now()
		g.mu.Unlock()
		g.turns.Add(1)
		return nil
	}
	ch, start := make(chan struct{}), time.Now()
	urgent, _ := ctx.Value(urgentKey{}).(bool)
	if urgent {
		g.urgent = append(g.urgent, gateWaiter{ch, start})
	} else {
		g.normal = append(g.normal, gateWaiter{ch, start})
	}
	g.mu.Unlock()
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	defer func() { g.waitNs.Add(int64(time.Since(start))) }()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	var err error
	select {
	case <-ch:
		g.turns.Add(1)
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = errSQLiteBusy
	}
	g.mu.Lock()
	if g.drop(&g.urgent, ch) || g.drop(&g.normal, ch) {
		g.mu.Unlock()
		return err
	}
	g.mu.Unlock()
	g.leave() // handed the turn as it gave up: pass it on
	return err
}

// drop removes ch from a lane, reporting whether it was there.
func (g *sqliteGate) drop(lane *[]gateWaiter, ch chan struct{}) bool {
	for i, w := range *lane {
		if w.ch == ch {
			*lane = append((*lane)[:i], (*lane)[i+1:]...)
			return true
		}
	}
	return false
}

// leave hands the turn to the first urgent write waiting, else the first
// other one (or that one first, once it waited laneMaxWait), else frees it.
func (g *sqliteGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	g.heldNs.Add(int64(now.Sub(g.at)))
	g.at = now
	lane := &g.normal
	var since time.Time
	if len(g.normal) > 0 {
		since = g.normal[0].since
	}
	if g.urgentFirst(len(g.urgent), since, now) {
		lane = &g.urgent
	}
	if len(*lane) == 0 {
		g.busy = false
		return
	}
	close((*lane)[0].ch)
	*lane = (*lane)[1:]
}

// oldest is when the write that has waited longest began to wait (zero
// when none waits). Lanes are in arrival order.
func (g *sqliteGate) oldest() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	var t time.Time
	for _, lane := range [][]gateWaiter{g.urgent, g.normal} {
		if len(lane) > 0 && (t.IsZero() || lane[0].since.Before(t)) {
			t = lane[0].since
		}
	}
	return t
}

// writes reports whether a statement run outside a transaction may write:
// anything but a SELECT, or a WITH whose statement is a SELECT. A read
// taken for a write only waits its turn.
func (g *sqliteGate) writes(query string) bool {
	if v, ok := g.kinds.Load(query); ok {
		return v.(bool)
	}
	w := statementWrites(query)
	if g.nkinds.Load() < maxStatementKinds {
		if _, loaded := g.kinds.LoadOrStore(query, w); !loaded {
			g.nkinds.Add(1)
		}
	}
	return w
}

func statementWrites(query string) bool {
	q := strings.ToUpper(strings.TrimSpace(query))
	switch {
	case strings.HasPrefix(q, "SELECT"):
		return false
	case strings.HasPrefix(q, "WITH"):
		for _, w := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE"} {
			if containsWord(q, w) {
				return true
			}
		}
		return false
	}
	return true
}

// containsWord reports whether w occurs in s as a whole word.
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = end
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

// sqliteConnector opens the driver's connections behind the gate.
type sqliteConnector struct {
	drv   driver.Driver
	dsn   string
	gate  *sqliteGate
	stmts *stmtStats
}

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(driverConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks the context methods the gate wraps", conn)
	}
	return &gatedConn{inner: inner, gate: c.gate, stmts: newStmtCache(inner, c.stmts)}, nil
}

// driverConn is what the gate needs of the driver's connections.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnPrepareContext
}

func (c *sqliteConnector) Driver() driver.Driver { return c.drv }

// gatedConn is one connection. database/sql uses a connection from one
// goroutine at a time, so inTx needs no lock.
type gatedConn struct {
	inner driverConn
	gate  *sqliteGate
	inTx  bool
	stmts *stmtCache // compiled statements kept for the next run (sqlite_stmts.go)
}

var (
	_ driver.Conn               = (*gatedConn)(nil)
	_ driver.ConnBeginTx        = (*gatedConn)(nil)
	_ driver.ExecerContext      = (*gatedConn)(nil)
	_ driver.QueryerContext     = (*gatedConn)(nil)
	_ driver.ConnPrepareContext = (*gatedConn)(nil)
	_ driver.Pinger             = (*gatedConn)(nil)
)

func (c *gatedConn) Close() error {
	c.stmts.close()
	return c.inner.Close()
}

func (c *gatedConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx takes the turn until the transaction ends: with _txlock=immediate
// every transaction takes SQLite's write lock at BEGIN.
func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		c.gate.leave()
		return nil, err
	}
	c.inTx = true
	return &gatedTx{inner: tx, conn: c}, nil
}

// turn takes the turn for a statement outside a transaction that may
// write; release (never nil) gives it back.
func (c *gatedConn) turn(ctx context.Context, query string) (release func(), err error) {
	if c.inTx || !c.gate.writes(query) {
		return func() {}, nil
	}
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(c.gate.leave) }, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	release, err := c.turn(ctx, query)
	if err != nil {
		return nil, err
	}
	defer release()
	st, done, err := c.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done()
	return stmtExec(ctx, st, args)
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	release, err := c.turn(ctx, query)
	if err != nil {
		return nil, err
	}
	st, done, err := c.stmts.get(ctx, query)
	if err != nil {
		release()
		return nil, err
	}
	rows, err := stmtQuery(ctx, st, args)
	if err != nil {
		done()
		release()
		return nil, err
	}
	// A write with RETURNING holds SQLite's lock until its rows are done;
	// the statement is in use until then too.
	return &gatedRows{Rows: rows, release: func() { done(); release() }}, nil
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{inner: st, conn: c, query: query}, nil
}

// gatedTx gives the turn back when the transaction ends.
type gatedTx struct {
	inner driver.Tx
	conn  *gatedConn
}

func (t *gatedTx) Commit() error   { return t.end(t.inner.Commit) }
func (t *gatedTx) Rollback() error { return t.end(t.inner.Rollback) }

func (t *gatedTx) end(fn func() error) error {
	defer func() {
		t.conn.inTx = false
		t.conn.gate.leave()
	}()
	return fn()
}

// gatedStmt is a prepared statement: run outside a transaction it takes
// the turn as the connection's own statements do.
type gatedStmt struct {
	inner driver.Stmt
	conn  *gatedConn
	query string
}

func (s *gatedStmt) Close() error  { return s.inner.Close() }
func (s *gatedStmt) NumInput() int { return s.inner.NumInput() }

func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), namedValues(args))
}

func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), namedValues(args))
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	release, err := s.conn.turn(ctx, s.query)
	if err != nil {
		return nil, err
	}
	defer release()
	return stmtExec(ctx, s.inner, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	release, err := s.conn.turn(ctx, s.query)
	if err != nil {
		return nil, err
	}
	rows, err := stmtQuery(ctx, s.inner, args)
	if err != nil {
		release()
		return nil, err
	}
	return &gatedRows{Rows: rows, release: release}, nil
}

func namedValues(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func plainValues(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// gatedRows gives the turn back when the rows are closed, and passes on
// the column types gorm scans by.
type gatedRows struct {
	driver.Rows
	release func()
}

func (r *gatedRows) Close() error {
	defer r.release()
	return r.Rows.Close()
}

func (r *gatedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *gatedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *gatedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *gatedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *gatedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeOf((*any)(nil)).Elem()
}

// SQLiteWrites is what a SQLite store's gate and statement cache have
// counted since it opened; ok is false on PostgreSQL.
type SQLiteWrites struct {
	Turns              int64         // write turns taken
	Transactions       int64         // write transactions, run in Groups (sqlite_group.go)
	Groups             int64         // transactions committed together, one turn each
	Held, Waited       time.Duration // the turn held, and waited for, summed
	StatementsCompiled int64         // statements compiled (kept ones once)
	StatementsKept     int64         // statements kept compiled now
}

func (s *Store) SQLiteWrites() (w SQLiteWrites, ok bool) {
	if s.gate == nil {
		return w, false
	}
	return SQLiteWrites{
		Turns: s.gate.turns.Load(), Held: time.Duration(s.gate.heldNs.Load()), Waited: time.Duration(s.gate.waitNs.Load()),
		Transactions: s.group.txs.Load(), Groups: s.group.groups.Load(),
		StatementsCompiled: s.stmts.compiled.Load(), StatementsKept: s.stmts.kept.Load(),
	}, true
}

// WriteBacklog is how long the write that has waited longest for its turn
// on SQLite (for a group, or at the gate) has been waiting: 0 when none
// waits, and always on PostgreSQL, whose writers do not queue in this
// process. The server refuses new escalations while it is long
// (app.Config.ShedWriteWait), so the writes of the conversations already
// taken in are not the ones that fail.
func (s *Store) WriteBacklog() time.Duration {
	if s.gate == nil {
		return 0
	}
	t := s.group.oldest()
	if g := s.gate.oldest(); !g.IsZero() && (t.IsZero() || g.Before(t)) {
		t = g
	}
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}
