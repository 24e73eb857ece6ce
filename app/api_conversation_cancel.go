package app

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleAPIConversationCancel abandons a conversation before a person
// joined (the customer left); 409 once an agent has joined or it ended.
func (s *Server) handleAPIConversationCancel(c echo.Context) error {
	id, err := apiConversationID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	conv, err := s.store.CancelConversation(ctx, apiBrand(c).ID, id, "cancelled by the bot")
	if err != nil {
		return err
	}
	s.publishConversation(conv)
	out, err := s.apiConversationOf(ctx, conv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
