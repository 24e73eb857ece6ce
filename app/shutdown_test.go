package app

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/models/modeltest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Serve returns only after its websocket handlers have ended, so the
// caller can close the database behind it: http.Server.Shutdown alone does
// not wait for hijacked connections.
func TestServeWaitsForSocketHandlers(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- w.ts.srv.Serve(ctx, ln) }()

		var conns []*websocket.Conn
		for range 3 {
			h := http.Header{}
			h.Set("Cookie", sessionCookie+"="+w.mayaC.cookie(sessionCookie))
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, _, err := websocket.Dial(dctx, "ws://"+ln.Addr().String()+"/ws/agent", &websocket.DialOptions{HTTPHeader: h})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := conn.Read(context.Background()); err != nil { // hello
				t.Fatal(err)
			}
			conns = append(conns, conn)
		}
		if n := gaugeValue(t, w.ts.srv.metrics.online); n < 3 {
			t.Fatalf("%v sockets online; want the 3 just opened", n)
		}
		stop()
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if n := gaugeValue(t, w.ts.srv.metrics.online); n != 0 {
			t.Fatalf("Serve returned with %v socket handlers still running; want 0", n)
		}
		for _, c := range conns {
			c.CloseNow()
		}
	})
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
