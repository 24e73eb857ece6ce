package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

const authCSRFMessage = "did not come from Handoff"

// authSettingsForm is a valid brand settings form that renames the brand.
func authSettingsForm(b *models.Brand, name string) url.Values {
	return url.Values{
		"name":                  {name},
		"languages":             {strings.Join(b.LanguageList(), ", ")},
		"time_zone":             {b.TimeZone},
		"pay_rate":              {models.FormatMoney(b.PayRateMinor, b.Currency)},
		"currency":              {b.Currency},
		"offer_timeout_seconds": {strconv.Itoa(b.OfferTimeoutSeconds)},
		"max_wait_seconds":      {strconv.Itoa(b.MaxWaitSeconds)},
		"min_rating":            {strconv.FormatFloat(b.MinRating, 'f', -1, 64)},
		"min_qa_score":          {strconv.FormatFloat(b.MinQAScore, 'f', -1, 64)},
	}
}

func authRandomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// authUserExists looks the email up directly: Authenticate would spend a
// full-cost bcrypt comparison on an unknown email.
func authUserExists(t testing.TB, db *modeltest.DB, email string) bool {
	t.Helper()
	var n int64
	if err := db.Store.DB.Table("users").Where("email = ?", email).Count(&n).Error; err != nil {
		t.Fatalf("count users %s: %v", email, err)
	}
	return n > 0
}

func authExpectForbidden(t testing.TB, what string, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, authCSRFMessage) {
		t.Fatalf("%s = %d; want 403 with the CSRF message\n%.500s", what, res.StatusCode, body)
	}
}

func TestCSRFTokenRequired(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db)
		owner, _, b, _ := authOwnerSession(t, ts, db, "Acme", "owner@acme.test")
		pending := mustAgent(t, db, "pat@agents.test", false)
		mustOperator(t, db, "op@handoff.test")
		op := ts.client()
		op.login("op@handoff.test", testPassword)
		settings := "/brand/" + b.ID + "/settings"
		approve := "/admin/agents/" + pending.ID + "/approve"

		// Each post is sent without a token (from a browser that has a
		// CSRF cookie, and for public forms also one that has none); then
		// the check proves the request changed nothing.
		cases := []struct {
			name   string
			client *testClient
			path   string
			form   url.Values
			check  func(t *testing.T)
		}{
			{"login", ts.client(), "/login", url.Values{"email": {"owner@acme.test"}, "password": {testPassword}}, nil},
			{"signup", ts.client(), "/signup", url.Values{"name": {"Initech"}, "email": {"boss@initech.test"}, "password": {testPassword}}, func(t *testing.T) {
				if authUserExists(t, db, "boss@initech.test") {
					t.Errorf("signup without CSRF token created the account")
				}
			}},
			{"apply", ts.client(), "/apply", url.Values{"display_name": {"Eve"}, "email": {"eve@agents.test"}, "password": {testPassword},
				"languages": {"en"}, "bio": {"I help."}, "max_concurrent": {"2"}, "skill_1": {"billing"}, "level_1": {"3"}}, func(t *testing.T) {
				if authUserExists(t, db, "eve@agents.test") {
					t.Errorf("apply without CSRF token created the account")
				}
			}},
			{"logout", owner, "/logout", nil, func(t *testing.T) { authExpectPage(t, owner, "/brand/"+b.ID) }},
			{"settings", owner, settings, authSettingsForm(b, "Hacked"), func(t *testing.T) {
				got, err := db.Store.Brand(ctx, b.ID)
				if err != nil {
					t.Fatalf("Brand: %v", err)
				}
				if got.Name != "Acme" {
					t.Errorf("brand name = %q after a post without CSRF token; want Acme", got.Name)
				}
			}},
			{"approve", op, approve, nil, func(t *testing.T) {
				a, err := db.Store.Agent(ctx, pending.ID)
				if err != nil {
					t.Fatalf("Agent: %v", err)
				}
				if a.Status != models.AgentPending {
					t.Errorf("agent status = %q after approve without CSRF token; want %q", a.Status, models.AgentPending)
				}
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := tc.client
				if c.cookie(csrfCookie) == "" {
					// First from a browser with no CSRF cookie at all.
					res, body := authPostRaw(c, tc.path, tc.form, nil)
					authExpectForbidden(t, "POST "+tc.path+" with no CSRF cookie or token", res, body)
					c.csrf()
				}
				form := url.Values{}
				for k, v := range tc.form {
					form[k] = v
				}
				res, body := authPostRaw(c, tc.path, form, nil)
				authExpectForbidden(t, "POST "+tc.path+" without token", res, body)
				form.Set(csrfField, authRandomToken(t))
				res, body = authPostRaw(c, tc.path, form, nil)
				authExpectForbidden(t, "POST "+tc.path+" with a wrong token", res, body)
				res, body = authPostRaw(c, tc.path, tc.form, http.Header{csrfHeader: {authRandomToken(t)}})
				authExpectForbidden(t, "POST "+tc.path+" with a wrong header", res, body)
				if tc.name == "login" && c.cookie(sessionCookie) != "" {
					t.Errorf("sign-in without CSRF token set a session cookie")
				}
				if tc.check != nil {
					tc.check(t)
				}
			})
		}

		// Controls: the same forms with the token do take effect, so the
		// refusals above were about the token alone.
		for _, p := range []struct {
			path string
			form url.Values
		}{{"/signup", cases[1].form}, {"/apply", cases[2].form}} {
			if res, body := ts.client().post(p.path, p.form); res.StatusCode != http.StatusSeeOther {
				t.Errorf("POST %s with token = %d; want 303\n%.500s", p.path, res.StatusCode, body)
			}
		}
		if res, body := op.post(approve, nil); res.StatusCode != http.StatusSeeOther {
			t.Errorf("POST %s with token = %d; want 303\n%.500s", approve, res.StatusCode, body)
		}

		// The X-CSRF-Token header stands in for the form field.
		res, body := authPostRaw(owner, settings, authSettingsForm(b, "Acme Renamed"), http.Header{csrfHeader: {owner.csrf()}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST settings with X-CSRF-Token header = %d; want 303\n%.500s", res.StatusCode, body)
		}
		if got, _ := db.Store.Brand(ctx, b.ID); got == nil || got.Name != "Acme Renamed" {
			t.Errorf("brand after header-token save = %+v; want name Acme Renamed", got)
		}

		// A token is bound to its browser: another browser's valid token
		// does not pass with this browser's cookie.
		res, body = authPostRaw(owner, "/logout", url.Values{csrfField: {op.csrf()}}, nil)
		authExpectForbidden(t, "POST /logout with another browser's token", res, body)
		authExpectPage(t, owner, "/brand/"+b.ID)
	})
}

func TestCSRFCookieAttributes(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		res, _ := ts.client().get("/login")
		ck := authSetCookie(t, res, csrfCookie)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
			t.Errorf("CSRF cookie HttpOnly=%v SameSite=%v Path=%q; want true, Lax, /", ck.HttpOnly, ck.SameSite, ck.Path)
		}
		if len(ck.Value) != 43 {
			t.Errorf("CSRF token %q has %d characters; want 43 (32 random bytes)", ck.Value, len(ck.Value))
		}
		// The page repeats the token in its form.
		c := ts.client()
		_, body := c.get("/login")
		if tok := c.cookie(csrfCookie); !strings.Contains(body, `value="`+tok+`"`) {
			t.Errorf("login form does not carry the CSRF token %q", tok)
		}
	})
}
