package testutil

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/kecis/kecis/ecml"
)

// DumpDB returns every row of tables — of every table of db when none is
// named — as table → rows, each row column → value as the driver scans
// it (string, []byte, int64, time.Time, bool, float64 or nil). It reads
// SQLite and PostgreSQL (the current schema); tests that look for secrets
// at rest (KECIS §9.11) read what they check from it.
func DumpDB(t testing.TB, db *sql.DB, tables ...string) map[string][]map[string]any {
	t.Helper()
	if len(tables) == 0 {
		tables = Tables(t, db)
	}
	out := map[string][]map[string]any{}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for k := range vals {
				ptrs[k] = &vals[k]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make(map[string]any, len(cols))
			for k, c := range cols {
				row[c] = vals[k]
			}
			out[table] = append(out[table], row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// Tables lists the tables of db: PostgreSQL's current schema, or SQLite's
// main database.
func Tables(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil { // not PostgreSQL
		if rows, err = db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`); err != nil {
			t.Fatal(err)
		}
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}

// Text is a stored value as text, when it is text or a blob.
func Text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// AssertNoSecretsInRows fails the test for every text or blob value of
// tables (every table of db when nil) that holds a card number in clear
// (ecml.ContainsPAN; KECIS §9.11) or one of secrets. Integer columns are
// skipped: times stored as 16-digit microseconds are Luhn-valid one time
// in ten. It returns how many values it read.
func AssertNoSecretsInRows(t testing.TB, db *sql.DB, tables []string, secrets ...string) int {
	t.Helper()
	read := 0
	for table, rows := range DumpDB(t, db, tables...) {
		for _, row := range rows {
			for col, v := range row {
				s, ok := Text(v)
				if !ok {
					continue
				}
				read++
				if ecml.ContainsPAN(s) {
					t.Errorf("%s.%s holds a card number in clear", table, col)
				}
				for _, secret := range secrets {
					if secret != "" && strings.Contains(s, secret) {
						t.Errorf("%s.%s holds a secret in clear (%d bytes)", table, col, len(secret))
					}
				}
			}
		}
	}
	return read
}
