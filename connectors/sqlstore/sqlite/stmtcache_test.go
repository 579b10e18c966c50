package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlite"
)

func openFile(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestStmtCache: a cached statement run again gets its new arguments and
// nothing of the last run; the same query run while its rows are read,
// a failed statement (a unique violation), the cache's eviction while rows
// are open and a schema change made on another connection all give the
// answers an uncached connection gives.
func TestStmtCache(t *testing.T) {
	ctx := context.Background()
	db := openFile(t)
	db.SetMaxOpenConns(1) // every statement on one connection, one cache
	const ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
	for i := range 5 {
		if _, err := db.ExecContext(ctx, ins, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, ins, "k1", 9); !sqlstore.IsUniqueViolation(err) {
		t.Fatalf("a duplicate key: %v, want a unique violation", err)
	}
	const get = `SELECT v FROM kv WHERE k = $1`
	for i := range 5 {
		var v int
		if err := db.QueryRowContext(ctx, get, fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("k%d: %d, %v", i, v, err)
		}
	}
	if err := db.QueryRowContext(ctx, get, "none").Scan(new(int)); err != sql.ErrNoRows {
		t.Fatalf("a missing key: %v", err)
	}

	// The same query inside the loop over its own rows, in one transaction
	// (one connection).
	const all = `SELECT k, v FROM kv WHERE v >= $1 ORDER BY k`
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, all, 0)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var k string
			var v int
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			var inner int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kv WHERE v >= $1`, v).Scan(&inner); err != nil {
				return err
			}
			r2, err := tx.QueryContext(ctx, all, v)
			if err != nil {
				return err
			}
			m := 0
			for r2.Next() {
				m++
			}
			r2.Close()
			if m != inner || m != 5-v {
				return fmt.Errorf("at %s: the nested query saw %d rows, want %d", k, m, 5-v)
			}
			n++
		}
		if n != 5 {
			return fmt.Errorf("%d rows, want 5", n)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}

	// More distinct queries than the cache holds while a query's rows are open.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, all, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sqlite.StmtCacheSize + 10 {
		var v int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT v + %d FROM kv WHERE k = $1", i), "k2").Scan(&v); err != nil || v != 2+i {
			t.Fatalf("query %d: %d, %v", i, v, err)
		}
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Close(); err != nil || n != 5 {
		t.Fatalf("rows read across the eviction: %d, %v", n, err)
	}
	var v int
	if err := conn.QueryRowContext(ctx, all, 3).Scan(new(string), &v); err != nil || v != 3 {
		t.Fatalf("the evicted query again: %d, %v", v, err)
	}
	conn.Close()

	// A schema change on another connection: the cached SELECT * recompiles.
	var before []any
	if err := scanAll(db.DB, `SELECT * FROM kv WHERE k = $1`, &before, "k0"); err != nil {
		t.Fatal(err)
	}
	other, err := sqlstore.Open(ctx, "sqlite:"+dbPath(t, db))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `ALTER TABLE kv ADD COLUMN note TEXT NOT NULL DEFAULT 'n'`); err != nil {
		t.Fatal(err)
	}
	var after []any
	if err := scanAll(db.DB, `SELECT * FROM kv WHERE k = $1`, &after, "k0"); err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || len(after) != 3 || fmt.Sprint(after[2]) != "n" {
		t.Fatalf("SELECT * before and after a new column: %v, %v", before, after)
	}

	// A cancelled context fails the statement, and the next run works.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.QueryRowContext(cctx, get, "k1").Scan(&v); err == nil {
		t.Fatal("a cancelled context: no error")
	}
	if err := db.QueryRowContext(ctx, get, "k1").Scan(&v); err != nil || v != 1 {
		t.Fatalf("after a cancelled run: %d, %v", v, err)
	}
}

func dbPath(t *testing.T, db *sqlstore.DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func scanAll(db *sql.DB, q string, dst *[]any, args ...any) error {
	rows, err := db.Query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return sql.ErrNoRows
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	*dst = vals
	return rows.Err()
}

// BenchmarkStatements: a read by key and an upsert, as the federation's
// stores run them, on modernc.org/sqlite as registered ("sqlite", every
// statement prepared on each run) and through this package's driver (the
// statements cached). In memory, so that the statements' CPU is measured,
// not fsync.
func BenchmarkStatements(b *testing.B) {
	for _, drv := range []string{"sqlite", sqlite.DriverName} {
		b.Run(drv, func(b *testing.B) {
			db, err := sql.Open(drv, ":memory:")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL, at INTEGER NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := fmt.Sprint("key-", i%1000)
				var v int64
				err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1 AND at > $2`, k, 0).Scan(&v)
				if err != nil && err != sql.ErrNoRows {
					b.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v, at) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET v = kv.v + excluded.v, at = excluded.at`, k, 1, i+1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
