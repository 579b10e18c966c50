package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// TestGroupSharesTheWriter: a Group's transactions and WriteTx queue for
// the same one writer of the process — with busy_timeout 0, so that a
// transaction that found SQLite's lock taken would fail at once, 8 callers
// of Write and 8 of WriteTx, 20 increments each, all commit and the counter
// holds every one; in a group, the write that fails (its own error) leaves
// nothing while the others of its group hold; a Write after Close fails.
func TestGroupSharesTheWriter(t *testing.T) {
	ctx := ctxFor(t)
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "g.db")+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`CREATE TABLE n (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`, `INSERT INTO n (id, v) VALUES (1, 0)`,
		`CREATE TABLE k (k TEXT PRIMARY KEY)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	g := sqlstore.NewGroup(db, "test")
	inc := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE n SET v = v + 1 WHERE id = 1`)
		return err
	}
	const callers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*callers*each)
	for range callers {
		wg.Go(func() {
			for range each {
				errs <- g.Write(ctx, inc)
			}
		})
		wg.Go(func() {
			for range each {
				errs <- db.WriteTx(ctx, func(tx *sql.Tx) error { return inc(ctx, tx) })
			}
		})
	}
	// Writes that fail on their own: a duplicate key, and fn's own error.
	refused := errors.New("refused")
	for i := range callers {
		wg.Go(func() {
			err := g.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `UPDATE n SET v = v + 1000 WHERE id = 1`); err != nil {
					return err
				}
				if i%2 == 0 {
					_, err := tx.ExecContext(ctx, `INSERT INTO k (k) VALUES ('dup'), ('dup')`)
					return err
				}
				return refused
			})
			if err == nil {
				errs <- errors.New("a failing write succeeded")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM n WHERE id = 1`).Scan(&v); err != nil || v != 2*callers*each {
		t.Fatalf("counter %d (%v), want %d: a failed write left something, or a commit was lost", v, err, 2*callers*each)
	}
	g.Close()
	if err := g.Write(ctx, inc); err == nil {
		t.Fatal("a Write after Close succeeded")
	}
}
