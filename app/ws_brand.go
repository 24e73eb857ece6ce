package app

import (
	"context"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// handleBrandSocket streams the brand's conversation changes to its live
// queue page. It only listens: a frame from the client gets an error.
func (s *Server) handleBrandSocket(c echo.Context) error {
	defer s.socketHandler()()
	b := member(c).Brand
	conn, err := s.accept(c.Response(), c.Request())
	if err != nil {
		return nil
	}
	s.metrics.online.Inc()
	defer s.metrics.online.Dec()
	ctx, cancel := context.WithCancel(s.sockets)
	defer cancel()
	ws := &wsConn{s: s, conn: conn, sub: s.hub.Subscribe(brandTopic(b.ID))}
	defer s.hub.Unsubscribe(ws.sub)
	go func() {
		ws.pump(ctx)
		cancel()
	}()
	ws.readLoop(ctx, func(ctx context.Context, env realtime.Envelope) error {
		return models.Invalid("type", "this socket only listens")
	})
	cancel()
	conn.CloseNow()
	return nil
}
