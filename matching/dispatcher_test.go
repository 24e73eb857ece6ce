package matching

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestDispatcherRunsOnWakeAndSurvivesErrors(t *testing.T) {
	var passes atomic.Int32
	ran := make(chan struct{}, 10)
	d := NewDispatcher(func(ctx context.Context) error {
		n := passes.Add(1)
		ran <- struct{}{}
		if n == 1 {
			return errors.New("database unreachable")
		}
		return nil
	}, func(context.Context) error { t.Error("swept before the hour"); return nil }, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	d.Wake()
	<-ran
	d.Wake()
	<-ran
	if got := passes.Load(); got != 2 {
		t.Fatalf("passes = %d; want 2 (one per wake, the failed one did not stop the loop)", got)
	}
	cancel()
	<-d.Done()
}

func TestWakeNeverBlocks(t *testing.T) {
	noop := func(context.Context) error { return nil }
	d := NewDispatcher(noop, noop, time.Hour, nil)
	for i := 0; i < 100; i++ {
		d.Wake() // nobody runs the loop: wakes coalesce instead of blocking
	}
	if len(d.wake) != 1 {
		t.Fatalf("pending wakes = %d; want 1", len(d.wake))
	}
}

func TestDispatcherSweepsOnTicks(t *testing.T) {
	swept := make(chan struct{}, 10)
	d := NewDispatcher(func(context.Context) error { return nil },
		func(context.Context) error { swept <- struct{}{}; return nil }, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	<-swept
	<-swept
	cancel()
	<-d.Done()
}

// A sweep that hangs does not hold up offers: the loops are separate, and
// Run returns only once both have.
func TestSlowSweepDoesNotDelayOffers(t *testing.T) {
	sweeping := make(chan struct{})
	release := make(chan struct{})
	offered := make(chan struct{}, 10)
	d := NewDispatcher(func(context.Context) error { offered <- struct{}{}; return nil },
		func(context.Context) error {
			select {
			case sweeping <- struct{}{}:
			default:
			}
			<-release
			return nil
		}, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	<-sweeping // the sweep is stuck from here on
	for len(offered) > 0 {
		<-offered
	}
	d.Wake()
	<-offered // a pass ran while the sweep was stuck
	cancel()
	select {
	case <-d.Done():
		t.Fatal("Run returned while the sweep was still running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-d.Done()
}

func TestCensusAgreesWithRank(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	conv := Conversation{ID: "c", BrandID: "b", Language: "en", Skills: []string{"billing"}, Priority: 5, QueuedAt: now}
	cands := []Candidate{
		{ID: "a1", Approved: true, Presence: PresenceOnline, Capacity: 2, Active: 1, Languages: []string{"en"}, Skills: map[string]int{"billing": 3}},
		{ID: "a2", Approved: true, Presence: PresenceOnline, Capacity: 1, Active: 1, Languages: []string{"en-GB"}, Skills: map[string]int{"billing": 5}},
		{ID: "a3", Approved: true, Presence: PresenceOnline, Capacity: 3, HasPendingOffer: true, Languages: []string{"en"}, Skills: map[string]int{"billing": 4}},
		{ID: "a4", Approved: true, Presence: PresenceOnline, Capacity: 1, Languages: []string{"de"}, Skills: map[string]int{"billing": 5}},
		{ID: "a5", Approved: true, Presence: PresenceAway, Capacity: 1, Languages: []string{"en"}, Skills: map[string]int{"billing": 5}},
		{ID: "a6", Approved: true, Presence: PresenceOnline, Capacity: 1, Languages: []string{"en"}, Skills: map[string]int{"billing": 1}},
	}
	for _, rules := range []Rules{{}, {MinSkillLevel: 3}, {MinSkillLevel: 5}} {
		res := Rank(now, conv, rules, cands)
		e, f := Census(now, conv, rules, cands)
		if e != res.EligibleOnline || f != res.FreeSeats {
			t.Fatalf("rules %+v: Census = %d eligible, %d free; Rank says %d, %d", rules, e, f, res.EligibleOnline, res.FreeSeats)
		}
	}
	if e, f := Census(now, conv, Rules{MinSkillLevel: 3}, cands); e != 3 || f != 3 {
		t.Fatalf("Census = %d eligible, %d free; want a1, a2, a3 with 1 + 0 + 2 seats", e, f)
	}
}
