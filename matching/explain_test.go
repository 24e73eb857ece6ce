package matching

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestExplain(t *testing.T) {
	rules := strict()
	rules.Ladder = []LadderStep{{After: 5 * time.Second, MinRating: new(3.9)}}
	a := agent("a") // billing 4, refunds 3, rating 4.33, QA 85, idle 5m
	b := agent("b")
	b.Skills = map[string]int{"billing": 3, "refunds": 3}
	res := Rank(t0, conversation("c1"), rules, []Candidate{b, a, agent("zz")})
	if got := ids(res.Ranked); !slices.Equal(got, []string{"a", "zz", "b"}) {
		t.Fatalf("ranked %v", got)
	}
	e := res.Explain(res.Ranked[0])

	wantGates := []string{GateApproved, GateOnline, GateLanguage, GateCertification, GateNotBlocked, GateTransfers,
		GateFreeSeat, GateNoPendingOffer, GateNotOffered}
	if !slices.Equal(e.Gates, wantGates) {
		t.Errorf("Gates = %v; want %v", e.Gates, wantGates)
	}
	if e.ConversationID != "c1" || e.AgentID != "a" || e.Rank != 1 || e.Eligible != 3 || e.Considered != 3 {
		t.Errorf("header %+v", e)
	}
	if e.LadderStep != 0 || e.Bars != (Bars{MinSkillLevel: 3, MinRating: 3.9, MinQAScore: 80, MinResolved: 10}) {
		t.Errorf("ladder %d bars %+v", e.LadderStep, e.Bars)
	}
	if e.WaitedSeconds != 10 || !e.RankedAt.Equal(t0) || e.RankedAt.Location() != time.UTC {
		t.Errorf("waited %d ranked at %v", e.WaitedSeconds, e.RankedAt)
	}
	if want := []SkillLevel{{"billing", 4}, {"refunds", 3}}; !reflect.DeepEqual(e.Skills, want) {
		t.Errorf("Skills = %v; want %v", e.Skills, want)
	}
	if e.Rating == nil || *e.Rating != BayesianRating(45, 10) || e.RatingCount != 10 {
		t.Errorf("rating %v (%d)", e.Rating, e.RatingCount)
	}
	if e.QAScore == nil || *e.QAScore != 85 || e.IdleSeconds == nil || *e.IdleSeconds != 300 {
		t.Errorf("QA %v idle %v", e.QAScore, e.IdleSeconds)
	}
	if e.Weights != DefaultWeights() || e.Score != res.Ranked[0].Score || e.Parts != res.Ranked[0].Parts {
		t.Errorf("score %v parts %+v weights %+v", e.Score, e.Parts, e.Weights)
	}

	// It survives a JSON round trip, the way offers store it.
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back Explanation
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"conversation_id", "agent_id", "rank", "eligible", "score", "parts", "weights",
		"gates", "bars", "ladder_step", "skills", "rating", "qa_score", "idle_seconds", "ranked_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, data)
		}
	}
}

// TestExplainNewAgent: what an agent does not have yet is null, not zero.
func TestExplainNewAgent(t *testing.T) {
	c := agent("new")
	c.RatingSum, c.RatingCount, c.QASum, c.QACount, c.IdleSince = 0, 0, 0, 0, time.Time{}
	conv := conversation("c1")
	conv.Skills = nil
	res := Rank(t0, conv, Rules{}, []Candidate{c})
	e := res.Explain(res.Ranked[0])
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rating", "qa_score", "idle_seconds"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("%s = %v; want null", k, v)
		}
	}
	if s, ok := raw["skills"].([]any); !ok || len(s) != 0 {
		t.Errorf("skills = %v; want []", raw["skills"])
	}
	if want := "Ranked 1 of 1 eligible: no ratings yet, first conversation"; e.Summary() != want {
		t.Errorf("Summary() = %q; want %q", e.Summary(), want)
	}
}

func TestExplanationSummary(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	tests := []struct {
		name string
		e    Explanation
		want string
	}{
		{"Typical", Explanation{Rank: 1, Eligible: 4, LadderStep: -1, Skills: []SkillLevel{{"billing", 5}},
			Rating: f(4.6), RatingCount: 30, IdleSeconds: i(12*60 + 30)},
			"Ranked 1 of 4 eligible: billing 5/5, rating 4.6, idle 12m"},
		{"AllFacts", Explanation{Rank: 2, Eligible: 9, LadderStep: 1, Skills: []SkillLevel{{"billing", 4}, {"refunds", 3}},
			Rating: f(4.333), RatingCount: 10, QAScore: f(87.6), QACount: 3, IdleSeconds: i(3900), Preferred: true, Reoffer: true},
			"Ranked 2 of 9 eligible: billing 4/5, refunds 3/5, rating 4.3, QA 88, idle 1h05m, preferred by the brand; " +
				"bars relaxed (ladder step 2); offered again after every eligible agent had it"},
		{"SecondsIdle", Explanation{Rank: 1, Eligible: 1, LadderStep: -1, IdleSeconds: i(45)},
			"Ranked 1 of 1 eligible: no ratings yet, idle 45s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Summary(); got != tt.want {
				t.Errorf("Summary() =\n %q; want\n %q", got, tt.want)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {59 * time.Second, "59s"}, {time.Minute, "1m"}, {59*time.Minute + 59*time.Second, "59m"},
		{time.Hour, "1h00m"}, {26*time.Hour + 7*time.Minute, "26h07m"},
	}
	for _, tt := range tests {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
