package app

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleHome sends a signed-in user to their app and shows everyone else
// what Handoff is, with the ways in.
func (s *Server) handleHome(c echo.Context) error {
	if u := currentUser(c); u != nil {
		if to := s.home(c, u); to != "/" {
			return redirect(c, to)
		}
	}
	return s.render(c, http.StatusOK, "home", s.newView(c, "Human support, on demand"))
}
