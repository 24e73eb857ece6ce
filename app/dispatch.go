package app

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
	"golang.org/x/sync/errgroup"
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

func matchQueued(q *models.QueueEntry) matching.Conversation {
	return matching.Conversation{ID: q.ID, BrandID: q.BrandID, Language: q.Language, Skills: q.SkillList(),
		Priority: q.Priority, QueuedAt: q.QueuedAt, CreatedAt: q.CreatedAt}
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

// queueInfo computes the eligible agents online and the estimated wait of
// a conversation at place in its brand's queue, for the escalation's answer
// and the customer's first frame. Place 0 (no longer waiting) gives the
// zero queueInfo.
func (s *Server) queueInfo(ctx context.Context, b *models.Brand, conv *models.Conversation, place int) (queueInfo, error) {
	if place == 0 {
		return queueInfo{}, nil
	}
	handle, accept, err := s.recentTimes(ctx, b.ID)
	if err != nil {
		return queueInfo{}, err
	}
	now := s.store.Now()
	mc := matchConv(conv)
	place = s.line.refine(now, mc, place)
	rules := matchRules(b)
	key := headcountKey(b.ID, mc, rules, now)
	hc, err := s.headcounts.get(ctx, key, func(ctx context.Context, _ string) (headcount, error) {
		cands, release, err := s.onlineCandidates(ctx)
		if err != nil {
			return headcount{}, err
		}
		defer release()
		return census(now, mc, rules, cands), nil
	})
	if err != nil {
		return queueInfo{}, err
	}
	return hc.place(place, handle, accept), nil
}

// headcount is a matching.Census: the agents online who pass a
// conversation's gates and bars (busy or not), and their free seats.
type headcount struct{ eligible, free int }

func census(now time.Time, conv matching.Conversation, rules matching.Rules, cands []matching.Candidate) headcount {
	eligible, free := matching.Census(now, conv, rules, cands)
	return headcount{eligible: eligible, free: free}
}

// headcountKey names the conversations that share a census: the same
// brand, language, skills and ladder step. Every escalation and every
// customer's hello asks for one, and the census walks every agent online,
// so it is cached (s.headcounts, for cfg.SnapshotTTL) and shared within a
// sweep.
func headcountKey(brandID string, conv matching.Conversation, rules matching.Rules, now time.Time) string {
	_, step := rules.BarsAt(conv.Waited(now))
	return brandID + "\x00" + conv.Language + "\x00" + strings.Join(conv.Skills, ",") + "\x00" + strconv.Itoa(step)
}

// place is the queue information of the conversation at place, with the
// wait the free seats and the brand's recent handle times suggest.
func (hc headcount) place(place int, handle, accept time.Duration) queueInfo {
	q := queueInfo{Position: place, EligibleOnline: hc.eligible}
	q.Wait, q.Known = matching.EstimateWait(place, hc.eligible, hc.free, handle, accept)
	return q
}

func matchCandidates(agents []models.AgentState) []matching.Candidate {
	out := make([]matching.Candidate, len(agents))
	for i := range agents {
		out[i] = matchCandidate(&agents[i])
	}
	return out
}

// publishQueues sends every waiting customer connected here their place
// in line and estimated wait, when it changed since the last sweep.
func (s *Server) publishQueues(ctx context.Context) error {
	waiting, err := s.ds.WaitingQueue(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	byBrand := map[string][]matching.Conversation{}
	now := s.ds.Now()
	if len(waiting) > 0 {
		shared, release, err := s.onlineCandidates(ctx)
		if err != nil {
			return err
		}
		// A copy: the loop below reads the database between estimates.
		cands := slices.Clone(shared)
		release()
		for i := range waiting {
			byBrand[waiting[i].BrandID] = append(byBrand[waiting[i].BrandID], matchQueued(&waiting[i]))
		}
		ids := make([]string, 0, len(byBrand))
		for id := range byBrand {
			ids = append(ids, id)
		}
		brands, err := s.ds.Brands(ctx, ids)
		if err != nil {
			return err
		}
		counted := map[string]headcount{} // conversations of a kind share a census
		for brandID, queue := range byBrand {
			matching.SortQueue(queue)
			var handle, accept time.Duration
			read := false
			for i, c := range queue {
				seen[c.ID] = true
				if s.hub.Count(convTopic(c.ID)) == 0 {
					continue // nobody here is watching this one
				}
				if !read {
					if handle, accept, err = s.recentTimes(ctx, brandID); err != nil {
						return err
					}
					read = true
				}
				rules := matchRules(brands[brandID])
				key := headcountKey(brandID, c, rules, now)
				hc, ok := counted[key]
				if !ok {
					hc = census(now, c, rules, cands)
					counted[key] = hc
				}
				frame, err := realtime.Encode("queue", hc.place(i+1, handle, accept).frame())
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
	}
	s.line.set(now, byBrand)
	s.queueMu.Lock()
	for id := range s.lastQueue {
		if !seen[id] {
			delete(s.lastQueue, id)
		}
	}
	s.queueMu.Unlock()
	return nil
}

// dispatchPass is one whole round, as tests drive it: the sweep's
// maintenance, then offers, then queue updates. The running server does the
// same in two loops: offerQueued on every wake, sweepPass every second.
func (s *Server) dispatchPass(ctx context.Context) error {
	s.queue.changed() // maintain may requeue (as in the sweep), and tests change the queue in the store
	if err := s.maintain(ctx); err != nil {
		return err
	}
	if err := s.offerQueued(ctx); err != nil {
		return err
	}
	return s.publishQueues(ctx)
}

// sweepPass is the dispatcher's periodic round: maintenance where the
// dispatch lease is held (one instance does it for all), then, on every
// instance, the place in line of each waiting customer connected there.
// (Each instance took a lock of its own for the whole round, one after the
// other, so every second both ran the maintenance: twice the expiry, lapse
// and abandonment statements with two instances, and an instance that
// found the lock taken skipped its customers' places.)
func (s *Server) sweepPass(ctx context.Context) error {
	if err := s.exclusivePass(ctx, s.maintain); err != nil {
		return err
	}
	return s.publishQueues(ctx)
}

// maintain expires offers, applies presence leases, abandons overdue
// conversations and closes rated-out ones, and tells everyone concerned.
// Each step is a conditional update, so it may run beside an offer pass:
// an offer for a conversation or an agent that changed meanwhile is
// skipped when it is claimed.
func (s *Server) maintain(ctx context.Context) error {
	expired, err := s.ds.ExpireOffers(ctx)
	if err != nil {
		return err
	}
	s.metrics.offers.WithLabelValues("expired").Add(float64(len(expired)))
	for _, e := range expired {
		s.touchAgent(e.AgentID)
		data := map[string]any{"offer_id": e.ID, "set_away": e.SetAway}
		if e.SetAway {
			data["notice"] = "You missed two offers in a row, so we set you away. Go online again when you are ready."
		}
		s.emitFrame(agentTopic(e.AgentID), "offer.expired", data)
		s.emitFrame(convTopic(e.ConversationID), "conversation", conversationFrame{ID: e.ConversationID, Status: models.ConvQueued})
	}
	lapse, err := s.ds.LapsePresence(ctx, presenceLease, presenceGrace)
	if err != nil {
		return err
	}
	s.metrics.offers.WithLabelValues("withdrawn").Add(float64(len(lapse.Withdrawn)))
	s.touchAgent(lapse.Offline...)
	for _, o := range lapse.Withdrawn {
		s.touchAgent(o.AgentID)
		s.emitFrame(agentTopic(o.AgentID), "offer.withdrawn", map[string]string{"offer_id": o.ID, "reason": "We lost your connection."})
	}
	for i := range lapse.Requeued {
		s.publishConversation(&lapse.Requeued[i])
	}
	for _, id := range lapse.Offline {
		s.emitFrame(agentTopic(id), "presence", map[string]string{"presence": models.PresenceOffline, "notice": "You were offline too long; your chats went back to the queue."})
	}
	abandoned, rescinded, err := s.ds.AbandonOverdue(ctx)
	if err != nil {
		return err
	}
	s.metrics.offers.WithLabelValues("withdrawn").Add(float64(len(rescinded)))
	for _, o := range rescinded {
		s.touchAgent(o.AgentID)
		s.emitFrame(agentTopic(o.AgentID), "offer.withdrawn", map[string]string{"offer_id": o.ID, "reason": "The customer left."})
	}
	for i := range abandoned {
		s.publishConversation(&abandoned[i])
	}
	_, err = s.ds.CloseResolved(ctx)
	return err
}

// Offer passes read the queue a page at a time. The first page holds
// queuePagePerSeat conversations per free seat on the board (at least
// queuePageMin); the next, twice as many, is read only while free agents
// are left whom nothing read so far suits; a pass reads at most
// queuePassMax. So a long queue (a burst, too few agents) costs each pass
// what it can offer, not the whole queue: passes run on every event, and
// with the queue read whole each one cost more the longer the queue grew,
// which is when the dispatcher can least afford it.
const (
	queuePagePerSeat = 4
	queuePageMin     = 32
	queuePassMax     = 1000
)

// freeSeats counts the candidates an offer can go to (matching.Assign's
// pool).
func freeSeats(cands []matching.Candidate) int {
	n := 0
	for i := range cands {
		if cands[i].Offerable() {
			n++
		}
	}
	return n
}

// brandGuess remembers the brands the last offer pass found in the queue:
// the next pass reads them beside the queue instead of after it, since the
// queue's brands rarely change from one pass to the next. A brand the
// guess missed is read after the queue, as before; a brand guessed but no
// longer queued costs a row read for nothing.
type brandGuess struct {
	mu  sync.Mutex
	ids []string
}

func (g *brandGuess) get() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ids
}

// set makes the guess the brands of queued.
func (g *brandGuess) set(queued []models.Conversation) {
	var ids []string
	for i := range queued {
		if !slices.Contains(ids, queued[i].BrandID) {
			ids = append(ids, queued[i].BrandID)
		}
	}
	g.mu.Lock()
	g.ids = ids
	g.mu.Unlock()
}

// queueWatch spares offer passes that cannot offer anything. Most wakes at
// a high rate are seats freeing up (resolves) while the queue is empty, and
// such a pass still read the queue (and the agents touched). gen counts the
// events that can put a conversation in the queue: an escalation, a
// decline, an offer lost to a race, a suspension, a sweep (expiries,
// lapsed presence), any news from another instance. emptyAt is gen as it
// was when a pass found the queue empty. While they are equal the queue is
// still empty, whatever seats free up, and a pass reads nothing. Each
// event bumps gen after its commit and a pass reads gen before the queue,
// so a conversation committed queued is either in the pass's read or
// bumps gen after it. A missed event costs at most a second: the sweep
// bumps gen every time it runs.
type queueWatch struct {
	gen     atomic.Uint64
	emptyAt atomic.Uint64
}

// changed notes an event that may have queued a conversation.
func (q *queueWatch) changed() { q.gen.Add(1) }

// start returns gen for a pass to note when it finds the queue empty, and
// whether the queue is known to be empty (no pass needed).
func (q *queueWatch) start() (gen uint64, empty bool) {
	gen = q.gen.Load() + 1 // never 0, so a fresh emptyAt matches nothing
	return gen, q.emptyAt.Load() == gen
}

// foundEmpty records that a pass that started at gen found the queue empty.
func (q *queueWatch) foundEmpty(gen uint64) { q.emptyAt.Store(gen) }

// offerQueued offers queued conversations, greedily in queue order.
//
// A pass waits for two round trips when it can: one for the reads that
// do not depend on each other (a page of the queue, the agents touched
// since the last pass, the brands the last pass saw), and one for the
// offers' commit. Only a page that holds a brand not guessed or a
// conversation offered before (its history, for the re-offer rule) costs
// a read in between.
func (s *Server) offerQueued(ctx context.Context) error {
	// Nothing can have joined the queue since a pass found it empty: no
	// offer to make, so nothing to read.
	gen, empty := s.queue.start()
	if empty {
		s.metrics.skipped.Inc()
		return nil
	}
	// Nobody free (nobody online, or every seat taken or offered): no
	// offer to make, so nothing to read.
	free, ok := s.boardFreeSeats()
	if !ok {
		cands, release, err := s.boardAgents(ctx)
		if err != nil {
			return err
		}
		free = freeSeats(cands)
		release()
	}
	if free == 0 {
		return nil
	}
	// Where a pass's time goes, for /metrics: its reads and matching, the
	// offers' commit, their frames.
	start := time.Now()
	readCounted := false
	defer func() {
		if !readCounted { // a pass that made no offer: all of it read
			s.metrics.phases.WithLabelValues("read").Observe(time.Since(start).Seconds())
		}
	}()
	var queued []models.Conversation
	var queue []matching.Conversation // queued, as Assign takes it
	brands := map[string]*models.Brand{}
	rel := &matching.Relations{}
	rules := map[string]matching.Rules{}
	keep := func(read map[string]*models.Brand) {
		for id, b := range read {
			brands[id] = b
			rules[id] = matchRules(b)
		}
	}
	var assigned []matching.Assignment
	whole := false // the pass read the queue to its end
	guess := s.passBrands.get()
	for limit := min(max(queuePagePerSeat*free, queuePageMin), queuePassMax); ; limit = min(2*limit, queuePassMax-len(queued)) {
		var after *models.Conversation
		if len(queued) > 0 {
			after = &queued[len(queued)-1]
		}
		var page []models.QueuedConversation
		var guessed map[string]*models.Brand
		var reads errgroup.Group
		reads.Go(func() (err error) { page, err = s.ds.QueuedConversationsAfter(ctx, after, limit); return err })
		reads.Go(func() error { return s.refreshAgents(ctx) }) // what changed since the last page, too
		if ids := guess; len(ids) > 0 {
			reads.Go(func() (err error) { guessed, err = s.ds.Brands(ctx, ids); return err })
			guess = nil // the first page only
		}
		if err := reads.Wait(); err != nil {
			return err
		}
		keep(guessed)
		if len(page) == 0 {
			whole = true
			if len(queued) == 0 {
				s.queue.foundEmpty(gen)
			}
			break
		}
		var newBrands, offeredBefore []string
		for i := range page {
			c := &page[i]
			if _, ok := brands[c.BrandID]; !ok && !slices.Contains(newBrands, c.BrandID) {
				newBrands = append(newBrands, c.BrandID)
			}
			if c.OfferedBefore {
				offeredBefore = append(offeredBefore, c.ID)
			}
			queued = append(queued, c.Conversation)
			queue = append(queue, matchConv(&c.Conversation))
		}
		// Brands the guess missed and the history of conversations
		// offered before, side by side: one round trip, when needed.
		var got map[string]*models.Brand
		var history map[string]map[string]time.Time
		var more errgroup.Group
		if len(newBrands) > 0 {
			more.Go(func() (err error) { got, err = s.ds.Brands(ctx, newBrands); return err })
		}
		if len(offeredBefore) > 0 {
			more.Go(func() (err error) { history, err = s.ds.OfferHistory(ctx, offeredBefore); return err })
		}
		if err := more.Wait(); err != nil {
			return err
		}
		keep(got)
		for convID, m := range history {
			for agentID, at := range m {
				rel.AddOffer(convID, agentID, at)
			}
		}
		// The board as refreshed beside the page, released right after
		// Assign: readers hold it only for pure computation, never across
		// a read or the board's lock.
		cands, release, err := s.boardViews(ctx)
		if err != nil {
			return err
		}
		assigned = matching.Assign(s.ds.Now(), queue, rules, cands, rel)
		free = freeSeats(cands)
		release()
		whole = len(page) < limit
		if whole || len(assigned) >= free || len(queued) >= queuePassMax {
			break // the queue's end, every free agent placed, or enough for one pass
		}
	}
	if len(queued) > 0 {
		// Kept through passes that found the queue empty (woken by an
		// accept or a resolve), so the next escalation's pass has it.
		s.passBrands.set(queued)
	}
	byID := make(map[string]*models.Conversation, len(queued))
	for i := range queued {
		byID[queued[i].ID] = &queued[i]
	}
	var batch []models.NewOffer
	whys := make(map[string]string, len(assigned)) // by conversation: the card's sentence, without decoding the stored JSON again
	for _, a := range assigned {
		conv, b := byID[a.ConversationID], brands[byID[a.ConversationID].BrandID]
		why, err := json.Marshal(a.Explanation)
		if err != nil {
			return err
		}
		whys[conv.ID] = a.Explanation.Summary()
		batch = append(batch, models.NewOffer{ConversationID: conv.ID, AgentID: a.AgentID,
			PayMinor: b.PayRateMinor, Currency: b.Currency, Explanation: string(why),
			Timeout: time.Duration(b.OfferTimeoutSeconds) * time.Second})
	}
	if len(batch) == 0 {
		return nil
	}
	// One commit for the whole batch; offers whose conversation or agent
	// changed meanwhile (another instance, an accept) are skipped. On the
	// offer path, so ahead of other writes waiting on SQLite.
	readDone := time.Now()
	s.metrics.phases.WithLabelValues("read").Observe(readDone.Sub(start).Seconds())
	readCounted = true
	made, err := s.ds.CreateOffers(models.Urgent(ctx), batch)
	if err != nil {
		return err
	}
	committed := time.Now()
	s.metrics.phases.WithLabelValues("commit").Observe(committed.Sub(readDone).Seconds())
	defer func() { s.metrics.phases.WithLabelValues("publish").Observe(time.Since(committed).Seconds()) }()
	if whole && len(made) == len(queued) {
		// Everything queued when the pass read it has its offer now: the
		// passes that seats freeing up wake have nothing to read.
		s.queue.foundEmpty(gen)
	}
	s.metrics.offers.WithLabelValues("made").Add(float64(len(made)))
	offered := make([]string, len(made))
	for i := range made {
		offered[i] = made[i].AgentID
	}
	s.boardOffered(offered)
	if len(made) < len(batch) {
		// Some decisions met a state the board had not seen yet: read
		// those agents again and try once more at once.
		for _, n := range batch {
			if !slices.Contains(offered, n.AgentID) {
				s.touchAgent(n.AgentID)
			}
		}
		s.queue.changed() // their conversations are back in the queue
		s.wake()
	}
	for i := range made {
		o := &made[i]
		conv := byID[o.ConversationID]
		s.metrics.toOffer.Observe(o.CreatedAt.Sub(conv.QueuedAt).Seconds())
		s.publishOffer(o, conv, brands[conv.BrandID], whys[o.ConversationID])
		s.emitFrame(convTopic(conv.ID), "conversation", conversationFrame{ID: conv.ID, Status: models.ConvOffered})
	}
	return nil
}
