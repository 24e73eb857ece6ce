package app

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// heartbeatEvery is how often a connection renews the agent's presence
// lease at most (any frame from the client counts as a heartbeat).
const heartbeatEvery = 5 * time.Second

// offerCard is what an agent sees to decide on an offer. It names the
// brand, the need and the pay — never who the customer is.
type offerCard struct {
	OfferID        string   `json:"offer_id"`
	ConversationID string   `json:"conversation_id"`
	BrandName      string   `json:"brand_name"`
	Skills         []string `json:"skills"`
	Language       string   `json:"language"`
	WaitSeconds    int      `json:"wait_seconds"`
	Reason         string   `json:"reason"`
	Summary        string   `json:"summary"`
	PayMinor       int64    `json:"pay_minor"`
	SurgeMinor     int64    `json:"surge_minor"`
	Currency       string   `json:"currency"`
	Pay            string   `json:"pay"`
	RemainingMS    int64    `json:"remaining_ms"`
	TimeoutMS      int64    `json:"timeout_ms"`
	Why            string   `json:"why"`
}

// agentChat is an accepted conversation as the agent's console shows it:
// the customer's name, never their email.
type agentChat struct {
	ID           string         `json:"id"`
	Status       string         `json:"status"`
	BrandName    string         `json:"brand_name"`
	CustomerName string         `json:"customer_name"`
	Language     string         `json:"language"`
	Skills       []string       `json:"skills"`
	Summary      string         `json:"summary"`
	Messages     []messageFrame `json:"messages"`
}

// offerCardOf builds an offer's card; conv is its conversation, or nil to
// read it.
func (s *Server) offerCardOf(ctx context.Context, o *models.Offer, conv *models.Conversation) (*offerCard, error) {
	if conv == nil {
		var err error
		if conv, err = s.store.ConversationByID(ctx, o.ConversationID); err != nil {
			return nil, err
		}
	}
	b, err := s.brand(ctx, conv.BrandID)
	if err != nil {
		return nil, err
	}
	return s.offerCard(o, conv, b, explanationSummary(o.Explanation)), nil
}

// offerCard builds the card from rows the caller already has and the
// sentence saying why the agent got the offer.
func (s *Server) offerCard(o *models.Offer, conv *models.Conversation, b *models.Brand, why string) *offerCard {
	now := s.store.Now()
	card := &offerCard{OfferID: o.ID, ConversationID: conv.ID, BrandName: b.Name, Skills: conv.SkillList(),
		Language: conv.Language, WaitSeconds: int(now.Sub(conv.CreatedAt) / time.Second), Reason: conv.Reason,
		Summary: conv.Summary, PayMinor: o.PayMinor, SurgeMinor: o.SurgeMinor, Currency: o.Currency,
		Pay:         models.FormatMoney(o.PayMinor+o.SurgeMinor, o.Currency) + " " + o.Currency,
		RemainingMS: max(o.ExpiresAt.Sub(now).Milliseconds(), 0), TimeoutMS: o.ExpiresAt.Sub(o.CreatedAt).Milliseconds(),
		Why: why}
	if card.Skills == nil {
		card.Skills = []string{}
	}
	return card
}

func (s *Server) agentChatOf(ctx context.Context, conv *models.Conversation) (*agentChat, error) {
	msgs, err := s.store.Messages(ctx, conv.ID, 0, 0)
	if err != nil {
		return nil, err
	}
	return s.agentChat(ctx, conv, msgs)
}

// agentChat is agentChatOf with the conversation's messages read already.
func (s *Server) agentChat(ctx context.Context, conv *models.Conversation, msgs []models.Message) (*agentChat, error) {
	b, err := s.brand(ctx, conv.BrandID)
	if err != nil {
		return nil, err
	}
	ch := &agentChat{ID: conv.ID, Status: conv.Status, BrandName: b.Name, CustomerName: conv.CustomerName,
		Language: conv.Language, Skills: conv.SkillList(), Summary: conv.Summary, Messages: make([]messageFrame, 0, len(msgs))}
	if ch.Skills == nil {
		ch.Skills = []string{}
	}
	for i := range msgs {
		ch.Messages = append(ch.Messages, messageFrameOf(&msgs[i]))
	}
	return ch, nil
}

// agentSocket is one agent's live connection.
type agentSocket struct {
	wsConn
	agentID  string
	mu       sync.Mutex
	lastBeat time.Time
}

// handleAgentSocket is the agent console's websocket: offers, presence and
// chats. Only an approved agent may connect.
func (s *Server) handleAgentSocket(c echo.Context) error {
	defer s.socketHandler()()
	a := currentAgent(c)
	if a.Status != models.AgentApproved {
		return echo.NewHTTPError(http.StatusForbidden, "Your application is not approved.")
	}
	conn, err := s.accept(c.Response(), c.Request())
	if err != nil {
		return nil // Accept has answered the client
	}
	s.metrics.online.Inc()
	defer s.metrics.online.Dec()
	ctx, cancel := context.WithCancel(s.sockets)
	defer cancel()
	sock := &agentSocket{wsConn: wsConn{s: s, conn: conn, sub: s.hub.Subscribe(agentTopic(a.ID))}, agentID: a.ID}
	defer s.hub.Unsubscribe(sock.sub)
	if err := sock.hello(ctx); err != nil {
		conn.CloseNow()
		return nil
	}
	go func() {
		sock.pump(ctx)
		cancel()
	}()
	sock.readLoop(ctx, sock.handle)
	cancel()
	conn.CloseNow()
	return nil
}

// hello sends the agent's state: presence, pending offer, chats in progress.
func (a *agentSocket) hello(ctx context.Context) error {
	s := a.s
	ag, err := s.store.Agent(ctx, a.agentID)
	if err != nil {
		return err
	}
	if err := s.store.Heartbeat(ctx, a.agentID); err != nil {
		return err
	}
	a.lastBeat = s.store.Now()
	data := map[string]any{"agent": map[string]any{"id": ag.ID, "name": ag.User.DisplayName, "presence": ag.Presence, "capacity": ag.MaxConcurrent}}
	if o, err := s.store.PendingOffer(ctx, a.agentID); err == nil {
		card, err := s.offerCardOf(ctx, o, nil)
		if err != nil {
			return err
		}
		data["offer"] = card
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	convs, err := s.store.AgentConversations(ctx, a.agentID)
	if err != nil {
		return err
	}
	chats := []*agentChat{}
	for i := range convs {
		ch, err := s.agentChatOf(ctx, &convs[i])
		if err != nil {
			return err
		}
		chats = append(chats, ch)
		s.hub.AddTopic(a.sub, convTopic(convs[i].ID))
	}
	data["chats"] = chats
	return a.send(ctx, "hello", data)
}

// beat renews the presence lease, at most every heartbeatEvery: the
// renewal joins the batch written within beatFlushEvery.
func (a *agentSocket) beat() {
	a.mu.Lock()
	due := a.s.store.Now().Sub(a.lastBeat) >= heartbeatEvery
	if due {
		a.lastBeat = a.s.store.Now()
	}
	a.mu.Unlock()
	if due {
		a.s.beats.note(a.agentID)
	}
}

// owns checks that the conversation is this agent's.
func (a *agentSocket) owns(ctx context.Context, convID string) (*models.Conversation, error) {
	if !models.ValidID(convID) {
		return nil, models.ErrNotFound
	}
	conv, err := a.s.store.ConversationByID(ctx, convID)
	if err != nil {
		return nil, err
	}
	if conv.AgentID == nil || *conv.AgentID != a.agentID {
		return nil, models.ErrNotFound
	}
	return conv, nil
}

// handle runs one command from the agent's console.
func (a *agentSocket) handle(ctx context.Context, env realtime.Envelope) error {
	s := a.s
	a.beat()
	switch env.Type {
	case "heartbeat":
		return nil
	case "presence":
		var d struct {
			Status   string `json:"status"`
			Capacity int    `json:"capacity"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if err := s.store.SetAvailability(ctx, a.agentID, d.Status, d.Capacity); err != nil {
			return err
		}
		s.touchAgent(a.agentID)
		if d.Status == models.PresenceOnline {
			s.wake()
		}
		ag, err := s.store.Agent(ctx, a.agentID)
		if err != nil {
			return err
		}
		return a.send(ctx, "presence", map[string]any{"presence": ag.Presence, "capacity": ag.MaxConcurrent})
	case "offer.accept":
		var d struct {
			OfferID string `json:"offer_id"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if !models.ValidID(d.OfferID) {
			return models.ErrNotFound
		}
		_, conv, msgs, err := s.store.AcceptOfferChat(ctx, a.agentID, d.OfferID)
		s.touchAgent(a.agentID)
		if err != nil {
			if errors.Is(err, models.ErrConflict) {
				return a.send(ctx, "offer.failed", map[string]string{"offer_id": d.OfferID, "message": "This offer is no longer available."})
			}
			return err
		}
		s.metrics.offers.WithLabelValues("accepted").Inc()
		s.hub.AddTopic(a.sub, convTopic(conv.ID))
		ch, err := s.agentChat(ctx, conv, msgs)
		if err != nil {
			return err
		}
		s.publishConversation(conv)
		return a.send(ctx, "offer.accepted", map[string]any{"offer_id": d.OfferID, "chat": ch})
	case "offer.decline":
		var d struct {
			OfferID string `json:"offer_id"`
			Reason  string `json:"reason"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if !models.ValidID(d.OfferID) {
			return models.ErrNotFound
		}
		if _, err := s.store.DeclineOffer(ctx, a.agentID, d.OfferID, d.Reason); err != nil {
			return err
		}
		s.touchAgent(a.agentID)
		s.metrics.offers.WithLabelValues("declined").Inc()
		s.queue.changed()
		s.wake()
		return a.send(ctx, "offer.declined", map[string]string{"offer_id": d.OfferID})
	case "message.send":
		var d struct {
			ConversationID string `json:"conversation_id"`
			Text           string `json:"text"`
			ClientID       string `json:"client_id"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if !models.ValidID(d.ConversationID) {
			return models.ErrNotFound
		}
		// The store checks that the chat is this agent's and in progress.
		m, created, err := s.addMessage(ctx, d.ConversationID, models.SenderAgent, a.agentID, d.ClientID, d.Text)
		if err != nil {
			return err
		}
		if created {
			s.publishMessageFrom(m, a.sub)
		}
		return a.send(ctx, "message.ack", messageAck(m, d.ClientID))
	case "typing":
		var d struct {
			ConversationID string `json:"conversation_id"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		conv, err := a.owns(ctx, d.ConversationID)
		if err != nil {
			return err
		}
		s.emitFrame(convTopic(conv.ID), "typing", map[string]string{"conversation_id": conv.ID, "sender": models.SenderAgent})
		return nil
	case "resume":
		var d struct {
			ConversationID string `json:"conversation_id"`
			AfterSeq       int    `json:"after_seq"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		conv, err := a.owns(ctx, d.ConversationID)
		if err != nil {
			return err
		}
		return a.resume(ctx, conv.ID, d.AfterSeq)
	case "resolve":
		var d struct {
			ConversationID string `json:"conversation_id"`
			Note           string `json:"note"`
		}
		if err := decodeData(env, &d); err != nil {
			return err
		}
		if !models.ValidID(d.ConversationID) {
			return models.ErrNotFound
		}
		conv, e, err := s.store.ResolveConversation(ctx, a.agentID, d.ConversationID, d.Note)
		if err != nil {
			return err
		}
		s.publishConversation(conv)
		s.wake()
		return a.send(ctx, "resolved", map[string]any{"conversation_id": conv.ID,
			"earning": map[string]any{"net_minor": e.NetMinor, "currency": e.Currency, "net": models.FormatMoney(e.NetMinor, e.Currency) + " " + e.Currency}})
	}
	return models.Invalid("type", "unknown command "+env.Type)
}

// messagePage is how many messages a socket reads at a time when it
// resumes.
const messagePage = 500

// resume sends the messages after a sequence number, in order.
func (c *wsConn) resume(ctx context.Context, convID string, after int) error {
	for {
		msgs, err := c.s.store.Messages(ctx, convID, after, messagePage)
		if err != nil {
			return err
		}
		var more bool
		if after, more, err = c.sendPage(ctx, msgs, after); err != nil || !more {
			return err
		}
	}
}

// sendPage sends a page of messages read after sequence number after, in
// order. It returns the last one's number (after, when none) and whether
// the page was full, so that more may follow.
func (c *wsConn) sendPage(ctx context.Context, msgs []models.Message, after int) (int, bool, error) {
	for i := range msgs {
		if err := c.send(ctx, "message", messageFrameOf(&msgs[i])); err != nil {
			return after, false, err
		}
		after = msgs[i].Seq
	}
	return after, len(msgs) == messagePage, nil
}

// wake asks this process's dispatcher for a pass at once.
func (s *Server) wake() { s.loop.Wake() }
