package matching

import (
	"context"
	"log/slog"
	"time"
)

// Pass is one round of dispatch work. The store side lives with the
// caller; the loops here only decide when to run it.
type Pass func(ctx context.Context) error

// Dispatcher runs two loops. The offer loop runs pass at once when woken (an
// escalation, an agent going online or freeing a seat, a decline) and at
// least every interval; wakes that arrive during a pass coalesce into one
// more pass, so a burst of events costs at most two passes. The sweep loop
// runs sweep every interval (expiries, lapsed presence, abandonment, queue
// updates) on its own, so a slow sweep never delays an offer, and wakes the
// offer loop after each sweep for what it put back in the queue.
type Dispatcher struct {
	pass  Pass
	sweep Pass
	every time.Duration
	log   *slog.Logger
	wake  chan struct{}
	done  chan struct{}
}

// NewDispatcher returns a dispatcher that runs pass when woken and sweep
// every interval.
func NewDispatcher(pass, sweep Pass, every time.Duration, log *slog.Logger) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	return &Dispatcher{pass: pass, sweep: sweep, every: every, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Wake asks for a pass as soon as possible. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run runs both loops until ctx ends. A failing pass is logged and retried
// at the next wake or tick; it never stops a loop.
func (d *Dispatcher) Run(ctx context.Context) {
	defer close(d.done)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		d.sweepLoop(ctx)
	}()
	defer func() { <-swept }()
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		d.run(ctx, "offer", d.pass)
	}
}

func (d *Dispatcher) sweepLoop(ctx context.Context) {
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.run(ctx, "sweep", d.sweep)
		d.Wake()
	}
}

func (d *Dispatcher) run(ctx context.Context, kind string, p Pass) {
	if err := p(ctx); err != nil && ctx.Err() == nil {
		d.log.Error("dispatch pass failed", "kind", kind, "err", err)
	}
}

// Done is closed when Run has returned.
func (d *Dispatcher) Done() <-chan struct{} { return d.done }
