package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/handoffhq/handoff/app"
	"github.com/handoffhq/handoff/models"
)

// cmdServe migrates the database, optionally seeds the demo, and serves
// until ctx is cancelled (SIGINT/SIGTERM), then shuts down gracefully.
func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := newEnvFlags("serve", getenv, stderr)
	e.serverFlags()
	demo := e.fs.Bool("demo", false, "seed the demo data if missing and print the demo logins")
	if err := e.parse(args); err != nil {
		return err
	}
	log := e.logger(stderr)
	st, err := models.Open(ctx, e.cfg.DatabaseURL, models.Options{Log: log, MaxOpenConns: e.cfg.DBConns})
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrated", "applied", applied)
	}
	if off, err := st.AutovacuumOff(ctx); err != nil {
		return err
	} else if off {
		log.Warn("PostgreSQL's autovacuum is off: nothing analyzes the tables as they grow, so queries keep plans made while they were small (reading them whole) and dead rows pile up. Turn it on, or run VACUUM ANALYZE regularly.")
	}
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return err
	}
	if addrPortZero(e.cfg.Addr) && getenv("HANDOFF_BASE_URL") == "" && !flagSet(e, "base-url") {
		e.cfg.BaseURL = "http://" + ln.Addr().String()
	}
	srv, err := app.New(ctx, e.cfg, st, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	if *demo {
		created, err := st.Seed(ctx)
		if err != nil {
			ln.Close()
			return fmt.Errorf("seed: %w", err)
		}
		if created {
			log.Info("demo data created")
		}
		fmt.Fprint(stdout, "\n"+models.DemoSummary(e.cfg.BaseURL))
	}
	fmt.Fprintf(stdout, "\nHandoff is running at %s (listening on %s, database %s). Press Ctrl+C to stop.\n", e.cfg.BaseURL, ln.Addr(), st.Dialect)
	log.Info("serving", "addr", ln.Addr().String(), "base_url", e.cfg.BaseURL, "database", string(st.Dialect))
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

func addrPortZero(addr string) bool { return strings.HasSuffix(addr, ":0") }

func flagSet(e *envFlags, name string) bool {
	set := false
	e.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
