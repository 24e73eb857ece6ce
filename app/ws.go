package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

func (c *wsConn) write(ctx context.Context, frame []byte) error {
	ctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, frame)
}

// sendError tells the client a command failed, in words it can show.
func (c *wsConn) sendError(ctx context.Context, command string, err error) error {
	status, msg := statusOf(err)
	var ve *models.ValidationError
	data := map[string]any{"command": command, "status": status, "message": msg}
	if errors.As(err, &ve) {
		data["errors"] = ve.Fields
	}
	if status >= 500 {
		c.s.log.Error("websocket command failed", "command", command, "err", err)
	}
	return c.send(ctx, "error", data)
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
// the socket closes. Reading runs in its own goroutine, a few frames ahead
// of the handler, so the client's pongs and pings are read while a command
// waits (an overloaded database), and the socket is not closed for a
// missed pong.
func (c *wsConn) readLoop(ctx context.Context, handle func(ctx context.Context, env realtime.Envelope) error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames := make(chan []byte, wsCommandQueue)
	go func() {
		defer close(frames)
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
		}
	}()
	for data := range frames {
		env, err := realtime.DecodeEnvelope(data)
		if err != nil {
			if c.sendError(ctx, "", models.Invalid("frame", err.Error())) != nil {
				return
			}
			continue
		}
		if err := handle(ctx, env); err != nil {
			if ctx.Err() != nil {
				return // the socket is closing (client gone, server stopping): nobody to answer
			}
			if c.sendError(ctx, env.Type, err) != nil {
				return
			}
		}
	}
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
