package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/models"
)

// Topics of the hub.
func agentTopic(id string) string { return "agent:" + id }
func convTopic(id string) string  { return "conv:" + id }
func brandTopic(id string) string { return "brand:" + id }

// messageFrame is a chat message as both sides of a chat receive it.
type messageFrame struct {
	ConversationID string    `json:"conversation_id"`
	Seq            int       `json:"seq"`
	Sender         string    `json:"sender"`
	Text           string    `json:"text"`
	ClientID       *string   `json:"client_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

func messageFrameOf(m *models.Message) messageFrame {
	return messageFrame{ConversationID: m.ConversationID, Seq: m.Seq, Sender: m.Sender, Text: m.Body, ClientID: m.ClientID, CreatedAt: m.CreatedAt}
}

// messageAck answers the socket a message came from: its sequence number
// and the message as stored (that socket gets no "message" frame for it).
func messageAck(m *models.Message, clientID string) map[string]any {
	return map[string]any{"conversation_id": m.ConversationID, "client_id": clientID, "seq": m.Seq, "message": messageFrameOf(m)}
}

// conversationFrame tells both sides and the brand that a conversation
// changed state. It never carries the customer's email.
type conversationFrame struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	AgentID   *string `json:"agent_id,omitempty"`
	AgentName string  `json:"agent_name,omitempty"`
	BrandName string  `json:"brand_name,omitempty"`
}

// Every event below is delivered in two ways: to this process's sockets
// through the hub, and to the other instances as ids through peers
// (PostgreSQL NOTIFY), where the listener reads the rows and delivers the
// same frames to its own sockets.

// publish encodes one frame and sends it to a topic of this process.
func (s *Server) publish(topic, typ string, data any) {
	frame, err := realtime.Encode(typ, data)
	if err != nil {
		s.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	s.hub.Publish(topic, frame)
}

// emitFrame publishes a frame that carries no user content (ids, states,
// Handoff's own notices) here and on every other instance.
func (s *Server) emitFrame(topic, typ string, data any) {
	s.publish(topic, typ, data)
	if s.peers != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return
		}
		s.peers.notify(peerEvent{K: "f", T: topic, Y: typ, D: raw})
	}
}

// addMessage stores a chat message (models.Store.AddMessage) and times it.
func (s *Server) addMessage(ctx context.Context, convID, sender, senderID, clientID, body string) (*models.Message, bool, error) {
	start := time.Now()
	m, created, err := s.store.AddMessage(ctx, convID, sender, senderID, clientID, body)
	s.metrics.msgStore.Observe(time.Since(start).Seconds())
	return m, created, err
}

// publishMessage delivers a stored message to the conversation's sockets.
func (s *Server) publishMessage(m *models.Message) { s.publishMessageFrom(m, nil) }

// publishMessageFrom publishes a message to every socket of its
// conversation but from, the socket that sent it: its ack carries the
// message.
func (s *Server) publishMessageFrom(m *models.Message, from *realtime.Sub) {
	frame, err := realtime.Encode("message", messageFrameOf(m))
	if err != nil {
		s.log.Error("encode frame", "type", "message", "err", err)
		return
	}
	s.hub.PublishExcept(convTopic(m.ConversationID), frame, from)
	s.peers.notify(peerEvent{K: "m", C: m.ConversationID, S: m.Seq})
}

// publishConversation tells the conversation's sockets and its brand's live
// queue that its state changed, with who joined and for which brand.
func (s *Server) publishConversation(conv *models.Conversation) {
	s.deliverConversation(context.Background(), conv)
	ev := peerEvent{K: "c", C: conv.ID, B: conv.BrandID}
	if conv.AgentID != nil {
		ev.A = *conv.AgentID
		s.touchAgent(ev.A)
	}
	s.peers.notify(ev)
}

// deliverConversation publishes a conversation frame to this process.
func (s *Server) deliverConversation(ctx context.Context, conv *models.Conversation) {
	f := conversationFrame{ID: conv.ID, Status: conv.Status, AgentID: conv.AgentID}
	if conv.AgentID != nil {
		if name, err := s.agentName(ctx, *conv.AgentID); err == nil {
			f.AgentName = name
		}
	}
	if b, err := s.brand(ctx, conv.BrandID); err == nil {
		f.BrandName = b.Name
	}
	s.publish(convTopic(conv.ID), "conversation", f)
	s.publish(brandTopic(conv.BrandID), "conversation", f)
}

// publishOffer shows a new offer to its agent, wherever they are connected;
// why is the offer's explanation in words.
func (s *Server) publishOffer(o *models.Offer, conv *models.Conversation, b *models.Brand, why string) {
	s.publish(agentTopic(o.AgentID), "offer", s.offerCard(o, conv, b, why))
	s.peers.notify(peerEvent{K: "o", O: o.ID, A: o.AgentID, C: o.ConversationID})
}

// closeAgent closes an agent's sockets on every instance (suspension).
func (s *Server) closeAgent(agentID string) {
	s.touchAgent(agentID)
	s.hub.Close(agentTopic(agentID))
	s.peers.notify(peerEvent{K: "x", A: agentID})
}
