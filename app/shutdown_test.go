package app

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"

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

// An agent who says "offline" and closes at once, while the database is
// slow and the server stops, is offline afterwards: the command read from
// the socket is carried out, not cancelled with the socket. (Before, an
// instance stopped right after a simulation kept hundreds of agents
// "online" for the next process to offer conversations to.)
func TestSocketCommandOutlivesServerStop(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		w := newLiveWorld(t, db)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := w.ts.srv
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, ln) }()

		tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h := http.Header{}
		h.Set("Cookie", sessionCookie+"="+w.mayaC.cookie(sessionCookie))
		conn, _, err := websocket.Dial(tctx, "ws://"+ln.Addr().String()+"/ws/agent", &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		read := func() string {
			_, data, err := conn.Read(tctx)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
		read() // hello
		if err := conn.Write(tctx, websocket.MessageText, []byte(`{"type":"presence","data":{"status":"online"}}`)); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(read(), `"presence":"online"`) {
		}

		// Hold the agent's row (PostgreSQL) or the write turn (SQLite) so
		// the "offline" write waits while the socket closes and the server
		// stops.
		hold := db.Store.DB.WithContext(tctx).Begin()
		if hold.Error != nil {
			t.Fatal(hold.Error)
		}
		if err := hold.Exec("UPDATE agents SET updated_at = updated_at WHERE id = ?", w.maya.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := conn.Write(tctx, websocket.MessageText, []byte(`{"type":"presence","data":{"status":"offline"}}`)); err != nil {
			t.Fatal(err)
		}
		// The close is answered once the server has read the frame before it.
		if err := conn.Close(websocket.StatusNormalClosure, "signing off"); err != nil {
			t.Fatal(err)
		}
		stop()
		for srv.sockets.Err() == nil { // Serve has cancelled every socket's context
			time.Sleep(time.Millisecond)
		}
		if err := hold.Rollback().Error; err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ag, err := db.Store.Agent(context.Background(), w.maya.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ag.Presence != models.PresenceOffline {
			t.Fatalf("presence after \"offline\" and a server stop = %s; want offline", ag.Presence)
		}
	})
}
