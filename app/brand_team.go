package app

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// pendingInvite is an invitation with the link the owner can copy.
type pendingInvite struct {
	models.Invitation
	State string
	Link  string
}

func (s *Server) inviteLink(id string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/invite/" + s.keys.SignLink(invitePurpose, id)
}

func (s *Server) teamPage(c echo.Context, status int, v *View) error {
	ctx := c.Request().Context()
	b := member(c).Brand
	members, err := s.store.Members(ctx, b.ID)
	if err != nil {
		return err
	}
	invs, err := s.store.Invitations(ctx, b.ID)
	if err != nil {
		return err
	}
	now := s.store.Now()
	var list []pendingInvite
	for _, inv := range invs {
		p := pendingInvite{Invitation: inv, State: inv.State(now)}
		if p.State == "pending" {
			p.Link = s.inviteLink(inv.ID)
		}
		list = append(list, p)
	}
	v.Data["Brand"], v.Data["Members"], v.Data["Invitations"] = b, members, list
	v.Data["Mailer"] = s.mailer != nil
	return s.render(c, status, "brand_team", v)
}

func (s *Server) handleBrandTeam(c echo.Context) error {
	v := s.newView(c, "Team · "+member(c).Brand.Name)
	v.Form["role"] = models.RoleReviewer
	return s.teamPage(c, http.StatusOK, v)
}

// handleBrandInvite records the invitation and mails the link (or leaves
// it in the operator's outbox when no SMTP is configured).
func (s *Server) handleBrandInvite(c echo.Context) error {
	ctx := c.Request().Context()
	b := member(c).Brand
	u := currentUser(c)
	v := s.newView(c, "Team · "+b.Name)
	v.Form["email"], v.Form["role"] = c.FormValue("email"), c.FormValue("role")
	inv, err := s.store.CreateInvitation(ctx, u.ID, b.ID, v.Form["email"], v.Form["role"])
	if err != nil {
		var ve *models.ValidationError
		if !asValidation(err, &ve) {
			return err
		}
		v.Errors = ve.Map()
		return s.teamPage(c, http.StatusUnprocessableEntity, v)
	}
	body := fmt.Sprintf("%s invited you to join %s on Handoff as %s.\n\nAccept the invitation (valid for 7 days):\n%s\n",
		u.DisplayName, b.Name, inv.Role, s.inviteLink(inv.ID))
	if err := s.sendMail(ctx, inv.Email, "Join "+b.Name+" on Handoff", body); err != nil {
		return err
	}
	s.flash(c, "Invitation sent to "+inv.Email+". You can also copy its link below.")
	return redirect(c, "/brand/"+b.ID+"/team")
}

// handleBrandInviteRevoke withdraws a pending invitation.
func (s *Server) handleBrandInviteRevoke(c echo.Context) error {
	b := member(c).Brand
	if !models.ValidID(c.Param("invitation")) {
		return echo.ErrNotFound
	}
	if err := s.store.RevokeInvitation(c.Request().Context(), currentUser(c).ID, b.ID, c.Param("invitation")); err != nil {
		return err
	}
	s.flash(c, "Invitation withdrawn.")
	return redirect(c, "/brand/"+b.ID+"/team")
}
