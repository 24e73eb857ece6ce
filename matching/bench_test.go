package matching

import (
	"testing"
	"time"
)

// BenchmarkRank1000 ranks 1,000 candidates for one conversation.
func BenchmarkRank1000(b *testing.B) {
	cands := population(1000, 42)
	conv := conversation("c1")
	rules := Rules{MinSkillLevel: 2, MinRating: 3.8, RequireCertification: true,
		Ladder: []LadderStep{{After: time.Minute, MinRating: new(3.5)}}}
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		res = Rank(t0, conv, rules, cands)
	}
	b.ReportMetric(float64(res.Eligible), "eligible")
}

// BenchmarkAssign assigns a batch of 200 conversations over three brands
// to 1,000 agents, with per-brand relations.
func BenchmarkAssign(b *testing.B) {
	cands := population(1000, 42)
	queue := queueOf(200, 42)
	rel := relationsFor(cands, queue, 42)
	rules := map[string]Rules{
		"b1": {},
		"b2": {MinSkillLevel: 3, MinRating: 4.2, RequireCertification: true},
		"b3": {MinQAScore: 75, RequireTransfers: true},
	}
	var got []Assignment
	b.ReportAllocs()
	for b.Loop() {
		got = Assign(t0, queue, rules, cands, rel)
	}
	b.ReportMetric(float64(len(got)), "assigned")
}

// BenchmarkAssignOne is the steady-state pass: one or two new
// conversations against 1,000 agents online.
func BenchmarkAssignOne(b *testing.B) {
	cands := population(1000, 42)
	queue := queueOf(2, 42)
	rel := relationsFor(cands, queue, 42)
	rules := map[string]Rules{"b1": {}, "b2": {MinSkillLevel: 2}, "b3": {}}
	var got []Assignment
	b.ReportAllocs()
	for b.Loop() {
		got = Assign(t0, queue, rules, cands, rel)
	}
	b.ReportMetric(float64(len(got)), "assigned")
}
