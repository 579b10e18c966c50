package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
)

// TestExecOne: a compare-and-swap that changed one row succeeds; one that
// changed none (a stale version, a missing row) or several is the conflict.
func TestExecOne(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE r (id TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO r VALUES ('a', 1), ('b', 1)`); err != nil {
		t.Fatal(err)
	}
	conflict := errors.New("conflict")
	cas := `UPDATE r SET version = version + 1 WHERE id = $1 AND version = $2`
	if err := sqlstore.ExecOne(ctx, db, conflict, cas, "a", 1); err != nil {
		t.Fatalf("first swap: %v", err)
	}
	for _, c := range []struct {
		name  string
		query string
		args  []any
	}{
		{"stale version", cas, []any{"a", 1}},
		{"no such row", cas, []any{"z", 1}},
		{"two rows", `UPDATE r SET version = version + 1`, nil},
	} {
		if err := sqlstore.ExecOne(ctx, db, conflict, c.query, c.args...); !errors.Is(err, conflict) {
			t.Errorf("%s: %v, want the conflict", c.name, err)
		}
	}
	if err := sqlstore.ExecOne(ctx, db, conflict, `UPDATE nosuch SET x = 1`); err == nil || errors.Is(err, conflict) {
		t.Errorf("a failing statement: %v, want its own error", err)
	}
}
