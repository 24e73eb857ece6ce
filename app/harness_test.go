package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// testServer is a real Server over a real database, served by httptest.
type testServer struct {
	t   testing.TB
	db  *modeltest.DB
	srv *Server
	ts  *httptest.Server
	log *syncBuffer
}

// syncBuffer collects the server's log for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestServer starts a server on db; opts adjust the configuration.
func newTestServer(t testing.TB, db *modeltest.DB, opts ...func(*Config)) *testServer {
	t.Helper()
	cfg := Defaults()
	cfg.DatabaseURL = db.URL
	cfg.SnapshotTTL = 0   // tests change agents straight in the store
	cfg.DispatchConns = 0 // and read what the dispatcher wrote through it
	for _, o := range opts {
		o(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(context.Background(), cfg, db.Store, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	srv.cfg.BaseURL = ts.URL
	return &testServer{t: t, db: db, srv: srv, ts: ts, log: logs}
}

// testClient is one browser: a cookie jar, no automatic redirects.
type testClient struct {
	t    testing.TB
	ts   *testServer
	http *http.Client
	// NoCSRF leaves the CSRF token out of posts.
	NoCSRF bool
}

func (s *testServer) client() *testClient {
	jar, _ := cookiejar.New(nil)
	return &testClient{t: s.t, ts: s, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *testClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// get fetches a path and returns the response and its body.
func (c *testClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.ts.ts.URL+path, nil)
	return c.do(req)
}

// cookie returns the value of a cookie the client holds.
func (c *testClient) cookie(name string) string {
	u, _ := url.Parse(c.ts.ts.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// csrf returns the client's CSRF token, fetching a page first if needed.
func (c *testClient) csrf() string {
	c.t.Helper()
	if tok := c.cookie(csrfCookie); tok != "" {
		return tok
	}
	c.get("/login")
	tok := c.cookie(csrfCookie)
	if tok == "" {
		c.t.Fatal("no CSRF cookie after GET /login")
	}
	return tok
}

// post submits a form, with the CSRF token unless NoCSRF.
func (c *testClient) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !c.NoCSRF {
		form.Set(csrfField, c.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, c.ts.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// login signs in and fails the test unless it redirects.
func (c *testClient) login(email, password string) {
	c.t.Helper()
	res, body := c.post("/login", url.Values{"email": {email}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login %s = %d; want 303\n%s", email, res.StatusCode, body)
	}
}

const testPassword = "correct horse battery"

// mustBrand signs up a brand with its owner.
func mustBrand(t testing.TB, db *modeltest.DB, name, email string) (*models.User, *models.Brand) {
	t.Helper()
	u, b, err := db.Store.SignUpBrand(context.Background(), models.BrandSignup{Name: name, Email: email, Password: testPassword})
	if err != nil {
		t.Fatalf("SignUpBrand(%q): %v", name, err)
	}
	return u, b
}

// mustOperator creates an operator account.
func mustOperator(t testing.TB, db *modeltest.DB, email string) *models.User {
	t.Helper()
	u, err := db.Store.EnsureOperator(context.Background(), email, "Op", testPassword)
	if err != nil {
		t.Fatalf("EnsureOperator: %v", err)
	}
	return u
}

// mustAgent creates an agent application, approved when approve is true.
func mustAgent(t testing.TB, db *modeltest.DB, email string, approve bool) *models.Agent {
	t.Helper()
	ctx := context.Background()
	a, err := db.Store.ApplyAsAgent(ctx, models.AgentApplication{DisplayName: "Agent " + email, Email: email, Password: testPassword,
		Languages: []string{"en"}, Skills: map[string]int{"billing": 4}, Bio: "I help.", MaxConcurrent: 2})
	if err != nil {
		t.Fatalf("ApplyAsAgent: %v", err)
	}
	if approve {
		op := mustOperator(t, db, "op-"+email)
		if err := db.Store.DecideApplication(ctx, op.ID, a.ID, true, ""); err != nil {
			t.Fatalf("approve: %v", err)
		}
	}
	return a
}
