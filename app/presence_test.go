package app

import (
	"context"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// A socket's heartbeats renew the lease at the next flush, not one commit
// per beat; a beat within heartbeatEvery of the last is not even queued.
func TestSocketHeartbeatsAreBatched(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		ctx := context.Background()
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		tom := dialLive(t, w.ts, w.tomC, "/ws/agent")
		maya.next("hello")
		tom.next("hello")
		lastSeen := func(a *models.Agent) time.Time {
			t.Helper()
			got, err := db.Store.Agent(ctx, a.ID)
			if err != nil || got.LastSeenAt == nil {
				t.Fatalf("Agent(%s) = %+v, %v", a.ID, got, err)
			}
			return got.LastSeenAt.UTC()
		}
		start := db.Clock.Now().UTC()
		if got := lastSeen(w.maya); !got.Equal(start) {
			t.Fatalf("after hello last_seen_at = %v; want %v (hello writes at once)", got, start)
		}

		db.Clock.Advance(2 * time.Second)
		maya.send("heartbeat", struct{}{})
		maya.sync()
		if ids := w.ts.srv.beats.take(); len(ids) != 0 {
			t.Fatalf("a beat 2 s after hello was queued for %v; want none (throttled)", ids)
		}

		db.Clock.Advance(4 * time.Second)
		maya.send("heartbeat", struct{}{})
		tom.send("heartbeat", struct{}{})
		maya.sync()
		tom.sync()
		if got := lastSeen(w.maya); !got.Equal(start) {
			t.Fatalf("before the flush last_seen_at = %v; want it unchanged", got)
		}
		db.Clock.Advance(time.Second)
		if err := w.ts.srv.flushBeats(ctx); err != nil {
			t.Fatal(err)
		}
		want := start.Add(7 * time.Second)
		if m, tm := lastSeen(w.maya), lastSeen(w.tom); !m.Equal(want) || !tm.Equal(want) {
			t.Fatalf("after the flush last_seen_at = %v and %v; want both %v", m, tm, want)
		}
		if ids := w.ts.srv.beats.take(); len(ids) != 0 {
			t.Fatalf("the flush left %v queued", ids)
		}
	})
}

// A command waiting on the database does not stop the socket from reading:
// the client's ping is answered meanwhile, and the command's reply follows
// once the database lets go.
func TestSocketReadsWhileACommandWaits(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		maya := dialLive(t, w.ts, w.mayaC, "/ws/agent")
		maya.next("hello")
		// Hold Maya's row (SQLite: the whole database) in a transaction,
		// so her presence command waits.
		tx := db.Store.DB.Begin()
		if err := tx.Exec("UPDATE agents SET bio = bio WHERE id = ?", w.maya.ID).Error; err != nil {
			t.Fatal(err)
		}
		maya.send("presence", map[string]any{"status": "online", "capacity": 1})
		time.Sleep(100 * time.Millisecond) // let the command reach the database and wait
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := maya.conn.Ping(ctx)
		cancel()
		if err != nil {
			tx.Rollback()
			t.Fatalf("ping while a command waits: %v", err)
		}
		if got := maya.drain(); hasType(got, "presence") {
			tx.Rollback()
			t.Fatal("the presence reply came before the database let go")
		}
		tx.Rollback()
		if p := decodeInto[struct {
			Presence string `json:"presence"`
		}](t, maya.next("presence")); p.Presence != models.PresenceOnline {
			t.Fatalf("presence = %q; want online", p.Presence)
		}
	})
}
