package matching

import (
	"context"
	"log/slog"
	"time"
)

// Pass is one round of dispatch work: sweep expiries and leases, then offer
// queued conversations. The store side lives with the caller; the loop here
// only decides when to run it.
type Pass func(ctx context.Context) error

// Dispatcher runs a Pass at once when woken (an escalation, an agent going
// online or freeing a seat, a decline) and a fuller sweep periodically that
// catches expiries, lapsed presence and ladder steps. Wakes that arrive
// during a pass coalesce into one more pass, so a burst of events costs at
// most two passes.
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

// Run loops until ctx ends. A failing pass is logged and retried at the
// next wake or sweep; it never stops the loop.
func (d *Dispatcher) Run(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		run := d.pass
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
			run = d.sweep
		}
		if err := run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch pass failed", "err", err)
		}
	}
}

// Done is closed when Run has returned.
func (d *Dispatcher) Done() <-chan struct{} { return d.done }
