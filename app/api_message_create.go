package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

type messageRequest struct {
	Text     string `json:"text"`
	ClientID string `json:"client_id"`
}

// handleAPIMessageCreate relays a customer message from a bot that keeps its
// own chat widget. A repeated client_id answers 200 with the stored message
// instead of 201, and is not stored twice.
func (s *Server) handleAPIMessageCreate(c echo.Context) error {
	id, err := apiConversationID(c)
	if err != nil {
		return err
	}
	var req messageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	conv, err := s.store.Conversation(ctx, apiBrand(c).ID, id)
	if err != nil {
		return err
	}
	m, created, err := s.addMessage(ctx, conv.ID, models.SenderCustomer, "", req.ClientID, req.Text)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.publishMessage(m)
	}
	return c.JSON(status, apiMessage{Seq: m.Seq, Sender: m.Sender, Text: m.Body, ClientID: m.ClientID, CreatedAt: m.CreatedAt})
}
