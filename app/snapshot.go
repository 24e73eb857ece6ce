package app

import (
	"context"
	"sync"
	"time"

	"github.com/handoffhq/handoff/models"
)

// agentSnapshot caches the agents online for wait estimates, which every
// escalation and every queue update needs; reading 1,000 agents with their
// skills for each would cost more than the dispatch itself. Dispatch never
// uses it: offers are decided on a fresh read and claimed in the database.
type agentSnapshot struct {
	mu     sync.Mutex
	at     time.Time
	agents []models.AgentState
	times  map[string]recentTimes // per brand
}

type recentTimes struct {
	at             time.Time
	handle, accept time.Duration
}

// onlineAgents returns the agents online, at most cfg.SnapshotTTL old.
func (s *Server) onlineAgents(ctx context.Context) ([]models.AgentState, error) {
	if s.cfg.SnapshotTTL <= 0 {
		return s.ds.OnlineAgents(ctx, presenceLease)
	}
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if time.Since(s.snap.at) < s.cfg.SnapshotTTL {
		return s.snap.agents, nil
	}
	agents, err := s.ds.OnlineAgents(ctx, presenceLease)
	if err != nil {
		return nil, err
	}
	s.snap.agents, s.snap.at = agents, time.Now()
	return agents, nil
}

// recentTimes returns the brand's recent handle and offer-to-accept times,
// at most cfg.SnapshotTTL old.
func (s *Server) recentTimes(ctx context.Context, brandID string) (time.Duration, time.Duration, error) {
	if s.cfg.SnapshotTTL > 0 {
		s.snap.mu.Lock()
		rt, ok := s.snap.times[brandID]
		s.snap.mu.Unlock()
		if ok && time.Since(rt.at) < s.cfg.SnapshotTTL {
			return rt.handle, rt.accept, nil
		}
	}
	handle, accept, err := s.ds.RecentTimes(ctx, brandID)
	if err != nil || s.cfg.SnapshotTTL <= 0 {
		return handle, accept, err
	}
	s.snap.mu.Lock()
	if s.snap.times == nil {
		s.snap.times = map[string]recentTimes{}
	}
	s.snap.times[brandID] = recentTimes{at: time.Now(), handle: handle, accept: accept}
	s.snap.mu.Unlock()
	return handle, accept, nil
}
