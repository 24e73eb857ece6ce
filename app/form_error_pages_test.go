package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
	"github.com/labstack/echo/v4"
)

func TestFormUnknownPathIsNotFoundPage(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		visitor := ts.client()
		owner := ts.client()
		owner.login("owner@alpha.test", testPassword)
		check := func(c *testClient, p string) {
			t.Helper()
			res, body := c.get(p)
			tenantNotFound(t, "GET "+p, res, body)
			if id := res.Header.Get(echo.HeaderXRequestID); id == "" || !strings.Contains(body, id) {
				t.Errorf("GET %s: the page does not carry the request id %q", p, id)
			}
		}
		for _, c := range []*testClient{visitor, owner} {
			for _, p := range []string{"/no/such/page", "/wp-login.php", "/brands"} {
				check(c, p)
			}
		}
		// Inside a brand the owner is let through, then gets the 404 page.
		check(owner, "/brand/"+b.ID+"/nope")
		check(owner, "/brand/"+b.ID+"/settings/extra/")
		// A visitor is asked to sign in first, not told what exists.
		if res, _ := visitor.get("/brand/" + b.ID + "/nope"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("visitor GET /brand/<id>/nope = %d; want 303 to sign in", res.StatusCode)
		}
		if res, _ := visitor.get("/static/nope.css"); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET /static/nope.css = %d; want 404", res.StatusCode)
		}
		// The signed-in owner keeps the navigation on the 404 page.
		_, body := owner.get("/no/such/page")
		if !strings.Contains(body, "Sign out") {
			t.Error("404 page for a signed-in user has no session navigation")
		}
		// API clients get problem+json.
		req, _ := http.NewRequest(http.MethodGet, ts.ts.URL+"/no/such/page", nil)
		req.Header.Set("Accept", "application/json")
		res, body := visitor.do(req)
		if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("JSON GET unknown path = %d %q; want 404 problem+json\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	})
}

// TestFormServerErrorHidesDetails closes the database under a signed-in user
// so the next page fails inside the store.
func TestFormServerErrorHidesDetails(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		_, b := mustBrand(t, db, "Alpha Support", "owner@alpha.test")
		c := ts.client()
		c.login("owner@alpha.test", testPassword)
		if err := db.Store.Close(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/brand/" + b.ID, "/brand/" + b.ID + "/settings"} {
			res, body := c.get(p)
			formExpect(t, "GET "+p+" with the database closed", res, body, http.StatusInternalServerError)
			id := res.Header.Get(echo.HeaderXRequestID)
			if id == "" || !strings.Contains(body, "quote request <code>"+id+"</code>") {
				t.Errorf("500 page does not carry the request id %q\n%s", id, formExcerpt(body))
			}
			if !strings.Contains(body, "Something went wrong on our side.") {
				t.Errorf("500 page has no plain message\n%s", formExcerpt(body))
			}
			formNoLeak(t, "500 page", body, "sql:", "database is closed", "closed", "gorm", "SELECT", ".go:", "goroutine", "panic")
			if !strings.Contains(ts.log.String(), "request_id="+id) || !strings.Contains(ts.log.String(), "database is closed") {
				t.Errorf("the failure is not in the log with its request id")
			}
		}
		res, body := c.post("/brand/"+b.ID+"/keys", formValues("name", "x"))
		formExpect(t, "POST with the database closed", res, body, http.StatusInternalServerError)
		formNoLeak(t, "500 page", body, "sql:", "database is closed")
	})
}

// TestFormHandleErrorHidesErrorText calls the error handler directly with
// errors whose text must never reach the client.
func TestFormHandleErrorHidesErrorText(t *testing.T) {
	db := modeltest.SQLite(t)
	ts := newTestServer(t, db)
	const secret = `pq: relation "secret_table" does not exist (SQLSTATE 42P01)`
	cases := []struct {
		name   string
		err    error
		json   bool
		status int
	}{
		{"PlainError", errors.New(secret), false, http.StatusInternalServerError},
		{"PlainErrorJSON", errors.New(secret), true, http.StatusInternalServerError},
		{"WrappedNotFound", fmt.Errorf("%s: %w", secret, models.ErrNotFound), false, http.StatusNotFound},
		{"WrappedConflict", fmt.Errorf("%s: %w", secret, models.ErrConflict), false, http.StatusConflict},
		{"WrappedForbiddenJSON", fmt.Errorf("%s: %w", secret, models.ErrForbidden), true, http.StatusForbidden},
		{"HTTPError500", echo.NewHTTPError(http.StatusInternalServerError, secret), false, http.StatusInternalServerError},
		{"HTTPError500Internal", echo.NewHTTPError(http.StatusBadGateway).SetInternal(errors.New(secret)), false, http.StatusBadGateway},
		{"Panic", nil, false, http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/brand/x", nil)
			if tc.json {
				req.Header.Set("Accept", "application/json")
			}
			rec := httptest.NewRecorder()
			c := ts.srv.echo.NewContext(req, rec)
			c.Response().Header().Set(echo.HeaderXRequestID, "req-0123456789")
			err := tc.err
			if err == nil {
				err = ts.srv.recoverPanics(func(echo.Context) error { panic(secret) })(c)
			}
			ts.srv.handleError(err, c)
			body := rec.Body.String()
			if rec.Code != tc.status {
				t.Fatalf("status = %d; want %d\n%s", rec.Code, tc.status, body)
			}
			if !strings.Contains(body, "req-0123456789") {
				t.Errorf("body does not carry the request id\n%s", body)
			}
			formNoLeak(t, tc.name, body, "secret_table", "pq:", "SQLSTATE", "panic")
			if tc.json {
				var p problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tc.status || p.RequestID != "req-0123456789" {
					t.Errorf("problem = %+v, %v", p, err)
				}
			} else if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || !strings.Contains(body, "<!doctype html>") {
				t.Errorf("not an HTML page: %q", rec.Header().Get("Content-Type"))
			}
		})
	}
	if !strings.Contains(ts.log.String(), "secret_table") {
		t.Error("the 5xx errors were not logged for the operator")
	}
}
