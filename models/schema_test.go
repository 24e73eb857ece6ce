package models_test

import (
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
	"gorm.io/gorm"
)

// TestSchemaSameOnBothDatabases migrates SQLite and PostgreSQL and compares
// what each ended with: tables, columns (name, NOT NULL), primary keys,
// non-primary indexes (name, unique, partial, columns), foreign keys (with
// ON DELETE) and the number of CHECK constraints per table. Each is a line
// of text, so a difference prints as the lines only one side has.
func TestSchemaSameOnBothDatabases(t *testing.T) {
	lite := modeltest.SQLite(t)
	pg := modeltest.Postgres(t)
	liteFacts := sqliteSchema(t, lite.Store.DB)
	pgFacts := postgresSchema(t, pg.Store.DB)

	t.Run("OK", func(t *testing.T) {
		// Guard against introspection that finds nothing on both sides.
		for _, want := range []string{
			"table users",
			"column users.email NOT NULL",
			"column sessions.revoked_at NULL",
			"primary key brand_members (brand_id, user_id)",
			"index users_email_key on users UNIQUE (email)",
			"index agents_status_idx on agents (status, created_at)",
			"foreign key sessions (user_id) -> users (id) ON DELETE CASCADE",
			"foreign key api_keys (created_by) -> users (id) ON DELETE SET NULL",
			"checks brands: 6",
			"table schema_migrations",
		} {
			if !liteFacts[want] {
				t.Errorf("SQLite schema lacks %q", want)
			}
			if !pgFacts[want] {
				t.Errorf("PostgreSQL schema lacks %q", want)
			}
		}
		if onlyLite, onlyPG := diffFacts(liteFacts, pgFacts); len(onlyLite)+len(onlyPG) > 0 {
			t.Errorf("schemas differ after migrations:\n only in SQLite:\n  %s\n only in PostgreSQL:\n  %s",
				strings.Join(onlyLite, "\n  "), strings.Join(onlyPG, "\n  "))
		}
	})

	// The comparison must be able to fail: an index on one side only shows.
	t.Run("ErrExtraIndex", func(t *testing.T) {
		if err := lite.Store.DB.Exec("CREATE INDEX users_name_idx ON users (display_name)").Error; err != nil {
			t.Fatal(err)
		}
		if err := pg.Store.DB.Exec("CREATE UNIQUE INDEX users_name_idx ON users (display_name)").Error; err != nil {
			t.Fatal(err)
		}
		onlyLite, onlyPG := diffFacts(sqliteSchema(t, lite.Store.DB), pgFacts)
		want := []string{"index users_name_idx on users (display_name)"}
		if fmt.Sprint(onlyLite) != fmt.Sprint(want) || len(onlyPG) != 0 {
			t.Errorf("diff after an extra SQLite index = %q, %q; want %q, []", onlyLite, onlyPG, want)
		}
		onlyLite, onlyPG = diffFacts(sqliteSchema(t, lite.Store.DB), postgresSchema(t, pg.Store.DB))
		want = []string{"index users_name_idx on users UNIQUE (display_name)"}
		if len(onlyLite) != 1 || fmt.Sprint(onlyPG) != fmt.Sprint(want) {
			t.Errorf("diff with a unique index on PostgreSQL only = %q, %q; want 1 line, %q", onlyLite, onlyPG, want)
		}
	})
}

// diffFacts returns the lines only in a and only in b, sorted.
func diffFacts(a, b map[string]bool) (onlyA, onlyB []string) {
	for f := range a {
		if !b[f] {
			onlyA = append(onlyA, f)
		}
	}
	for f := range b {
		if !a[f] {
			onlyB = append(onlyB, f)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

// queryRows runs q and returns every row as strings; NULL is "".
func queryRows(tb testing.TB, db *gorm.DB, q string, args ...any) [][]string {
	tb.Helper()
	rows, err := db.Raw(q, args...).Rows()
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return out
}

func nullable(notNull bool) string {
	if notNull {
		return "NOT NULL"
	}
	return "NULL"
}

func isTrue(s string) bool { return s == "1" || s == "true" || s == "t" }

var onDelete = map[string]string{
	// pg_constraint.confdeltype
	"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT",
}

var checkRE = regexp.MustCompile(`(?i)\bCHECK\s*\(`)

func sqliteSchema(tb testing.TB, db *gorm.DB) map[string]bool {
	tb.Helper()
	facts := map[string]bool{}
	pks := map[string][]string{}
	tables := queryRows(tb, db, `SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	for _, tr := range tables {
		table := tr[0]
		facts["table "+table] = true
		facts[fmt.Sprintf("checks %s: %d", table, len(checkRE.FindAllString(tr[1], -1)))] = true

		var pk []string
		pkPos := map[string]string{}
		for _, c := range queryRows(tb, db, `SELECT name, "notnull", pk FROM pragma_table_info(?)`, table) {
			// SQLite lets a non-INTEGER primary key column hold NULL unless
			// declared NOT NULL; PostgreSQL makes every key column NOT
			// NULL. The code never writes a NULL key, so count key columns
			// as NOT NULL here.
			facts[fmt.Sprintf("column %s.%s %s", table, c[0], nullable(isTrue(c[1]) || c[2] != "0"))] = true
			if c[2] != "0" {
				pkPos[c[2]] = c[0]
			}
		}
		for i := 1; i <= len(pkPos); i++ {
			pk = append(pk, pkPos[fmt.Sprint(i)])
		}
		if len(pk) > 0 {
			pks[table] = pk
			facts[fmt.Sprintf("primary key %s (%s)", table, strings.Join(pk, ", "))] = true
		}

		for _, ix := range queryRows(tb, db, `SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table) {
			if ix[2] == "pk" {
				continue
			}
			var cols []string
			for _, c := range queryRows(tb, db, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix[0]) {
				if c[0] == "" {
					c[0] = "<expression>"
				}
				cols = append(cols, c[0])
			}
			facts[indexFact(ix[0], table, isTrue(ix[1]), isTrue(ix[3]), cols)] = true
		}
	}
	// Foreign keys last: a reference without columns means the target's
	// primary key.
	for _, tr := range tables {
		table := tr[0]
		type fk struct{ from, to []string }
		byID := map[string]*fk{}
		target := map[string]string{}
		action := map[string]string{}
		var ids []string
		for _, r := range queryRows(tb, db, `SELECT id, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, table) {
			f := byID[r[0]]
			if f == nil {
				f = &fk{}
				byID[r[0]] = f
				ids = append(ids, r[0])
				target[r[0]], action[r[0]] = r[1], r[4]
			}
			f.from = append(f.from, r[2])
			f.to = append(f.to, r[3])
		}
		for _, id := range ids {
			f := byID[id]
			if f.to[0] == "" {
				f.to = pks[target[id]]
			}
			facts[fkFact(table, f.from, target[id], f.to, action[id])] = true
		}
	}
	return facts
}

func postgresSchema(tb testing.TB, db *gorm.DB) map[string]bool {
	tb.Helper()
	facts := map[string]bool{}
	for _, r := range queryRows(tb, db, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`) {
		facts["table "+r[0]] = true
	}
	for _, r := range queryRows(tb, db, `SELECT c.table_name, c.column_name, c.is_nullable
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`) {
		facts[fmt.Sprintf("column %s.%s %s", r[0], r[1], nullable(r[2] == "NO"))] = true
	}
	pks := map[string][]string{}
	var pkTables []string
	for _, r := range queryRows(tb, db, `SELECT tc.table_name, kcu.column_name
		FROM information_schema.table_constraints tc
		JOIN information_schema.key_column_usage kcu
		  ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
		WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()
		ORDER BY tc.table_name, kcu.ordinal_position`) {
		if pks[r[0]] == nil {
			pkTables = append(pkTables, r[0])
		}
		pks[r[0]] = append(pks[r[0]], r[1])
	}
	for _, table := range pkTables {
		facts[fmt.Sprintf("primary key %s (%s)", table, strings.Join(pks[table], ", "))] = true
	}
	for _, r := range queryRows(tb, db, `SELECT ic.relname, tc.relname, i.indisunique, i.indpred IS NOT NULL,
		  array_to_string(ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
		    FROM generate_series(1, i.indnkeyatts::int) AS k ORDER BY k), ',')
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_class tc ON tc.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = tc.relnamespace
		WHERE n.nspname = current_schema() AND NOT i.indisprimary`) {
		facts[indexFact(r[0], r[1], isTrue(r[2]), isTrue(r[3]), strings.Split(r[4], ","))] = true
	}
	type fk struct {
		table, target, action string
		from, to              []string
	}
	byName := map[string]*fk{}
	var names []string
	for _, r := range queryRows(tb, db, `SELECT c.oid::text, src.relname, dst.relname, c.confdeltype::text, a.attname, fa.attname
		FROM pg_constraint c
		JOIN pg_class src ON src.oid = c.conrelid
		JOIN pg_class dst ON dst.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = src.relnamespace
		CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, fcol, pos)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
		JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fcol
		WHERE c.contype = 'f' AND n.nspname = current_schema()
		ORDER BY c.oid, k.pos`) {
		f := byName[r[0]]
		if f == nil {
			f = &fk{table: r[1], target: r[2], action: onDelete[r[3]]}
			byName[r[0]] = f
			names = append(names, r[0])
		}
		f.from = append(f.from, r[4])
		f.to = append(f.to, r[5])
	}
	for _, n := range names {
		f := byName[n]
		facts[fkFact(f.table, f.from, f.target, f.to, f.action)] = true
	}
	for _, r := range queryRows(tb, db, `SELECT t.table_name, count(c.oid)
		FROM information_schema.tables t
		LEFT JOIN pg_constraint c ON c.contype = 'c'
		  AND c.conrelid = (quote_ident(t.table_schema) || '.' || quote_ident(t.table_name))::regclass
		WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		GROUP BY t.table_name`) {
		facts[fmt.Sprintf("checks %s: %s", r[0], r[1])] = true
	}
	return facts
}

func indexFact(name, table string, unique, partial bool, cols []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "index %s on %s", name, table)
	if unique {
		b.WriteString(" UNIQUE")
	}
	if partial {
		b.WriteString(" PARTIAL")
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(cols, ", "))
	return b.String()
}

func fkFact(table string, from []string, target string, to []string, action string) string {
	return fmt.Sprintf("foreign key %s (%s) -> %s (%s) ON DELETE %s", table, strings.Join(from, ", "), target, strings.Join(to, ", "), action)
}
