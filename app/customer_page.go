package app

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// noReferrer keeps the customer's link out of Referer headers.
func (s *Server) noReferrer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Referrer-Policy", "no-referrer")
		return next(c)
	}
}

// handleCustomerPage is the page behind the bot's link: the queue, the
// transcript, the live chat and the rating. The page's script talks to
// /c/:token/ws.
func (s *Server) handleCustomerPage(c echo.Context) error {
	conv, err := s.customerConversation(c)
	if err != nil {
		return err
	}
	b, err := s.brand(c.Request().Context(), conv.BrandID)
	if err != nil {
		return err
	}
	st, err := s.customerStateOf(c.Request().Context(), conv, b)
	if err != nil {
		return err
	}
	v := s.newView(c, "Chat with "+st.BrandName)
	v.Data["State"], v.Data["Token"] = st, c.Param("token")
	return s.render(c, http.StatusOK, "customer", v)
}
