package app

import (
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

// conversationFrame tells both sides and the brand that a conversation
// changed state. It never carries the customer's email.
type conversationFrame struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	AgentID   *string `json:"agent_id,omitempty"`
	AgentName string  `json:"agent_name,omitempty"`
	BrandName string  `json:"brand_name,omitempty"`
}

// publish encodes one frame and sends it to a topic of this process.
func (s *Server) publish(topic, typ string, data any) {
	frame, err := realtime.Encode(typ, data)
	if err != nil {
		s.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	s.hub.Publish(topic, frame)
}

// publishMessage delivers a stored message to the conversation's sockets.
func (s *Server) publishMessage(conv *models.Conversation, m *models.Message) {
	s.publish(convTopic(conv.ID), "message", messageFrameOf(m))
}

// publishConversation tells the conversation's sockets and its brand's live
// queue that its state changed.
func (s *Server) publishConversation(conv *models.Conversation) {
	f := conversationFrame{ID: conv.ID, Status: conv.Status, AgentID: conv.AgentID}
	s.publish(convTopic(conv.ID), "conversation", f)
	s.publish(brandTopic(conv.BrandID), "conversation", f)
}
