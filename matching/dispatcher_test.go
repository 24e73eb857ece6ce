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
