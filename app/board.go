package app

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff/models"
)

// boardFullEvery is how often the dispatcher reads every online agent
// afresh. Between full reads it re-reads only the agents something
// happened to (touchAgent), so an offer pass with 1,000 agents online reads
// a handful of rows instead of all of them.
const boardFullEvery = time.Second

// agentBoard is the offer passes' view of the agents online. It may lag
// the database (an event another instance has not told us about yet, a
// lease renewed), never by more than boardFullEvery, and a lag costs at
// most a skipped offer: CreateOffers re-checks every claim under the
// agent's row lock, and the pass then re-reads the agents concerned and
// runs again.
type agentBoard struct {
	mu     sync.Mutex
	agents map[string]models.AgentState
	at     time.Time           // last full read
	stale  map[string]struct{} // agents to re-read before the next pass
}

// touchAgent marks agents whose state changed (an offer, accept, decline,
// resolve, presence change, expiry), here or on another instance.
func (s *Server) touchAgent(ids ...string) {
	s.board.mu.Lock()
	if s.board.stale == nil {
		s.board.stale = map[string]struct{}{}
	}
	for _, id := range ids {
		s.board.stale[id] = struct{}{}
	}
	s.board.mu.Unlock()
}

// boardAgents returns the agents online for an offer pass, in id order.
// With caching off (tests) every call reads the database.
func (s *Server) boardAgents(ctx context.Context) ([]models.AgentState, error) {
	if s.cfg.SnapshotTTL <= 0 {
		return s.ds.OnlineAgents(ctx, presenceLease)
	}
	b := &s.board
	b.mu.Lock()
	full := b.agents == nil || time.Since(b.at) >= boardFullEvery
	ids := make([]string, 0, len(b.stale))
	for id := range b.stale {
		ids = append(ids, id)
	}
	// Taken before the read: a touch during it (its change committed
	// after the read began) stays for the next pass.
	clear(b.stale)
	b.mu.Unlock()

	var fresh []models.AgentState
	var err error
	if full {
		fresh, err = s.liveAgents(ctx)
	} else if len(ids) > 0 {
		if fresh, err = s.ds.AgentStates(ctx, presenceLease, ids); err == nil {
			err = s.withProfiles(ctx, fresh)
		}
	}
	if err != nil {
		s.touchAgent(ids...)
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if full {
		b.agents = make(map[string]models.AgentState, len(fresh))
		b.at = time.Now()
	} else {
		for _, id := range ids {
			delete(b.agents, id) // gone offline unless read again below
		}
	}
	for _, a := range fresh {
		b.agents[a.ID] = a
	}
	since := s.ds.Now().Add(-presenceLease)
	out := make([]models.AgentState, 0, len(b.agents))
	for _, a := range b.agents {
		if a.LastSeenAt != nil && a.LastSeenAt.After(since) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y models.AgentState) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// boardOffered records offers this pass made: those agents now have an
// offer pending, which the next pass must see without a read.
func (s *Server) boardOffered(agentIDs []string) {
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	for _, id := range agentIDs {
		if a, ok := s.board.agents[id]; ok {
			a.PendingOffer = true
			s.board.agents[id] = a
		}
	}
}
