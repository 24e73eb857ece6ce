package matching

import (
	"math"
	"testing"
	"time"
)

func TestBayesianRating(t *testing.T) {
	tests := []struct {
		name  string
		sum   float64
		count int
		want  float64
	}{
		{"NoRatingsIsThePrior", 0, 0, 4.0},
		{"OneFiveStar", 5, 1, 25.0 / 6},     // 4.1667, not 5.0
		{"OneOneStar", 1, 1, 21.0 / 6},      // 3.5
		{"TenFiveStars", 50, 10, 70.0 / 15}, // 4.667
		{"TenThreeStars", 30, 10, 50.0 / 15},
		{"FiveFourStarsStaysFour", 20, 5, 4.0},
		{"ManyFiveStarsApproachFive", 5000, 1000, 5020.0 / 1005},
		{"NegativeCountIsNone", 12, -3, 4.0},
		{"SumWithoutCountIgnored", 9, 0, 4.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BayesianRating(tt.sum, tt.count); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("BayesianRating(%v, %d) = %v; want %v", tt.sum, tt.count, got, tt.want)
			}
		})
	}
	// The prior's pull weakens as ratings accumulate.
	prev := 0.0
	for n := 1; n <= 100; n++ {
		got := BayesianRating(5*float64(n), n)
		if got <= prev || got >= 5 {
			t.Fatalf("BayesianRating(%d×5★) = %v; want rising, below 5 (prev %v)", n, got, prev)
		}
		prev = got
	}
}

func TestLanguageMatch(t *testing.T) {
	tests := []struct {
		conv, agent string
		want        bool
	}{
		{"en", "en", true},
		{"en", "en-GB", true},
		{"en", "en-US", true},
		{"EN", "en-gb", true},
		{"en", "EN_us", true},
		{"en-GB", "en", true},
		{"en-GB", "en-GB", true},
		{"en-GB", "en-gb", true},
		{"en-GB", "en-US", false},
		{"pt-BR", "pt-BR", true},
		{"pt-BR", "pt", true},
		{"pt-BR", "pt-PT", false},
		{"pt", "pt-PT", true},
		{"zh-Hant-TW", "zh-Hant", true},
		{"zh-Hant-TW", "zh", true},
		{"zh-Hant", "zh-Hant-TW", true},
		{"zh-Hant", "zh-Hans", false},
		{"en", "eng", false},
		{"es", "es-419", true},
		{"es-419", "es-ES", false},
		{"en", "fr", false},
		{"de", "de-CH", true},
		{" en ", "en-GB", true},
		{"", "en", false},
		{"en", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := LanguageMatch(tt.conv, tt.agent); got != tt.want {
			t.Errorf("LanguageMatch(%q, %q) = %v; want %v", tt.conv, tt.agent, got, tt.want)
		}
	}
}

func TestSpeaks(t *testing.T) {
	tests := []struct {
		agent []string
		conv  string
		want  bool
	}{
		{[]string{"fr", "en-GB"}, "en", true},
		{[]string{"fr", "pt"}, "pt-BR", true},
		{[]string{"fr", "pt-PT"}, "pt-BR", false},
		{nil, "en", false},
	}
	for _, tt := range tests {
		if got := speaks(tt.agent, tt.conv); got != tt.want {
			t.Errorf("speaks(%q, %q) = %v; want %v", tt.agent, tt.conv, got, tt.want)
		}
	}
}

func TestConversationWaited(t *testing.T) {
	tests := []struct {
		name string
		conv Conversation
		want time.Duration
	}{
		{"FromQueuedAt", Conversation{QueuedAt: t0.Add(-90 * time.Second), CreatedAt: t0.Add(-time.Hour)}, 90 * time.Second},
		{"ZeroQueuedAtUsesCreatedAt", Conversation{CreatedAt: t0.Add(-time.Minute)}, time.Minute},
		{"FutureIsZero", Conversation{QueuedAt: t0.Add(time.Minute)}, 0},
		{"OtherZoneSameInstant", Conversation{QueuedAt: t0.Add(-time.Minute).In(time.FixedZone("PST", -8*3600))}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.conv.Waited(t0); got != tt.want {
				t.Errorf("Waited = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestOfferable(t *testing.T) {
	free := Candidate{Approved: true, Presence: PresenceOnline, Capacity: 2, Active: 1}
	for _, tc := range []struct {
		name string
		edit func(*Candidate)
		want bool
	}{
		{"free seat", func(*Candidate) {}, true},
		{"not approved", func(c *Candidate) { c.Approved = false }, false},
		{"away", func(c *Candidate) { c.Presence = PresenceAway }, false},
		{"seats full", func(c *Candidate) { c.Active = 2 }, false},
		{"offer pending", func(c *Candidate) { c.HasPendingOffer = true }, false},
	} {
		c := free
		tc.edit(&c)
		if got := c.Offerable(); got != tc.want {
			t.Errorf("%s: Offerable() = %v; want %v", tc.name, got, tc.want)
		}
	}
}
