package models

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

//go:embed migrations
var migrationFS embed.FS

// migrationLockID is the PostgreSQL advisory lock instances take in turn
// while migrating ("handoff" in ASCII).
const migrationLockID = 0x68616e646f6666

// Migration is one versioned schema step for one dialect.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations for a dialect in version order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := "migrations/" + string(d)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a version number", name)
		}
		body, err := fs.ReadFile(migrationFS, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// Migrate applies every migration not yet recorded, in one transaction, and
// makes sure a signing key exists. Running it twice is a no-op. Instances
// starting together take turns: PostgreSQL through an advisory lock held for
// the transaction, SQLite through its IMMEDIATE write lock.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	ms, err := Migrations(s.Dialect)
	if err != nil {
		return nil, err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if s.Dialect == Postgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		ts := "timestamptz"
		if s.Dialect == SQLite {
			ts = "datetime"
		}
		if err := tx.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at " + ts + " NOT NULL)").Error; err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var done []int
		if err := tx.Raw("SELECT version FROM schema_migrations").Find(&done).Error; err != nil {
			return err
		}
		have := map[int]bool{}
		for _, v := range done {
			have[v] = true
		}
		for _, m := range ms {
			if have[m.Version] {
				continue
			}
			for _, stmt := range splitStatements(m.SQL) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %s: %w", m.Name, err)
				}
			}
			if err := tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, s.Now()).Error; err != nil {
				return err
			}
			applied = append(applied, m.Name)
		}
		return ensureSigningKey(tx, s)
	})
	return applied, err
}

// splitStatements splits a migration file on semicolons at line ends and
// drops comment lines. Migration SQL must not put ";\n" inside a statement.
func splitStatements(sql string) []string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, stmt := range strings.Split(b.String(), ";\n") {
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// ensureSigningKey generates the database's session signing key the first
// time, so every instance on this database shares it. HANDOFF_SECRET_KEYS,
// when set, takes precedence over it (see the app's key ring).
func ensureSigningKey(tx *gorm.DB, s *Store) error {
	var n int64
	if err := tx.Table("signing_keys").Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	kid := "db-" + NewID()[:8]
	return tx.Exec("INSERT INTO signing_keys (id, secret, created_at) VALUES (?, ?, ?)",
		kid, base64.RawURLEncoding.EncodeToString(secret), s.Now()).Error
}

// SigningKey is a session signing key stored in the database.
type SigningKey struct {
	ID     string
	Secret []byte
}

// SigningKeys returns the stored signing keys, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []struct {
		ID     string
		Secret string
	}
	if err := s.DB.WithContext(ctx).Raw("SELECT id, secret FROM signing_keys ORDER BY created_at DESC, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		b, err := base64.RawURLEncoding.DecodeString(r.Secret)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
		}
		out = append(out, SigningKey{ID: r.ID, Secret: b})
	}
	return out, nil
}
