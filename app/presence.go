package app

import (
	"context"
	"sync"
	"time"
)

// beatFlushEvery is how often the heartbeats an instance received are
// written, all in one statement. The presence lease is 30 s, so a lease
// renewed up to a second late changes nothing, and 1,000 agents beating
// every 10 s cost one commit a second instead of a hundred.
const beatFlushEvery = time.Second

// beats collects the agents whose sockets sent a heartbeat since the last
// flush.
type beats struct {
	mu  sync.Mutex
	due map[string]struct{}
}

// note records a heartbeat of the agent, to be written at the next flush.
func (b *beats) note(agentID string) {
	b.mu.Lock()
	if b.due == nil {
		b.due = map[string]struct{}{}
	}
	b.due[agentID] = struct{}{}
	b.mu.Unlock()
}

// take empties the batch and returns it.
func (b *beats) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.due))
	for id := range b.due {
		ids = append(ids, id)
	}
	clear(b.due)
	return ids
}

// flushBeats writes the batched heartbeats. Agents whose row was busy, or
// the whole batch when the write failed, wait for the next flush.
func (s *Server) flushBeats(ctx context.Context) error {
	ids := s.beats.take()
	if len(ids) == 0 {
		return nil
	}
	skipped, err := s.ds.Heartbeats(ctx, ids)
	if err != nil {
		skipped = ids
	}
	for _, id := range skipped {
		s.beats.note(id)
	}
	return err
}

// runBeats flushes heartbeats every beatFlushEvery until ctx ends, then
// once more. Every instance runs it: the lease is renewed wherever the
// agent is connected, whichever instance holds the dispatcher's turn.
func (s *Server) runBeats(ctx context.Context) {
	t := time.NewTicker(beatFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.flushBeats(final)
			cancel()
			return
		case <-t.C:
			if err := s.flushBeats(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("heartbeat flush failed; retrying", "err", err)
			}
		}
	}
}
