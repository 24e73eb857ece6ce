package matching

import (
	"strings"
	"time"
)

// Presence values, as stored on the agent.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
)

// ReofferCooldown is how long an agent who was offered a conversation must
// wait before being offered it again, and then only when every other
// eligible agent has had it too.
const ReofferCooldown = 60 * time.Second

// Conversation is one queued conversation as matching sees it.
type Conversation struct {
	ID      string
	BrandID string // selects the brand's Rules in Assign
	// Language is the customer's BCP 47 tag (canonical, as the store keeps
	// it). Empty matches no agent: fill it, do not leave it out.
	Language string
	// Skills are the brand skill slugs the conversation requires, compared
	// exactly with the keys of Candidate.Skills.
	Skills []string
	// Priority is 0–9, 9 the most urgent (default 5).
	Priority int
	// QueuedAt is when the conversation (re)entered the queue: escalation,
	// decline, expiry or transfer. The ladder counts the wait from here;
	// zero falls back to CreatedAt.
	QueuedAt  time.Time
	CreatedAt time.Time
}

// queuedAt is when the current wait started.
func (c Conversation) queuedAt() time.Time {
	if c.QueuedAt.IsZero() {
		return c.CreatedAt
	}
	return c.QueuedAt
}

// Waited is how long the conversation has waited in the queue at now (since
// QueuedAt), never negative.
func (c Conversation) Waited(now time.Time) time.Duration {
	return max(now.Sub(c.queuedAt()), 0)
}

// Candidate is one agent as the dispatcher sees them when ranking one
// conversation. Most fields are about the agent; a few depend on the brand
// (Certified, BlockedByBrand, Preferred) or on the conversation
// (LastOfferedThis): for a batch over several brands, leave those zero and
// pass a Relations to Assign, or use Relations.Apply before Rank.
type Candidate struct {
	ID string
	// Approved: the agent's application is approved and their user account
	// is active (not suspended).
	Approved bool
	// Presence is PresenceOnline, PresenceAway or PresenceOffline, from a
	// live presence lease: an agent whose heartbeat lapsed is not online.
	Presence string
	// Capacity is how many chats the agent takes at once (1–3); Active how
	// many they have now. An agent with Active >= Capacity has no free seat.
	Capacity int
	Active   int
	// HasPendingOffer: the agent has a pending offer (for any conversation).
	// An agent has at most one pending offer at a time.
	HasPendingOffer bool
	// Languages are BCP 47 tags; see LanguageMatch for the rule.
	Languages []string
	// Skills maps a skill slug to the agent's level, 1–5.
	Skills map[string]int
	// RatingSum and RatingCount: the sum and number of the agent's customer
	// ratings (1–5 stars each).
	RatingSum   float64
	RatingCount int
	// QASum and QACount: the sum and number of the agent's QA scorecard
	// scores (0–100 each).
	QASum   float64
	QACount int
	// ResolvedCount is how many conversations the agent has resolved.
	ResolvedCount int
	// Certified: the agent holds a valid (unexpired at now) certificate for
	// the conversation's brand.
	Certified bool
	// BlockedByBrand: the conversation's brand blocked this agent.
	BlockedByBrand bool
	// Preferred: the conversation's brand marked this agent as preferred
	// (the "brand preference" score part).
	Preferred bool
	// CanReceiveTransfers: the agent's Stripe account has transfers enabled.
	CanReceiveTransfers bool
	// IdleSince is when the agent last became free (ended their last chat,
	// or came online with none). Zero means never worked: longest idle.
	IdleSince time.Time
	// LastOfferedThis is when this conversation was last offered to the
	// agent (any outcome); zero if never.
	LastOfferedThis time.Time
}

// Offerable reports whether an offer can go to the agent at all, whatever
// the conversation: approved, online, a seat free and no offer pending.
// Assign leaves the others out of a batch; a pass with none makes no offer.
func (c *Candidate) Offerable() bool {
	return c.Approved && c.Presence == PresenceOnline && c.Active < c.Capacity && !c.HasPendingOffer
}

// Prior of the Bayesian rating: every agent starts as if they already had
// RatingPriorWeight ratings of RatingPriorMean stars.
const (
	RatingPriorMean   = 4.0
	RatingPriorWeight = 5.0
)

// BayesianRating is the agent's rating shrunk towards the prior:
// (sum + RatingPriorMean·RatingPriorWeight) / (count + RatingPriorWeight).
// No ratings give 4.0; one 5★ gives 4.17; ten 5★ give 4.67.
func BayesianRating(sum float64, count int) float64 {
	if count <= 0 {
		sum, count = 0, 0
	}
	return (sum + RatingPriorMean*RatingPriorWeight) / (float64(count) + RatingPriorWeight)
}

// LanguageMatch reports whether an agent speaking agentTag can serve a
// conversation in convTag. Tags are compared case-insensitively ("_" counts
// as "-"), subtag by subtag, and match when one is a prefix of the other:
// they agree on every subtag both have.
//
//   - a conversation in "en" is served by "en", "en-GB", "en-US"…
//   - a conversation in "pt-BR" is served by "pt-BR" and bare "pt", not
//     by "pt-PT";
//   - "en-GB" and "en-US" do not match each other.
//
// An empty tag matches nothing.
func LanguageMatch(convTag, agentTag string) bool {
	convTag, agentTag = strings.TrimSpace(convTag), strings.TrimSpace(agentTag)
	if convTag == "" || agentTag == "" {
		return false
	}
	n := min(len(convTag), len(agentTag))
	for i := range n {
		if foldTag(convTag[i]) != foldTag(agentTag[i]) {
			return false
		}
	}
	switch {
	case len(convTag) > n:
		return foldTag(convTag[n]) == '-'
	case len(agentTag) > n:
		return foldTag(agentTag[n]) == '-'
	}
	return true
}

// speaks reports whether any of the agent's tags serves convTag.
func speaks(agentTags []string, convTag string) bool {
	for _, t := range agentTags {
		if LanguageMatch(convTag, t) {
			return true
		}
	}
	return false
}

func foldTag(b byte) byte {
	switch {
	case 'A' <= b && b <= 'Z':
		return b + 'a' - 'A'
	case b == '_':
		return '-'
	}
	return b
}
