package matching

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestRulesBarsAt(t *testing.T) {
	ladder := Rules{
		MinSkillLevel: 4, MinRating: 4.5, MinQAScore: 85, MinResolved: 10,
		Ladder: []LadderStep{
			{After: 60 * time.Second, MinSkillLevel: new(3)},
			{After: 120 * time.Second, MinSkillLevel: new(3), MinRating: new(4.2)},
			{After: 300 * time.Second, MinRating: new(0.0), MinQAScore: new(0.0), MinResolved: new(0)},
		},
	}
	base := Bars{MinSkillLevel: 4, MinRating: 4.5, MinQAScore: 85, MinResolved: 10}
	tests := []struct {
		name   string
		rules  Rules
		waited time.Duration
		want   Bars
		step   int
	}{
		{"ZeroRules", Rules{}, time.Hour, Bars{MinSkillLevel: 1}, -1},
		{"NegativeBarsClamped", Rules{MinSkillLevel: -2, MinRating: -1, MinQAScore: -5, MinResolved: -3}, 0, Bars{MinSkillLevel: 1}, -1},
		{"BeforeFirstStep", ladder, 59 * time.Second, base, -1},
		{"AtFirstStep", ladder, 60 * time.Second, Bars{3, 4.5, 85, 10}, 0},
		{"SecondStep", ladder, 2 * time.Minute, Bars{3, 4.2, 85, 10}, 1},
		// Steps stand alone: the third does not inherit the skill override.
		{"ThirdStepStandsAlone", ladder, 5 * time.Minute, Bars{4, 0, 0, 0}, 2},
		{"LongAfter", ladder, 24 * time.Hour, Bars{4, 0, 0, 0}, 2},
		{"StepsNeverTighten", Rules{MinSkillLevel: 2, MinRating: 4.0, Ladder: []LadderStep{
			{After: 0, MinSkillLevel: new(5), MinRating: new(4.8), MinQAScore: new(90.0), MinResolved: new(50)},
		}}, 0, Bars{MinSkillLevel: 2, MinRating: 4.0}, 0},
		{"SkillOverrideFloorIsOne", Rules{MinSkillLevel: 3, Ladder: []LadderStep{{After: time.Second, MinSkillLevel: new(0)}}},
			time.Second, Bars{MinSkillLevel: 1}, 0},
		{"UnsortedPicksGreatestAfter", Rules{MinRating: 4.8, Ladder: []LadderStep{
			{After: 120 * time.Second, MinRating: new(4.0)}, {After: 60 * time.Second, MinRating: new(4.5)},
		}}, 130 * time.Second, Bars{MinSkillLevel: 1, MinRating: 4.0}, 0},
		{"UnsortedEarlier", Rules{MinRating: 4.8, Ladder: []LadderStep{
			{After: 120 * time.Second, MinRating: new(4.0)}, {After: 60 * time.Second, MinRating: new(4.5)},
		}}, 90 * time.Second, Bars{MinSkillLevel: 1, MinRating: 4.5}, 1},
		{"EqualAfterLaterWins", Rules{MinRating: 4.8, Ladder: []LadderStep{
			{After: time.Minute, MinRating: new(4.5)}, {After: time.Minute, MinRating: new(4.1)},
		}}, time.Minute, Bars{MinSkillLevel: 1, MinRating: 4.1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, step := tt.rules.BarsAt(tt.waited)
			if got != tt.want || step != tt.step {
				t.Errorf("BarsAt(%v) = %+v, %d; want %+v, %d", tt.waited, got, step, tt.want, tt.step)
			}
		})
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		want  []string // substrings of the error; none means valid
	}{
		{"Zero", Rules{}, nil},
		{"Full", Rules{MinSkillLevel: 5, MinRating: 5, MinQAScore: 100, MinResolved: 3, RequireCertification: true,
			Weights: DefaultWeights(), Ladder: []LadderStep{{After: 0, MinRating: new(4.0)}, {After: time.Minute, MinSkillLevel: new(1)}}}, nil},
		{"SkillTooHigh", Rules{MinSkillLevel: 6}, []string{"min skill level 6"}},
		{"SkillNegative", Rules{MinSkillLevel: -1}, []string{"min skill level -1"}},
		{"RatingTooHigh", Rules{MinRating: 5.5}, []string{"min rating 5.5"}},
		{"RatingNaN", Rules{MinRating: math.NaN()}, []string{"min rating NaN"}},
		{"QATooHigh", Rules{MinQAScore: 101}, []string{"min QA score 101"}},
		{"ResolvedNegative", Rules{MinResolved: -1}, []string{"min resolved -1"}},
		{"WeightNegative", Rules{Weights: Weights{Idle: -1}}, []string{"weight idle -1"}},
		{"WeightInfinite", Rules{Weights: Weights{Skill: math.Inf(1)}}, []string{"weight skill +Inf"}},
		{"LadderUnsorted", Rules{Ladder: []LadderStep{{After: time.Minute}, {After: time.Minute}}},
			[]string{"ladder step 2: after 1m0s: want later"}},
		{"LadderNegative", Rules{Ladder: []LadderStep{{After: -time.Second}}}, []string{"ladder step 1: after -1s"}},
		{"LadderBadOverride", Rules{Ladder: []LadderStep{{After: time.Second, MinSkillLevel: new(0), MinQAScore: new(-1.0)}}},
			[]string{"ladder step 1: min skill level 0", "ladder step 1: min QA score -1"}},
		{"Several", Rules{MinSkillLevel: 9, MinRating: -1}, []string{"min skill level 9", "min rating -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to mention %q", err, w)
				}
			}
		})
	}
}
