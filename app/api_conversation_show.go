package app

import (
	"context"
	"net/http"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

type apiAgent struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

type apiMessage struct {
	Seq       int        `json:"seq"`
	Sender    string     `json:"sender"`
	Text      string     `json:"text"`
	ClientID  *string    `json:"client_id"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

type apiRating struct {
	Score   int    `json:"score"`
	Comment string `json:"comment"`
}

// apiConversation is a conversation as the bot API shows it.
type apiConversation struct {
	ID          string       `json:"id"`
	ExternalID  string       `json:"external_id"`
	Status      string       `json:"status"`
	Agent       *apiAgent    `json:"agent"`
	CreatedAt   time.Time    `json:"created_at"`
	AssignedAt  *time.Time   `json:"assigned_at"`
	ResolvedAt  *time.Time   `json:"resolved_at"`
	WaitSeconds int          `json:"wait_seconds"`
	Messages    []apiMessage `json:"messages"`
	Rating      *apiRating   `json:"rating"`
	CustomerURL string       `json:"customer_url"`
}

func (s *Server) apiConversationOf(ctx context.Context, conv *models.Conversation) (*apiConversation, error) {
	msgs, err := s.store.Messages(ctx, conv.ID, 0, 0)
	if err != nil {
		return nil, err
	}
	out := &apiConversation{ID: conv.ID, ExternalID: conv.ExternalID, Status: conv.Status, CreatedAt: conv.CreatedAt,
		AssignedAt: conv.AssignedAt, ResolvedAt: conv.ResolvedAt, Messages: make([]apiMessage, 0, len(msgs)),
		CustomerURL: s.customerURL(conv.ID)}
	end := s.store.Now()
	if conv.AssignedAt != nil {
		end = *conv.AssignedAt
	} else if conv.AbandonedAt != nil {
		end = *conv.AbandonedAt
	}
	out.WaitSeconds = int(end.Sub(conv.CreatedAt) / time.Second)
	if conv.AgentID != nil {
		a, err := s.store.Agent(ctx, *conv.AgentID)
		if err != nil {
			return nil, err
		}
		out.Agent = &apiAgent{ID: a.ID, DisplayName: a.User.DisplayName}
	}
	for _, m := range msgs {
		out.Messages = append(out.Messages, apiMessage{Seq: m.Seq, Sender: m.Sender, Text: m.Body, ClientID: m.ClientID, SentAt: m.SentAt, CreatedAt: m.CreatedAt})
	}
	if conv.Rating != nil {
		out.Rating = &apiRating{Score: *conv.Rating, Comment: conv.RatingComment}
	}
	return out, nil
}

// handleAPIConversationShow answers with the conversation, its agent and
// every message; another brand's id is 404.
func (s *Server) handleAPIConversationShow(c echo.Context) error {
	id, err := apiConversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	conv, err := s.store.Conversation(ctx, apiBrand(c).ID, id)
	if err != nil {
		return err
	}
	out, err := s.apiConversationOf(ctx, conv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
