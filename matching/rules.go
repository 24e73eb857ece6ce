package matching

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Ranges of the numbers the bars and scores are made of.
const (
	MaxSkillLevel = 5   // skill levels run 1–5
	MaxRating     = 5.0 // customer ratings run 1–5 stars
	MaxQAScore    = 100 // QA scorecards run 0–100
)

// Rules are one brand's bars and weights: everything Rank needs to know
// about the brand. The zero value is usable: no quality bars beyond holding
// each required skill, no certification or Stripe requirement, default
// weights, no ladder.
type Rules struct {
	// MinSkillLevel is the level (1–5) the agent must hold in every skill
	// the conversation requires. 0 means 1: holding the skill at all.
	MinSkillLevel int
	// MinRating is the minimum Bayesian rating (see BayesianRating), 0–5;
	// 0 means no bar. An agent with no ratings yet passes it.
	MinRating float64
	// MinQAScore is the minimum average QA score, 0–100; 0 means no bar. An
	// agent with no QA scores yet passes it.
	MinQAScore float64
	// MinResolved is the minimum number of conversations the agent has
	// resolved (on the platform, as the caller counts them); 0 means none.
	// It is how a brand keeps new agents out, since they pass the rating
	// and QA bars.
	MinResolved int
	// RequireCertification admits only agents with a valid (unexpired)
	// certificate for this brand (Candidate.Certified).
	RequireCertification bool
	// RequireTransfers admits only agents whose Stripe account can receive
	// transfers (Candidate.CanReceiveTransfers).
	RequireTransfers bool
	// Weights of the score parts; the zero value means DefaultWeights().
	Weights Weights
	// Ladder relaxes the quality bars (never the gates) as a conversation
	// waits. The step in force is the one with the greatest After not above
	// the time waited (with equal Afters, the later one). Steps can only
	// relax: an override stricter than the brand's own bar is ignored.
	// Validate wants them in ascending order of After.
	Ladder []LadderStep
}

// LadderStep is one rung of a relaxation ladder: after the conversation has
// waited After, the non-nil overrides replace the brand's bars (when they
// are more lenient). A nil override keeps the brand's bar. Each step stands
// alone: it does not inherit the overrides of earlier steps.
//
// Example: "after 60 s accept skill level 2; after 120 s also lower the
// rating bar to 4.2":
//
//	[]LadderStep{
//		{After: 60 * time.Second, MinSkillLevel: new(2)},
//		{After: 120 * time.Second, MinSkillLevel: new(2), MinRating: new(4.2)},
//	}
type LadderStep struct {
	After         time.Duration
	MinSkillLevel *int     // 1–5
	MinRating     *float64 // 0–5, 0 drops the bar
	MinQAScore    *float64 // 0–100, 0 drops the bar
	MinResolved   *int     // 0 drops the bar
}

// Bars are the quality bars in force for one ranking, after the ladder.
type Bars struct {
	MinSkillLevel int     `json:"min_skill_level"`
	MinRating     float64 `json:"min_rating"`
	MinQAScore    float64 `json:"min_qa_score"`
	MinResolved   int     `json:"min_resolved"`
}

// BarsAt returns the bars in force once a conversation has waited for
// waited, and the index of the ladder step used (-1 for the brand's own
// bars).
func (r Rules) BarsAt(waited time.Duration) (Bars, int) {
	b := Bars{
		MinSkillLevel: max(r.MinSkillLevel, 1),
		MinRating:     max(r.MinRating, 0),
		MinQAScore:    max(r.MinQAScore, 0),
		MinResolved:   max(r.MinResolved, 0),
	}
	step := -1
	for i, s := range r.Ladder {
		if s.After <= waited && (step < 0 || s.After >= r.Ladder[step].After) {
			step = i
		}
	}
	if step < 0 {
		return b, -1
	}
	s := r.Ladder[step]
	if s.MinSkillLevel != nil {
		b.MinSkillLevel = max(min(b.MinSkillLevel, *s.MinSkillLevel), 1)
	}
	if s.MinRating != nil {
		b.MinRating = max(min(b.MinRating, *s.MinRating), 0)
	}
	if s.MinQAScore != nil {
		b.MinQAScore = max(min(b.MinQAScore, *s.MinQAScore), 0)
	}
	if s.MinResolved != nil {
		b.MinResolved = max(min(b.MinResolved, *s.MinResolved), 0)
	}
	return b, step
}

// Weights weigh the score parts, each of which is in [0,1]. The score is
// Σ weight·part / Σ weight, so it is in [0,1] too and only the ratios
// between weights matter. Negative weights count as 0; all zero means
// DefaultWeights().
type Weights struct {
	Skill      float64 `json:"skill"`
	Rating     float64 `json:"rating"`
	QA         float64 `json:"qa"`
	Idle       float64 `json:"idle"`
	Load       float64 `json:"load"`
	Preference float64 `json:"preference"`
}

// DefaultWeights favour skill, then fairness (idle time) and rating; QA,
// load and brand preference nudge. They sum to 1.
func DefaultWeights() Weights {
	return Weights{Skill: 0.30, Rating: 0.20, QA: 0.10, Idle: 0.25, Load: 0.10, Preference: 0.05}
}

// effective returns the weights Rank uses and their sum (> 0).
func (w Weights) effective() (Weights, float64) {
	pos := func(f float64) float64 {
		if f > 0 && !math.IsInf(f, 1) {
			return f
		}
		return 0
	}
	w = Weights{pos(w.Skill), pos(w.Rating), pos(w.QA), pos(w.Idle), pos(w.Load), pos(w.Preference)}
	sum := w.Skill + w.Rating + w.QA + w.Idle + w.Load + w.Preference
	if sum == 0 {
		w = DefaultWeights()
		sum = w.Skill + w.Rating + w.QA + w.Idle + w.Load + w.Preference
	}
	return w, sum
}

// Validate reports every setting out of range, for the brand settings form.
// Rank never fails on bad rules: it clamps what it can.
func (r Rules) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	checkBars := func(prefix string, skill *int, rating, qa *float64, resolved *int) {
		if skill != nil && (*skill < 1 || *skill > MaxSkillLevel) {
			bad("%smin skill level %d: want 1–%d", prefix, *skill, MaxSkillLevel)
		}
		if rating != nil && !(*rating >= 0 && *rating <= MaxRating) {
			bad("%smin rating %v: want 0–%v", prefix, *rating, MaxRating)
		}
		if qa != nil && !(*qa >= 0 && *qa <= MaxQAScore) {
			bad("%smin QA score %v: want 0–%d", prefix, *qa, MaxQAScore)
		}
		if resolved != nil && *resolved < 0 {
			bad("%smin resolved %d: want 0 or more", prefix, *resolved)
		}
	}
	skill := r.MinSkillLevel
	if skill == 0 {
		skill = 1
	}
	checkBars("", &skill, &r.MinRating, &r.MinQAScore, &r.MinResolved)
	w := r.Weights
	for _, f := range []struct {
		name string
		v    float64
	}{{"skill", w.Skill}, {"rating", w.Rating}, {"qa", w.QA}, {"idle", w.Idle}, {"load", w.Load}, {"preference", w.Preference}} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			bad("weight %s %v: want a finite number ≥ 0", f.name, f.v)
		}
	}
	for i, s := range r.Ladder {
		prefix := fmt.Sprintf("ladder step %d: ", i+1)
		if s.After < 0 {
			bad("%safter %v: want 0 or more", prefix, s.After)
		}
		if i > 0 && s.After <= r.Ladder[i-1].After {
			bad("%safter %v: want later than the step before (%v)", prefix, s.After, r.Ladder[i-1].After)
		}
		checkBars(prefix, s.MinSkillLevel, s.MinRating, s.MinQAScore, s.MinResolved)
	}
	return errors.Join(errs...)
}
