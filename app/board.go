package app

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
)

// boardFullEvery is how often the dispatcher reads every online agent
// afresh. Between full reads it re-reads only the agents something
// happened to (touchAgent), so an offer pass with 1,000 agents online reads
// a handful of rows instead of all of them. The sweep makes the full read
// (refreshBoard), beside the offer passes rather than in one of them: an
// offer pass reads everyone itself only when the board is missing or
// boardStaleAfter old (the sweep is late).
const (
	boardFullEvery  = time.Second
	boardStaleAfter = 3 * boardFullEvery
)

// agentBoard is the offer passes' view of the agents online. It may lag
// the database (an event another instance has not told us about yet, a
// lease renewed), never by more than boardFullEvery, and a lag costs at
// most a skipped offer: CreateOffers re-checks every claim under the
// agent's row lock, and the pass then re-reads the agents concerned and
// runs again.
type agentBoard struct {
	read   sync.Mutex // one refresh at a time, so an older read never overwrites a newer one
	mu     sync.Mutex
	agents map[string]models.AgentState
	at     time.Time         // last full read
	stale  map[string]uint64 // agents to re-read before the next pass, by touch (touches when touched)
	// touches counts touchAgent's marks, so a full read can tell the
	// agents touched before it began (its rows are newer) from those
	// touched while it ran.
	touches uint64

	// While a full read runs (fulls > 0) without the read lock, the
	// agents re-read meanwhile are noted in reread: the full read's older
	// rows for them are read again by the next pass.
	fulls     int
	reread    map[string]struct{}
	afterFull func() // tests: runs between a full read and its use

	// What passes and estimates use: the agents within their lease in id
	// order, as matching candidates. Readers hold use (read) while they
	// look at it; the agents in patch are patched in place under use
	// (write). It is replaced by a new slice, filtered and sorted, after a
	// full read, when an agent comes or goes, or when the oldest heartbeat
	// in it falls out of the lease.
	use     sync.RWMutex
	cands   []matching.Candidate
	oldest  time.Time           // earliest LastSeenAt in cands
	rebuild bool                // cands must be built afresh from agents
	patch   map[string]struct{} // agents whose entry changed since cands was built
}

// views brings the board's candidates up to date with agents and returns
// them read-locked: the caller holds b.mu, must not modify them and calls
// release when done with them (without taking b.mu before).
func (b *agentBoard) views(now time.Time) (cands []matching.Candidate, release func()) {
	since := now.Add(-presenceLease)
	if !b.rebuild && b.cands != nil && !b.oldest.After(since) {
		b.rebuild = true // someone's lease ran out
	}
	if !b.rebuild && len(b.patch) > 0 {
		b.use.Lock()
		for id := range b.patch {
			i, found := slices.BinarySearchFunc(b.cands, id, func(c matching.Candidate, id string) int { return strings.Compare(c.ID, id) })
			a, ok := b.agents[id]
			if ok && (a.LastSeenAt == nil || !a.LastSeenAt.After(since)) {
				ok = false
			}
			if ok != found { // came or went: build afresh
				b.rebuild = true
				break
			}
			if ok {
				b.cands[i] = matchCandidate(&a)
			}
		}
		b.use.Unlock()
	}
	if b.rebuild || b.cands == nil {
		list := make([]models.AgentState, 0, len(b.agents))
		b.oldest = time.Time{}
		for _, a := range b.agents {
			if a.LastSeenAt != nil && a.LastSeenAt.After(since) {
				list = append(list, a)
				if b.oldest.IsZero() || a.LastSeenAt.Before(b.oldest) {
					b.oldest = *a.LastSeenAt
				}
			}
		}
		slices.SortFunc(list, func(x, y models.AgentState) int { return strings.Compare(x.ID, y.ID) })
		b.cands = matchCandidates(list) // a new slice: readers of the old one are not disturbed
		b.rebuild = false
	}
	clear(b.patch)
	b.use.RLock()
	return b.cands, b.use.RUnlock
}

// changed notes that the agent's entry in agents changed. The caller
// holds b.mu.
func (b *agentBoard) changed(id string) {
	if b.patch == nil {
		b.patch = map[string]struct{}{}
	}
	b.patch[id] = struct{}{}
}

// touchAgent marks agents whose state changed (an offer, accept, decline,
// resolve, presence change, expiry), here or on another instance.
func (s *Server) touchAgent(ids ...string) {
	s.board.mu.Lock()
	s.board.mark(ids...)
	s.board.mu.Unlock()
}

// mark notes agents to re-read before the next pass. The caller holds
// b.mu.
func (b *agentBoard) mark(ids ...string) {
	if b.stale == nil {
		b.stale = map[string]uint64{}
	}
	for _, id := range ids {
		b.touches++
		b.stale[id] = b.touches
	}
}

// boardAgents returns the agents online for an offer pass as matching
// candidates in id order, shared and read-only until the caller calls
// release (soon: the next pass waits for it). With caching off (tests)
// every call reads the database.
func (s *Server) boardAgents(ctx context.Context) (cands []matching.Candidate, release func(), err error) {
	if s.cfg.SnapshotTTL <= 0 {
		agents, err := s.ds.OnlineAgents(ctx, presenceLease)
		return matchCandidates(agents), func() {}, err
	}
	if err := s.refreshAgents(ctx); err != nil {
		return nil, nil, err
	}
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	cands, release = s.board.views(s.ds.Now())
	return cands, release, nil
}

// boardViews returns the board's candidates as they stand, for a pass that
// refreshed it (refreshAgents) beside its other reads. With caching off it
// reads them, as boardAgents does.
func (s *Server) boardViews(ctx context.Context) (cands []matching.Candidate, release func(), err error) {
	if s.cfg.SnapshotTTL <= 0 {
		return s.boardAgents(ctx)
	}
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	cands, release = s.board.views(s.ds.Now())
	return cands, release, nil
}

// boardFreeSeats is at most how many offers the board could take now,
// without reading: its free seats plus every agent touched since the last
// read, each of whom may have a seat free by now. ok is false when the
// board must be read whole first (missing, or boardStaleAfter old), and
// with caching off.
func (s *Server) boardFreeSeats() (free int, ok bool) {
	if s.cfg.SnapshotTTL <= 0 {
		return 0, false
	}
	b := &s.board
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.agents == nil || time.Since(b.at) >= boardStaleAfter {
		return 0, false
	}
	cands, release := b.views(s.ds.Now())
	free = freeSeats(cands)
	release()
	return free + len(b.stale), true
}

// refreshAgents brings the board up to date for an offer pass: it reads
// every agent online when the board is missing or boardStaleAfter old,
// otherwise only the agents touched since the last read. With caching off
// it does nothing (boardViews reads).
func (s *Server) refreshAgents(ctx context.Context) error {
	if s.cfg.SnapshotTTL <= 0 {
		return nil
	}
	b := &s.board
	b.read.Lock()
	defer b.read.Unlock()
	b.mu.Lock()
	full := b.agents == nil || time.Since(b.at) >= boardStaleAfter
	ids := make([]string, 0, len(b.stale))
	for id := range b.stale {
		ids = append(ids, id)
		if b.fulls > 0 {
			if b.reread == nil {
				b.reread = map[string]struct{}{}
			}
			b.reread[id] = struct{}{}
		}
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
		return err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if full {
		b.replace(fresh, time.Now())
	} else {
		for _, id := range ids {
			delete(b.agents, id) // gone offline unless read again below
			b.changed(id)
		}
		for _, a := range fresh {
			b.agents[a.ID] = a
		}
	}
	return nil
}

// refreshBoard keeps the board fresh (and its profiles read) on every
// instance, for estimates and the next offer pass, even while nothing is
// queued or another instance runs the passes.
func (s *Server) refreshBoard(ctx context.Context) error {
	if s.cfg.SnapshotTTL <= 0 {
		return nil
	}
	b := &s.board
	b.mu.Lock()
	if b.agents == nil || b.fulls > 0 {
		b.mu.Unlock()
		// The first read, or another full read running: the usual way.
		return s.refreshAgents(ctx)
	}
	b.fulls++
	since := b.touches // touched before the read: its rows are newer
	b.mu.Unlock()
	// Read everyone without the read lock, so offer passes go on with
	// the board as it is (and their re-reads of touched agents) meanwhile.
	start := time.Now()
	fresh, err := s.liveAgents(ctx)
	if b.afterFull != nil {
		b.afterFull()
	}
	b.read.Lock()
	defer b.read.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fulls--
	// Agents re-read while this read ran have older rows in it: read
	// them again.
	reread := slices.Collect(maps.Keys(b.reread))
	clear(b.reread)
	if err != nil {
		b.mark(reread...)
		return err
	}
	// The agents touched before the read began need no re-read now: the
	// read saw their change (touches follow commits). Without this, while
	// passes read nothing (the queue empty), they piled up for the next
	// escalation's pass to read.
	for id, at := range b.stale {
		if at <= since {
			delete(b.stale, id)
		}
	}
	b.mark(reread...)
	b.replace(fresh, start)
	return nil
}

// replace makes agents the board's whole content, as read at. The caller
// holds b.mu.
func (b *agentBoard) replace(agents []models.AgentState, at time.Time) {
	b.agents = make(map[string]models.AgentState, len(agents))
	for _, a := range agents {
		b.agents[a.ID] = a
	}
	b.at = at
	b.rebuild = true
}

// boardSnapshot returns the board's candidates as they stand, without
// reading anything; false when it has not been read yet or lags (the sweep
// refreshes it every boardFullEvery). They are shared and read-only until
// release.
func (s *Server) boardSnapshot() (cands []matching.Candidate, release func(), ok bool) {
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	if s.board.agents == nil || time.Since(s.board.at) > boardStaleAfter {
		return nil, nil, false
	}
	cands, release = s.board.views(s.ds.Now())
	return cands, release, true
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
			s.board.changed(id)
		}
	}
}
