package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff/app"
)

// errUsage reports bad flags; the flag package has printed why.
var errUsage = errors.New("usage")

// envFlags binds each configuration setting to a flag whose default comes
// from its environment variable, so flags win over the environment, which
// wins over the built-in default.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	cfg    app.Config
	// raw values parsed after fs.Parse
	secretKeys, loginRate, apiRate, logFormat string
	logLevel, shedWriteWait                   string
}

func newEnvFlags(name string, getenv func(string) string, stderr io.Writer) *envFlags {
	e := &envFlags{fs: flag.NewFlagSet("handoff "+name, flag.ContinueOnError), getenv: getenv, cfg: app.Defaults()}
	e.fs.SetOutput(stderr)
	e.str(&e.cfg.DatabaseURL, "database-url", "HANDOFF_DATABASE_URL", "sqlite:PATH (embedded) or postgres://…")
	return e
}

func (e *envFlags) env(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (e *envFlags) str(dst *string, flagName, envName, usage string) {
	e.fs.StringVar(dst, flagName, e.env(envName, *dst), usage+" ($"+envName+")")
}

// serverFlags adds the settings only serve needs.
func (e *envFlags) serverFlags() {
	c := &e.cfg
	e.str(&c.Addr, "addr", "HANDOFF_ADDR", "listen address")
	e.str(&c.BaseURL, "base-url", "HANDOFF_BASE_URL", "public URL used in links")
	e.str(&e.secretKeys, "secret-keys", "HANDOFF_SECRET_KEYS", "comma-separated signing keys (kid:secret), the first signs; empty: a key kept in the database")
	e.str(&c.SMTPURL, "smtp-url", "HANDOFF_SMTP_URL", "smtp://user:pass@host:port?from=address; empty: mail waits in the operator's outbox")
	e.str(&c.MetricsToken, "metrics-token", "HANDOFF_METRICS_TOKEN", "bearer token for /metrics; empty: loopback only")
	e.str(&e.loginRate, "login-rate", "HANDOFF_LOGIN_RATE", "failed sign-ins allowed: account=N/PERIOD,ip=N/PERIOD (default "+c.LoginRate.String()+")")
	e.str(&e.apiRate, "api-rate", "HANDOFF_API_RATE", "bot API requests per key: N/PERIOD (default "+c.APIRate.String()+")")
	trust, _ := strconv.ParseBool(e.env("HANDOFF_TRUST_PROXY", "false"))
	e.fs.BoolVar(&c.TrustProxy, "trust-proxy", trust, "take the client IP from X-Forwarded-For ($HANDOFF_TRUST_PROXY)")
	e.fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "how long a sign-in lasts")
	conns, _ := strconv.Atoi(e.env("HANDOFF_DB_CONNS", "0"))
	e.fs.IntVar(&c.DBConns, "db-conns", conns, "database connections of the server's pool; 0: 4 per CPU (at least 4) on PostgreSQL, 20 on SQLite ($HANDOFF_DB_CONNS)")
	e.shedWriteWait = c.ShedWriteWait.String()
	e.str(&e.shedWriteWait, "shed-write-wait", "HANDOFF_SHED_WRITE_WAIT", "refuse new escalations (503, Retry-After) while the database's work queues this long (SQLite: a write waiting for its turn; PostgreSQL: the mean wait for a pool connection, or other instances' news waiting to be delivered); 0: never")
	e.str(&e.logFormat, "log-format", "HANDOFF_LOG_FORMAT", "text or json")
	e.str(&e.logLevel, "log-level", "HANDOFF_LOG_LEVEL", "debug, info, warn or error")
}

// parse reads the flags and checks the values that need parsing.
func (e *envFlags) parse(args []string) error {
	if err := e.fs.Parse(args); err != nil {
		return errUsage
	}
	if e.fs.NArg() > 0 {
		fmt.Fprintf(e.fs.Output(), "unexpected arguments: %v\n", e.fs.Args())
		return errUsage
	}
	if e.secretKeys != "" {
		e.cfg.SecretKeys = strings.Split(e.secretKeys, ",")
	}
	if e.loginRate != "" {
		r, err := app.ParseLoginRate(e.loginRate, e.cfg.LoginRate)
		if err != nil {
			// Name the setting: "rate "5": …" alone does not say which.
			return fmt.Errorf("--login-rate ($HANDOFF_LOGIN_RATE): %w", err)
		}
		e.cfg.LoginRate = r
	}
	if e.fs.Lookup("db-conns") != nil {
		if v := e.getenv("HANDOFF_DB_CONNS"); v != "" {
			if _, err := strconv.Atoi(v); err != nil {
				return fmt.Errorf("--db-conns ($HANDOFF_DB_CONNS): %q is not a whole number", v)
			}
		}
		if e.cfg.DBConns < 0 {
			return fmt.Errorf("--db-conns ($HANDOFF_DB_CONNS): %d: want 0 (the default) or more", e.cfg.DBConns)
		}
	}
	if e.fs.Lookup("shed-write-wait") != nil {
		d, err := time.ParseDuration(e.shedWriteWait)
		if err != nil || d < 0 {
			return fmt.Errorf("--shed-write-wait ($HANDOFF_SHED_WRITE_WAIT): %q: want a duration like 500ms, or 0 for never", e.shedWriteWait)
		}
		e.cfg.ShedWriteWait = d
	}
	if e.apiRate != "" {
		r, err := app.ParseRate(e.apiRate)
		if err != nil {
			return fmt.Errorf("--api-rate ($HANDOFF_API_RATE): %w", err)
		}
		e.cfg.APIRate = r
	}
	return nil
}

// logger builds the process logger on stderr.
func (e *envFlags) logger(stderr io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil || e.logLevel == "" {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if e.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}
