package matching

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestAssignQueueOrder: the most urgent conversation gets the best agent,
// even when it arrived last.
func TestAssignQueueOrder(t *testing.T) {
	best := agent("best")
	best.Skills = map[string]int{"billing": 5, "refunds": 5}
	best.RatingSum, best.RatingCount = 490, 100
	good := agent("good")
	good.Skills = map[string]int{"billing": 4, "refunds": 4}
	ok := agent("ok") // billing 4, refunds 3

	at := func(id string, prio int, ago time.Duration) Conversation {
		c := conversation(id)
		c.Priority, c.QueuedAt = prio, t0.Add(-ago)
		return c
	}
	queue := []Conversation{at("low", 1, time.Hour), at("normal", 5, 5*time.Minute), at("urgent", 9, time.Second)}
	cands := []Candidate{ok, good, best}
	queueBefore, candsBefore := slices.Clone(queue), clone(cands)

	got := Assign(t0, queue, map[string]Rules{"b1": {}}, cands, nil)
	want := [][2]string{{"urgent", "best"}, {"normal", "good"}, {"low", "ok"}}
	if len(got) != len(want) {
		t.Fatalf("got %d assignments; want %d: %+v", len(got), len(want), got)
	}
	for i, a := range got {
		if a.ConversationID != want[i][0] || a.AgentID != want[i][1] {
			t.Errorf("assignment %d = %s→%s; want %s→%s", i, a.ConversationID, a.AgentID, want[i][0], want[i][1])
		}
		if cands[a.Index].ID != a.AgentID {
			t.Errorf("Index %d is %s, not %s", a.Index, cands[a.Index].ID, a.AgentID)
		}
		e := a.Explanation
		if e.ConversationID != a.ConversationID || e.AgentID != a.AgentID || e.Rank != 1 || e.Eligible != 3-i || e.Considered != 3 {
			t.Errorf("assignment %d explanation: %+v", i, e)
		}
	}
	if !reflect.DeepEqual(queue, queueBefore) || !reflect.DeepEqual(cands, candsBefore) {
		t.Error("Assign modified its input")
	}
}

// TestAssignOneOfferPerAgent: with more conversations than agents, each
// agent gets one, and they go to the head of the queue.
func TestAssignOneOfferPerAgent(t *testing.T) {
	var queue []Conversation
	for i := range 10 {
		c := conversation(string(rune('a' + i)))
		c.QueuedAt = t0.Add(-time.Duration(10-i) * time.Minute) // "a" waited longest
		queue = append(queue, c)
	}
	cands := []Candidate{agent("x"), agent("y"), agent("z")}
	for i := range cands {
		cands[i].Capacity = 3
	}
	got := Assign(t0, queue, map[string]Rules{"b1": {}}, cands, nil)
	var convs, agents []string
	for _, a := range got {
		convs = append(convs, a.ConversationID)
		agents = append(agents, a.AgentID)
	}
	if !slices.Equal(convs, []string{"a", "b", "c"}) {
		t.Errorf("conversations served = %v; want the head of the queue [a b c]", convs)
	}
	slices.Sort(agents)
	if !slices.Equal(agents, []string{"x", "y", "z"}) {
		t.Errorf("agents = %v; want each of x y z once", agents)
	}
}

// TestAssignSkips: nobody eligible, unknown brand and agents with pending
// offers.
func TestAssignSkips(t *testing.T) {
	french := conversation("french")
	french.Language, french.Priority = "fr", 9
	unknown := conversation("unknown-brand")
	unknown.BrandID, unknown.Priority = "b9", 8
	plain := conversation("plain")
	later := conversation("later")
	later.QueuedAt = t0

	pending := agent("pending")
	pending.HasPendingOffer = true
	got := Assign(t0, []Conversation{later, plain, unknown, french}, map[string]Rules{"b1": {}},
		[]Candidate{pending, agent("free")}, nil)
	if len(got) != 1 || got[0].ConversationID != "plain" || got[0].AgentID != "free" {
		t.Fatalf("got %+v; want only plain→free", got)
	}
	if got := Assign(t0, nil, nil, nil, nil); got != nil {
		t.Errorf("empty batch: %+v", got)
	}
}

// TestAssignRelations: certificates, blocks and preferences are per brand,
// earlier offers per conversation.
func TestAssignRelations(t *testing.T) {
	x, y, z := agent("x"), agent("y"), agent("z")
	z.Certified = true // ignored: Relations decide
	var rel Relations
	rel.AddCertified("b2", "y")
	rel.AddBlocked("b1", "z")
	rel.AddOffer("c1", "x", t0.Add(-5*time.Minute))
	rules := map[string]Rules{"b1": {}, "b2": {RequireCertification: true}}

	c1, c2, c3 := conversation("c1"), conversation("c2"), conversation("c3")
	c1.Priority = 9
	c2.BrandID = "b2"
	c3.Priority = 1

	// c1: x had it (y has not), z blocked → y. c2: only y is certified for
	// b2, and y is taken → skipped. c3: x never had c3 → x.
	got := Assign(t0, []Conversation{c3, c2, c1}, rules, []Candidate{x, y, z}, &rel)
	var pairs []string
	for _, a := range got {
		pairs = append(pairs, a.ConversationID+"→"+a.AgentID)
	}
	if want := []string{"c1→y", "c3→x"}; !slices.Equal(pairs, want) {
		t.Errorf("assignments = %v; want %v", pairs, want)
	}

	// Preference tips a tie.
	var pref Relations
	pref.AddPreferred("b1", "z")
	got = Assign(t0, []Conversation{c1}, map[string]Rules{"b1": {}}, []Candidate{x, y, z}, &pref)
	if len(got) != 1 || got[0].AgentID != "z" || !got[0].Explanation.Preferred {
		t.Errorf("preferred: %+v", got)
	}
}

func TestRelationsApply(t *testing.T) {
	var rel Relations
	rel.AddCertified("b1", "a")
	rel.AddPreferred("b1", "a")
	rel.AddBlocked("b2", "a")
	rel.AddOffer("c1", "a", t0.Add(-time.Minute))
	rel.AddOffer("c1", "a", t0.Add(-time.Hour)) // older: kept the latest
	cands := []Candidate{{ID: "a", BlockedByBrand: true}}

	got := rel.Apply(conversation("c1"), cands)[0]
	if !got.Certified || !got.Preferred || got.BlockedByBrand || !got.LastOfferedThis.Equal(t0.Add(-time.Minute)) {
		t.Errorf("Apply = %+v", got)
	}
	if !cands[0].BlockedByBrand || cands[0].Certified {
		t.Error("Apply modified its input")
	}
	other := conversation("c2")
	other.BrandID = "b2"
	if got := rel.Apply(other, cands)[0]; got.Certified || !got.BlockedByBrand || !got.LastOfferedThis.IsZero() {
		t.Errorf("Apply for b2/c2 = %+v", got)
	}
	var none *Relations
	if got := none.Apply(conversation("c1"), cands); &got[0] != &cands[0] {
		t.Error("nil Relations should return the candidates as they are")
	}
}

// TestAssignMatchesRank checks Assign against the plain definition: Rank
// each conversation in queue order and mark the winner as having a pending
// offer. Random batches over three brands, with relations.
func TestAssignMatchesRank(t *testing.T) {
	for seed := range uint64(20) {
		cands := population(150, seed)
		queue := queueOf(60, seed)
		rel := relationsFor(cands, queue, seed)
		rules := map[string]Rules{
			"b1": {},
			"b2": {MinSkillLevel: 3, MinRating: 4.2, RequireCertification: true,
				Ladder: []LadderStep{{After: 5 * time.Minute, MinSkillLevel: new(2), MinRating: new(3.8)}}},
			"b3": {MinQAScore: 75, MinResolved: 20, RequireTransfers: true, Weights: Weights{Idle: 1, Skill: 1}},
		}

		got := Assign(t0, queue, rules, cands, rel)

		order := slices.Clone(queue)
		SortQueue(order)
		pool := clone(cands)
		var want []Assignment
		for _, conv := range order {
			res := Rank(t0, conv, rules[conv.BrandID], rel.Apply(conv, pool))
			if len(res.Ranked) == 0 {
				continue
			}
			best := res.Ranked[0]
			pool[best.Index].HasPendingOffer = true
			want = append(want, Assignment{conv.ID, best.AgentID, best.Index, res.Explain(best)})
		}
		if len(want) < 10 {
			t.Fatalf("seed %d: only %d assignments; the data is too thin for this test", seed, len(want))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: Assign differs from ranking one by one:\n got %d %v\nwant %d %v",
				seed, len(got), pairsOf(got), len(want), pairsOf(want))
		}
		seen := map[string]bool{}
		for _, a := range got {
			if seen[a.AgentID] {
				t.Fatalf("seed %d: %s got two conversations", seed, a.AgentID)
			}
			seen[a.AgentID] = true
		}
	}
}

func pairsOf(as []Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ConversationID+"→"+a.AgentID)
	}
	return out
}

// relationsFor makes pseudo-random per-brand and per-conversation facts.
func relationsFor(cands []Candidate, queue []Conversation, seed uint64) *Relations {
	r := rand.New(rand.NewPCG(seed, 3))
	var rel Relations
	for _, c := range cands {
		for _, b := range []string{"b1", "b2", "b3"} {
			if r.IntN(3) != 0 {
				rel.AddCertified(b, c.ID)
			}
			if r.IntN(40) == 0 {
				rel.AddBlocked(b, c.ID)
			}
			if r.IntN(15) == 0 {
				rel.AddPreferred(b, c.ID)
			}
		}
	}
	for _, q := range queue {
		for range r.IntN(4) {
			rel.AddOffer(q.ID, cands[r.IntN(len(cands))].ID, t0.Add(-time.Duration(r.IntN(180))*time.Second))
		}
	}
	return &rel
}
