package app

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
)

// recentTimes is a brand's recent handle and offer-to-accept times.
type recentTimes struct {
	handle, accept time.Duration
}

// onlineCandidates returns the agents online for wait estimates, which
// every escalation and every queue update needs: the dispatcher's board as
// it stands (at most boardFullEvery old, kept fresh by the sweep), so an
// escalation never reads 1,000 agents or waits for someone who does. Only
// a cold board is read here. With caching off (tests) it reads the
// database. The result is shared and read-only until the caller calls
// release, which it does before anything slow.
func (s *Server) onlineCandidates(ctx context.Context) (cands []matching.Candidate, release func(), err error) {
	if cands, release, ok := s.boardSnapshot(); ok {
		return cands, release, nil
	}
	return s.boardAgents(ctx)
}

// recentTimes returns the brand's recent handle and offer-to-accept times,
// at most cfg.SnapshotTTL old.
func (s *Server) recentTimes(ctx context.Context, brandID string) (time.Duration, time.Duration, error) {
	rt, err := s.times.get(ctx, brandID, func(ctx context.Context, id string) (recentTimes, error) {
		handle, accept, err := s.ds.RecentTimes(ctx, id)
		return recentTimes{handle: handle, accept: accept}, err
	})
	return rt.handle, rt.accept, err
}

// profileCache keeps agents' languages and skills, which change only with
// their application, so a dispatch pass reads just what changes. Entries
// are refreshed after profileTTL; agents not yet cached are read at once.
type profileCache struct {
	mu sync.Mutex
	m  map[string]cachedProfile
}

type cachedProfile struct {
	at time.Time
	p  models.AgentProfile
}

const profileTTL = 30 * time.Second

// liveAgents is OnlineAgents with cached profiles (or fresh ones when
// caching is off, as in tests).
func (s *Server) liveAgents(ctx context.Context) ([]models.AgentState, error) {
	if s.cfg.SnapshotTTL <= 0 {
		return s.ds.OnlineAgents(ctx, presenceLease)
	}
	states, err := s.ds.OnlineAgentStates(ctx, presenceLease)
	if err != nil {
		return nil, err
	}
	return states, s.withProfiles(ctx, states)
}

// withProfiles fills in the agents' languages and skills from the profile
// cache, reading those not cached or older than profileTTL.
func (s *Server) withProfiles(ctx context.Context, states []models.AgentState) error {
	if len(states) == 0 {
		return nil
	}
	now := time.Now()
	s.profiles.mu.Lock()
	if s.profiles.m == nil {
		s.profiles.m = map[string]cachedProfile{}
	}
	var missing []string
	for _, a := range states {
		if c, ok := s.profiles.m[a.ID]; !ok || now.Sub(c.at) > profileTTL {
			missing = append(missing, a.ID)
		}
	}
	s.profiles.mu.Unlock()
	if len(missing) > 0 {
		fresh, err := s.ds.AgentProfiles(ctx, missing)
		if err != nil {
			return err
		}
		s.profiles.mu.Lock()
		for id, p := range fresh {
			// Spread the next reads over half the TTL, so agents who came
			// online together are not all read again in the same pass.
			jitter := time.Duration(rand.Int64N(int64(profileTTL / 2)))
			s.profiles.m[id] = cachedProfile{at: now.Add(-jitter), p: p}
		}
		s.profiles.mu.Unlock()
	}
	s.profiles.mu.Lock()
	defer s.profiles.mu.Unlock()
	for i := range states {
		p := s.profiles.m[states[i].ID].p
		states[i].Languages, states[i].Skills = p.Languages, p.Skills
	}
	return nil
}
