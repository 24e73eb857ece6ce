package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

type brandSignupForm struct {
	Name     string `form:"name"`
	Email    string `form:"email"`
	Password string `form:"password"`
}

func (s *Server) handleBrandSignupShow(c echo.Context) error {
	return s.render(c, http.StatusOK, "signup", s.newView(c, "Start with Handoff"))
}

// handleBrandSignupSubmit creates the brand and its owner and signs them in.
func (s *Server) handleBrandSignupSubmit(c echo.Context) error {
	var f brandSignupForm
	if err := c.Bind(&f); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	v := s.newView(c, "Start with Handoff")
	v.Form["name"], v.Form["email"] = f.Name, f.Email
	u, b, err := s.store.SignUpBrand(c.Request().Context(), models.BrandSignup{Name: f.Name, Email: f.Email, Password: f.Password})
	if err != nil {
		return s.formError(c, "signup", v, err)
	}
	if err := s.signIn(c, u); err != nil {
		return err
	}
	s.flash(c, "Welcome to Handoff, "+b.Name+". Set your quality bars and create an API key for your bot.")
	return redirect(c, "/brand/"+b.ID)
}
