package app

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

var authFormError = regexp.MustCompile(`<div class="form-error" role="alert">([^<]*)</div>`)

// authLoginError returns the form-wide error a sign-in page shows, or "".
func authLoginError(body string) string {
	if m := authFormError.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func TestSignInFailures(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		mustBrand(t, db, "Acme", "owner@acme.test")

		// failed posts a sign-in that must fail with 401 and returns the
		// error the form shows, after checking no session was opened.
		failed := func(t *testing.T, email, password string) string {
			t.Helper()
			c := ts.client()
			res, body := c.post("/login", url.Values{"email": {email}, "password": {password}})
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("POST /login %s = %d; want 401\n%.500s", email, res.StatusCode, body)
			}
			if got := c.cookie(sessionCookie); got != "" {
				t.Errorf("failed sign-in of %s set a session cookie %q", email, got)
			}
			if !strings.Contains(body, `value="`+email+`"`) {
				t.Errorf("sign-in form after failure does not keep the email %q", email)
			}
			msg := authLoginError(body)
			if msg == "" {
				t.Fatalf("sign-in page after failure shows no form error\n%.2000s", body)
			}
			return msg
		}

		wrong := failed(t, "owner@acme.test", "not the password")
		if !strings.Contains(wrong, "email or password is wrong") {
			t.Errorf("wrong password error = %q; want it to say the email or password is wrong", wrong)
		}
		if unknown := failed(t, "nobody@acme.test", testPassword); unknown != wrong {
			t.Errorf("unknown email error = %q; want the same as a wrong password (%q), so accounts cannot be enumerated", unknown, wrong)
		}

		a := mustAgent(t, db, "suspended@agents.test", true)
		op := mustOperator(t, db, "op-suspended@agents.test")
		ac := ts.client()
		ac.login("suspended@agents.test", testPassword) // works while approved
		if _, err := db.Store.SuspendAgent(context.Background(), op.ID, a.ID, "Rude to customers."); err != nil {
			t.Fatalf("SuspendAgent: %v", err)
		}
		if suspended := failed(t, "suspended@agents.test", testPassword); suspended != wrong {
			t.Errorf("suspended agent error = %q; want the same message as a wrong password (%q)", suspended, wrong)
		}
	})
}
