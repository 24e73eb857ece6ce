package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/handoffhq/handoff/models"
)

func openStore(ctx context.Context, e *envFlags, stderr io.Writer) (*models.Store, error) {
	st, err := models.Open(ctx, e.cfg.DatabaseURL, models.Options{Log: e.logger(stderr)})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// cmdMigrate applies pending migrations and says which.
func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := newEnvFlags("migrate", getenv, stderr)
	if err := e.parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	return nil
}

// cmdSeed creates the demo data once and prints the logins.
func cmdSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := newEnvFlags("seed", getenv, stderr)
	baseURL := e.fs.String("base-url", e.env("HANDOFF_BASE_URL", "http://localhost:8080"), "public URL, for the printed login link ($HANDOFF_BASE_URL)")
	if err := e.parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	created, err := st.Seed(ctx)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(stdout, "demo data created")
	} else {
		fmt.Fprintln(stdout, "demo data already present; nothing changed")
	}
	fmt.Fprint(stdout, models.DemoSummary(*baseURL))
	return nil
}

// cmdAPIKey prints only a new API key on stdout, for scripts.
func cmdAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: handoff apikey create --brand SLUG [--name NAME]")
		return errUsage
	}
	e := newEnvFlags("apikey create", getenv, stderr)
	slug := e.fs.String("brand", "", "the brand's slug (required)")
	name := e.fs.String("name", "created by handoff apikey", "a name to recognise the key by")
	if err := e.parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" {
		fmt.Fprintln(stderr, "handoff apikey create: --brand is required")
		return errUsage
	}
	st, err := openStore(ctx, e, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	b, err := st.BrandBySlug(ctx, *slug)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no brand with slug %q", *slug)
	}
	if err != nil {
		return err
	}
	key, _, err := st.CreateAPIKey(ctx, "", b.ID, *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}
