package app

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
)

// Presence lease figures (DESIGN: Conversation and offer life cycle).
const (
	presenceLease = 30 * time.Second // no heartbeat for this long: offers withdrawn, no new ones
	presenceGrace = 60 * time.Second // no heartbeat for this long: chats back to the queue
)

func matchConv(c *models.Conversation) matching.Conversation {
	return matching.Conversation{ID: c.ID, BrandID: c.BrandID, Language: c.Language, Skills: c.SkillList(),
		Priority: c.Priority, QueuedAt: c.QueuedAt, CreatedAt: c.CreatedAt}
}

func matchRules(b *models.Brand) matching.Rules {
	return matching.Rules{MinSkillLevel: b.MinSkillLevel, MinRating: b.MinRating, MinQAScore: b.MinQAScore, RequireCertification: b.RequireCertification}
}

func matchCandidate(a *models.AgentState) matching.Candidate {
	c := matching.Candidate{ID: a.ID, Approved: true, Presence: a.Presence, Capacity: a.MaxConcurrent, Active: a.Active,
		HasPendingOffer: a.PendingOffer, Languages: a.Languages, Skills: a.Skills, RatingSum: a.RatingSum,
		RatingCount: a.RatingCount, ResolvedCount: a.ResolvedCount}
	if a.FreeSince != nil {
		c.IdleSince = *a.FreeSince
	}
	return c
}

// explanationSummary turns a stored explanation into its sentence.
func explanationSummary(stored string) string {
	var e matching.Explanation
	if json.Unmarshal([]byte(stored), &e) != nil {
		return ""
	}
	return e.Summary()
}

// queueInfo is a waiting conversation's place in its brand's queue.
type queueInfo struct {
	Position       int
	EligibleOnline int
	Wait           time.Duration
	Known          bool // false: no eligible agent online, so no estimate
}

func (q queueInfo) frame() map[string]any {
	f := map[string]any{"position": q.Position, "eligible_agents_online": q.EligibleOnline, "estimated_wait_seconds": nil}
	if q.Known {
		f["estimated_wait_seconds"] = int((q.Wait + time.Second - 1) / time.Second)
	}
	return f
}

// queueInfo computes the position, eligible agents online and the
// estimated wait of a waiting conversation. A conversation no longer
// waiting has position 0.
func (s *Server) queueInfo(ctx context.Context, b *models.Brand, conv *models.Conversation) (queueInfo, error) {
	if conv.Status != models.ConvQueued && conv.Status != models.ConvOffered {
		return queueInfo{}, nil
	}
	waiting, err := s.store.WaitingConversations(ctx, b.ID)
	if err != nil {
		return queueInfo{}, err
	}
	agents, err := s.onlineAgents(ctx)
	if err != nil {
		return queueInfo{}, err
	}
	bq, err := s.newBrandQueue(ctx, b, waiting, agents)
	if err != nil {
		return queueInfo{}, err
	}
	return bq.info(conv.ID), nil
}

// brandQueue holds what estimating one brand's queue needs, read once.
type brandQueue struct {
	now            time.Time
	brand          *models.Brand
	order          []matching.Conversation
	cands          []matching.Candidate
	handle, accept time.Duration
}

func (s *Server) newBrandQueue(ctx context.Context, b *models.Brand, waiting []models.Conversation, agents []models.AgentState) (*brandQueue, error) {
	q := &brandQueue{now: s.store.Now(), brand: b, cands: make([]matching.Candidate, len(agents))}
	for i := range waiting {
		if waiting[i].BrandID == b.ID {
			q.order = append(q.order, matchConv(&waiting[i]))
		}
	}
	matching.SortQueue(q.order)
	for i := range agents {
		q.cands[i] = matchCandidate(&agents[i])
	}
	var err error
	q.handle, q.accept, err = s.store.RecentTimes(ctx, b.ID)
	return q, err
}

// info places one conversation: its position, the agents online who pass
// its gates and bars (busy or not), and the wait those agents' free seats
// and recent handle times suggest.
func (q *brandQueue) info(convID string) queueInfo {
	var out queueInfo
	var conv matching.Conversation
	for i, c := range q.order {
		if c.ID == convID {
			out.Position, conv = i+1, c
		}
	}
	if out.Position == 0 {
		return out
	}
	res := matching.Rank(q.now, conv, matchRules(q.brand), q.cands)
	out.EligibleOnline = res.EligibleOnline
	out.Wait, out.Known = matching.EstimateWait(out.Position, res.EligibleOnline, res.FreeSeats, q.handle, q.accept)
	return out
}

// publishQueues sends every waiting customer their place in line and
// estimated wait, when it changed since the last pass.
func (s *Server) publishQueues(ctx context.Context) error {
	waiting, err := s.store.WaitingConversations(ctx, "")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	if len(waiting) > 0 {
		agents, err := s.onlineAgents(ctx)
		if err != nil {
			return err
		}
		ids := map[string]bool{}
		for _, c := range waiting {
			ids[c.BrandID] = true
		}
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		brands, err := s.store.Brands(ctx, list)
		if err != nil {
			return err
		}
		queues := map[string]*brandQueue{}
		for _, c := range waiting {
			bq := queues[c.BrandID]
			if bq == nil {
				if bq, err = s.newBrandQueue(ctx, brands[c.BrandID], waiting, agents); err != nil {
					return err
				}
				queues[c.BrandID] = bq
			}
			seen[c.ID] = true
			frame, err := realtime.Encode("queue", bq.info(c.ID).frame())
			if err != nil {
				return err
			}
			s.queueMu.Lock()
			changed := s.lastQueue[c.ID] != string(frame)
			s.lastQueue[c.ID] = string(frame)
			s.queueMu.Unlock()
			if changed {
				s.hub.Publish(convTopic(c.ID), frame)
			}
		}
	}
	s.queueMu.Lock()
	for id := range s.lastQueue {
		if !seen[id] {
			delete(s.lastQueue, id)
		}
	}
	s.queueMu.Unlock()
	return nil
}

// dispatchPass is one round of the dispatcher: expire offers, apply
// presence leases, abandon overdue conversations, then offer queued
// conversations to the best eligible agents, and tell everyone concerned.
func (s *Server) dispatchPass(ctx context.Context) error {
	expired, err := s.store.ExpireOffers(ctx)
	if err != nil {
		return err
	}
	for _, e := range expired {
		data := map[string]any{"offer_id": e.ID, "set_away": e.SetAway}
		if e.SetAway {
			data["notice"] = "You missed two offers in a row, so we set you away. Go online again when you are ready."
		}
		s.emitFrame(agentTopic(e.AgentID), "offer.expired", data)
		s.emitFrame(convTopic(e.ConversationID), "conversation", conversationFrame{ID: e.ConversationID, Status: models.ConvQueued})
	}
	lapse, err := s.store.LapsePresence(ctx, presenceLease, presenceGrace)
	if err != nil {
		return err
	}
	for _, o := range lapse.Withdrawn {
		s.emitFrame(agentTopic(o.AgentID), "offer.withdrawn", map[string]string{"offer_id": o.ID, "reason": "We lost your connection."})
	}
	for i := range lapse.Requeued {
		s.publishConversation(&lapse.Requeued[i])
	}
	for _, id := range lapse.Offline {
		s.emitFrame(agentTopic(id), "presence", map[string]string{"presence": models.PresenceOffline, "notice": "You were offline too long; your chats went back to the queue."})
	}
	abandoned, rescinded, err := s.store.AbandonOverdue(ctx)
	if err != nil {
		return err
	}
	for _, o := range rescinded {
		s.emitFrame(agentTopic(o.AgentID), "offer.withdrawn", map[string]string{"offer_id": o.ID, "reason": "The customer left."})
	}
	for i := range abandoned {
		s.publishConversation(&abandoned[i])
	}
	if _, err := s.store.CloseResolved(ctx); err != nil {
		return err
	}
	if err := s.offerQueued(ctx); err != nil {
		return err
	}
	return s.publishQueues(ctx)
}

// offerQueued offers queued conversations, greedily in queue order.
func (s *Server) offerQueued(ctx context.Context) error {
	queued, err := s.store.QueuedConversations(ctx, 1000)
	if err != nil || len(queued) == 0 {
		return err
	}
	agents, err := s.store.OnlineAgents(ctx, presenceLease)
	if err != nil || len(agents) == 0 {
		return err
	}
	queue := make([]matching.Conversation, len(queued))
	byID := map[string]*models.Conversation{}
	brandIDs := map[string]bool{}
	convIDs := make([]string, len(queued))
	for i := range queued {
		queue[i] = matchConv(&queued[i])
		byID[queued[i].ID] = &queued[i]
		brandIDs[queued[i].BrandID] = true
		convIDs[i] = queued[i].ID
	}
	ids := make([]string, 0, len(brandIDs))
	for id := range brandIDs {
		ids = append(ids, id)
	}
	brands, err := s.store.Brands(ctx, ids)
	if err != nil {
		return err
	}
	rules := map[string]matching.Rules{}
	for id, b := range brands {
		rules[id] = matchRules(b)
	}
	history, err := s.store.OfferHistory(ctx, convIDs)
	if err != nil {
		return err
	}
	rel := &matching.Relations{}
	for convID, m := range history {
		for agentID, at := range m {
			rel.AddOffer(convID, agentID, at)
		}
	}
	cands := make([]matching.Candidate, len(agents))
	for i := range agents {
		cands[i] = matchCandidate(&agents[i])
	}
	for _, a := range matching.Assign(s.store.Now(), queue, rules, cands, rel) {
		conv, b := byID[a.ConversationID], brands[byID[a.ConversationID].BrandID]
		why, err := json.Marshal(a.Explanation)
		if err != nil {
			return err
		}
		o, err := s.store.CreateOffer(ctx, models.NewOffer{ConversationID: conv.ID, AgentID: a.AgentID,
			PayMinor: b.PayRateMinor, Currency: b.Currency, Explanation: string(why),
			Timeout: time.Duration(b.OfferTimeoutSeconds) * time.Second})
		if errors.Is(err, models.ErrConflict) {
			continue // another pass or instance got there first
		}
		if err != nil {
			return err
		}
		s.publishOffer(o, conv, b)
		s.emitFrame(convTopic(conv.ID), "conversation", conversationFrame{ID: conv.ID, Status: models.ConvOffered})
	}
	return nil
}
