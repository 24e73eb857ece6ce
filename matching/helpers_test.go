package matching

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// agent returns a candidate who passes every gate and the bars of strict().
func agent(id string) Candidate {
	return Candidate{
		ID: id, Approved: true, Presence: PresenceOnline, Capacity: 2,
		Languages: []string{"en"}, Skills: map[string]int{"billing": 4, "refunds": 3},
		RatingSum: 45, RatingCount: 10, // Bayesian (45+20)/15 = 4.33
		QASum: 850, QACount: 10, // average 85
		ResolvedCount: 20, Certified: true, CanReceiveTransfers: true,
		IdleSince: t0.Add(-5 * time.Minute),
	}
}

// conversation returns an English conversation needing billing and refunds,
// queued 10 s before t0.
func conversation(id string) Conversation {
	return Conversation{
		ID: id, BrandID: "b1", Language: "en", Skills: []string{"billing", "refunds"}, Priority: 5,
		QueuedAt: t0.Add(-10 * time.Second), CreatedAt: t0.Add(-10 * time.Second),
	}
}

// strict returns rules with every bar and requirement set; agent() passes.
func strict() Rules {
	return Rules{MinSkillLevel: 3, MinRating: 4.0, MinQAScore: 80, MinResolved: 10,
		RequireCertification: true, RequireTransfers: true}
}

// ids returns the agent IDs of the ranked candidates, in order.
func ids(rs []Ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.AgentID
	}
	return out
}

// reasons maps rejected agent IDs to their reason.
func reasons(res Result) map[string]string {
	out := map[string]string{}
	for _, r := range res.Rejected {
		out[r.AgentID] = r.Reason
	}
	return out
}

// clone deep-copies candidates so tests can check inputs are untouched.
func clone(cs []Candidate) []Candidate {
	out := slices.Clone(cs)
	for i := range out {
		out[i].Languages = slices.Clone(cs[i].Languages)
		if cs[i].Skills != nil {
			m := make(map[string]int, len(cs[i].Skills))
			for k, v := range cs[i].Skills {
				m[k] = v
			}
			out[i].Skills = m
		}
	}
	return out
}

var (
	benchLangs  = []string{"en", "en-GB", "en-US", "pt-BR", "pt", "es", "fr", "de"}
	benchSkills = []string{"billing", "refunds", "shipping", "tech", "returns", "accounts"}
)

// population returns n pseudo-random candidates (fixed seed): most online,
// varied languages, skills, ratings, load and idle times.
func population(n int, seed uint64) []Candidate {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]Candidate, n)
	for i := range out {
		c := Candidate{
			ID:                  fmt.Sprintf("agent-%05d", i),
			Approved:            r.IntN(20) != 0,
			Presence:            []string{PresenceOnline, PresenceOnline, PresenceOnline, PresenceAway, PresenceOffline}[r.IntN(5)],
			Capacity:            1 + r.IntN(3),
			Languages:           []string{benchLangs[r.IntN(len(benchLangs))]},
			Skills:              map[string]int{},
			ResolvedCount:       r.IntN(200),
			Certified:           r.IntN(4) != 0,
			BlockedByBrand:      r.IntN(50) == 0,
			CanReceiveTransfers: r.IntN(10) != 0,
			Preferred:           r.IntN(10) == 0,
		}
		c.Active = r.IntN(c.Capacity + 1)
		c.HasPendingOffer = r.IntN(10) == 0
		if r.IntN(3) == 0 {
			c.Languages = append(c.Languages, "en")
		}
		for _, s := range benchSkills {
			if r.IntN(2) == 0 {
				c.Skills[s] = 1 + r.IntN(5)
			}
		}
		if c.RatingCount = r.IntN(60); c.RatingCount > 0 {
			c.RatingSum = float64(c.RatingCount) * (3 + 2*r.Float64())
		}
		if c.QACount = r.IntN(15); c.QACount > 0 {
			c.QASum = float64(c.QACount) * (60 + 40*r.Float64())
		}
		if r.IntN(10) != 0 {
			c.IdleSince = t0.Add(-time.Duration(r.IntN(3600)) * time.Second)
		}
		out[i] = c
	}
	return out
}

// queueOf returns n pseudo-random conversations over brands b1..b3.
func queueOf(n int, seed uint64) []Conversation {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]Conversation, n)
	for i := range out {
		q := t0.Add(-time.Duration(r.IntN(600)) * time.Second)
		c := Conversation{
			ID: fmt.Sprintf("conv-%04d", i), BrandID: fmt.Sprintf("b%d", 1+r.IntN(3)),
			Language: []string{"en", "en", "en", "pt-BR", "es"}[r.IntN(5)],
			Priority: r.IntN(10), QueuedAt: q, CreatedAt: q,
		}
		for _, s := range benchSkills {
			if r.IntN(4) == 0 {
				c.Skills = append(c.Skills, s)
			}
		}
		out[i] = c
	}
	return out
}
