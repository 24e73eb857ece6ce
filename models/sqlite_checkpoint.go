package models

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sqlite "github.com/libtnb/sqlite"
)

// Checkpoints off the write path (SQLite). In WAL mode SQLite copies the
// log back into the database file (a checkpoint) by default inside the
// commit that takes the log past 1,000 pages: that writer copies the pages
// and syncs the file while it holds the write turn, and every write
// queued behind it waits too. With chat messages alone (about 2,000 a
// second) that was several checkpoints a second, 6 % of the server's CPU,
// all of it inside the turn.
//
// So the store's connections never checkpoint as they commit
// (wal_autocheckpoint(0) in SQLitePragmas), and the store runs a PASSIVE
// checkpoint every checkpointEvery while anything was written since the
// last, on a connection of its own outside the write gate. A passive
// checkpoint waits for no reader and no writer: it copies what no reader
// still needs, beside them. The next write transaction after a complete
// one starts the log again from its beginning, as before. The last
// connection to close checkpoints whatever is left, as SQLite always does.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs the store's checkpoints until close.
type checkpointer struct {
	db   *sql.DB // one connection, outside the gate
	stop chan struct{}
	done chan struct{}
	once sync.Once
	runs atomic.Int64 // checkpoints that ran
}

// startCheckpoints starts checkpointing the database of dsn whenever the
// gate has let writes through since the last checkpoint.
func startCheckpoints(dsn string, gate *sqliteGate, log *slog.Logger) (*checkpointer, error) {
	db, err := sql.Open(sqlite.DriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite for checkpoints: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(gate.turns.Load, log)
	return c, nil
}

func (c *checkpointer) run(writes func() int64, log *slog.Logger) {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	last := writes()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if n := writes(); n != last {
			last = n
			if err := c.checkpoint(); err != nil {
				log.Warn("sqlite checkpoint failed; the next write retries it", "err", err)
			}
		}
	}
}

// checkpoint runs one passive checkpoint.
func (c *checkpointer) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var busy, logPages, copied int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied); err != nil {
		return err
	}
	c.runs.Add(1)
	return nil
}

// close stops the checkpoints and closes their connection; again, it
// does nothing (Store.Close may be called twice).
func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
