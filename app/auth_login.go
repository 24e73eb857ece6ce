package app

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

type loginForm struct {
	Email    string `form:"email"`
	Password string `form:"password"`
	Next     string `form:"next"`
}

func (s *Server) handleLoginShow(c echo.Context) error {
	if u := currentUser(c); u != nil {
		return redirect(c, s.home(c, u))
	}
	v := s.newView(c, "Sign in")
	v.Form["next"] = safeNext(c.QueryParam("next"))
	return s.render(c, http.StatusOK, "login", v)
}

// handleLoginSubmit signs in. Failed attempts count per account and per
// client IP; past the configured figures the form answers 429 with
// Retry-After until the window has passed.
func (s *Server) handleLoginSubmit(c echo.Context) error {
	var f loginForm
	if err := c.Bind(&f); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	f.Email = strings.ToLower(strings.TrimSpace(f.Email))
	v := s.newView(c, "Sign in")
	v.Form["email"], v.Form["next"] = f.Email, safeNext(f.Next)
	switch {
	case f.Email == "":
		v.Errors["email"] = "is required"
	case len(f.Email) > models.MaxEmailLen:
		v.Errors["email"] = "is too long"
	}
	switch {
	case f.Password == "":
		v.Errors["password"] = "is required"
	case len(f.Password) > 1024:
		v.Errors["password"] = "is too long"
	}
	if len(v.Errors) > 0 {
		return s.render(c, http.StatusUnprocessableEntity, "login", v)
	}
	acctKey, ipKey := "acct:"+f.Email, "ip:"+c.RealIP()
	for _, lim := range []struct {
		key  string
		rate Rate
	}{{acctKey, s.cfg.LoginRate.Account}, {ipKey, s.cfg.LoginRate.IP}} {
		if blocked, wait := s.logins.Blocked(lim.key, lim.rate); blocked {
			s.metrics.logins.WithLabelValues("rate_limited").Inc()
			secs := int(math.Ceil(wait.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			v.Error = fmt.Sprintf("Too many failed sign-ins. Try again in %s.", humanWait(secs))
			return s.render(c, http.StatusTooManyRequests, "login", v)
		}
	}
	u, err := s.store.Authenticate(c.Request().Context(), f.Email, f.Password)
	if errors.Is(err, models.ErrUnauthorized) {
		s.logins.Hit(acctKey, s.cfg.LoginRate.Account)
		s.logins.Hit(ipKey, s.cfg.LoginRate.IP)
		s.metrics.logins.WithLabelValues("failed").Inc()
		v.Error = "The email or password is wrong, or the account is suspended."
		return s.render(c, http.StatusUnauthorized, "login", v)
	}
	if err != nil {
		return err
	}
	s.logins.Reset(acctKey)
	s.metrics.logins.WithLabelValues("ok").Inc()
	if err := s.signIn(c, u); err != nil {
		return err
	}
	if next := safeNext(f.Next); next != "" {
		return redirect(c, next)
	}
	return redirect(c, s.home(c, u))
}

func humanWait(secs int) string {
	if secs < 60 {
		return fmt.Sprintf("%d seconds", secs)
	}
	m := (secs + 59) / 60
	if m == 1 {
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// handleLogout revokes the session at once, so the cookie is worthless
// even if it was copied.
func (s *Server) handleLogout(c echo.Context) error {
	if sess, ok := c.Get(ctxSession).(*models.Session); ok {
		if err := s.store.RevokeSession(c.Request().Context(), sess.ID); err != nil {
			return err
		}
	}
	s.clearSessionCookie(c)
	s.flash(c, "You are signed out.")
	return redirect(c, "/login")
}
