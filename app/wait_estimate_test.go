package app

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestWaitEstimateAgainstActualWaits drives a small queue on the fake clock
// — two agents with one seat each, a 5-minute handle time, offers accepted
// 15 s after they arrive — and compares each escalation's estimated wait
// with the wait that happened. It asserts the invariants (every
// conversation assigned, an estimate for each) and logs the error; the
// figures are in the issue notes.
func TestWaitEstimateAgainstActualWaits(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		w := newLiveWorld(t, db)
		set := models.SettingsOf(w.brand)
		set.MaxWaitSeconds = 3600 // nobody is abandoned in this run
		if _, err := db.Store.UpdateBrandSettings(ctx, "", w.brand.ID, set); err != nil {
			t.Fatal(err)
		}
		for _, a := range []*models.Agent{w.maya, w.tom} {
			if err := db.Store.SetAvailability(ctx, a.ID, models.PresenceOnline, 1); err != nil {
				t.Fatal(err)
			}
		}
		const handle, step = 5 * time.Minute, 15 * time.Second
		run := func(round string, n int) (estimates map[string]int) {
			estimates = map[string]int{}
			for i := 0; i < n; i++ {
				esc := w.escalate(t, fmt.Sprintf("%s-%d", round, i))
				if esc.EstimatedWaitSeconds == nil {
					t.Fatalf("escalation %d has no estimate with two agents online", i)
				}
				estimates[esc.ID] = *esc.EstimatedWaitSeconds
			}
			for guard := 0; guard < 500; guard++ {
				w.heartbeat(t, w.maya, w.tom)
				for _, a := range []*models.Agent{w.maya, w.tom} {
					chats, _ := db.Store.AgentConversations(ctx, a.ID)
					for _, c := range chats {
						if !db.Clock.Now().Before(c.AssignedAt.Add(handle)) {
							if _, _, err := db.Store.ResolveConversation(ctx, a.ID, c.ID, "done"); err != nil {
								t.Fatal(err)
							}
						}
					}
					if o, err := db.Store.PendingOffer(ctx, a.ID); err == nil && db.Clock.Now().Sub(o.CreatedAt) >= step {
						if _, _, err := db.Store.AcceptOffer(ctx, a.ID, o.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
				w.pass(t)
				waiting, _ := db.Store.WaitingConversations(ctx, w.brand.ID)
				active := 0
				for _, a := range []*models.Agent{w.maya, w.tom} {
					chats, _ := db.Store.AgentConversations(ctx, a.ID)
					active += len(chats)
				}
				if len(waiting) == 0 && active == 0 {
					return estimates
				}
				db.Clock.Advance(step)
			}
			t.Fatalf("round %s did not drain", round)
			return nil
		}
		run("warmup", 4) // gives the brand recent handle and accept times
		estimates := run("measured", 8)
		var absErr, n float64
		for id, est := range estimates {
			c, err := db.Store.ConversationByID(ctx, id)
			if err != nil || c.AssignedAt == nil {
				t.Fatalf("conversation %s was not assigned: %+v, %v", id, c, err)
			}
			actual := c.AssignedAt.Sub(c.CreatedAt).Seconds()
			absErr += math.Abs(float64(est) - actual)
			n++
			t.Logf("estimated %4d s, waited %4.0f s", est, actual)
		}
		t.Logf("wait estimate: mean absolute error %.0f s over %.0f conversations", absErr/n, n)
	})
}
