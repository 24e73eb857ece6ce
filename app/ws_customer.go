package app

import (
	"context"
	"net/http"
	"strconv"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// customerConversation resolves the :token of a customer link to its
// conversation; a bad link, or a closed conversation, is 404.
func (s *Server) customerConversation(c echo.Context) (*models.Conversation, error) {
	id, err := s.keys.VerifyCustomer(c.Param("token"), s.store.Now())
	if err != nil {
		return nil, err
	}
	conv, _, err := s.customerOpen(c.Request().Context(), id)
	return conv, err
}

// customerOpen reads the customer's conversation and its place in the
// queue (0 when not waiting); a closed one is 410.
func (s *Server) customerOpen(ctx context.Context, id string) (*models.Conversation, int, error) {
	conv, place, err := s.store.ConversationPlaced(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if conv.Status == models.ConvClosed {
		return nil, 0, errGone()
	}
	return conv, place, nil
}

// errGone answers a customer link to a closed conversation.
func errGone() error {
	return echo.NewHTTPError(http.StatusGone, "This conversation has ended. Start a new chat from the brand's website.")
}

// customerState is what the customer's page shows about their conversation.
type customerState struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	BrandName string `json:"brand_name"`
	AgentName string `json:"agent_name,omitempty"`
	Rated     bool   `json:"rated"`
}

func (s *Server) customerStateOf(ctx context.Context, conv *models.Conversation, b *models.Brand) (*customerState, error) {
	st := &customerState{ID: conv.ID, Status: conv.Status, BrandName: b.Name, Rated: conv.Rating != nil}
	if conv.AgentID != nil {
		name, err := s.agentName(ctx, *conv.AgentID)
		if err != nil {
			return nil, err
		}
		st.AgentName = name
	}
	return st, nil
}

// handleCustomerSocket is the customer's websocket: queue updates, the chat,
// typing and the rating. ?after=N resumes after sequence N.
func (s *Server) handleCustomerSocket(c echo.Context) error {
	defer s.socketHandler()()
	id, err := s.keys.VerifyCustomer(c.Param("token"), s.store.Now())
	if err != nil {
		return err
	}
	after, _ := strconv.Atoi(c.QueryParam("after"))
	// Subscribe before reading the conversation, so a change after the
	// read (an agent joining, a message) is in a frame after the hello.
	sub := s.hub.Subscribe(convTopic(id))
	defer s.hub.Unsubscribe(sub)
	// The messages the page has not seen come with the conversation (one
	// round trip on PostgreSQL); the rest, past the first page, after.
	conv, place, msgs, err := s.store.ConversationResumed(c.Request().Context(), id, after, messagePage)
	if err != nil {
		return err
	}
	if conv.Status == models.ConvClosed {
		return errGone()
	}
	conn, err := s.accept(c.Response(), c.Request())
	if err != nil {
		return nil
	}
	s.metrics.online.Inc()
	defer s.metrics.online.Dec()
	ctx, cancel := context.WithCancel(s.sockets)
	defer cancel()
	ws := &wsConn{s: s, conn: conn, sub: sub}
	hello := func() error {
		b, err := s.brand(ctx, conv.BrandID)
		if err != nil {
			return err
		}
		st, err := s.customerStateOf(ctx, conv, b)
		if err != nil {
			return err
		}
		data := map[string]any{"conversation": st}
		if place > 0 {
			q, err := s.queueInfo(ctx, b, conv, place)
			if err != nil {
				return err
			}
			data["queue"] = q.frame()
		}
		if err := ws.send(ctx, "hello", data); err != nil {
			return err
		}
		after, more, err := ws.sendPage(ctx, msgs, after)
		if err != nil || !more {
			return err
		}
		return ws.resume(ctx, conv.ID, after)
	}
	if err := hello(); err != nil {
		conn.CloseNow()
		return nil
	}
	go func() {
		ws.pump(ctx)
		cancel()
	}()
	ws.readLoop(ctx, func(ctx context.Context, env realtime.Envelope) error {
		return s.customerCommand(ctx, ws, conv.ID, env)
	})
	cancel()
	conn.CloseNow()
	return nil
}

// customerCommand runs one command from the customer's page.
func (s *Server) customerCommand(ctx context.Context, ws *wsConn, convID string, env realtime.Envelope) error {
	switch env.Type {
	case "message.send":
		var d struct {
			Text     string `json:"text"`
			ClientID string `json:"client_id"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		m, created, err := s.addMessage(ctx, convID, models.SenderCustomer, "", d.ClientID, d.Text)
		if err != nil {
			return err
		}
		if created {
			s.publishMessageFrom(m, ws.sub)
		}
		return ws.send(ctx, "message.ack", messageAck(m, d.ClientID))
	case "typing":
		s.emitFrame(convTopic(convID), "typing", map[string]string{"conversation_id": convID, "sender": models.SenderCustomer})
		return nil
	case "resume":
		var d struct {
			AfterSeq int `json:"after_seq"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		return ws.resume(ctx, convID, d.AfterSeq)
	case "rate":
		var d struct {
			Rating  int    `json:"rating"`
			Comment string `json:"comment"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if err := s.store.RateConversation(ctx, convID, d.Rating, d.Comment); err != nil {
			return err
		}
		conv, err := s.store.ConversationByID(ctx, convID)
		if err != nil {
			return err
		}
		s.publishConversation(conv)
		return ws.send(ctx, "rated", map[string]int{"rating": d.Rating})
	}
	return models.Invalid("type", "unknown command "+env.Type)
}
