package testutil

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// recorder keeps what a helper reported instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestAssertNoSecretsInRows(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+t.Name()+"?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE a (id INTEGER, note TEXT, blob BLOB)`,
		`CREATE TABLE b (x TEXT)`,
		`INSERT INTO a VALUES (4111111111111111, 'card 4111111111111111', x'00')`,
		`INSERT INTO a VALUES (1, 'ok', CAST('pw=hunter2' AS BLOB))`,
		`INSERT INTO b VALUES ('clean')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if tables := Tables(t, db); len(tables) != 2 {
		t.Fatalf("Tables = %v", tables)
	}
	if d := DumpDB(t, db, "b"); len(d) != 1 || d["b"][0]["x"] != "clean" {
		t.Fatalf("DumpDB(b) = %v", d)
	}
	r := &recorder{TB: t}
	// The integer id is skipped; the note's PAN and the blob's secret are not.
	if n := AssertNoSecretsInRows(r, db, nil, "hunter2"); n != 5 || len(r.errs) != 2 {
		t.Fatalf("read %d values, reported %q", n, r.errs)
	}
	for _, e := range r.errs {
		if strings.Contains(e, "hunter2") || strings.Contains(e, "4111") {
			t.Errorf("the report shows the secret: %q", e)
		}
	}
}
