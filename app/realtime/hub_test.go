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
