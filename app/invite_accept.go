package app

import (
	"errors"
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

const invitePurpose = "invite"

// invitation resolves the link token to a pending invitation and its brand;
// a forged, unknown or used link is 404.
func (s *Server) invitation(c echo.Context) (*models.Invitation, *models.Brand, error) {
	id, ok := s.keys.VerifyLink(invitePurpose, c.Param("token"))
	if !ok {
		return nil, nil, echo.ErrNotFound
	}
	ctx := c.Request().Context()
	inv, err := s.store.Invitation(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.store.Brand(ctx, inv.BrandID)
	if err != nil {
		return nil, nil, err
	}
	return inv, b, nil
}

func (s *Server) inviteView(c echo.Context, inv *models.Invitation, b *models.Brand) *View {
	v := s.newView(c, "Join "+b.Name)
	v.Data["Invitation"], v.Data["Brand"] = inv, b
	v.Data["State"] = inv.State(s.store.Now())
	return v
}

func (s *Server) handleInviteShow(c echo.Context) error {
	inv, b, err := s.invitation(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "invite", s.inviteView(c, inv, b))
}

// handleInviteAccept joins the team and signs the person in.
func (s *Server) handleInviteAccept(c echo.Context) error {
	inv, b, err := s.invitation(c)
	if err != nil {
		return err
	}
	v := s.inviteView(c, inv, b)
	v.Form["display_name"] = c.FormValue("display_name")
	u, err := s.store.AcceptInvitation(c.Request().Context(), inv.ID, v.Form["display_name"], c.FormValue("password"))
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		if msg, ok := ve.Map()["invitation"]; ok {
			v.Error = "Sorry, " + msg + "."
			return s.render(c, http.StatusConflict, "invite", v)
		}
	}
	if err != nil {
		return s.formError(c, "invite", v, err)
	}
	if err := s.signIn(c, u); err != nil {
		return err
	}
	s.flash(c, "Welcome to "+b.Name+" on Handoff.")
	return redirect(c, "/brand/"+b.ID)
}
