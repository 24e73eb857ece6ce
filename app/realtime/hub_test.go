package realtime

import (
	"encoding/json"
	"sync"
	"testing"
)

func TestPublishReachesTopicSubscribersOnly(t *testing.T) {
	h := NewHub()
	a := h.Subscribe("agent:1")
	b := h.Subscribe("agent:2", "conv:9")
	frame, err := Encode("offer", map[string]string{"id": "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.Publish("agent:1", frame); n != 1 {
		t.Fatalf("Publish(agent:1) reached %d; want 1", n)
	}
	if got := <-a.C; string(got) != string(frame) {
		t.Fatalf("a got %s; want %s", got, frame)
	}
	select {
	case f := <-b.C:
		t.Fatalf("b got %s; want nothing", f)
	default:
	}
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil || env.Type != "offer" {
		t.Fatalf("frame %s decodes to %+v, %v", frame, env, err)
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	h := NewHub()
	s := h.Subscribe("conv:1")
	for i := 0; i < SubscriberBuffer; i++ {
		h.Publish("conv:1", []byte("x"))
	}
	if n := h.Publish("conv:1", []byte("overflow")); n != 0 {
		t.Fatalf("publish to a full subscriber reached %d; want 0", n)
	}
	if h.Count("conv:1") != 0 {
		t.Fatal("the slow subscriber is still registered")
	}
	count := 0
	for range s.C {
		count++
	}
	if count != SubscriberBuffer {
		t.Fatalf("drained %d frames; want %d then a closed channel", count, SubscriberBuffer)
	}
}

func TestCloseTopicAndConcurrentUse(t *testing.T) {
	h := NewHub()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s := h.Subscribe("agent:7")
			h.AddTopic(s, "conv:1")
			h.Unsubscribe(s)
			h.Unsubscribe(s) // twice is harmless
		}()
		go func() {
			defer wg.Done()
			h.Publish("conv:1", []byte("m"))
		}()
	}
	wg.Wait()
	s := h.Subscribe("agent:7")
	h.Close("agent:7")
	if _, ok := <-s.C; ok {
		t.Fatal("Close must close the subscriber's channel")
	}
}

func TestCloseAllDropsEverySubscriberOnce(t *testing.T) {
	h := NewHub()
	a := h.Subscribe("agent:1", "conv:1")
	b := h.Subscribe("conv:1")
	c := h.Subscribe("brand:1")
	if n := h.CloseAll(); n != 3 {
		t.Fatalf("CloseAll = %d; want 3 subscribers", n)
	}
	for i, s := range []*Sub{a, b, c} {
		if _, ok := <-s.C; ok {
			t.Fatalf("subscriber %d still open", i)
		}
	}
	if h.Count("conv:1")+h.Count("agent:1")+h.Count("brand:1") != 0 {
		t.Fatal("topics still have subscribers")
	}
	h.Unsubscribe(a) // a socket's own unsubscribe afterwards is harmless
	if n := h.CloseAll(); n != 0 {
		t.Fatalf("second CloseAll = %d; want 0", n)
	}
}

// TestEncodeMatchesEnvelopeMarshal: Encode writes exactly what marshalling
// the Envelope would, for data of every shape frames carry.
func TestEncodeMatchesEnvelopeMarshal(t *testing.T) {
	type card struct {
		ID   string   `json:"id"`
		Tags []string `json:"tags"`
		Note *string  `json:"note,omitempty"`
	}
	var nilCard *card
	for _, tc := range []struct {
		typ  string
		data any
	}{
		{"heartbeat", nil},
		{"offer", map[string]any{"id": "o1", "pay": 12.5, "why": "<b>&</b>"}},
		{"message", card{ID: "m1", Tags: nil}},
		{"conversation", &card{ID: "c1", Tags: []string{"a"}}},
		{"typed.nil", nilCard},
		{"queue", []int{1, 2, 3}},
		{"text", "line\nbreak \u2028 \"quoted\""},
		{"odd \"type\" <x>", 0},
	} {
		got, err := Encode(tc.typ, tc.data)
		if err != nil {
			t.Fatalf("Encode(%q): %v", tc.typ, err)
		}
		var raw json.RawMessage
		if tc.data != nil {
			if raw, err = json.Marshal(tc.data); err != nil {
				t.Fatal(err)
			}
		}
		want, err := json.Marshal(Envelope{Type: tc.typ, Data: raw})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Encode(%q) = %s; want %s", tc.typ, got, want)
		}
	}
	if _, err := Encode("bad", func() {}); err == nil {
		t.Error("Encode of a func: want an error")
	}
}
