package app

import (
	"net/http"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

func (s *Server) skillsPage(c echo.Context, status int, v *View) error {
	b := member(c).Brand
	skills, err := s.store.Skills(c.Request().Context(), b.ID)
	if err != nil {
		return err
	}
	v.Data["Brand"], v.Data["Skills"], v.Data["Max"] = b, skills, models.MaxSkills
	return s.render(c, status, "brand_skills", v)
}

func (s *Server) handleBrandSkills(c echo.Context) error {
	return s.skillsPage(c, http.StatusOK, s.newView(c, "Skills · "+member(c).Brand.Name))
}

// handleBrandSkillAdd adds one skill to the catalogue.
func (s *Server) handleBrandSkillAdd(c echo.Context) error {
	b := member(c).Brand
	v := s.newView(c, "Skills · "+b.Name)
	v.Form["skill"] = c.FormValue("skill")
	defer s.skills.forget(b.ID)
	if _, err := s.store.AddSkill(c.Request().Context(), currentUser(c).ID, b.ID, v.Form["skill"]); err != nil {
		var ve *models.ValidationError
		if !asValidation(err, &ve) {
			return err
		}
		v.Errors = ve.Map()
		return s.skillsPage(c, http.StatusUnprocessableEntity, v)
	}
	s.flash(c, "Skill added.")
	return redirect(c, "/brand/"+b.ID+"/skills")
}

// handleBrandSkillRemove removes a skill; another brand's skill is 404.
func (s *Server) handleBrandSkillRemove(c echo.Context) error {
	b := member(c).Brand
	if !models.ValidID(c.Param("skill")) {
		return echo.ErrNotFound
	}
	defer s.skills.forget(b.ID)
	if err := s.store.RemoveSkill(c.Request().Context(), currentUser(c).ID, b.ID, c.Param("skill")); err != nil {
		return err
	}
	s.flash(c, "Skill removed.")
	return redirect(c, "/brand/"+b.ID+"/skills")
}
