package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
)

// Websocket limits.
const (
	wsReadLimit    = 32 << 10         // bytes in one client frame
	wsWriteTimeout = 10 * time.Second // a frame the client does not take in this time closes the socket
	wsPingEvery    = 25 * time.Second
	wsCommandQueue = 16 // client frames read ahead of the one being handled
	// wsCommandTimeout bounds one command. A command runs to its end even
	// when its socket closes or the server stops meanwhile (the client
	// sent it, e.g. "offline" just before closing), within this time,
	// which fits the 10 s a stopping server gives its sockets.
	wsCommandTimeout = 5 * time.Second
)

// wsConn is one websocket with its hub subscription. Frames from the hub
// and replies to the client's commands share the connection; coder/websocket
// allows concurrent writes.
type wsConn struct {
	s    *Server
	conn *websocket.Conn
	sub  *realtime.Sub
}

// accept upgrades the request; the Origin must be this site (coder/websocket
// checks it against the Host unless told otherwise).
// socketHandler counts a socket handler as running until the returned
// func is called. Handlers call it first, before the upgrade, while
// http.Server.Shutdown still waits for the request.
func (s *Server) socketHandler() (done func()) {
	s.socketsOpen.Add(1)
	return s.socketsOpen.Done
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(wsReadLimit)
	s.metrics.sockets.Inc()
	return conn, nil
}

// send writes one frame to this client.
func (c *wsConn) send(ctx context.Context, typ string, data any) error {
	frame, err := realtime.Encode(typ, data)
	if err != nil {
		return err
	}
	return c.write(ctx, frame)
}

// write sends one frame unless ctx has ended. A frame the client does not
// take within wsWriteTimeout closes the socket (a timer), and so does the
// socket's end: its handler closes the connection, which fails a write
// under way. The write itself gets no context that can end: coder/websocket
// watches a context that can (context.AfterFunc) for every write, and that
// and a timeout context per frame were about an eighth of the server's
// allocations in a chat-heavy run.
func (c *wsConn) write(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.AfterFunc(wsWriteTimeout, func() { c.conn.CloseNow() })
	defer t.Stop()
	return c.conn.Write(context.Background(), websocket.MessageText, frame)
}

// sendError tells the client a command failed, in words it can show.
func (c *wsConn) sendError(ctx context.Context, command string, err error) error {
	status, msg := statusOf(err)
	var ve *models.ValidationError
	data := map[string]any{"command": command, "status": status, "message": msg}
	if errors.As(err, &ve) {
		data["errors"] = ve.Fields
	}
	serr := c.send(ctx, "error", data)
	var ol *overloaded
	if errors.As(err, &ol) {
		// Not the server's failure, and under overload a line each
		// would add to the load.
		return serr
	}
	if status >= 500 {
		// Logged as the server's failure when its client was there to be
		// told. If the answer could not be sent, the client has gone (its
		// close may come just before the socket's context ends), and that
		// is most likely why the command failed.
		if serr == nil {
			c.s.log.Error("websocket command failed", "command", command, "err", err)
		} else {
			c.s.log.Debug("websocket command: its client left before its failure could be told", "command", command, "err", err, "send", serr)
		}
	}
	return serr
}

// pump forwards hub frames and pings until the subscription is dropped or
// ctx ends. A dropped subscription (slow client, suspension) closes the
// socket; the client reconnects and resumes from its last sequence number.
func (c *wsConn) pump(ctx context.Context) {
	ping := time.NewTicker(wsPingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case frame, ok := <-c.sub.C:
			if !ok {
				c.conn.Close(websocket.StatusTryAgainLater, "reconnect")
				return
			}
			if err := c.write(ctx, frame); err != nil {
				c.conn.CloseNow()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := c.conn.Ping(pctx)
			cancel()
			if err != nil {
				c.conn.CloseNow()
				return
			}
		}
	}
}

// readLoop reads client frames and hands each to handle, in order, until
// the socket closes. Reading goes on while a command is handled, a few
// frames ahead of it, so the client's pongs and pings are read while a
// command waits (an overloaded database), and the socket is not closed for
// a missed pong. Commands run in a goroutine started when a frame arrives
// and ended when none is left, so an idle socket costs two goroutines (this
// one reading, and pump) instead of three.
func (c *wsConn) readLoop(ctx context.Context, handle func(ctx context.Context, env realtime.Envelope) error) {
	var done sync.WaitGroup
	defer done.Wait() // the frames read before the socket closed are still handled (in their own contexts)
	// Cancelled first when reading ends: the commands still running or
	// queued are carried out, but nobody is left to answer.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames := make(chan []byte, wsCommandQueue)
	var running atomic.Bool // a command goroutine is running: at most one, so commands keep their order
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.conn.Close(websocket.StatusUnsupportedData, "send JSON text frames")
			return
		}
		select {
		case frames <- data:
		case <-ctx.Done():
			return
		}
		if running.CompareAndSwap(false, true) {
			done.Add(1)
			go func() {
				defer done.Done()
				c.commands(ctx, cancel, frames, &running, handle)
			}()
		}
	}
}

// commands handles the frames queued in frames until none is left (then
// running is false again) or the socket must close (then it cancels).
// Each command gets a context of its own, not ended by the socket's: a
// command that was read is carried out (and its answer dropped if the
// socket has gone), so a client's last words before it closes, or before
// the server stops, are not lost half-way.
func (c *wsConn) commands(ctx context.Context, cancel context.CancelFunc, frames chan []byte, running *atomic.Bool, handle func(ctx context.Context, env realtime.Envelope) error) {
	// The commands left when the socket's context ends share one
	// wsCommandTimeout: a closing socket is not held open by a queue.
	left, endLeft := context.WithCancel(context.WithoutCancel(ctx))
	defer endLeft()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(wsCommandTimeout, endLeft) })
	defer stopTimer()
	for {
		var data []byte
		select {
		case data = <-frames:
		default:
			running.Store(false)
			// A frame queued between the empty check and the store found
			// running set and started nobody: take it, unless a new
			// goroutine already has.
			if len(frames) == 0 || !running.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		env, err := realtime.DecodeEnvelope(data)
		if err != nil {
			if c.sendError(ctx, "", models.Invalid("frame", err.Error())) != nil {
				cancel()
				return
			}
			continue
		}
		hctx, hcancel := context.WithTimeout(left, wsCommandTimeout)
		err = commandOutcome(hctx, handle(hctx, env))
		hcancel()
		if err != nil {
			if ctx.Err() != nil {
				continue // the socket is closing (client gone, server stopping): nobody to answer
			}
			if c.sendError(ctx, env.Type, err) != nil {
				cancel()
				return
			}
		}
	}
}

// commandOutcome is what a command's error tells its client. A command
// that ran out of its wsCommandTimeout did so because the server (or its
// database) is too busy, not because something broke: the client is told
// so with 503, as an overloaded API request is, instead of "Something
// went wrong". Whether it took effect is not known here (the deadline may
// have struck during the commit), so the message says how to find out.
func commandOutcome(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return &overloaded{retryAfter: 1, detail: fmt.Sprintf(
		"The server is too busy to finish this within %s. Reload to see whether it went through, then try again if it did not.",
		wsCommandTimeout)}
}

// decodeData reads a command's data into dst.
func decodeData(env realtime.Envelope, dst any) error {
	if len(env.Data) == 0 {
		return models.Invalid("data", "is required")
	}
	if err := json.Unmarshal(env.Data, dst); err != nil {
		return models.Invalid("data", "is not the expected JSON object")
	}
	return nil
}
