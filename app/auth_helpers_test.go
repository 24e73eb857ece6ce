package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// Helpers for the auth_*_test.go files. Names start with "auth" so they do
// not collide with helpers other test files add to the package.

// authClientWithToken returns a fresh browser that holds only a session
// cookie with the given value, as an attacker replaying a token would.
func authClientWithToken(ts *testServer, tok string) *testClient {
	c := ts.client()
	u, _ := url.Parse(ts.ts.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: tok, Path: "/"}})
	return c
}

// authExpectSignedOut fails unless GET path sends the browser to sign in.
func authExpectSignedOut(t testing.TB, c *testClient, path string) {
	t.Helper()
	res, body := c.get(path)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("GET %s = %d (Location %q); want 303 to /login (signed out)\n%.300s", path, res.StatusCode, loc, body)
	}
}

// authExpectPage fails unless GET path answers 200, i.e. the session works.
func authExpectPage(t testing.TB, c *testClient, path string) {
	t.Helper()
	res, body := c.get(path)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d (Location %q); want 200 (signed in)\n%.300s", path, res.StatusCode, res.Header.Get("Location"), body)
	}
}

// authOwnerSession signs up a brand, signs its owner in and returns the
// browser, the owner, the brand and the session token from the cookie.
func authOwnerSession(t testing.TB, ts *testServer, db *modeltest.DB, name, email string) (*testClient, *models.User, *models.Brand, string) {
	t.Helper()
	u, b := mustBrand(t, db, name, email)
	c := ts.client()
	c.login(email, testPassword)
	tok := c.cookie(sessionCookie)
	if tok == "" {
		t.Fatalf("no %s cookie after signing in %s", sessionCookie, email)
	}
	return c, u, b, tok
}

// authUnverified reads a token's header and claims without checking it.
func authUnverified(t testing.TB, tok string) (*jwt.Token, *sessionClaims) {
	t.Helper()
	var claims sessionClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims)
	if err != nil {
		t.Fatalf("parse token %q: %v", tok, err)
	}
	return parsed, &claims
}

// authSign signs claims with method and key; kid is left out when empty.
func authSign(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// authPostRaw posts a form with extra headers and adds no CSRF token of its
// own: the caller decides what the request carries.
func authPostRaw(c *testClient, path string, form url.Values, hdr http.Header) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.ts.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return c.do(req)
}

// authSetCookie returns the cookie named name among res's Set-Cookie
// headers, failing the test when there is none.
func authSetCookie(t testing.TB, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, ck := range res.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	t.Fatalf("response %d sets no %s cookie; Set-Cookie: %q", res.StatusCode, name, res.Header.Values("Set-Cookie"))
	return nil
}
