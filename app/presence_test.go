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
