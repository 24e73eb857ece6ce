package matching

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestSortQueue(t *testing.T) {
	q := func(id string, prio int, ago time.Duration) Conversation {
		return Conversation{ID: id, Priority: prio, QueuedAt: t0.Add(-ago), CreatedAt: t0.Add(-time.Hour)}
	}
	tests := []struct {
		name  string
		convs []Conversation
		want  []string
	}{
		{"PriorityFirst", []Conversation{q("low", 1, time.Hour), q("high", 9, 0), q("mid", 5, time.Minute)},
			[]string{"high", "mid", "low"}},
		{"ThenLongestWaiting", []Conversation{q("new", 5, time.Second), q("old", 5, time.Minute), q("older", 5, time.Hour)},
			[]string{"older", "old", "new"}},
		{"ThenID", []Conversation{q("c", 5, time.Minute), q("a", 5, time.Minute), q("b", 5, time.Minute)},
			[]string{"a", "b", "c"}},
		{"ZeroQueuedAtUsesCreatedAt", []Conversation{q("queued", 5, 30*time.Minute),
			{ID: "created", Priority: 5, CreatedAt: t0.Add(-40 * time.Minute)}}, []string{"created", "queued"}},
		{"Requeued", []Conversation{q("requeued-later", 5, time.Second), q("waiting", 5, 10*time.Second)},
			[]string{"waiting", "requeued-later"}},
		{"Empty", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			convs := slices.Clone(tt.convs)
			SortQueue(convs)
			got := []string{}
			for _, c := range convs {
				got = append(got, c.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("order = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestAhead checks the binary search against a walk along the line, for
// conversations in it and not, with ties in priority and time.
func TestAhead(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	conv := func(i int) Conversation {
		c := Conversation{ID: fmt.Sprintf("c%03d", rnd.IntN(400)), Priority: rnd.IntN(4) * 3,
			QueuedAt: t0.Add(time.Duration(rnd.IntN(20)) * time.Second), CreatedAt: t0.Add(-time.Hour)}
		if i%7 == 0 {
			c.QueuedAt = time.Time{} // CreatedAt counts
		}
		return c
	}
	for _, size := range []int{0, 1, 2, 50, 300} {
		queue := make([]Conversation, size)
		for i := range queue {
			queue[i] = conv(i)
		}
		SortQueue(queue)
		probes := append(slices.Clone(queue), conv(1), conv(7), conv(0))
		for _, c := range probes {
			want := 0
			for _, q := range queue {
				if compareQueue(q, c) < 0 {
					want++
				}
			}
			if got := Ahead(queue, c); got != want {
				t.Fatalf("Ahead(%d in line, %+v) = %d; walking the line counts %d", size, c, got, want)
			}
		}
	}
	if got := Ahead([]Conversation{{ID: "a", Priority: 9}, {ID: "b", Priority: 5}}, Conversation{ID: "b", Priority: 5}); got != 1 {
		t.Errorf("the second in line has %d ahead; want 1", got)
	}
}

func TestEstimateWait(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name                   string
		position, online, free int
		handle, accept         time.Duration
		want                   time.Duration
		ok                     bool
	}{
		{"NoAgents", 1, 0, 0, 0, 0, 0, false},
		{"NoAgentsEvenWithSeats", 1, 0, 3, time.Minute, 0, 0, false},
		{"FreeSeat", 1, 3, 2, 4 * time.Minute, 10 * s, 10 * s, true},
		{"LastFreeSeat", 2, 3, 2, 4 * time.Minute, 10 * s, 10 * s, true},
		{"FirstBeyondSeats", 3, 4, 2, 4 * time.Minute, 10 * s, time.Minute + 10*s, true},
		{"TenthBeyondSeats", 12, 4, 2, 4 * time.Minute, 10 * s, 10*time.Minute + 10*s, true},
		{"DefaultsFilled", 1, 1, 0, 0, 0, DefaultHandleTime + DefaultOfferToAccept, true},
		{"DefaultAcceptOnFreeSeat", 1, 1, 1, 0, 0, DefaultOfferToAccept, true},
		{"PositionZeroIsFirst", 0, 2, 0, 2 * time.Minute, 10 * s, time.Minute + 10*s, true},
		{"NegativeSeatsAreNone", 1, 2, -4, 2 * time.Minute, 10 * s, time.Minute + 10*s, true},
		{"RoundsUpToSeconds", 2, 3, 0, 100 * s, 10 * s, 77 * s, true}, // 66.67 s + 10 s
		{"HugeQueueDoesNotOverflow", 1 << 40, 1, 0, time.Hour, 0, time.Duration(1<<63 - 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := EstimateWait(tt.position, tt.online, tt.free, tt.handle, tt.accept)
			if got != tt.want || ok != tt.ok {
				t.Errorf("EstimateWait(%d, %d, %d, %v, %v) = %v, %v; want %v, %v",
					tt.position, tt.online, tt.free, tt.handle, tt.accept, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestEstimateWaitProperties: never shorter further back in the queue, never
// longer with more agents or more free seats.
func TestEstimateWaitProperties(t *testing.T) {
	for _, handle := range []time.Duration{0, 90 * time.Second, 7 * time.Minute} {
		for online := 1; online <= 12; online++ {
			for free := 0; free <= 6; free++ {
				prev := time.Duration(0)
				for pos := 1; pos <= 60; pos++ {
					w, ok := EstimateWait(pos, online, free, handle, 12*time.Second)
					if !ok || w <= 0 {
						t.Fatalf("EstimateWait(%d, %d, %d) = %v, %v; want a positive estimate", pos, online, free, w, ok)
					}
					if w < prev {
						t.Fatalf("EstimateWait(%d, %d, %d) = %v < %v at the position before", pos, online, free, w, prev)
					}
					if pos > free && w <= prev {
						t.Fatalf("EstimateWait(%d, %d, %d) = %v; want more than %v beyond the free seats", pos, online, free, w, prev)
					}
					prev = w
					more, _ := EstimateWait(pos, online+1, free, handle, 12*time.Second)
					if more > w {
						t.Fatalf("one more agent: %v > %v (pos %d online %d free %d)", more, w, pos, online, free)
					}
					seat, _ := EstimateWait(pos, online, free+1, handle, 12*time.Second)
					if seat > w {
						t.Fatalf("one more seat: %v > %v (pos %d online %d free %d)", seat, w, pos, online, free)
					}
				}
			}
		}
	}
}

func TestSurge(t *testing.T) {
	tests := []struct {
		name          string
		waiting, free int
		threshold     float64
		bonus, want   int64
	}{
		{"Disabled", 50, 1, 0, 200, 0},
		{"NegativeThresholdDisabled", 50, 1, -1, 200, 0},
		{"Below", 3, 2, 2, 200, 0},
		{"AtThresholdIsNotAbove", 4, 2, 2, 200, 0},
		{"Above", 5, 2, 2, 200, 200},
		{"FractionalThreshold", 2, 3, 0.5, 150, 150},
		{"NoFreeAgents", 1, 0, 3, 200, 200},
		{"NothingWaiting", 0, 0, 1, 200, 0},
		{"NoBonus", 10, 1, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Surge(tt.waiting, tt.free, tt.threshold, tt.bonus); got != tt.want {
				t.Errorf("Surge(%d, %d, %v, %d) = %d; want %d", tt.waiting, tt.free, tt.threshold, tt.bonus, got, tt.want)
			}
		})
	}
}
