package app

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
)

// loadSession reads the session cookie, verifies the token and checks the
// session row, so logout and suspension take effect at the next request. A
// bad or dead token is dropped and the request goes on signed out.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		claims, err := s.keys.Verify(ck.Value, s.store.Now())
		if err != nil {
			s.clearSessionCookie(c)
			return next(c)
		}
		u, sess, err := s.store.SessionUser(c.Request().Context(), claims.ID)
		if errors.Is(err, models.ErrUnauthorized) || (err == nil && u.ID != claims.Subject) {
			s.clearSessionCookie(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		c.Set(ctxUser, u)
		c.Set(ctxSession, sess)
		return next(c)
	}
}

// currentUser returns the signed-in user, or nil.
func currentUser(c echo.Context) *models.User {
	u, _ := c.Get(ctxUser).(*models.User)
	return u
}

// signIn opens a session and sets its cookie.
func (s *Server) signIn(c echo.Context, u *models.User) error {
	r := c.Request()
	sess, err := s.store.CreateSession(r.Context(), u.ID, c.RealIP(), r.UserAgent(), s.cfg.SessionTTL)
	if err != nil {
		return err
	}
	tok, err := s.keys.Sign(sess)
	if err != nil {
		return err
	}
	// Max-Age is measured on the store's clock, like the session's expiry;
	// time.Until would mix in the wall clock.
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt, MaxAge: int(sess.ExpiresAt.Sub(s.store.Now()) / time.Second)})
	c.Set(ctxUser, u)
	c.Set(ctxSession, sess)
	return nil
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// home is where a user lands after signing in.
func (s *Server) home(c echo.Context, u *models.User) string {
	switch u.Kind {
	case models.KindOperator:
		return "/admin"
	case models.KindAgent:
		return "/agent"
	}
	ms, err := s.store.Memberships(c.Request().Context(), u.ID)
	if err != nil || len(ms) == 0 {
		return "/"
	}
	return "/brand/" + ms[0].BrandID
}

// requireKind lets only signed-in users of the given kinds through. This
// and requireBrand are the one place roles are enforced: a visitor is sent
// to sign in, a user of another kind gets 403.
func (s *Server) requireKind(kinds ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := currentUser(c)
			if u == nil {
				if c.Request().Method == http.MethodGet {
					return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
				}
				return echo.NewHTTPError(http.StatusUnauthorized, "Please sign in.")
			}
			for _, k := range kinds {
				if u.Kind == k {
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, "This page is not for your account.")
		}
	}
}

// requireBrand checks that the signed-in user belongs to the brand in the
// URL, with one of the roles; another tenant's brand answers 404.
func (s *Server) requireBrand(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := currentUser(c)
			id := c.Param("brand")
			if u == nil || !models.ValidID(id) {
				return echo.ErrNotFound
			}
			m, err := s.store.Membership(c.Request().Context(), id, u.ID)
			if err != nil {
				return err
			}
			for _, r := range roles {
				if m.Role == r {
					c.Set(ctxMember, m)
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, "Only a brand owner can do this.")
		}
	}
}

// member returns the brand membership requireBrand loaded.
func member(c echo.Context) *models.BrandMember {
	m, _ := c.Get(ctxMember).(*models.BrandMember)
	return m
}

// safeNext keeps a post-login redirect on this site. Browsers drop tabs and
// line breaks from a Location and read "\" as "/", so "/\t/evil.test" would
// leave the site: control characters and backslashes are refused anywhere.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return ""
	}
	return next
}
