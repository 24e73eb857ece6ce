package models_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/models"
	"github.com/handoffhq/handoff/models/modeltest"
)

// TestPostgresOverUnixSocket opens the test database through PostgreSQL's
// Unix socket, as the README advises when PostgreSQL runs on the same
// machine: the URL names the socket's folder in its host parameter and
// leaves the address out. The server sees no client address on such a
// connection, which tells it from one over TCP.
func TestPostgresOverUnixSocket(t *testing.T) {
	u, err := url.Parse(modeltest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	const dir = "/var/run/postgresql"
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+port)); err != nil {
		t.Skipf("no PostgreSQL socket here: %v", err)
	}
	q := u.Query()
	q.Set("host", dir)
	q.Set("port", port)
	q.Del("sslmode") // TLS does not apply to a Unix socket
	u.Host, u.RawQuery = "", q.Encode()

	st, err := models.Open(context.Background(), u.String(), models.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	defer st.Close()
	if st.Dialect != models.Postgres {
		t.Fatalf("dialect %s; want postgres", st.Dialect)
	}
	var addr string
	if err := st.DB.Raw("SELECT coalesce(inet_client_addr()::text, '')").Scan(&addr).Error; err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		t.Fatalf("client address %s; want none (a Unix socket)", addr)
	}
}
