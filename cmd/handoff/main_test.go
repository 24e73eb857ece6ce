package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// These tests drive the real program through run, as a shell would: their
// own arguments, environment and output, over a real database.

// hangGuard bounds waits that should end quickly; it only turns a hang
// into a failure and is never a timing assertion.
const hangGuard = 60 * time.Second

// syncBuffer is an output stream that a running command writes while the
// test reads it.
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

// result is how one run of the program ended.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// envOf turns a map into the program's getenv.
func envOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// runHandoff runs the program to completion with args and env.
func runHandoff(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(context.Background(), args, envOf(env), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// dbEnv is the environment of a command on the database at u.
func dbEnv(u string) map[string]string {
	return map[string]string{"HANDOFF_DATABASE_URL": u}
}

// sqliteURL names a new SQLite file in a temporary folder.
func sqliteURL(t *testing.T) string {
	return "sqlite:" + t.TempDir() + "/handoff.db"
}

var schemaSeq atomic.Int64

// postgresURL creates an empty PostgreSQL schema, dropped at cleanup, and
// returns a URL whose connections use it. It skips (fails under CI=true)
// without TEST_DATABASE_URL.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := modeltest.PostgresURL(t)
	admin, err := models.Open(context.Background(), base, models.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	schema := fmt.Sprintf("t_cmd_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	if err := admin.DB.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.DB.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		_ = admin.Close()
	})
	return modeltest.WithSearchPath(base, schema)
}

// eachDB runs fn on a fresh SQLite file and a fresh PostgreSQL schema.
func eachDB(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, sqliteURL(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, postgresURL(t)) })
}

var runningLine = regexp.MustCompile(`Handoff is running at (http://127\.0\.0\.1:\d+) `)

// TestServeEndToEnd starts `serve --demo` on :0, waits for the line with its
// URL, signs in as the demo operator over HTTP, then stops it as SIGTERM
// would and expects a clean exit.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--demo"}, envOf(dbEnv(dbURL)), &stdout, &stderr)
		}()
		exited := false
		t.Cleanup(func() {
			cancel()
			if !exited {
				select {
				case <-done:
				case <-time.After(hangGuard):
					t.Errorf("serve did not stop after cancel")
				}
			}
		})

		base := waitForURL(t, &stdout, &stderr, done)

		t.Run("stdout", func(t *testing.T) {
			out := stdout.String()
			for _, l := range models.DemoLogins {
				if !strings.Contains(out, l.Email) {
					t.Errorf("stdout lacks the demo login %s:\n%s", l.Email, out)
				}
			}
			if !strings.Contains(out, base+"/login") {
				t.Errorf("stdout lacks the sign-in URL %s/login:\n%s", base, out)
			}
		})

		c := newClient(t)
		res, body := c.get(base + "/healthz")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz = %d; want 200\n%s", res.StatusCode, body)
		}
		res, body = c.get(base + "/readyz")
		var ready struct{ Status, Database string }
		if err := json.Unmarshal([]byte(body), &ready); res.StatusCode != http.StatusOK || err != nil || ready.Status != "ready" {
			t.Fatalf("GET /readyz = %d %s (%v); want 200 with status ready", res.StatusCode, body, err)
		}

		res, body = c.get(base + "/login")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /login = %d; want 200\n%s", res.StatusCode, body)
		}
		csrf := c.cookie(base, "handoff_csrf")
		if csrf == "" {
			t.Fatalf("GET /login set no handoff_csrf cookie")
		}
		res, body = c.postForm(base+"/login", url.Values{
			"email": {"operator@handoff.local"}, "password": {models.DemoPassword}, "_csrf": {csrf},
		})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin" {
			t.Fatalf("POST /login = %d to %q; want 303 to /admin\n%s", res.StatusCode, res.Header.Get("Location"), body)
		}
		res, body = c.get(base + "/admin")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Applications") {
			t.Fatalf("GET /admin = %d; want 200 with Applications\n%s", res.StatusCode, body)
		}
		c.http.CloseIdleConnections()

		cancel()
		select {
		case code := <-done:
			exited = true
			if code != 0 {
				t.Fatalf("serve exited %d after cancel; want 0\nstderr:\n%s", code, stderr.String())
			}
		case <-time.After(hangGuard):
			t.Fatalf("serve did not stop within %s of cancel\nstderr:\n%s", hangGuard, stderr.String())
		}
		if !strings.Contains(stderr.String(), "msg=stopped") {
			t.Errorf("stderr lacks the stopped log line:\n%s", stderr.String())
		}
		// A PostgreSQL without autovacuum is named at start (this
		// machine's has it off; SQLite never warns).
		autovacuum := "n/a"
		if strings.HasPrefix(dbURL, "postgres") {
			st, err := models.Open(context.Background(), dbURL, models.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.DB.Raw("SHOW autovacuum").Scan(&autovacuum).Error; err != nil {
				t.Fatal(err)
			}
		}
		warned := strings.Contains(stderr.String(), "autovacuum is off")
		if warned != (autovacuum == "off") {
			t.Errorf("autovacuum %s, warned %v; want a warning just when it is off\nstderr:\n%s", autovacuum, warned, stderr.String())
		}
	})
}

// waitForURL polls serve's stdout until it prints the URL it listens on.
func waitForURL(t *testing.T, stdout, stderr *syncBuffer, done chan int) string {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		if m := runningLine.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d before it was running\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("serve printed no URL within %s\nstdout:\n%s\nstderr:\n%s", hangGuard, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// client is a cookie-keeping HTTP client that does not follow redirects.
type client struct {
	t    *testing.T
	http *http.Client
}

func newClient(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, http: &http.Client{
		Jar:           jar,
		Timeout:       hangGuard,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (c *client) get(u string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return c.do(req)
}

func (c *client) postForm(u string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *client) cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// TestSeedAndAPIKeyCommands seeds a database twice, then makes bot keys on
// it from the command line. One test, because seeding hashes the demo
// passwords at full bcrypt cost.
func TestSeedAndAPIKeyCommands(t *testing.T) {
	t.Parallel()
	dbURL := sqliteURL(t)
	env := dbEnv(dbURL)

	first := runHandoff(t, env, "seed")
	if first.code != 0 || !strings.Contains(first.stdout, "demo data created") {
		t.Fatalf("first seed: %v\nwant exit 0 and \"demo data created\"", first)
	}
	second := runHandoff(t, env, "seed")
	if second.code != 0 || !strings.Contains(second.stdout, "already present") || strings.Contains(second.stdout, "demo data created") {
		t.Fatalf("second seed: %v\nwant exit 0 and \"already present\"", second)
	}

	t.Run("OK", func(t *testing.T) {
		r := runHandoff(t, env, "apikey", "create", "--brand", "acme", "--name", "CI bot")
		if r.code != 0 {
			t.Fatalf("apikey create: %v", r)
		}
		key := strings.TrimSuffix(r.stdout, "\n")
		if !strings.HasPrefix(key, models.APIKeyPrefix) || !strings.HasPrefix(key, "hk_") || strings.ContainsAny(key, " \t\r\n") {
			t.Fatalf("apikey create stdout = %q; want one line holding only a key starting hk_", r.stdout)
		}
		st, err := models.Open(context.Background(), dbURL, models.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer st.Close()
		b, k, err := st.BrandByAPIKey(context.Background(), key)
		if err != nil {
			t.Fatalf("BrandByAPIKey(printed key): %v", err)
		}
		if b.Slug != "acme" || k.Name != "CI bot" {
			t.Fatalf("BrandByAPIKey = brand %q, key %q; want acme, \"CI bot\"", b.Slug, k.Name)
		}
	})
	t.Run("ErrUnknownBrand", func(t *testing.T) {
		r := runHandoff(t, env, "apikey", "create", "--brand", "nope")
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `"nope"`) {
			t.Fatalf("apikey create --brand nope: %v\nwant exit 1, nothing on stdout, the slug on stderr", r)
		}
	})
	t.Run("ErrBrandRequired", func(t *testing.T) {
		r := runHandoff(t, env, "apikey", "create")
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "--brand") {
			t.Fatalf("apikey create: %v\nwant exit 2 naming --brand on stderr", r)
		}
	})
	t.Run("ErrNoSubcommand", func(t *testing.T) {
		if r := runHandoff(t, env, "apikey"); r.code != 2 {
			t.Fatalf("apikey: %v\nwant exit 2", r)
		}
	})
}

// TestMigrateCommand migrates twice: the second run has nothing to do.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		first := runHandoff(t, dbEnv(dbURL), "migrate")
		if first.code != 0 || !strings.Contains(first.stdout, "applied 0001_") {
			t.Fatalf("first migrate: %v\nwant exit 0 and the applied migrations", first)
		}
		second := runHandoff(t, dbEnv(dbURL), "migrate")
		if second.code != 0 || strings.TrimSpace(second.stdout) != "database is up to date" {
			t.Fatalf("second migrate: %v\nwant exit 0 and \"database is up to date\"", second)
		}
	})
}

// TestMigrateConcurrentInstances starts two migrations on one fresh
// PostgreSQL schema at once, as two instances of a deploy would: the
// advisory lock makes them take turns, so both succeed and exactly one
// applies the migrations.
func TestMigrateConcurrentInstances(t *testing.T) {
	t.Parallel()
	dbURL := postgresURL(t)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Go(func() {
			var stdout, stderr syncBuffer
			code := run(context.Background(), []string{"migrate"}, envOf(dbEnv(dbURL)), &stdout, &stderr)
			results[i] = result{code, stdout.String(), stderr.String()}
		})
	}
	wg.Wait()
	applied, upToDate := 0, 0
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("migrate #%d: %v", i, r)
		}
		if strings.Contains(r.stdout, "applied 0001_") {
			applied++
		}
		if strings.Contains(r.stdout, "database is up to date") {
			upToDate++
		}
	}
	if applied != 1 || upToDate != 1 {
		t.Fatalf("one run should apply and the other find the database up to date; got\n%v\n%v", results[0], results[1])
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := dbEnv("sqlite:" + filepath.Join(dir, "handoff.db"))
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		inStderr string
	}{
		{"NoCommand", env, nil, 2, "Usage:"},
		{"UnknownCommand", env, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"BadFlag", env, []string{"migrate", "--no-such-flag"}, 2, "no-such-flag"},
		{"ExtraArgument", env, []string{"migrate", "now"}, 2, "unexpected arguments"},
		{"BadLoginRate", map[string]string{"HANDOFF_DATABASE_URL": env["HANDOFF_DATABASE_URL"], "HANDOFF_LOGIN_RATE": "lots"},
			[]string{"serve", "--addr", "127.0.0.1:0"}, 1, `handoff serve: --login-rate ($HANDOFF_LOGIN_RATE): login rate "lots": want account=N/PERIOD`},
		{"BadLoginRateFigure", map[string]string{"HANDOFF_DATABASE_URL": env["HANDOFF_DATABASE_URL"], "HANDOFF_LOGIN_RATE": "account=5"},
			[]string{"serve", "--addr", "127.0.0.1:0"}, 1, `--login-rate ($HANDOFF_LOGIN_RATE): rate "5": want N/PERIOD`},
		{"BadDBConns", map[string]string{"HANDOFF_DATABASE_URL": env["HANDOFF_DATABASE_URL"], "HANDOFF_DB_CONNS": "lots"},
			[]string{"serve", "--addr", "127.0.0.1:0"}, 1, `--db-conns ($HANDOFF_DB_CONNS): "lots" is not a whole number`},
		{"NegativeDBConns", env, []string{"serve", "--addr", "127.0.0.1:0", "--db-conns", "-1"}, 1, `--db-conns ($HANDOFF_DB_CONNS): -1: want 0`},
		{"BadShedWriteWait", map[string]string{"HANDOFF_DATABASE_URL": env["HANDOFF_DATABASE_URL"], "HANDOFF_SHED_WRITE_WAIT": "soon"},
			[]string{"serve", "--addr", "127.0.0.1:0"}, 1, `--shed-write-wait ($HANDOFF_SHED_WRITE_WAIT): "soon": want a duration like 500ms, or 0 for never`},
		{"NegativeShedWriteWait", env, []string{"serve", "--addr", "127.0.0.1:0", "--shed-write-wait", "-1s"}, 1, `--shed-write-wait ($HANDOFF_SHED_WRITE_WAIT): "-1s"`},
		{"BadAPIRate", env, []string{"serve", "--addr", "127.0.0.1:0", "--api-rate", "fast"}, 1, `--api-rate ($HANDOFF_API_RATE): rate "fast"`},
		{"BadDatabaseURL", map[string]string{"HANDOFF_DATABASE_URL": "mysql://x"}, []string{"migrate"}, 1, "want sqlite:PATH or postgres://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runHandoff(t, tt.env, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.inStderr) {
				t.Fatalf("handoff %s: %v\nwant exit %d with %q on stderr", strings.Join(tt.args, " "), r, tt.code, tt.inStderr)
			}
		})
	}
	t.Run("Help", func(t *testing.T) {
		r := runHandoff(t, env, "help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("handoff help: %v\nwant exit 0 and the usage on stdout", r)
		}
	})
	// A serve that fails on its configuration must not have created the
	// database: the check comes first.
	if _, err := os.Stat(filepath.Join(dir, "handoff.db")); err == nil {
		t.Errorf("a failed serve created the database file")
	}
}

// TestShedWriteWaitSetting: the default, the environment, and the flag
// over the environment (0 turns shedding off).
func TestShedWriteWaitSetting(t *testing.T) {
	for _, tt := range []struct {
		env  string
		args []string
		want time.Duration
	}{
		{"", nil, 500 * time.Millisecond},
		{"2s", nil, 2 * time.Second},
		{"2s", []string{"--shed-write-wait", "0"}, 0},
	} {
		e := newEnvFlags("serve", func(k string) string {
			if k == "HANDOFF_SHED_WRITE_WAIT" {
				return tt.env
			}
			return ""
		}, io.Discard)
		e.serverFlags()
		if err := e.parse(tt.args); err != nil {
			t.Fatalf("env %q, args %v: %v", tt.env, tt.args, err)
		}
		if e.cfg.ShedWriteWait != tt.want {
			t.Errorf("env %q, args %v: ShedWriteWait %v; want %v", tt.env, tt.args, e.cfg.ShedWriteWait, tt.want)
		}
	}
}
