package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

// authGetWith fetches path with extra request headers.
func authGetWith(c *testClient, path string, hdr http.Header) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.ts.ts.URL+path, nil)
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return c.do(req)
}

func TestMetricsAccess(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		const token = "metrics-token-for-tests"
		xff := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
		for _, tc := range []struct {
			name     string
			token    string // Config.MetricsToken
			hdr      http.Header
			wantCode int
		}{
			{"loopback", "", nil, http.StatusOK},
			{"forwarded", "", xff, http.StatusForbidden},
			{"forwarded with bearer but no token configured", "", http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Authorization": {"Bearer "}}, http.StatusForbidden},
			{"forwarded with token", token, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Authorization": {"Bearer " + token}}, http.StatusOK},
			{"forwarded with wrong token", token, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Authorization": {"Bearer nope"}}, http.StatusForbidden},
			{"forwarded with bare token", token, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Authorization": {token}}, http.StatusForbidden},
			{"forwarded without auth, token configured", token, xff, http.StatusForbidden},
			{"loopback, token configured", token, nil, http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ts := newTestServer(t, db, func(cfg *Config) { cfg.MetricsToken = tc.token })
				c := ts.client()
				c.get("/healthz") // so a request is counted
				res, body := authGetWith(c, "/metrics", tc.hdr)
				if res.StatusCode != tc.wantCode {
					t.Fatalf("GET /metrics = %d; want %d\n%.300s", res.StatusCode, tc.wantCode, body)
				}
				served := strings.Contains(body, "handoff_http_requests_total")
				if served != (tc.wantCode == http.StatusOK) {
					t.Errorf("GET /metrics (%d) contains handoff_http_requests_total = %v; want %v", res.StatusCode, served, !served)
				}
			})
		}
	})
}

func TestHealthProbes(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		c := ts.client()
		if res, body := c.get("/healthz"); res.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz = %d; want 200\n%s", res.StatusCode, body)
		}
		res, body := c.get("/readyz")
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil || res.StatusCode != http.StatusOK || got["database"] != db.Name {
			t.Errorf("GET /readyz = %d %s (%v); want 200 with database %q", res.StatusCode, body, err, db.Name)
		}
	})
}

func TestReadyzWhenDatabaseIsGone(t *testing.T) {
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db) // this database is the test's own
		c := ts.client()
		if res, _ := c.get("/readyz"); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /readyz before closing = %d; want 200", res.StatusCode)
		}
		if err := db.Store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		res, body := c.get("/readyz")
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET /readyz after closing the pool = %d; want 503\n%s", res.StatusCode, body)
		}
		if strings.Contains(body, "sql") || strings.Contains(body, "closed") {
			t.Errorf("/readyz leaks the database error: %s", body)
		}
		if res, _ := c.get("/healthz"); res.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz with the database gone = %d; want 200 (the process is up)", res.StatusCode)
		}
	})
}
