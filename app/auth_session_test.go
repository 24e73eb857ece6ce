package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

func TestLogoutRevokesTheSession(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		c, _, b, tok := authOwnerSession(t, ts, db, "Acme", "owner@acme.test")
		_, claims := authUnverified(t, tok)
		page := "/brand/" + b.ID
		authExpectPage(t, authClientWithToken(ts, tok), page)

		res, body := c.post("/logout", nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
			t.Fatalf("POST /logout = %d (Location %q); want 303 to /login\n%.300s", res.StatusCode, res.Header.Get("Location"), body)
		}
		if ck := authSetCookie(t, res, sessionCookie); ck.MaxAge >= 0 || ck.Value != "" {
			t.Errorf("logout Set-Cookie %s = %q MaxAge %d; want it cleared", sessionCookie, ck.Value, ck.MaxAge)
		}
		authExpectSignedOut(t, c, page)
		// The copied cookie is worthless: the session row is revoked.
		authExpectSignedOut(t, authClientWithToken(ts, tok), page)
		if _, _, err := db.Store.SessionUser(context.Background(), claims.ID); !errors.Is(err, models.ErrUnauthorized) {
			t.Errorf("SessionUser after logout = %v; want ErrUnauthorized", err)
		}
	})
}

func TestSuspendingAnAgentEndsTheirSessions(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		a := mustAgent(t, db, "ann@agents.test", true)
		op := mustOperator(t, db, "op-ann@agents.test")
		c := ts.client()
		c.login("ann@agents.test", testPassword)
		tok := c.cookie(sessionCookie)
		authExpectPage(t, c, "/agent")

		if _, err := db.Store.SuspendAgent(context.Background(), op.ID, a.ID, "Shared customer data."); err != nil {
			t.Fatalf("SuspendAgent: %v", err)
		}
		authExpectSignedOut(t, c, "/agent")
		authExpectSignedOut(t, authClientWithToken(ts, tok), "/agent")
	})
}

func TestSignedTokenForUnknownSessionIsRefused(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, owner, b, _ := authOwnerSession(t, ts, db, "Acme", "owner@acme.test")
		now := db.Clock.Now()
		for _, id := range []string{models.NewID(), "not-a-session-id", "' OR '1'='1"} {
			tok, err := ts.srv.keys.Sign(&models.Session{ID: id, UserID: owner.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if _, err := ts.srv.keys.Verify(tok, now); err != nil {
				t.Fatalf("Verify(token for session %q) = %v; want nil, so only the sessions table can refuse it", id, err)
			}
			authExpectSignedOut(t, authClientWithToken(ts, tok), "/brand/"+b.ID)
		}
	})
}

// The session cookie must not be readable by scripts, must not travel on
// cross-site posts, covers the whole site, and lives as long as the session
// by the store's clock.
func TestSessionCookieAttributes(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		for _, tc := range []struct {
			name    string
			baseURL string
			secure  bool
		}{{"http", "", false}, {"https", "https://handoff.example", true}} {
			t.Run(tc.name, func(t *testing.T) {
				ts := newTestServer(t, db, func(cfg *Config) {
					if tc.baseURL != "" {
						cfg.BaseURL = tc.baseURL
					}
				})
				email := "owner-" + tc.name + "@acme.test"
				mustBrand(t, db, "Acme "+tc.name, email)
				res, body := ts.client().post("/login", url.Values{"email": {email}, "password": {testPassword}})
				if res.StatusCode != http.StatusSeeOther {
					t.Fatalf("POST /login = %d; want 303\n%.300s", res.StatusCode, body)
				}
				ck := authSetCookie(t, res, sessionCookie)
				raw := ""
				for _, h := range res.Header.Values("Set-Cookie") {
					if strings.HasPrefix(h, sessionCookie+"=") {
						raw = h
					}
				}
				if !ck.HttpOnly {
					t.Errorf("session cookie is not HttpOnly: %s", raw)
				}
				if ck.SameSite != http.SameSiteLaxMode {
					t.Errorf("session cookie SameSite = %v; want Lax: %s", ck.SameSite, raw)
				}
				if ck.Path != "/" {
					t.Errorf("session cookie Path = %q; want /: %s", ck.Path, raw)
				}
				if ck.Secure != tc.secure {
					t.Errorf("session cookie Secure = %v; want %v with base URL %q: %s", ck.Secure, tc.secure, tc.baseURL, raw)
				}
				if want := int(ts.srv.cfg.SessionTTL / time.Second); ck.MaxAge != want {
					t.Errorf("session cookie Max-Age = %d; want SessionTTL = %d (measured on the store's clock): %s", ck.MaxAge, want, raw)
				}
			})
		}
	})
}
