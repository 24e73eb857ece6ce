package app

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// skillRows is how many skill + level rows the application form offers.
const skillRows = 6

func (s *Server) handleAgentApplyShow(c echo.Context) error {
	v := s.newView(c, "Apply as an agent")
	v.Form["max_concurrent"] = "1"
	v.Form["languages"] = "en"
	v.Data["Rows"] = skillRowList()
	return s.render(c, http.StatusOK, "apply", v)
}

func skillRowList() []int {
	out := make([]int, skillRows)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// handleAgentApplySubmit creates the agent's account with a pending
// application and signs them in to watch its status.
func (s *Server) handleAgentApplySubmit(c echo.Context) error {
	v := s.newView(c, "Apply as an agent")
	v.Data["Rows"] = skillRowList()
	for _, k := range []string{"display_name", "email", "languages", "bio", "max_concurrent"} {
		v.Form[k] = c.FormValue(k)
	}
	in := models.AgentApplication{
		DisplayName: v.Form["display_name"],
		Email:       v.Form["email"],
		Password:    c.FormValue("password"),
		Languages:   strings.FieldsFunc(v.Form["languages"], func(r rune) bool { return r == ',' || r == ' ' }),
		Bio:         v.Form["bio"],
		Skills:      map[string]int{},
	}
	pre := &models.ValidationError{}
	if n, err := strconv.Atoi(strings.TrimSpace(v.Form["max_concurrent"])); err == nil {
		in.MaxConcurrent = n
	} else {
		pre.Add("max_concurrent", "choose 1, 2 or 3")
	}
	for i := 1; i <= skillRows; i++ {
		name := strings.TrimSpace(c.FormValue(fmt.Sprintf("skill_%d", i)))
		level := c.FormValue(fmt.Sprintf("level_%d", i))
		v.Form[fmt.Sprintf("skill_%d", i)], v.Form[fmt.Sprintf("level_%d", i)] = name, level
		if name == "" {
			continue
		}
		n, err := strconv.Atoi(level)
		if err != nil {
			pre.Add("skills", "choose a level for “"+name+"”")
			continue
		}
		in.Skills[name] = n
	}
	if err := pre.Err(); err != nil {
		return s.formError(c, "apply", v, err)
	}
	a, err := s.store.ApplyAsAgent(c.Request().Context(), in)
	if err != nil {
		return s.formError(c, "apply", v, err)
	}
	if err := s.signIn(c, a.User); err != nil {
		return err
	}
	s.flash(c, "Thanks for applying. An operator will review your application.")
	return redirect(c, "/agent")
}
