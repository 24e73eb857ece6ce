package models

import (
	"context"
	"database/sql"
	"time"

	"gorm.io/gorm"
)

// The statements of the offer batch on PostgreSQL, for tests that run them
// by hand on a connection of their own, to stop between them.
var (
	LockOfferAgentsSQL     = lockOfferAgentsSQL
	CreateOffersSQL        = createOffersSQL
	CreateOffersRequeueSQL = createOffersRequeueSQL
)

// Statements whose plans TestPartialIndexesServeTheirQueries checks.
var (
	DueOffersSQL    = dueOffersSQL
	LapsedOffersSQL = lapsedOffersSQL
	RecentTimesSQL  = recentTimesSQL
	ActiveChatsSQL  = "SELECT " + activeChatsSQL("?")
	// Its six placeholders: brand, priority, queued_at, id, brand, priority.
	PlaceCountSQL = "SELECT " + waitingAheadSQL("?", "?", "?", "?")
)

// SQLiteWritesWaiting counts the writes waiting for their turn at a SQLite
// store's gate (sqlite_gate.go).
func SQLiteWritesWaiting(s *Store) int { return int(s.gate.waiting.Load()) }

// SetSQLiteWriteWait changes how long a write waits for its turn; call it
// before the store is used.
func SetSQLiteWriteWait(s *Store, d time.Duration) { s.gate.wait = d }

// SetSQLiteLaneWait changes how long a write off the offer path lets
// Urgent ones go first (laneMaxWait); call it before the store is used.
func SetSQLiteLaneWait(s *Store, d time.Duration) { s.gate.laneWait = d }

// StatementWrites is the gate's test of whether a statement may write.
var StatementWrites = statementWrites

// GateWrites asks a SQLite store's gate whether a statement may write, and
// GateKindsRemembered how many statements' kinds it keeps.
func GateWrites(s *Store, query string) bool { return s.gate.writes(query) }
func GateKindsRemembered(s *Store) int       { return int(s.gate.nkinds.Load()) }

const MaxStatementKinds = maxStatementKinds

// SQLiteStatementsCompiled counts the statements a SQLite store's
// connections compiled, and SQLiteStatementsKept those they keep now
// (sqlite_stmts.go).
func SQLiteStatementsCompiled(s *Store) int { return int(s.stmts.compiled.Load()) }
func SQLiteStatementsKept(s *Store) int     { return int(s.stmts.kept.Load()) }

const MaxKeptStatements = maxKeptStatements

// StoreTx runs fn as the store's methods run their transactions (on
// SQLite, in a group: sqlite_group.go), and GroupWaiting counts the
// transactions waiting for a group.
func StoreTx(s *Store, ctx context.Context, fn func(tx *gorm.DB) error) error { return s.tx(ctx, fn) }
func GroupWaiting(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.urgent) + len(s.group.normal)
}

// PoolWaitAt is PoolWait's reckoning over the given statistics at now, for
// tests that script the pool's readings.
type PoolWaitAt struct{ w poolWatch }

func (p *PoolWaitAt) Wait(st sql.DBStats, now time.Time) time.Duration {
	return p.w.wait(func() sql.DBStats { return st }, now)
}

// AgentStatesSQL is the statement that reads the online agents' states.
func AgentStatesSQL(dialect Dialect, subset bool) string { return agentStatesSQL(dialect, subset) }
