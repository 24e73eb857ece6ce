package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
)

// readLoopServer serves one websocket whose frames go through readLoop to
// handle, and dials it: returned closes when readLoop has returned; ctx
// ends with the test, after 30 s at most. readLoop runs under parent, or
// the request's context if parent is nil.
func readLoopServer(t *testing.T, parent context.Context, handle func(ctx context.Context, env realtime.Envelope) error) (ctx context.Context, conn *websocket.Conn, returned <-chan struct{}) {
	return readLoopServerLogging(t, parent, io.Discard, handle)
}

// readLoopServerLogging is readLoopServer with the server's log written to
// logs.
func readLoopServerLogging(t *testing.T, parent context.Context, logs io.Writer, handle func(ctx context.Context, env realtime.Envelope) error) (ctx context.Context, conn *websocket.Conn, returned <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.CloseNow()
		ctx := parent
		if ctx == nil {
			ctx = r.Context()
		}
		(&wsConn{s: &Server{log: slog.New(slog.NewTextHandler(logs, nil))}, conn: conn}).readLoop(ctx, handle)
		close(done)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return ctx, conn, done
}

// Commands are handled one at a time, in the order sent, while reading
// goes on; the frames read before the client closed are all handled; and
// between bursts no command goroutine is left running.
func TestReadLoopCommandsInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var busy, most atomic.Int32
	ctx, conn, returned := readLoopServer(t, nil, func(ctx context.Context, env realtime.Envelope) error {
		if n := busy.Add(1); n > most.Load() {
			most.Store(n)
		}
		defer busy.Add(-1)
		time.Sleep(time.Millisecond) // a command waiting on the database: frames queue up behind it
		mu.Lock()
		got = append(got, env.Type)
		mu.Unlock()
		return nil
	})
	const bursts, perBurst = 5, 12
	for b := range bursts {
		for i := range perBurst {
			if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"c%03d"}`, b*perBurst+i)); err != nil {
				t.Fatal(err)
			}
		}
		// Let the burst drain, so the next one starts a command goroutine
		// afresh.
		for deadline := time.Now().Add(10 * time.Second); ; {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == (b+1)*perBurst || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The last burst is sent and the socket closed at once: what was read
	// is still handled.
	for i := range perBurst {
		if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"c%03d"}`, bursts*perBurst+i)); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("readLoop did not return after the client closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != (bursts+1)*perBurst {
		t.Fatalf("handled %d commands, want %d", len(got), (bursts+1)*perBurst)
	}
	for i, typ := range got {
		if want := fmt.Sprintf("c%03d", i); typ != want {
			t.Fatalf("command %d was %s, want %s (out of order)", i, typ, want)
		}
	}
	if most.Load() != 1 {
		t.Fatalf("%d commands ran at once, want 1", most.Load())
	}
}

// An idle socket runs no command goroutine: readLoop reads on the
// caller's goroutine and starts one only while frames wait.
func TestReadLoopIdleHasNoCommandGoroutine(t *testing.T) {
	handled := make(chan struct{}, 1)
	ctx, conn, returned := readLoopServer(t, nil, func(ctx context.Context, env realtime.Envelope) error {
		handled <- struct{}{}
		return nil
	})
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	<-handled
	for deadline := time.Now().Add(10 * time.Second); goroutinesIn("(*wsConn).commands") > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the command goroutine is still running with no frame to handle")
		}
		time.Sleep(time.Millisecond)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	<-returned
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// A command that was read is carried out even when the socket's context
// ends while it runs (the client closed, the server is stopping): its
// context is its own, and the frames queued behind it run too.
func TestReadLoopCommandOutlivesItsSocket(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	started := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	var ended []string // type: the command context's error when it ended
	ctx, conn, returned := readLoopServer(t, parent, func(ctx context.Context, env realtime.Envelope) error {
		if env.Type == "first" {
			close(started)
			<-release
		}
		mu.Lock()
		ended = append(ended, fmt.Sprintf("%s: %v", env.Type, ctx.Err()))
		mu.Unlock()
		return nil
	})
	for _, typ := range []string{"first", "second"} {
		if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":%q}`, typ)); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	// The client leaves (its close is answered once the server has read
	// both frames), then the socket's context ends, then the first
	// command's database write would finish.
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	stop()
	close(release)
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("readLoop did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"first: <nil>", "second: <nil>"}; fmt.Sprint(ended) != fmt.Sprint(want) {
		t.Fatalf("commands ended %q; want %q (carried out, not cancelled)", ended, want)
	}

}

// A command that fails after its client has gone (its answer cannot be
// sent) is not logged as the server's failure: nobody is left to answer.
func TestReadLoopNoAnswerAfterClientLeft(t *testing.T) {
	left := make(chan struct{})
	var logs bytes.Buffer
	ctx, conn, returned := readLoopServerLogging(t, nil, &logs, func(ctx context.Context, env realtime.Envelope) error {
		<-left
		return errors.New("its answer could not be sent")
	})
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"presence"}`)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	close(left)
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("readLoop did not return")
	}
	if strings.Contains(logs.String(), "websocket command failed") {
		t.Fatalf("logged after the client left:\n%s", logs.String())
	}
}

// TestCommandOutcome: a command that ran out of its time is answered 503
// (the server is busy), saying how to find out whether it took effect; a
// command that failed in time keeps its error, and one that finished, even
// late, has none.
func TestCommandOutcome(t *testing.T) {
	late, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	timedOut := fmt.Errorf("accept: %w", context.DeadlineExceeded) // as pgx wraps it
	status, msg := statusOf(commandOutcome(late, timedOut))
	if status != http.StatusServiceUnavailable || !strings.Contains(msg, "too busy") || !strings.Contains(msg, "Reload") {
		t.Errorf("a command past its deadline: %d %q; want 503 saying the server is too busy and to reload", status, msg)
	}
	if err := commandOutcome(late, nil); err != nil {
		t.Errorf("a command that finished at its deadline: %v; want no error", err)
	}
	broken := errors.New("boom")
	if err := commandOutcome(context.Background(), broken); err != broken {
		t.Errorf("a command that failed in time: %v; want its own error", err)
	}
	if err := commandOutcome(context.Background(), models.ErrConflict); !errors.Is(err, models.ErrConflict) {
		t.Errorf("a conflict in time: %v; want it kept", err)
	}
}
