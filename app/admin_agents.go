package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// handleAdminApplications is the operator's vetting queue: pending
// applications, oldest first.
func (s *Server) handleAdminApplications(c echo.Context) error {
	agents, err := s.store.Agents(c.Request().Context(), models.AgentPending, 200)
	if err != nil {
		return err
	}
	v := s.newView(c, "Applications")
	v.Data["Agents"] = agents
	return s.render(c, http.StatusOK, "admin_applications", v)
}

var agentStatuses = []string{models.AgentApproved, models.AgentPending, models.AgentRejected, models.AgentSuspended}

// handleAdminAgents lists agents by status.
func (s *Server) handleAdminAgents(c echo.Context) error {
	status := c.QueryParam("status")
	if status == "" {
		status = models.AgentApproved
	}
	ok := false
	for _, st := range agentStatuses {
		ok = ok || st == status
	}
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest, "Unknown status.")
	}
	agents, err := s.store.Agents(c.Request().Context(), status, 500)
	if err != nil {
		return err
	}
	v := s.newView(c, "Agents")
	v.Data["Agents"], v.Data["Status"], v.Data["Statuses"] = agents, status, agentStatuses
	return s.render(c, http.StatusOK, "admin_agents", v)
}

func (s *Server) agentPage(c echo.Context, status int, v *View) error {
	id := c.Param("agent")
	if !models.ValidID(id) {
		return echo.ErrNotFound
	}
	a, err := s.store.Agent(c.Request().Context(), id)
	if err != nil {
		return err
	}
	v.Title = a.User.DisplayName
	v.Data["Agent"] = a
	return s.render(c, status, "admin_agent", v)
}

func (s *Server) handleAdminAgent(c echo.Context) error {
	return s.agentPage(c, http.StatusOK, s.newView(c, "Agent"))
}

func (s *Server) decide(c echo.Context, approve bool) error {
	id := c.Param("agent")
	if !models.ValidID(id) {
		return echo.ErrNotFound
	}
	err := s.store.DecideApplication(c.Request().Context(), currentUser(c).ID, id, approve, c.FormValue("reason"))
	if err != nil {
		var ve *models.ValidationError
		if !asValidation(err, &ve) {
			return err
		}
		v := s.newView(c, "Agent")
		v.Form["reason"], v.Errors = c.FormValue("reason"), ve.Map()
		return s.agentPage(c, http.StatusUnprocessableEntity, v)
	}
	if approve {
		s.flash(c, "Application approved. The agent can go online now.")
	} else {
		s.flash(c, "Application rejected.")
	}
	return redirect(c, "/admin")
}

// handleAdminAgentApprove approves a pending application.
func (s *Server) handleAdminAgentApprove(c echo.Context) error { return s.decide(c, true) }

// handleAdminAgentReject rejects a pending application with a reason.
func (s *Server) handleAdminAgentReject(c echo.Context) error { return s.decide(c, false) }

// handleAdminAgentSuspend suspends an agent; their sessions end at once.
func (s *Server) handleAdminAgentSuspend(c echo.Context) error {
	id := c.Param("agent")
	if !models.ValidID(id) {
		return echo.ErrNotFound
	}
	ctx := c.Request().Context()
	chats, err := s.store.AgentConversations(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.store.SuspendAgent(ctx, currentUser(c).ID, id, c.FormValue("reason"))
	if err != nil {
		var ve *models.ValidationError
		if !asValidation(err, &ve) {
			return err
		}
		v := s.newView(c, "Agent")
		v.Form["suspend_reason"] = c.FormValue("reason")
		v.Errors["suspend_reason"] = ve.Map()["reason"]
		return s.agentPage(c, http.StatusUnprocessableEntity, v)
	}
	// Close their sockets at once and tell their customers someone else
	// will take over.
	s.closeAgent(id)
	for i := range chats {
		chats[i].Status, chats[i].AgentID = models.ConvQueued, nil
		s.publishConversation(&chats[i])
	}
	s.queue.changed()
	s.wake()
	s.flash(c, "Agent suspended and signed out everywhere.")
	return redirect(c, "/admin/agents/"+id)
}
