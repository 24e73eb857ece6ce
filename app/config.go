package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is everything the server needs, filled from the environment and
// flags by cmd/handoff and passed in; no globals, so a test can build a second
// server with other settings.
type Config struct {
	Addr         string   // listen address
	BaseURL      string   // public URL used in links
	DatabaseURL  string   // sqlite:PATH or postgres://…
	SecretKeys   []string // HANDOFF_SECRET_KEYS: "kid:secret" or "secret"; the first signs, all verify
	SMTPURL      string   // smtp://user:pass@host:port?from=… ; empty: mail stays in the outbox
	MetricsToken string   // empty: /metrics answers on loopback only

	LoginRate LoginRate // failed-login limits
	APIRate   Rate      // bot API requests per key

	SessionTTL time.Duration // how long a sign-in lasts
	// SnapshotTTL is how long the agents-online snapshot behind wait
	// estimates may be reused (dispatch itself always reads afresh).
	SnapshotTTL time.Duration
	// DBConns caps the server's own connection pool (0: models.DefaultConns).
	DBConns int
	// DispatchConns gives the dispatcher a connection pool of its own on
	// PostgreSQL, so a flood of requests cannot starve it of connections
	// (0: it shares the server's pool).
	DispatchConns int
	// ShedWriteWait is how long the database's work may queue in this
	// process before new escalations are refused (503 with Retry-After):
	// on SQLite a write waiting for its turn, on PostgreSQL requests
	// waiting for a connection of the pool (their mean wait over the last
	// quarter second) or another instance's news waiting to be delivered
	// here. So an overloaded server keeps serving the
	// conversations it has taken in instead of failing their work when it
	// times out. 0: never.
	ShedWriteWait time.Duration
	// TrustProxy makes the client IP come from X-Forwarded-For (behind a
	// load balancer). Off by default, so a client cannot pick its own IP.
	TrustProxy bool
}

// Defaults returns the configuration of a local run.
func Defaults() Config {
	return Config{
		Addr:          "127.0.0.1:8080",
		BaseURL:       "http://localhost:8080",
		DatabaseURL:   "sqlite:data/handoff.db",
		LoginRate:     LoginRate{Account: Rate{N: 5, Per: 15 * time.Minute}, IP: Rate{N: 50, Per: 15 * time.Minute}},
		APIRate:       Rate{N: 50, Per: time.Second},
		SessionTTL:    12 * time.Hour,
		SnapshotTTL:   250 * time.Millisecond,
		DispatchConns: 6,
		ShedWriteWait: 500 * time.Millisecond,
	}
}

// Rate is N events per period.
type Rate struct {
	N   int
	Per time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Per) }

// ParseRate reads "5/15m", "50/1s" or "100/m" (a bare unit means one).
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/PERIOD like 5/15m", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("rate %q: count must be a positive number", s)
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: period must be a duration like 1s or 15m", s)
	}
	return Rate{N: count, Per: d}, nil
}

// LoginRate limits failed sign-ins per account and per client IP.
type LoginRate struct {
	Account Rate
	IP      Rate
}

func (l LoginRate) String() string { return "account=" + l.Account.String() + ",ip=" + l.IP.String() }

// ParseLoginRate reads "account=5/15m,ip=50/15m"; either part may be left out.
func ParseLoginRate(s string, def LoginRate) (LoginRate, error) {
	out := def
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return out, fmt.Errorf("login rate %q: want account=N/PERIOD,ip=N/PERIOD", s)
		}
		r, err := ParseRate(v)
		if err != nil {
			return out, err
		}
		switch strings.TrimSpace(k) {
		case "account":
			out.Account = r
		case "ip":
			out.IP = r
		default:
			return out, fmt.Errorf("login rate %q: unknown part %q", s, k)
		}
	}
	return out, nil
}
