package app

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

var settingsFields = []string{"name", "languages", "time_zone", "pay_rate", "currency", "offer_timeout_seconds",
	"max_wait_seconds", "min_rating", "min_qa_score", "min_skill_level", "require_certification"}

func (s *Server) settingsView(c echo.Context, b *models.Brand) *View {
	v := s.newView(c, "Settings · "+b.Name)
	v.Data["Brand"], v.Data["Currencies"] = b, models.CurrencyCodes
	return v
}

func (s *Server) handleBrandSettingsShow(c echo.Context) error {
	b := member(c).Brand
	v := s.settingsView(c, b)
	v.Form = map[string]string{
		"name": b.Name, "languages": strings.Join(b.LanguageList(), ", "), "time_zone": b.TimeZone,
		"pay_rate": models.FormatMoney(b.PayRateMinor, b.Currency), "currency": b.Currency,
		"offer_timeout_seconds": strconv.Itoa(b.OfferTimeoutSeconds), "max_wait_seconds": strconv.Itoa(b.MaxWaitSeconds),
		"min_rating": strconv.FormatFloat(b.MinRating, 'f', -1, 64), "min_qa_score": strconv.FormatFloat(b.MinQAScore, 'f', -1, 64),
		"min_skill_level": strconv.Itoa(b.MinSkillLevel),
	}
	if b.RequireCertification {
		v.Form["require_certification"] = "on"
	}
	return s.render(c, http.StatusOK, "brand_settings", v)
}

// handleBrandSettingsSave parses the form (malformed numbers are field
// errors), then saves every setting in one transaction, or none.
func (s *Server) handleBrandSettingsSave(c echo.Context) error {
	b := member(c).Brand
	v := s.settingsView(c, b)
	for _, k := range settingsFields {
		v.Form[k] = c.FormValue(k)
	}
	in := models.BrandSettings{
		Name:                 v.Form["name"],
		Languages:            strings.FieldsFunc(v.Form["languages"], func(r rune) bool { return r == ',' || r == ' ' }),
		TimeZone:             v.Form["time_zone"],
		Currency:             strings.ToUpper(strings.TrimSpace(v.Form["currency"])),
		RequireCertification: v.Form["require_certification"] == "on",
	}
	pre := &models.ValidationError{}
	if _, ok := models.Currencies[in.Currency]; ok {
		n, err := models.ParseMoney(v.Form["pay_rate"], in.Currency)
		if err != nil {
			pre.Add("pay_rate", "must be an amount like 4.50")
		}
		in.PayRateMinor = n
	}
	intField := func(k string, dst *int) {
		n, err := strconv.Atoi(strings.TrimSpace(v.Form[k]))
		if err != nil {
			pre.Add(k, "must be a whole number")
		}
		*dst = n
	}
	floatField := func(k string, dst *float64) {
		raw := strings.TrimSpace(v.Form[k])
		if raw == "" {
			*dst = 0
			return
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || len(raw) > 10 {
			pre.Add(k, "must be a number")
		}
		*dst = f
	}
	intField("offer_timeout_seconds", &in.OfferTimeoutSeconds)
	intField("max_wait_seconds", &in.MaxWaitSeconds)
	floatField("min_rating", &in.MinRating)
	floatField("min_qa_score", &in.MinQAScore)
	if strings.TrimSpace(v.Form["min_skill_level"]) == "" {
		in.MinSkillLevel = 1
	} else {
		intField("min_skill_level", &in.MinSkillLevel)
	}
	// Report parse errors together with the domain's own checks.
	if _, err := models.ValidateBrandSettings(in); err != nil || pre.Err() != nil {
		var ve *models.ValidationError
		if asValidation(err, &ve) {
			for _, f := range ve.Fields {
				if _, dup := pre.Map()[f.Field]; !dup {
					pre.Add(f.Field, f.Message)
				}
			}
		}
		return s.formError(c, "brand_settings", v, pre)
	}
	if _, err := s.store.UpdateBrandSettings(c.Request().Context(), currentUser(c).ID, b.ID, in); err != nil {
		return s.formError(c, "brand_settings", v, err)
	}
	s.flash(c, "Settings saved.")
	return redirect(c, "/brand/"+b.ID+"/settings")
}
