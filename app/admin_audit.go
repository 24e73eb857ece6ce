package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// handleAdminAudit shows the newest audit entries: operator actions and
// brand setting changes.
func (s *Server) handleAdminAudit(c echo.Context) error {
	entries, err := s.store.ListAudit(c.Request().Context(), models.AuditFilter{Limit: 200})
	if err != nil {
		return err
	}
	v := s.newView(c, "Audit log")
	v.Data["Entries"] = entries
	return s.render(c, http.StatusOK, "admin_audit", v)
}

// handleAdminOutbox shows mail Handoff sent or, with no SMTP configured,
// kept for the operator to pass on.
func (s *Server) handleAdminOutbox(c echo.Context) error {
	mails, err := s.store.ListOutbox(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	v := s.newView(c, "Outbox")
	v.Data["Mails"], v.Data["SMTP"] = mails, s.mailer != nil
	return s.render(c, http.StatusOK, "admin_outbox", v)
}
