package matching

import (
	"slices"
	"time"
)

// Relations hold the facts that depend on the brand or the conversation
// rather than the agent alone, for batches over several brands. When
// Relations are used, they replace the Candidate fields Certified,
// BlockedByBrand, Preferred and LastOfferedThis; an absent entry means
// false (or never offered). The zero value is empty and ready to use.
type Relations struct {
	Certified map[string]map[string]bool      // brand ID → agent ID → holds a valid certificate
	Blocked   map[string]map[string]bool      // brand ID → agent ID → blocked by the brand
	Preferred map[string]map[string]bool      // brand ID → agent ID → preferred by the brand
	Offered   map[string]map[string]time.Time // conversation ID → agent ID → last offered at
}

// AddCertified records that the agent holds a valid certificate for the brand.
func (r *Relations) AddCertified(brandID, agentID string) { put(&r.Certified, brandID, agentID, true) }

// AddBlocked records that the brand blocked the agent.
func (r *Relations) AddBlocked(brandID, agentID string) { put(&r.Blocked, brandID, agentID, true) }

// AddPreferred records that the brand prefers the agent.
func (r *Relations) AddPreferred(brandID, agentID string) { put(&r.Preferred, brandID, agentID, true) }

// AddOffer records that the conversation was offered to the agent at at;
// the latest time is kept.
func (r *Relations) AddOffer(conversationID, agentID string, at time.Time) {
	if prev := r.Offered[conversationID][agentID]; at.After(prev) {
		put(&r.Offered, conversationID, agentID, at)
	}
}

func put[V any](m *map[string]map[string]V, outer, inner string, v V) {
	if *m == nil {
		*m = map[string]map[string]V{}
	}
	if (*m)[outer] == nil {
		(*m)[outer] = map[string]V{}
	}
	(*m)[outer][inner] = v
}

// relView is Relations narrowed to one conversation.
type relView struct {
	certified, blocked, preferred map[string]bool
	offered                       map[string]time.Time
}

func (r *Relations) view(conv Conversation) *relView {
	if r == nil {
		return nil
	}
	return &relView{
		certified: r.Certified[conv.BrandID], blocked: r.Blocked[conv.BrandID],
		preferred: r.Preferred[conv.BrandID], offered: r.Offered[conv.ID],
	}
}

// Apply returns a copy of cands with the brand and conversation fields
// filled from r for conv, ready for Rank. A nil r returns cands unchanged.
func (r *Relations) Apply(conv Conversation, cands []Candidate) []Candidate {
	v := r.view(conv)
	if v == nil {
		return cands
	}
	out := slices.Clone(cands)
	for i := range out {
		c := &out[i]
		c.Certified, c.BlockedByBrand, c.Preferred = v.certified[c.ID], v.blocked[c.ID], v.preferred[c.ID]
		c.LastOfferedThis = v.offered[c.ID]
	}
	return out
}

// Assignment is one offer to make: the conversation, the agent and why.
type Assignment struct {
	ConversationID string
	AgentID        string
	Index          int // the agent's position in the candidates passed to Assign
	Explanation    Explanation
}

// Assign matches a batch greedily: it takes the queue in dispatch order
// (SortQueue, on a copy), gives each conversation the best eligible
// candidate under its brand's rules, and from then on treats that agent as
// having a pending offer, so no agent gets two offers in one batch. A
// conversation nobody is eligible for is skipped, and so is one whose brand
// is missing from rulesByBrand (its bars are unknown). rel fills the brand
// and conversation fields of the candidates (see Relations); nil uses the
// candidates' own fields for every conversation, which is right only for a
// batch of one brand with no earlier offers. Neither queue nor cands is
// modified. The result is in dispatch order.
func Assign(now time.Time, queue []Conversation, rulesByBrand map[string]Rules, cands []Candidate, rel *Relations) []Assignment {
	// Agents who fail an agent-wide gate fail it for every conversation:
	// leave them out once rather than 200 times.
	pool := make([]int, 0, len(cands)) // positions in cands
	for i := range cands {
		if cands[i].Offerable() {
			pool = append(pool, i)
		}
	}
	order := slices.Clone(queue)
	SortQueue(order)
	taken := map[string]bool{}
	var out []Assignment
	for _, conv := range order {
		if len(taken) >= len(pool) {
			break
		}
		rules, ok := rulesByBrand[conv.BrandID]
		if !ok {
			continue
		}
		res := rank(now, conv, rules, cands, rankOpts{rel: rel.view(conv), taken: taken, bestOnly: true, subset: pool})
		if len(res.Ranked) == 0 {
			continue
		}
		res.Considered = len(cands)
		best := res.Ranked[0]
		taken[best.AgentID] = true
		out = append(out, Assignment{
			ConversationID: conv.ID, AgentID: best.AgentID, Index: best.Index,
			Explanation: res.Explain(best),
		})
	}
	return out
}
