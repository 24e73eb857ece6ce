package matching

import (
	"fmt"
	"strings"
	"time"
)

// Explanation records why an agent was offered a conversation. It is stored
// as JSON on the offer (models.Offer.Explanation) and shown to the brand
// and the agent; Summary gives it as one sentence.
type Explanation struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	// Rank (1-based) among Eligible eligible agents, out of Considered.
	Rank       int `json:"rank"`
	Eligible   int `json:"eligible"`
	Considered int `json:"considered"`

	Score   float64  `json:"score"`
	Parts   Parts    `json:"parts"`
	Weights Weights  `json:"weights"`
	Gates   []string `json:"gates"` // Gate constants the agent passed
	Bars    Bars     `json:"bars"`  // quality bars in force, after the ladder
	// LadderStep is the index into the brand's ladder of the step in force
	// (-1: the brand's own bars).
	LadderStep    int   `json:"ladder_step"`
	WaitedSeconds int64 `json:"waited_seconds"` // in the queue, at RankedAt

	// Facts behind the parts. Rating is the Bayesian rating, QAScore the
	// QA average and IdleSeconds the time since the agent became free;
	// each is null when there is nothing yet (no ratings, no QA scores,
	// never worked).
	Skills      []SkillLevel `json:"skills"`
	Rating      *float64     `json:"rating"`
	RatingCount int          `json:"rating_count"`
	QAScore     *float64     `json:"qa_score"`
	QACount     int          `json:"qa_count"`
	IdleSeconds *int64       `json:"idle_seconds"`
	Preferred   bool         `json:"preferred"`
	Reoffer     bool         `json:"reoffer"` // offered again after everyone eligible had it

	RankedAt time.Time `json:"ranked_at"` // UTC
}

// SkillLevel is the agent's level in one required skill.
type SkillLevel struct {
	Skill string `json:"skill"`
	Level int    `json:"level"`
}

// Explain builds the explanation of r, one of res.Ranked.
func (res Result) Explain(r Ranked) Explanation {
	e := Explanation{
		ConversationID: res.ConversationID, AgentID: r.AgentID,
		Rank: r.Rank, Eligible: res.Eligible, Considered: res.Considered,
		Score: r.Score, Parts: r.Parts, Weights: res.Weights,
		Gates: make([]string, 0, len(res.Gates)+1), Bars: res.Bars, LadderStep: res.LadderStep,
		WaitedSeconds: int64(res.Waited / time.Second),
		Skills:        make([]SkillLevel, 0, len(res.Skills)),
		RatingCount:   r.RatingCount, QACount: r.QACount, Preferred: r.Preferred, Reoffer: r.Reoffer,
		RankedAt: res.Now.UTC(),
	}
	e.Gates = append(e.Gates, res.Gates...)
	if r.Reoffer {
		e.Gates = append(e.Gates, GateReoffer)
	} else {
		e.Gates = append(e.Gates, GateNotOffered)
	}
	for i, s := range res.Skills {
		if i < len(r.SkillLevels) {
			e.Skills = append(e.Skills, SkillLevel{Skill: s, Level: r.SkillLevels[i]})
		}
	}
	if r.RatingCount > 0 {
		e.Rating = new(r.Rating)
	}
	if r.QACount > 0 {
		e.QAScore = new(r.QA)
	}
	if !r.IdleSince.IsZero() {
		e.IdleSeconds = new(int64(r.Idle / time.Second))
	}
	return e
}

// Summary says the explanation in one sentence, for people:
//
//	Ranked 1 of 4 eligible: billing 5/5, rating 4.6, QA 88, idle 12m
//
// Ladder steps are counted from 1 here (LadderStep 0 is "ladder step 1").
func (e Explanation) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Ranked %d of %d eligible: ", e.Rank, e.Eligible)
	var parts []string
	for _, s := range e.Skills {
		parts = append(parts, fmt.Sprintf("%s %d/%d", s.Skill, s.Level, MaxSkillLevel))
	}
	if e.Rating != nil {
		parts = append(parts, fmt.Sprintf("rating %.1f", *e.Rating))
	} else {
		parts = append(parts, "no ratings yet")
	}
	if e.QAScore != nil {
		parts = append(parts, fmt.Sprintf("QA %.0f", *e.QAScore))
	}
	if e.IdleSeconds != nil {
		parts = append(parts, "idle "+shortDuration(time.Duration(*e.IdleSeconds)*time.Second))
	} else {
		parts = append(parts, "first conversation")
	}
	if e.Preferred {
		parts = append(parts, "preferred by the brand")
	}
	b.WriteString(strings.Join(parts, ", "))
	if e.LadderStep >= 0 {
		fmt.Fprintf(&b, "; bars relaxed (ladder step %d)", e.LadderStep+1)
	}
	if e.Reoffer {
		b.WriteString("; offered again after every eligible agent had it")
	}
	return b.String()
}

// shortDuration writes 45s, 12m, 1h05m.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
