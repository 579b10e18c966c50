package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(ctxFor(t), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", sqlstore.RedactDSN(dsn), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// backends returns a DSN maker per backend; PostgreSQL skips (or fails
// under CI) when unreachable.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return sqltest.TestSQLiteDSN(t) }},
	{"postgres", func(t *testing.T) string { return sqltest.TestPostgresDSN(t) }},
}

func TestParseDSN(t *testing.T) {
	cases := []struct {
		dsn     string
		dialect sqlstore.Dialect
		want    []string // substrings of DataSource
		memory  bool
		err     string
	}{
		{dsn: "sqlite:/var/lib/kecis/hub.db", dialect: sqlstore.SQLite,
			want: []string{"/var/lib/kecis/hub.db?", "_journal_mode=WAL", "_busy_timeout=10000", "_foreign_keys=1", "_txlock=immediate", "_synchronous=FULL"}},
		{dsn: "sqlite:hub.db?_synchronous=NORMAL", dialect: sqlstore.SQLite, want: []string{"hub.db?", "_synchronous=NORMAL"}},
		{dsn: "sqlite::memory:", dialect: sqlstore.SQLite, memory: true, want: []string{":memory:?", "_txlock=immediate"}},
		{dsn: "postgres://kecis:secret@db:5432/hub?sslmode=disable", dialect: sqlstore.Postgres, want: []string{"postgres://kecis:secret@db:5432/hub"}},
		{dsn: "postgresql://db/hub", dialect: sqlstore.Postgres},
		{dsn: "sqlite:", err: "without a path"},
		{dsn: "sqlite:file:x.db", err: "plain path"},
		{dsn: "mysql://root:pw@db/x", err: "unsupported DSN"},
		{dsn: "hub.db", err: "unsupported DSN"},
	}
	for _, c := range cases {
		cfg, err := sqlstore.ParseDSN(c.dsn)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDSN(%q): error %v, want one containing %q", c.dsn, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("ParseDSN(%q): error leaks the password: %v", c.dsn, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", c.dsn, err)
			continue
		}
		if cfg.Dialect != c.dialect || cfg.Memory != c.memory {
			t.Errorf("ParseDSN(%q) = %+v", c.dsn, cfg)
		}
		for _, w := range c.want {
			if !strings.Contains(cfg.DataSource, w) {
				t.Errorf("ParseDSN(%q).DataSource = %q, lacks %q", c.dsn, cfg.DataSource, w)
			}
		}
		if c.memory && strings.Contains(cfg.DataSource, "journal_mode") {
			t.Errorf("ParseDSN(%q): WAL for an in-memory database", c.dsn)
		}
		if strings.Contains(c.dsn, "NORMAL") && strings.Contains(cfg.DataSource, "FULL") {
			t.Errorf("ParseDSN(%q): the DSN's own setting was overridden: %s", c.dsn, cfg.DataSource)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	got := sqlstore.RedactDSN("postgres://kecis:s3cret@db:5432/hub")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "kecis") {
		t.Errorf("RedactDSN = %q", got)
	}
	if got := sqlstore.RedactDSN("host=db password=s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("RedactDSN keyword form = %q", got)
	}
	if got := sqlstore.RedactDSN("sqlite:/tmp/x.db"); got != "sqlite:/tmp/x.db" {
		t.Errorf("RedactDSN sqlite = %q", got)
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := sqlstore.Open(ctx, "postgres://kecis:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := open(t, sqltest.TestSQLiteDSN(t))
	ctx := ctxFor(t)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"synchronous":  "2", // FULL
	} {
		// Check on several connections: the settings are per connection.
		var conns []*sql.Conn
		for range 3 {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", pragma, err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestSQLiteMemoryIsOneDatabase(t *testing.T) {
	db := open(t, "sqlite::memory:")
	ctx := ctxFor(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// Concurrent users all see the same (single-connection) database.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.WriteTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, i)
				return err
			})
			if err != nil {
				t.Errorf("insert: %v", err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 8 {
		t.Errorf("count = %d, %v; want 8", n, err)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := open(t, b.dsn(t))
			ctx := ctxFor(t)
			typ := "INTEGER"
			if db.Dialect == sqlstore.Postgres {
				typ = "TIMESTAMPTZ"
			}
			if _, err := db.ExecContext(ctx, `CREATE TABLE times (id INTEGER PRIMARY KEY, t `+typ+` NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			kst := time.FixedZone("KST", 9*3600)
			cases := []struct{ in, want time.Time }{
				{time.Time{}, time.Time{}},
				{time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC), time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)},
				{time.Date(2026, 11, 22, 19, 0, 0, 1000, kst), time.Date(2026, 11, 22, 10, 0, 0, 1000, time.UTC)},
				{time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
				{time.Now(), time.Now().UTC().Truncate(time.Microsecond)}, // monotonic reading dropped
			}
			for i, c := range cases {
				if _, err := db.ExecContext(ctx, `INSERT INTO times (id, t) VALUES ($1, $2)`, i, db.Dialect.Time(c.in)); err != nil {
					t.Fatalf("insert %d: %v", i, err)
				}
			}
			for i, c := range cases {
				var got time.Time
				if err := db.QueryRowContext(ctx, `SELECT t FROM times WHERE id = $1`, i).Scan(sqlstore.ScanTime(&got)); err != nil {
					t.Fatalf("select %d: %v", i, err)
				}
				if i == 4 {
					if got.Sub(c.in) > time.Microsecond || c.in.Sub(got) > time.Microsecond {
						t.Errorf("case %d: got %s, want about %s", i, got, c.in)
					}
					continue
				}
				if got != c.want { // == : same instant, same (UTC) location
					t.Errorf("case %d: got %#v (%s), want %s", i, got, got, c.want)
				}
			}
			// Ordering and comparison work on the stored values.
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM times WHERE t < $1`,
				db.Dialect.Time(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))).Scan(&n); err != nil || n != 2 {
				t.Errorf("count before 2026 = %d, %v; want 2", n, err)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := open(t, b.dsn(t))
			ctx := ctxFor(t)
			if _, err := db.ExecContext(ctx, `CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT UNIQUE)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO u VALUES ('a', 'x')`); err != nil {
				t.Fatal(err)
			}
			_, err := db.ExecContext(ctx, `INSERT INTO u VALUES ('a', 'y')`)
			if !sqlstore.IsUniqueViolation(err) || sqlstore.IsRetryable(err) {
				t.Errorf("duplicate primary key: unique %v retryable %v (%v)", sqlstore.IsUniqueViolation(err), sqlstore.IsRetryable(err), err)
			}
			_, err = db.ExecContext(ctx, `INSERT INTO u VALUES ('b', 'x')`)
			if !sqlstore.IsUniqueViolation(fmt.Errorf("wrapped: %w", err)) {
				t.Errorf("duplicate unique column not recognised: %v", err)
			}
			_, err = db.ExecContext(ctx, `SELECT * FROM nosuchtable`)
			if err == nil || sqlstore.IsUniqueViolation(err) || sqlstore.IsRetryable(err) {
				t.Errorf("syntax error misclassified: %v", err)
			}
			if sqlstore.IsRetryable(errors.New("other")) || sqlstore.IsUniqueViolation(nil) {
				t.Error("plain errors misclassified")
			}
		})
	}
}

// TestSQLiteBusyIsRetried holds the write lock on one pool while another
// pool's transaction waits: with a short busy_timeout the waiter gets
// SQLITE_BUSY, which IsRetryable accepts and WriteTx retries until the
// lock is free.
func TestSQLiteBusyIsRetried(t *testing.T) {
	dsn := sqltest.TestSQLiteDSN(t)
	holder := open(t, dsn)
	waiter := open(t, dsn+"?_busy_timeout=1")
	ctx := ctxFor(t)
	if _, err := holder.ExecContext(ctx, `CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	_, err = waiter.ExecContext(ctx, `INSERT INTO c VALUES (2)`)
	if !sqlstore.IsRetryable(err) {
		t.Fatalf("write while locked: %v, want a retryable SQLITE_BUSY", err)
	}

	done := make(chan error, 1)
	go func() {
		done <- waiter.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (3)`)
			return err
		})
	}()
	time.Sleep(30 * time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WriteTx after the lock was released: %v", err)
	}
	var n int
	if err := waiter.QueryRowContext(ctx, `SELECT COUNT(*) FROM c`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows = %d, %v; want 2", n, err)
	}
}

func TestRetry(t *testing.T) {
	ctx := ctxFor(t)
	calls := 0
	plain := errors.New("plain")
	if err := sqlstore.Retry(ctx, func() error { calls++; return plain }); !errors.Is(err, plain) || calls != 1 {
		t.Errorf("non-retryable error: %v after %d calls", err, calls)
	}
	calls = 0
	if err := sqlstore.Retry(ctx, func() error { calls++; return nil }); err != nil || calls != 1 {
		t.Errorf("success: %v after %d calls", err, calls)
	}
}

func TestWriteTxRollsBack(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := open(t, b.dsn(t))
			ctx := ctxFor(t)
			if _, err := db.ExecContext(ctx, `CREATE TABLE r (n INTEGER)`); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			err := db.WriteTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO r VALUES (1)`); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("WriteTx = %v, want boom", err)
			}
			var n int
			err = db.ReadTx(ctx, func(tx *sql.Tx) error {
				return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM r`).Scan(&n)
			})
			if err != nil || n != 0 {
				t.Errorf("after rollback: %d rows, %v", n, err)
			}
		})
	}
}

// migrationsFS has two components' migrations for both dialects.
func migrationsFS(extra map[string]string) fstest.MapFS {
	fs := fstest.MapFS{}
	for _, d := range []string{"sqlite", "postgres"} {
		fs["m/"+d+"/0001_create.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
-- a comment; with a semicolon
INSERT INTO things (id, name) VALUES (1, 'one');`)}
		fs["m/"+d+"/0002_more.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE things ADD COLUMN extra TEXT;
CREATE INDEX things_name ON things (name);`)}
		for name, sql := range extra {
			fs["m/"+d+"/"+name] = &fstest.MapFile{Data: []byte(sql)}
		}
	}
	return fs
}

func TestLoadMigrations(t *testing.T) {
	ms, err := sqlstore.LoadMigrations(migrationsFS(map[string]string{"0010_ten.sql": "SELECT 1;"}), "m/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%d:%s", m.Version, m.Name))
	}
	if strings.Join(got, ",") != "1:create,2:more,10:ten" {
		t.Errorf("LoadMigrations order = %v", got)
	}
	for _, bad := range []map[string]string{
		{"README.md": "x"},
		{"0002_dup.sql": "SELECT 1;"},
		{"0000_zero.sql": "SELECT 1;"},
	} {
		if _, err := sqlstore.LoadMigrations(migrationsFS(bad), "m/sqlite"); err == nil {
			t.Errorf("LoadMigrations accepted %v", bad)
		}
	}
}

func TestMigrate(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := open(t, b.dsn(t))
			ctx := ctxFor(t)
			fsys := migrationsFS(nil)
			n, err := db.MigrateFS(ctx, "test", fsys, "m")
			if err != nil || n != 2 {
				t.Fatalf("first MigrateFS = %d, %v; want 2", n, err)
			}
			n, err = db.MigrateFS(ctx, "test", fsys, "m")
			if err != nil || n != 0 {
				t.Fatalf("second MigrateFS = %d, %v; want 0", n, err)
			}
			// Another component has its own versions in the same table.
			other := fstest.MapFS{"m/" + string(db.Dialect) + "/0001_other.sql": {Data: []byte(`CREATE TABLE other_things (id INTEGER);`)}}
			if n, err := db.MigrateFS(ctx, "other", other, "m"); err != nil || n != 1 {
				t.Fatalf("other component: %d, %v", n, err)
			}
			vs, err := db.AppliedVersions(ctx, "test")
			if err != nil || fmt.Sprint(vs) != "[1 2]" {
				t.Errorf("AppliedVersions = %v, %v", vs, err)
			}

			// An edited migration is refused.
			edited := migrationsFS(nil)
			edited["m/"+string(db.Dialect)+"/0002_more.sql"] = &fstest.MapFile{Data: []byte(`SELECT 2;`)}
			if _, err := db.MigrateFS(ctx, "test", edited, "m"); err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("edited migration: %v, want a checksum error", err)
			}

			// A failing migration leaves nothing behind: neither its
			// first statement nor its schema_migrations row.
			failing := migrationsFS(map[string]string{"0003_fails.sql": `CREATE TABLE half (id INTEGER);
INSERT INTO nosuchtable VALUES (1);`})
			n, err = db.MigrateFS(ctx, "test", failing, "m")
			if err == nil || n != 0 || !strings.Contains(err.Error(), "version 3") {
				t.Fatalf("failing migration = %d, %v", n, err)
			}
			if _, err := db.ExecContext(ctx, `SELECT * FROM half`); err == nil {
				t.Error("the failed migration's table exists")
			}
			if vs, _ := db.AppliedVersions(ctx, "test"); fmt.Sprint(vs) != "[1 2]" {
				t.Errorf("after failure AppliedVersions = %v", vs)
			}
			// A newer binary's version 9 is left alone by this one.
			newer := migrationsFS(map[string]string{"0009_newer.sql": `CREATE TABLE newer (id INTEGER);`})
			if n, err := db.MigrateFS(ctx, "test", newer, "m"); err != nil || n != 1 {
				t.Fatalf("newer: %d, %v", n, err)
			}
			if n, err := db.MigrateFS(ctx, "test", fsys, "m"); err != nil || n != 0 {
				t.Errorf("older binary after a newer one: %d, %v", n, err)
			}
			var name string
			if err := db.QueryRowContext(ctx, `SELECT name FROM things WHERE id = 1`).Scan(&name); err != nil || name != "one" {
				t.Errorf("data from migration: %q, %v", name, err)
			}
		})
	}
}

// TestMigrateConcurrently starts several "processes" (separate pools) on a
// fresh database at once: every migration is applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.dsn(t)
			ctx := ctxFor(t)
			const procs = 4
			dbs := make([]*sqlstore.DB, procs)
			for i := range dbs {
				dbs[i] = open(t, dsn)
			}
			var (
				wg    sync.WaitGroup
				total = make([]int, procs)
				errs  = make([]error, procs)
			)
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					total[i], errs[i] = db.MigrateFS(ctx, "test", migrationsFS(nil), "m")
				}()
			}
			wg.Wait()
			sum := 0
			for i := range dbs {
				if errs[i] != nil {
					t.Errorf("process %d: %v", i, errs[i])
				}
				sum += total[i]
			}
			if sum != 2 {
				t.Errorf("%d migrations applied in all, want 2", sum)
			}
			var n int
			if err := dbs[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 1 {
				t.Errorf("things = %d, %v; want 1 row", n, err)
			}
		})
	}
}

// TestPostgresDSNIsolation: each call gets its own schema, dropped at the
// end of the test.
func TestPostgresDSNIsolation(t *testing.T) {
	var schema string
	t.Run("inner", func(t *testing.T) {
		a := open(t, sqltest.TestPostgresDSN(t))
		b := open(t, sqltest.TestPostgresDSN(t))
		ctx := ctxFor(t)
		if _, err := a.ExecContext(ctx, `CREATE TABLE iso (id INTEGER)`); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ExecContext(ctx, `SELECT * FROM iso`); err == nil {
			t.Error("a table created in one test schema is visible in another")
		}
		if err := a.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "kecis_test_") {
			t.Errorf("current_schema = %q", schema)
		}
	})
	if schema == "" {
		return // skipped
	}
	admin := open(t, sqltest.TestPostgresDSN(t))
	var n int
	if err := admin.QueryRowContext(ctxFor(t), `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s still exists after its test (%d, %v)", schema, n, err)
	}
}
