package app

import (
	"errors"
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// loadAgent puts the signed-in agent's profile on the request.
func (s *Server) loadAgent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := s.store.AgentByUser(c.Request().Context(), currentUser(c).ID)
		if err != nil {
			return err
		}
		c.Set(ctxAgent, a)
		return next(c)
	}
}

func currentAgent(c echo.Context) *models.Agent {
	a, _ := c.Get(ctxAgent).(*models.Agent)
	return a
}

// handleAgentHome shows the application's status and, once approved, the
// presence controls.
func (s *Server) handleAgentHome(c echo.Context) error {
	v := s.newView(c, "Your work")
	v.Data["Agent"] = currentAgent(c)
	return s.render(c, http.StatusOK, "agent_home", v)
}

// handleAgentPresenceSave sets online / away / offline. Only an approved
// agent may go online: anyone else gets 403 and the page explains why.
func (s *Server) handleAgentPresenceSave(c echo.Context) error {
	a := currentAgent(c)
	err := s.store.SetPresence(c.Request().Context(), a.ID, c.FormValue("presence"))
	var ve *models.ValidationError
	switch {
	case errors.Is(err, models.ErrForbidden):
		v := s.newView(c, "Your work")
		v.Data["Agent"] = a
		v.Error = "You can go online once an operator has approved your application."
		return s.render(c, http.StatusForbidden, "agent_home", v)
	case errors.As(err, &ve):
		v := s.newView(c, "Your work")
		v.Data["Agent"] = a
		v.Error = "Choose online, away or offline."
		return s.render(c, http.StatusUnprocessableEntity, "agent_home", v)
	case err != nil:
		return err
	}
	return redirect(c, "/agent")
}
