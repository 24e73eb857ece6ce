package matching

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// Rejection reasons: why a candidate is not eligible for a conversation.
// Each rejection carries the first that applies, checked in this order:
// standing qualifications first, then momentary availability, so a busy
// agent who also lacks the language is rejected for the language.
const (
	ReasonNotApproved   = "not_approved"  // application not approved or account inactive
	ReasonOffline       = "offline"       // presence is not online (away or offline)
	ReasonLanguage      = "language"      // speaks no matching language
	ReasonCertification = "certification" // brand requires a certificate the agent lacks
	ReasonBlocked       = "blocked"       // the brand blocked the agent
	ReasonTransfers     = "transfers"     // brand requires a Stripe account able to receive transfers
	ReasonSkillPrefix   = "skill:"        // "skill:billing": missing or below the minimum level
	ReasonRating        = "rating"        // Bayesian rating below the bar
	ReasonQA            = "qa"            // average QA score below the bar
	ReasonResolved      = "resolved"      // fewer resolved conversations than the bar
	ReasonCapacity      = "capacity"      // no free seat (Active >= Capacity)
	ReasonPendingOffer  = "pending_offer" // already has a pending offer
	// ReasonAlreadyOffered: was offered this conversation and some other
	// eligible agent has not been yet.
	ReasonAlreadyOffered = "already_offered"
	// ReasonReofferCooldown: everyone eligible has had this conversation,
	// but this agent was offered it less than ReofferCooldown ago.
	ReasonReofferCooldown = "reoffer_cooldown"
)

// Gates an eligible agent passed, as listed in Result.Gates and
// Explanation.Gates. Certification and transfers appear only when the brand
// requires them; exactly one of the two offer gates appears per agent.
const (
	GateApproved       = "approved"
	GateOnline         = "online"
	GateLanguage       = "language"
	GateCertification  = "certification"
	GateNotBlocked     = "not_blocked"
	GateTransfers      = "transfers"
	GateFreeSeat       = "free_seat"
	GateNoPendingOffer = "no_pending_offer"
	GateNotOffered     = "not_offered_before"     // never offered this conversation
	GateReoffer        = "reoffer_after_cooldown" // everyone had it, cooldown passed
)

// Score constants.
const (
	// NoSkillsPart is the skill part when the conversation requires no
	// skill: the same for every agent, so it does not reorder them.
	NoSkillsPart = 0.5
	// QANeutral is the QA average assumed for an agent with no QA scores,
	// for the score only (they pass the QA bar regardless).
	QANeutral = 80.0
	// IdleScale sets how fast the idle part grows: 1 − e^(−idle/IdleScale),
	// so 10 min idle gives 0.63 and 30 min 0.95.
	IdleScale = 10 * time.Minute
)

// Parts are the normalised score parts, each in [0,1]:
//
//   - Skill: mean level of the required skills / 5 (NoSkillsPart when none
//     is required);
//   - Rating: BayesianRating / 5 (no ratings: the prior, 0.8);
//   - QA: QA average / 100 (no scores: QANeutral / 100);
//   - Idle: 1 − e^(−idle/IdleScale); never worked: 1;
//   - Load: 1 − Active/Capacity;
//   - Preference: 1 when the brand prefers the agent, else 0.
type Parts struct {
	Skill      float64 `json:"skill"`
	Rating     float64 `json:"rating"`
	QA         float64 `json:"qa"`
	Idle       float64 `json:"idle"`
	Load       float64 `json:"load"`
	Preference float64 `json:"preference"`
}

// Ranked is one eligible candidate with their score and the facts behind it.
type Ranked struct {
	AgentID string
	Index   int     // position in the candidates passed to Rank or Assign
	Rank    int     // 1-based
	Score   float64 // Σ weight·part / Σ weight, in [0,1], rounded to 1e-9
	Parts   Parts

	// Facts behind the parts, for explanations.
	SkillLevels []int         // the agent's level in each of Result.Skills, same order
	Rating      float64       // BayesianRating
	RatingCount int           //
	QA          float64       // QA average; 0 when QACount is 0
	QACount     int           //
	IdleSince   time.Time     // zero: never worked
	Idle        time.Duration // at Result.Now; 0 when never worked
	Preferred   bool          //
	Reoffer     bool          // was offered this conversation before (everyone has had it)
}

// Rejection is a candidate who is not eligible, with the first reason.
type Rejection struct {
	AgentID string
	Index   int    // position in the candidates passed to Rank
	Reason  string // one of the Reason constants; "skill:<slug>" for skills
}

// Result is the outcome of ranking the candidates for one conversation.
type Result struct {
	ConversationID string
	Now            time.Time
	Waited         time.Duration // time in the queue at Now (drives the ladder)
	Skills         []string      // required skills, as in the conversation

	// Ranked are the eligible candidates, best first. Ties in score go to
	// the longest idle (never worked first), then the lower agent ID.
	Ranked []Ranked
	// Rejected are the other candidates, in the order they were given.
	Rejected []Rejection
	// Eligible is len(Ranked); Considered is the number of candidates.
	Eligible   int
	Considered int
	// EligibleOnline counts the candidates who pass every gate and bar
	// except those of the moment (free seat, pending offer, re-offer): the
	// "eligible agents online" of the API and EstimateWait. FreeSeats sums
	// their free seats, less one for each pending offer.
	EligibleOnline int
	FreeSeats      int

	LadderStep int      // index into Rules.Ladder of the step in force; -1 none
	Bars       Bars     // the quality bars in force (after the ladder)
	Weights    Weights  // the weights used (defaults filled in)
	Gates      []string // gates every ranked candidate passed (without the offer gate)
}

// Rank decides who may take conv at now and orders them best first. cands
// are filled in for this conversation (see Candidate); the slice is not
// modified. Rank is deterministic: the same input gives the same output.
func Rank(now time.Time, conv Conversation, rules Rules, cands []Candidate) Result {
	return rank(now, conv, rules, cands, rankOpts{rejections: true})
}

// rankOpts are what Assign needs beyond Rank.
type rankOpts struct {
	rel        *relView        // per-brand and per-conversation facts; nil: the candidates' own
	taken      map[string]bool // agents given an offer earlier in the batch
	rejections bool            // collect Result.Rejected
	bestOnly   bool            // Ranked holds only the best (Rank 1); no full sort
	subset     []int           // rank only these indexes of cands (in order); nil: all
}

// view is what one candidate looks like for this conversation.
type view struct {
	certified, blocked, pending bool
	offeredAt                   time.Time
}

type ranker struct {
	now          time.Time
	conv         Conversation
	rules        Rules
	bars         Bars
	skillReasons []string
	o            rankOpts
}

func (k *ranker) view(c *Candidate) view {
	v := view{certified: c.Certified, blocked: c.BlockedByBrand, pending: c.HasPendingOffer, offeredAt: c.LastOfferedThis}
	if r := k.o.rel; r != nil {
		// Only the lookups that can matter: each one hashes the ID.
		v.certified = k.rules.RequireCertification && r.certified[c.ID]
		v.blocked = len(r.blocked) > 0 && r.blocked[c.ID]
		v.offeredAt = time.Time{}
		if len(r.offered) > 0 {
			v.offeredAt = r.offered[c.ID]
		}
	}
	if len(k.o.taken) > 0 && k.o.taken[c.ID] {
		v.pending = true
	}
	return v
}

// qualify checks the standing gates and the quality bars; "" means passed.
// It fills v once the agent-wide gates pass, so the many offline or
// unsuitable agents cost no map lookups.
func (k *ranker) qualify(c *Candidate, v *view) string {
	switch {
	case !c.Approved:
		return ReasonNotApproved
	case c.Presence != PresenceOnline:
		return ReasonOffline
	case !speaks(c.Languages, k.conv.Language):
		return ReasonLanguage
	}
	*v = k.view(c)
	switch {
	case k.rules.RequireCertification && !v.certified:
		return ReasonCertification
	case v.blocked:
		return ReasonBlocked
	case k.rules.RequireTransfers && !c.CanReceiveTransfers:
		return ReasonTransfers
	}
	for i, s := range k.conv.Skills {
		if c.Skills[s] < k.bars.MinSkillLevel {
			return k.skillReasons[i]
		}
	}
	// A bar is met when the value reaches it up to float noise, so a
	// 4.2 bar admits a rating computed as 4.1999999.
	const eps = 1e-9
	switch {
	case c.RatingCount > 0 && k.bars.MinRating > 0 &&
		BayesianRating(c.RatingSum, c.RatingCount) < k.bars.MinRating-eps:
		return ReasonRating
	case c.QACount > 0 && k.bars.MinQAScore > 0 &&
		c.QASum/float64(c.QACount) < k.bars.MinQAScore-eps:
		return ReasonQA
	case c.ResolvedCount < k.bars.MinResolved:
		return ReasonResolved
	}
	return ""
}

// available checks the gates of the moment; "" means passed.
func available(c *Candidate, v *view) string {
	switch {
	case c.Active >= c.Capacity:
		return ReasonCapacity
	case v.pending:
		return ReasonPendingOffer
	}
	return ""
}

type offered struct {
	idx int
	at  time.Time
}

func rank(now time.Time, conv Conversation, rules Rules, cands []Candidate, o rankOpts) Result {
	waited := conv.Waited(now)
	bars, step := rules.BarsAt(waited)
	weights, wsum := rules.Weights.effective()
	k := &ranker{now: now, conv: conv, rules: rules, bars: bars, o: o}
	k.skillReasons = make([]string, len(conv.Skills))
	for i, s := range conv.Skills {
		k.skillReasons[i] = ReasonSkillPrefix + s
	}
	res := Result{
		ConversationID: conv.ID, Now: now, Waited: waited, Skills: conv.Skills,
		Considered: len(cands), LadderStep: step, Bars: bars, Weights: weights,
		Gates: gates(rules),
	}

	var reasons []string
	if o.rejections {
		reasons = make([]string, len(cands))
	}
	reject := func(i int, why string) {
		if reasons != nil {
			reasons[i] = why
		}
	}
	n := len(cands)
	if o.subset != nil {
		n = len(o.subset)
	}
	fresh := make([]int, 0, n)
	var again []offered
	for j := 0; j < n; j++ {
		i := j
		if o.subset != nil {
			i = o.subset[j]
		}
		c := &cands[i]
		var v view
		why := k.qualify(c, &v)
		if why == "" {
			res.EligibleOnline++
			free := c.Capacity - c.Active
			if v.pending {
				free--
			}
			res.FreeSeats += max(free, 0)
			why = available(c, &v)
		}
		switch {
		case why != "":
			reject(i, why)
		case v.offeredAt.IsZero():
			fresh = append(fresh, i)
		default:
			again = append(again, offered{i, v.offeredAt})
		}
	}

	// The re-offer rule: an agent who already had this conversation gets it
	// again only once every other eligible agent has had it too, and only
	// ReofferCooldown after it was last offered to them.
	eligible := fresh
	nFresh := len(fresh)
	for _, a := range again {
		switch {
		case nFresh > 0:
			reject(a.idx, ReasonAlreadyOffered)
		case now.Sub(a.at) < ReofferCooldown:
			reject(a.idx, ReasonReofferCooldown)
		default:
			eligible = append(eligible, a.idx)
		}
	}

	res.Eligible = len(eligible)
	if len(eligible) > 0 {
		ns := len(conv.Skills)
		var ranked []Ranked
		if o.bestOnly {
			// Two buffers for the skill levels: the best so far and the
			// one being scored, swapped when it wins.
			ranked = make([]Ranked, 0, 1)
			bufs := make([]int, 2*ns)
			best, next := bufs[:ns:ns], bufs[ns:]
			for n, i := range eligible {
				r := k.score(&cands[i], weights, wsum, next)
				r.Index = i
				r.Reoffer = n >= nFresh
				if len(ranked) == 0 || compareRanked(&r, &ranked[0]) < 0 {
					best, next = next, best
					r.SkillLevels = best
					ranked = append(ranked[:0], r)
				}
			}
		} else {
			levels := make([]int, len(eligible)*ns) // one allocation for all SkillLevels
			ranked = make([]Ranked, 0, len(eligible))
			for n, i := range eligible {
				r := k.score(&cands[i], weights, wsum, levels[n*ns:(n+1)*ns:(n+1)*ns])
				r.Index = i
				r.Reoffer = n >= nFresh
				ranked = append(ranked, r)
			}
		}
		if !o.bestOnly {
			slices.SortFunc(ranked, func(a, b Ranked) int { return compareRanked(&a, &b) })
		}
		for n := range ranked {
			ranked[n].Rank = n + 1
		}
		res.Ranked = ranked
	}

	if reasons != nil {
		res.Rejected = make([]Rejection, 0, len(cands)-len(eligible))
		for i, why := range reasons {
			if why != "" {
				res.Rejected = append(res.Rejected, Rejection{AgentID: cands[i].ID, Index: i, Reason: why})
			}
		}
	}
	return res
}

// score computes the parts of one eligible candidate; levels receives their
// level in each required skill.
func (k *ranker) score(c *Candidate, w Weights, wsum float64, levels []int) Ranked {
	r := Ranked{
		AgentID: c.ID, SkillLevels: levels, RatingCount: c.RatingCount, QACount: c.QACount,
		IdleSince: c.IdleSince, Preferred: c.Preferred,
	}
	if k.o.rel != nil { // looked up here, for the few eligible only
		r.Preferred = k.o.rel.preferred[c.ID]
	}
	var p Parts

	if len(k.conv.Skills) == 0 {
		p.Skill = NoSkillsPart
	} else {
		total := 0
		for i, s := range k.conv.Skills {
			l := min(max(c.Skills[s], 0), MaxSkillLevel)
			levels[i] = l
			total += l
		}
		p.Skill = float64(total) / float64(len(k.conv.Skills)*MaxSkillLevel)
	}

	r.Rating = BayesianRating(c.RatingSum, c.RatingCount)
	p.Rating = clamp01(r.Rating / MaxRating)

	if c.QACount > 0 {
		r.QA = c.QASum / float64(c.QACount)
		p.QA = clamp01(r.QA / MaxQAScore)
	} else {
		p.QA = QANeutral / MaxQAScore
	}

	if c.IdleSince.IsZero() {
		p.Idle = 1
	} else {
		r.Idle = max(k.now.Sub(c.IdleSince), 0)
		p.Idle = 1 - math.Exp(-float64(r.Idle)/float64(IdleScale))
	}

	if c.Capacity > 0 {
		p.Load = clamp01(1 - float64(c.Active)/float64(c.Capacity))
	}
	if r.Preferred {
		p.Preference = 1
	}

	r.Parts = p
	s := (w.Skill*p.Skill + w.Rating*p.Rating + w.QA*p.QA + w.Idle*p.Idle + w.Load*p.Load +
		w.Preference*p.Preference) / wsum
	// Rounded so that equal scores reached by different sums compare
	// equal and fall to the tie-breaks.
	r.Score = math.Round(s*1e9) / 1e9
	return r
}

// compareRanked orders best first: higher score, then longest idle (never
// worked first), then lower agent ID, then input order.
func compareRanked(a, b *Ranked) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	switch az, bz := a.IdleSince.IsZero(), b.IdleSince.IsZero(); {
	case az && !bz:
		return -1
	case bz && !az:
		return 1
	case !az:
		if c := a.IdleSince.Compare(b.IdleSince); c != 0 {
			return c
		}
	}
	if c := strings.Compare(a.AgentID, b.AgentID); c != 0 {
		return c
	}
	return cmp.Compare(a.Index, b.Index)
}

// gates lists the gates every eligible candidate passed under rules.
func gates(rules Rules) []string {
	g := []string{GateApproved, GateOnline, GateLanguage}
	if rules.RequireCertification {
		g = append(g, GateCertification)
	}
	g = append(g, GateNotBlocked)
	if rules.RequireTransfers {
		g = append(g, GateTransfers)
	}
	return append(g, GateFreeSeat, GateNoPendingOffer)
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }

// Census counts, for conv at now, the candidates who pass every gate and
// bar except those of the moment (EligibleOnline) and the seats they have
// free (FreeSeats), as Rank's Result would, without scoring or sorting:
// what a wait estimate needs, cheaply enough for every escalation.
func Census(now time.Time, conv Conversation, rules Rules, cands []Candidate) (eligibleOnline, freeSeats int) {
	bars, _ := rules.BarsAt(conv.Waited(now))
	k := &ranker{now: now, conv: conv, rules: rules, bars: bars}
	k.skillReasons = make([]string, len(conv.Skills))
	for i, s := range conv.Skills {
		k.skillReasons[i] = ReasonSkillPrefix + s
	}
	for i := range cands {
		c := &cands[i]
		var v view
		if k.qualify(c, &v) != "" {
			continue
		}
		eligibleOnline++
		free := c.Capacity - c.Active
		if v.pending {
			free--
		}
		freeSeats += max(free, 0)
	}
	return eligibleOnline, freeSeats
}
