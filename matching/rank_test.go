package matching

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestRankGates gives each candidate exactly one failing gate or bar and
// checks the reason; a fresh, fully eligible agent "zz" is always present.
func TestRankGates(t *testing.T) {
	tests := []struct {
		name   string
		rules  func(*Rules)
		change func(*Candidate)
		want   string // "" means eligible
	}{
		{"Eligible", nil, func(*Candidate) {}, ""},
		{"NotApproved", nil, func(c *Candidate) { c.Approved = false }, ReasonNotApproved},
		{"Away", nil, func(c *Candidate) { c.Presence = PresenceAway }, ReasonOffline},
		{"Offline", nil, func(c *Candidate) { c.Presence = PresenceOffline }, ReasonOffline},
		{"NoPresence", nil, func(c *Candidate) { c.Presence = "" }, ReasonOffline},
		{"Language", nil, func(c *Candidate) { c.Languages = []string{"fr"} }, ReasonLanguage},
		{"NoLanguages", nil, func(c *Candidate) { c.Languages = nil }, ReasonLanguage},
		{"Certification", nil, func(c *Candidate) { c.Certified = false }, ReasonCertification},
		{"CertificationNotRequired", func(r *Rules) { r.RequireCertification = false },
			func(c *Candidate) { c.Certified = false }, ""},
		{"Blocked", nil, func(c *Candidate) { c.BlockedByBrand = true }, ReasonBlocked},
		{"Transfers", nil, func(c *Candidate) { c.CanReceiveTransfers = false }, ReasonTransfers},
		{"TransfersNotRequired", func(r *Rules) { r.RequireTransfers = false },
			func(c *Candidate) { c.CanReceiveTransfers = false }, ""},
		{"SkillMissing", nil, func(c *Candidate) { delete(c.Skills, "refunds") }, "skill:refunds"},
		{"SkillBelowLevel", nil, func(c *Candidate) { c.Skills["billing"] = 2 }, "skill:billing"},
		{"SkillAtLevel", nil, func(c *Candidate) { c.Skills["billing"] = 3 }, ""},
		{"SkillsNil", nil, func(c *Candidate) { c.Skills = nil }, "skill:billing"},
		{"SkillCaseDiffers", nil, func(c *Candidate) { c.Skills = map[string]int{"Billing": 5, "refunds": 5} }, "skill:billing"},
		{"Rating", nil, func(c *Candidate) { c.RatingSum = 30 }, ReasonRating}, // (30+20)/15 = 3.33
		{"RatingAtBar", func(r *Rules) { r.MinRating = 4.2 },
			func(c *Candidate) { c.RatingSum = 43 }, ""}, // (43+20)/15 = 4.2
		{"QA", nil, func(c *Candidate) { c.QASum = 700 }, ReasonQA},
		{"QAAtBar", nil, func(c *Candidate) { c.QASum = 800 }, ""},
		{"QAAtBarUpToFloatNoise", nil, func(c *Candidate) {
			c.QASum, c.QACount = 0, 3
			for _, s := range []float64{70.1, 80.3, 89.6} { // sums to 239.99999999999997
				c.QASum += s
			}
			if c.QASum/3 >= 80 {
				panic("the test needs an average a hair below 80")
			}
		}, ""},
		{"Resolved", nil, func(c *Candidate) { c.ResolvedCount = 9 }, ReasonResolved},
		{"ResolvedAtBar", nil, func(c *Candidate) { c.ResolvedCount = 10 }, ""},
		{"NoSeat", nil, func(c *Candidate) { c.Active = 2 }, ReasonCapacity},
		{"OverCapacity", nil, func(c *Candidate) { c.Active = 3 }, ReasonCapacity},
		{"ZeroCapacity", nil, func(c *Candidate) { c.Capacity, c.Active = 0, 0 }, ReasonCapacity},
		{"OneSeatLeft", nil, func(c *Candidate) { c.Active = 1 }, ""},
		{"PendingOffer", nil, func(c *Candidate) { c.HasPendingOffer = true }, ReasonPendingOffer},
		{"AlreadyOffered", nil, func(c *Candidate) { c.LastOfferedThis = t0.Add(-time.Hour) }, ReasonAlreadyOffered},
		// Standing qualifications are reported before the moment's.
		{"BusyAndWrongLanguage", nil, func(c *Candidate) { c.Active, c.Languages = 2, []string{"de"} }, ReasonLanguage},
		{"OfflineAndOffered", nil, func(c *Candidate) { c.Presence, c.LastOfferedThis = PresenceAway, t0.Add(-time.Hour) }, ReasonOffline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := strict()
			if tt.rules != nil {
				tt.rules(&rules)
			}
			c := agent("a")
			tt.change(&c)
			res := Rank(t0, conversation("c1"), rules, []Candidate{c, agent("zz")})
			got := reasons(res)["a"]
			if got != tt.want {
				t.Fatalf("reason = %q; want %q (ranked %v)", got, tt.want, ids(res.Ranked))
			}
			if !slices.Contains(ids(res.Ranked), "zz") {
				t.Fatalf("the fully eligible agent was not ranked: %v", res.Rejected)
			}
			wantEligible := 1
			if tt.want == "" {
				wantEligible = 2
			}
			if res.Eligible != wantEligible || len(res.Ranked) != wantEligible || len(res.Ranked)+len(res.Rejected) != 2 {
				t.Fatalf("eligible %d, ranked %d, rejected %d; want %d eligible of 2",
					res.Eligible, len(res.Ranked), len(res.Rejected), wantEligible)
			}
		})
	}
}

// TestRankNoScoresPass: agents without ratings or QA scores pass those bars
// however high; the resolved bar is what keeps new agents out.
func TestRankNoScoresPass(t *testing.T) {
	fresh := agent("new")
	fresh.RatingSum, fresh.RatingCount, fresh.QASum, fresh.QACount = 0, 0, 0, 0
	fresh.ResolvedCount = 0

	tests := []struct {
		name  string
		rules Rules
		c     func(Candidate) Candidate
		want  string
	}{
		{"HighRatingBar", Rules{MinRating: 5}, nil, ""},
		{"HighQABar", Rules{MinQAScore: 100}, nil, ""},
		{"BothBars", Rules{MinRating: 4.9, MinQAScore: 99}, nil, ""},
		{"ResolvedBarStillApplies", Rules{MinRating: 4.9, MinResolved: 1}, nil, ReasonResolved},
		{"StraySumWithoutCount", Rules{MinRating: 4.5, MinQAScore: 90}, func(c Candidate) Candidate {
			c.RatingSum, c.QASum = 2, 10 // inconsistent data: the counts decide
			return c
		}, ""},
		{"OneLowRatingCounts", Rules{MinRating: 4.0}, func(c Candidate) Candidate {
			c.RatingSum, c.RatingCount = 1, 1 // (1+20)/6 = 3.5
			return c
		}, ReasonRating},
		{"OneLowQACounts", Rules{MinQAScore: 70}, func(c Candidate) Candidate {
			c.QASum, c.QACount = 50, 1
			return c
		}, ReasonQA},
		// One 5★ is a Bayesian 4.17, not 5.0: a 4.5 bar rejects it.
		{"OneFiveStarIsNotFive", Rules{MinRating: 4.5}, func(c Candidate) Candidate {
			c.RatingSum, c.RatingCount = 5, 1
			return c
		}, ReasonRating},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fresh
			if tt.c != nil {
				c = tt.c(c)
			}
			res := Rank(t0, conversation("c1"), tt.rules, []Candidate{c})
			if got := reasons(res)["new"]; got != tt.want {
				t.Fatalf("reason = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestRankLadder: the bars in force follow the time waited in the queue.
func TestRankLadder(t *testing.T) {
	rules := Rules{
		MinSkillLevel: 4, MinRating: 4.5,
		Ladder: []LadderStep{
			{After: 60 * time.Second, MinSkillLevel: new(3)},
			{After: 120 * time.Second, MinSkillLevel: new(3), MinRating: new(4.2)},
		},
	}
	c := agent("a") // billing 4, refunds 3, rating 4.33
	tests := []struct {
		waited   time.Duration
		step     int
		eligible bool
		reason   string
	}{
		{0, -1, false, "skill:refunds"},
		{59 * time.Second, -1, false, "skill:refunds"},
		{60 * time.Second, 0, false, ReasonRating},
		{119 * time.Second, 0, false, ReasonRating},
		{120 * time.Second, 1, true, ""},
		{time.Hour, 1, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.waited.String(), func(t *testing.T) {
			conv := conversation("c1")
			conv.QueuedAt = t0.Add(-tt.waited)
			conv.CreatedAt = t0.Add(-3 * time.Hour) // the ladder counts from QueuedAt
			res := Rank(t0, conv, rules, []Candidate{c})
			if res.LadderStep != tt.step {
				t.Errorf("LadderStep = %d; want %d", res.LadderStep, tt.step)
			}
			if res.Waited != tt.waited {
				t.Errorf("Waited = %v; want %v", res.Waited, tt.waited)
			}
			if got := res.Eligible == 1; got != tt.eligible {
				t.Fatalf("eligible = %v; want %v (%v)", got, tt.eligible, res.Rejected)
			}
			if got := reasons(res)["a"]; got != tt.reason {
				t.Errorf("reason = %q; want %q", got, tt.reason)
			}
			if tt.eligible {
				e := res.Explain(res.Ranked[0])
				if e.LadderStep != tt.step || e.Bars != (Bars{MinSkillLevel: 3, MinRating: 4.2}) {
					t.Errorf("explanation ladder step %d bars %+v", e.LadderStep, e.Bars)
				}
			}
		})
	}
}

// TestRankTieBreak: equal scores go to the longest idle (never worked
// first), then the lower agent ID, whatever the input order.
func TestRankTieBreak(t *testing.T) {
	at := func(id string, idle time.Duration) Candidate {
		c := agent(id)
		c.IdleSince = time.Time{}
		if idle >= 0 {
			c.IdleSince = t0.Add(-idle)
		}
		return c
	}
	skillOnly := Rules{Weights: Weights{Skill: 1}} // idle does not move the score
	tests := []struct {
		name  string
		rules Rules
		cands []Candidate
		want  []string
	}{
		{"LongerIdleFirst", skillOnly,
			[]Candidate{at("a", time.Minute), at("b", 5*time.Minute)}, []string{"b", "a"}},
		{"NeverWorkedFirst", skillOnly,
			[]Candidate{at("a", time.Hour), at("z", -1), at("m", 2*time.Hour)}, []string{"z", "m", "a"}},
		{"SameIdleByID", skillOnly,
			[]Candidate{at("c", time.Minute), at("a", time.Minute), at("b", time.Minute)}, []string{"a", "b", "c"}},
		{"BothNeverWorkedByID", skillOnly,
			[]Candidate{at("b", -1), at("a", -1)}, []string{"a", "b"}},
		{"DefaultWeightsLongerIdleScoresHigher", Rules{},
			[]Candidate{at("a", time.Minute), at("b", 5*time.Minute)}, []string{"b", "a"}},
		{"DefaultWeightsIdenticalByID", Rules{},
			[]Candidate{at("b", time.Minute), at("a", time.Minute)}, []string{"a", "b"}},
		// 0.3+0.57 and 0.2+0.67 differ in float64 (…994 vs …005): scores
		// are rounded so that the tie-break, not float noise, decides.
		{"EqualUpToFloatNoise", Rules{Weights: Weights{Skill: 1, QA: 1}},
			func() []Candidate {
				b, a := at("b", time.Hour), at("a", time.Minute)
				b.Skills, b.QASum, b.QACount = map[string]int{"billing": 2, "refunds": 1}, 57, 1
				a.Skills, a.QASum, a.QACount = map[string]int{"billing": 1, "refunds": 1}, 67, 1
				return []Candidate{a, b}
			}(), []string{"b", "a"}},
		{"ScoreBeforeIdle", skillOnly,
			func() []Candidate {
				lo, hi := at("a", time.Hour), at("b", time.Second)
				hi.Skills = map[string]int{"billing": 5, "refunds": 5}
				return []Candidate{lo, hi}
			}(), []string{"b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cands := range [][]Candidate{tt.cands, reversed(tt.cands)} {
				res := Rank(t0, conversation("c1"), tt.rules, cands)
				if got := ids(res.Ranked); !slices.Equal(got, tt.want) {
					t.Fatalf("order = %v; want %v", got, tt.want)
				}
				for i, r := range res.Ranked {
					if r.Rank != i+1 {
						t.Errorf("%s Rank = %d; want %d", r.AgentID, r.Rank, i+1)
					}
					if cands[r.Index].ID != r.AgentID {
						t.Errorf("Index %d is %s, not %s", r.Index, cands[r.Index].ID, r.AgentID)
					}
				}
			}
		})
	}
}

func reversed(cs []Candidate) []Candidate {
	out := slices.Clone(cs)
	slices.Reverse(out)
	return out
}

// TestRankReoffer covers the re-offer rule: an agent offered this
// conversation before gets it again only when every other eligible agent
// has had it and ReofferCooldown has passed since their own offer.
func TestRankReoffer(t *testing.T) {
	offered := func(id string, ago time.Duration) Candidate {
		c := agent(id)
		c.LastOfferedThis = t0.Add(-ago)
		return c
	}
	with := func(c Candidate, f func(*Candidate)) Candidate { f(&c); return c }
	tests := []struct {
		name     string
		cands    []Candidate
		eligible []string
		rejected map[string]string
	}{
		{"FreshAgentWaits", []Candidate{offered("a", 5*time.Minute), agent("b")},
			[]string{"b"}, map[string]string{"a": ReasonAlreadyOffered}},
		{"FreshAgentWaitsEvenWithinCooldown", []Candidate{offered("a", 10*time.Second), agent("b")},
			[]string{"b"}, map[string]string{"a": ReasonAlreadyOffered}},
		{"EveryoneHadItCooldownPassed", []Candidate{offered("a", 5*time.Minute), offered("b", 2*time.Minute)},
			[]string{"a", "b"}, map[string]string{}},
		{"EveryoneHadItOneInCooldown", []Candidate{offered("a", 5*time.Minute), offered("b", 30*time.Second)},
			[]string{"a"}, map[string]string{"b": ReasonReofferCooldown}},
		{"AloneInCooldown", []Candidate{offered("a", 30*time.Second)},
			nil, map[string]string{"a": ReasonReofferCooldown}},
		{"AloneJustBeforeCooldown", []Candidate{offered("a", ReofferCooldown-time.Millisecond)},
			nil, map[string]string{"a": ReasonReofferCooldown}},
		{"AloneAtCooldown", []Candidate{offered("a", ReofferCooldown)},
			[]string{"a"}, map[string]string{}},
		{"OfferedInTheFuture", []Candidate{offered("a", -time.Minute)},
			nil, map[string]string{"a": ReasonReofferCooldown}},
		{"OtherOffline", []Candidate{offered("a", 5*time.Minute), with(agent("b"), func(c *Candidate) { c.Presence = PresenceOffline })},
			[]string{"a"}, map[string]string{"b": ReasonOffline}},
		{"OtherFailsBar", []Candidate{offered("a", 5*time.Minute), with(agent("b"), func(c *Candidate) { c.QASum = 100 })},
			[]string{"a"}, map[string]string{"b": ReasonQA}},
		{"OtherBusy", []Candidate{offered("a", 5*time.Minute), with(agent("b"), func(c *Candidate) { c.Active = 2 })},
			[]string{"a"}, map[string]string{"b": ReasonCapacity}},
		{"OtherHasPendingOffer", []Candidate{offered("a", 5*time.Minute), with(agent("b"), func(c *Candidate) { c.HasPendingOffer = true })},
			[]string{"a"}, map[string]string{"b": ReasonPendingOffer}},
		{"OfferedAndBusy", []Candidate{with(offered("a", 5*time.Minute), func(c *Candidate) { c.Active = 2 }), offered("b", 5*time.Minute)},
			[]string{"b"}, map[string]string{"a": ReasonCapacity}},
		{"TwoFreshOneOffered", []Candidate{agent("a"), offered("b", time.Hour), agent("c")},
			[]string{"a", "c"}, map[string]string{"b": ReasonAlreadyOffered}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Rank(t0, conversation("c1"), strict(), tt.cands)
			got := ids(res.Ranked)
			slices.Sort(got)
			if !slices.Equal(got, tt.eligible) {
				t.Errorf("eligible = %v; want %v", got, tt.eligible)
			}
			if got := reasons(res); !reflect.DeepEqual(got, tt.rejected) {
				t.Errorf("rejected = %v; want %v", got, tt.rejected)
			}
			for _, r := range res.Ranked {
				wasOffered := !tt.cands[r.Index].LastOfferedThis.IsZero()
				if r.Reoffer != wasOffered {
					t.Errorf("%s Reoffer = %v; want %v", r.AgentID, r.Reoffer, wasOffered)
				}
				gates := res.Explain(r).Gates
				want := GateNotOffered
				if wasOffered {
					want = GateReoffer
				}
				if gates[len(gates)-1] != want {
					t.Errorf("%s gates end with %q; want %q", r.AgentID, gates[len(gates)-1], want)
				}
			}
		})
	}
}

// TestRankParts checks each score part and the weighted score.
func TestRankParts(t *testing.T) {
	tests := []struct {
		name   string
		conv   func(*Conversation)
		change func(*Candidate)
		want   Parts
	}{
		{"Base", nil, func(*Candidate) {},
			// skills (4+3)/10; rating 65/15/5; QA 85; idle 5 min; load 2 free of 2
			Parts{Skill: 0.7, Rating: 65.0 / 15 / 5, QA: 0.85, Idle: 1 - math.Exp(-0.5), Load: 1}},
		{"NoRequiredSkills", func(c *Conversation) { c.Skills = nil }, func(*Candidate) {},
			Parts{Skill: NoSkillsPart, Rating: 65.0 / 15 / 5, QA: 0.85, Idle: 1 - math.Exp(-0.5), Load: 1}},
		{"LevelAboveFiveClamped", nil, func(c *Candidate) { c.Skills = map[string]int{"billing": 9, "refunds": 5} },
			Parts{Skill: 1, Rating: 65.0 / 15 / 5, QA: 0.85, Idle: 1 - math.Exp(-0.5), Load: 1}},
		{"NewAgentNeutral", nil, func(c *Candidate) {
			c.RatingSum, c.RatingCount, c.QASum, c.QACount, c.IdleSince = 0, 0, 0, 0, time.Time{}
		}, Parts{Skill: 0.7, Rating: 0.8, QA: 0.8, Idle: 1, Load: 1}},
		{"IdleTenMinutesHalfLoaded", nil, func(c *Candidate) { c.IdleSince, c.Active = t0.Add(-IdleScale), 1 },
			Parts{Skill: 0.7, Rating: 65.0 / 15 / 5, QA: 0.85, Idle: 1 - math.Exp(-1), Load: 0.5}},
		{"IdleSinceInFuture", nil, func(c *Candidate) { c.IdleSince = t0.Add(time.Minute) },
			Parts{Skill: 0.7, Rating: 65.0 / 15 / 5, QA: 0.85, Idle: 0, Load: 1}},
		{"PreferredPerfect", nil, func(c *Candidate) {
			c.Preferred, c.RatingSum, c.RatingCount, c.QASum, c.QACount = true, 5000, 1000, 100, 1
		}, Parts{Skill: 0.7, Rating: 5020.0 / 1005 / 5, QA: 1, Idle: 1 - math.Exp(-0.5), Load: 1, Preference: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := conversation("c1")
			if tt.conv != nil {
				tt.conv(&conv)
			}
			c := agent("a")
			tt.change(&c)
			res := Rank(t0, conv, Rules{}, []Candidate{c})
			if res.Eligible != 1 {
				t.Fatalf("not eligible: %v", res.Rejected)
			}
			r := res.Ranked[0]
			checkParts(t, r.Parts, tt.want)
			w := DefaultWeights()
			want := w.Skill*tt.want.Skill + w.Rating*tt.want.Rating + w.QA*tt.want.QA + w.Idle*tt.want.Idle +
				w.Load*tt.want.Load + w.Preference*tt.want.Preference
			if math.Abs(r.Score-want) > 2e-9 {
				t.Errorf("Score = %v; want %v", r.Score, want)
			}
		})
	}
}

func checkParts(t *testing.T, got, want Parts) {
	t.Helper()
	g := []float64{got.Skill, got.Rating, got.QA, got.Idle, got.Load, got.Preference}
	w := []float64{want.Skill, want.Rating, want.QA, want.Idle, want.Load, want.Preference}
	for i := range g {
		if math.Abs(g[i]-w[i]) > 1e-9 {
			t.Fatalf("parts = %+v; want %+v", got, want)
		}
	}
}

// TestRankWeights: the score is the weighted mean of the parts; zero weights
// mean the defaults and negative weights count as zero.
func TestRankWeights(t *testing.T) {
	c := agent("a")
	c.Active = 1 // load 0.5
	tests := []struct {
		name        string
		w           Weights
		wantWeights Weights
		score       float64
	}{
		{"Zero", Weights{}, DefaultWeights(), -1},
		{"LoadOnly", Weights{Load: 3}, Weights{Load: 3}, 0.5},
		{"NegativeIgnored", Weights{Load: 1, Skill: -5}, Weights{Load: 1}, 0.5},
		{"AllNegative", Weights{Skill: -1}, DefaultWeights(), -1},
		{"SkillAndLoad", Weights{Skill: 1, Load: 1}, Weights{Skill: 1, Load: 1}, (0.7 + 0.5) / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Rank(t0, conversation("c1"), Rules{Weights: tt.w}, []Candidate{c})
			if res.Weights != tt.wantWeights {
				t.Errorf("Weights = %+v; want %+v", res.Weights, tt.wantWeights)
			}
			if s := res.Ranked[0].Score; s < 0 || s > 1 || (tt.score >= 0 && math.Abs(s-tt.score) > 1e-9) {
				t.Errorf("Score = %v; want %v in [0,1]", s, tt.score)
			}
		})
	}
}

// TestRankCounts checks the counts the wait estimate uses, and that
// Rejected keeps the input order with correct indexes.
func TestRankCounts(t *testing.T) {
	free := agent("free") // 2 free seats
	busy := agent("busy")
	busy.Capacity, busy.Active = 1, 1 // online and qualified, no seat
	pending := agent("pending")
	pending.Capacity, pending.Active, pending.HasPendingOffer = 3, 1, true // 2 seats, 1 promised
	away := agent("away")
	away.Presence = PresenceAway
	french := agent("french")
	french.Languages = []string{"fr"}
	again := agent("again")
	again.LastOfferedThis = t0.Add(-time.Hour) // qualified, 2 seats, waits for "free"

	cands := []Candidate{away, free, busy, french, pending, again}
	before := clone(cands)
	res := Rank(t0, conversation("c1"), Rules{}, cands)

	if res.Considered != 6 || res.Eligible != 1 || res.EligibleOnline != 4 || res.FreeSeats != 5 {
		t.Errorf("considered %d eligible %d online %d seats %d; want 6 1 4 5",
			res.Considered, res.Eligible, res.EligibleOnline, res.FreeSeats)
	}
	want := []Rejection{
		{"away", 0, ReasonOffline}, {"busy", 2, ReasonCapacity}, {"french", 3, ReasonLanguage},
		{"pending", 4, ReasonPendingOffer}, {"again", 5, ReasonAlreadyOffered},
	}
	if !reflect.DeepEqual(res.Rejected, want) {
		t.Errorf("Rejected = %v; want %v", res.Rejected, want)
	}
	if !reflect.DeepEqual(cands, before) {
		t.Error("Rank modified its candidates")
	}
	if got := Rank(t0, conversation("c1"), Rules{}, nil); got.Eligible != 0 || got.Ranked != nil || len(got.Rejected) != 0 {
		t.Errorf("no candidates: %+v", got)
	}
}

// TestRankDeterministic: shuffling the input never changes the ranking.
func TestRankDeterministic(t *testing.T) {
	cands := population(300, 7)
	conv := conversation("c1")
	conv.Skills = []string{"billing"}
	first := Rank(t0, conv, Rules{}, cands)
	if first.Eligible < 10 {
		t.Fatalf("only %d eligible; the population is too thin for this test", first.Eligible)
	}
	for seed := range 5 {
		shuffled := slices.Clone(cands)
		for i := range shuffled {
			j := (i*7919 + seed*104729) % len(shuffled)
			shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
		}
		res := Rank(t0, conv, Rules{}, shuffled)
		if !slices.Equal(ids(res.Ranked), ids(first.Ranked)) {
			t.Fatalf("seed %d: order differs", seed)
		}
	}
	for i := 1; i < len(first.Ranked); i++ {
		if compareRanked(&first.Ranked[i-1], &first.Ranked[i]) > 0 {
			t.Fatalf("ranked %d and %d out of order", i-1, i)
		}
	}
}

// TestRankZeroRules: the zero Rules still enforce the gates and
// holding each required skill.
func TestRankZeroRules(t *testing.T) {
	c := agent("a")
	c.Certified, c.CanReceiveTransfers, c.RatingSum, c.QASum, c.ResolvedCount = false, false, 10, 0, 0
	noSkill := agent("b")
	noSkill.Skills = map[string]int{"billing": 1}
	res := Rank(t0, conversation("c1"), Rules{}, []Candidate{c, noSkill})
	if !slices.Equal(ids(res.Ranked), []string{"a"}) || reasons(res)["b"] != "skill:refunds" {
		t.Errorf("ranked %v rejected %v", ids(res.Ranked), res.Rejected)
	}
	if res.Bars != (Bars{MinSkillLevel: 1}) || res.LadderStep != -1 {
		t.Errorf("bars %+v step %d", res.Bars, res.LadderStep)
	}
	wantGates := []string{GateApproved, GateOnline, GateLanguage, GateNotBlocked, GateFreeSeat, GateNoPendingOffer}
	if !slices.Equal(res.Gates, wantGates) {
		t.Errorf("Gates = %v; want %v", res.Gates, wantGates)
	}
}

// TestRankEmptyLanguage: a conversation without a language matches nobody,
// so a dispatcher that forgets it sees "language" rejections, not random
// agents.
func TestRankEmptyLanguage(t *testing.T) {
	conv := conversation("c1")
	conv.Language = ""
	res := Rank(t0, conv, Rules{}, []Candidate{agent("a")})
	if res.Eligible != 0 || reasons(res)["a"] != ReasonLanguage {
		t.Errorf("eligible %d, rejected %v", res.Eligible, res.Rejected)
	}
}
