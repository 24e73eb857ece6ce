package app

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleBrandIndex sends a brand user to their (first) brand.
func (s *Server) handleBrandIndex(c echo.Context) error {
	return redirect(c, s.home(c, currentUser(c)))
}

// setupStep is one item of the brand's getting-started checklist.
type setupStep struct {
	Label, Href string
	Done        bool
}

// handleBrandDashboard shows the brand's setup progress and its numbers.
func (s *Server) handleBrandDashboard(c echo.Context) error {
	ctx := c.Request().Context()
	m := member(c)
	b := m.Brand
	skills, err := s.store.Skills(ctx, b.ID)
	if err != nil {
		return err
	}
	keys, err := s.store.APIKeys(ctx, b.ID)
	if err != nil {
		return err
	}
	live := 0
	for _, k := range keys {
		if k.RevokedAt == nil {
			live++
		}
	}
	members, err := s.store.Members(ctx, b.ID)
	if err != nil {
		return err
	}
	base := "/brand/" + b.ID
	steps := []setupStep{
		{"Describe the skills your customers need", base + "/skills", len(skills) > 0},
		{"Set pay, timeouts and quality bars", base + "/settings", b.PayRateMinor > 0},
		{"Create an API key for your bot", base + "/keys", live > 0},
		{"Invite a teammate to review conversations", base + "/team", len(members) > 1},
	}
	done := 0
	for _, st := range steps {
		if st.Done {
			done++
		}
	}
	v := s.newView(c, b.Name)
	v.Data["Brand"], v.Data["Steps"], v.Data["Done"] = b, steps, done
	v.Data["Skills"], v.Data["LiveKeys"], v.Data["Members"] = skills, live, members
	return s.render(c, http.StatusOK, "brand_dashboard", v)
}
