package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models/modeltest"
)

func authLoginRate(account, ip int) func(*Config) {
	return func(cfg *Config) {
		cfg.LoginRate = LoginRate{Account: Rate{N: account, Per: 15 * time.Minute}, IP: Rate{N: ip, Per: 15 * time.Minute}}
	}
}

// authTryLogin posts a sign-in from a fresh browser and checks the status.
func authTryLogin(t testing.TB, ts *testServer, email, password string, want int) (*http.Response, string) {
	t.Helper()
	res, body := ts.client().post("/login", url.Values{"email": {email}, "password": {password}})
	if res.StatusCode != want {
		t.Fatalf("POST /login %s (password ok: %v) = %d; want %d\n%.500s", email, password == testPassword, res.StatusCode, want, body)
	}
	return res, body
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db, authLoginRate(3, 100))
		mustBrand(t, db, "Acme", "owner@acme.test")
		mustBrand(t, db, "Globex", "owner@globex.test")

		for i := 0; i < 3; i++ {
			authTryLogin(t, ts, "owner@acme.test", "wrong password", http.StatusUnauthorized)
		}
		res, body := authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusTooManyRequests)
		if got := res.Header.Get("Retry-After"); got != "900" {
			t.Errorf("Retry-After = %q; want 900 (15 minutes after the first failure)", got)
		}
		if !strings.Contains(body, "Too many failed sign-ins") || !strings.Contains(body, "15 minutes") {
			t.Errorf("429 page does not explain the wait\n%.2000s", body)
		}
		if !strings.Contains(body, `value="owner@acme.test"`) {
			t.Errorf("429 page does not keep the email")
		}
		// Case and spaces do not make a new account key.
		authTryLogin(t, ts, " Owner@ACME.test ", testPassword, http.StatusTooManyRequests)

		// Another account from the same IP is not affected.
		authTryLogin(t, ts, "owner@globex.test", testPassword, http.StatusSeeOther)

		db.Clock.Advance(14 * time.Minute)
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusTooManyRequests)
		db.Clock.Advance(2 * time.Minute)
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusSeeOther)
	})
}

func TestLoginRateLimitPerIP(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db, authLoginRate(100, 4))
		// Real accounts: an unknown email costs a full bcrypt comparison.
		emails := []string{"a@x.test", "b@x.test", "c@x.test", "owner@acme.test", "e@x.test"}
		for _, email := range emails {
			mustBrand(t, db, "Brand "+email, email)
		}
		for _, email := range emails[:4] {
			authTryLogin(t, ts, email, "wrong password", http.StatusUnauthorized)
		}
		res, _ := authTryLogin(t, ts, "e@x.test", "wrong password", http.StatusTooManyRequests)
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("per-IP 429 has no Retry-After header")
		}
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusTooManyRequests)
		db.Clock.Advance(16 * time.Minute)
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusSeeOther)
	})
}

func TestLoginSuccessResetsAccountCount(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db, authLoginRate(3, 100))
		mustBrand(t, db, "Acme", "owner@acme.test")
		authTryLogin(t, ts, "owner@acme.test", "wrong password", http.StatusUnauthorized)
		authTryLogin(t, ts, "owner@acme.test", "wrong password", http.StatusUnauthorized)
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusSeeOther)
		// Without the reset these would make four failures in the window.
		authTryLogin(t, ts, "owner@acme.test", "wrong password", http.StatusUnauthorized)
		authTryLogin(t, ts, "owner@acme.test", "wrong password", http.StatusUnauthorized)
		authTryLogin(t, ts, "owner@acme.test", testPassword, http.StatusSeeOther)
	})
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
	}{
		{"5/15m", Rate{5, 15 * time.Minute}},
		{"50/1s", Rate{50, time.Second}},
		{"100/m", Rate{100, time.Minute}},
		{"3/h", Rate{3, time.Hour}},
		{" 7/500ms ", Rate{7, 500 * time.Millisecond}},
		{"1/1h30m", Rate{1, 90 * time.Minute}},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "5", "/1m", "0/1m", "-1/1m", "x/1m", "5/", "5/0s", "5/-1m", "5/15", "5/abc", "5/1m/2", "1.5/1m"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, nil; want an error", in, got)
		}
	}
}

func TestParseLoginRate(t *testing.T) {
	def := Defaults().LoginRate
	for _, tc := range []struct {
		in   string
		want LoginRate
	}{
		{"", def},
		{"account=3/15m,ip=100/15m", LoginRate{Rate{3, 15 * time.Minute}, Rate{100, 15 * time.Minute}}},
		{"ip=10/1m", LoginRate{def.Account, Rate{10, time.Minute}}},
		{" account = 2/h , ", LoginRate{Rate{2, time.Hour}, def.IP}},
	} {
		got, err := ParseLoginRate(tc.in, def)
		if err != nil || got != tc.want {
			t.Errorf("ParseLoginRate(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"account", "acct=3/1m", "account=0/1m", "ip=5", "account=3/1m;ip=5/1m", "=3/1m"} {
		if got, err := ParseLoginRate(in, def); err == nil {
			t.Errorf("ParseLoginRate(%q) = %v, nil; want an error", in, got)
		}
	}
}
