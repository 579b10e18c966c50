package sqlprobe_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
)

func open(t *testing.T) (*sqlstore.DB, *sqlprobe.Probe) {
	t.Helper()
	ctx := context.Background()
	db, p, err := sqlprobe.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, p
}

// TestCounts: a transaction that wrote is one commit whatever its
// statements; a read-only one is none; an autocommit write is one.
func TestCounts(t *testing.T) {
	ctx := context.Background()
	db, p := open(t)
	var sync int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want FULL (2)", sync, err)
	}
	before := p.Counts()
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		for i := range 3 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES ($1, 'a')`, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error {
		var n int
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE t SET v = 'b' WHERE k = 1`); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Counts().Sub(before), (sqlprobe.Counts{Commits: 2, Writes: 4}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

// TestCrashAt: the armed write fails, its transaction rolls back, nothing
// runs afterwards, and a reopened database holds what committed before.
func TestCrashAt(t *testing.T) {
	ctx := context.Background()
	db, p := open(t)
	if _, err := db.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (1, 'kept')`); err != nil {
		t.Fatal(err)
	}
	p.CrashAt(2)
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (2, 'lost')`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (3, 'lost')`)
		return err
	})
	if !errors.Is(err, sqlprobe.ErrCrashed) || !p.Crashed() {
		t.Fatalf("err %v, crashed %v; want ErrCrashed", err, p.Crashed())
	}
	if _, err := db.ExecContext(ctx, `SELECT 1`); !errors.Is(err, sqlprobe.ErrCrashed) {
		t.Fatalf("after the crash: %v", err)
	}
	db.Close()
	re, err := sqlstore.Open(ctx, "sqlite:"+p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	var n int
	if err := re.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after restart %d, %v; want 1", n, err)
	}
}
