package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

func (s *Server) keysPage(c echo.Context, status int, v *View) error {
	b := member(c).Brand
	keys, err := s.store.APIKeys(c.Request().Context(), b.ID)
	if err != nil {
		return err
	}
	v.Data["Brand"], v.Data["Keys"], v.Data["BaseURL"] = b, keys, s.cfg.BaseURL
	return s.render(c, status, "brand_keys", v)
}

func (s *Server) handleBrandKeys(c echo.Context) error {
	return s.keysPage(c, http.StatusOK, s.newView(c, "API keys · "+member(c).Brand.Name))
}

// handleBrandKeyCreate makes a key and shows it once, on this response
// only; it is never stored or shown again.
func (s *Server) handleBrandKeyCreate(c echo.Context) error {
	b := member(c).Brand
	v := s.newView(c, "API keys · "+b.Name)
	v.Form["name"] = c.FormValue("name")
	key, k, err := s.store.CreateAPIKey(c.Request().Context(), currentUser(c).ID, b.ID, v.Form["name"])
	if err != nil {
		var ve *models.ValidationError
		if !asValidation(err, &ve) {
			return err
		}
		v.Errors = ve.Map()
		return s.keysPage(c, http.StatusUnprocessableEntity, v)
	}
	v.Form["name"] = ""
	v.Data["NewKey"], v.Data["NewKeyName"] = key, k.Name
	return s.keysPage(c, http.StatusCreated, v)
}

// handleBrandKeyRevoke revokes a key at once; another brand's key is 404.
func (s *Server) handleBrandKeyRevoke(c echo.Context) error {
	b := member(c).Brand
	if !models.ValidID(c.Param("key")) {
		return echo.ErrNotFound
	}
	if err := s.store.RevokeAPIKey(c.Request().Context(), currentUser(c).ID, b.ID, c.Param("key")); err != nil {
		return err
	}
	s.apiKeysChanged()
	s.flash(c, "Key revoked. Calls with it now answer 401.")
	return redirect(c, "/brand/"+b.ID+"/keys")
}
