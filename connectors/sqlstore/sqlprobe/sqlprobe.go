// Package sqlprobe opens a SQLite database through a database/sql driver
// that watches it, for the tests and benchmarks that measure what a
// program writes per request (KECIS §12.3) and check what survives a crash
// between two writes. It works for any database opened through
// connectors/sqlstore — the hub's store, the SDK's adapter store, the
// examples' own databases — and knows none of their tables.
//
//	db, p, err := sqlprobe.Open(ctx, filepath.Join(dir, "issuer.db")) // *sqlstore.DB, not migrated
//	... migrate and build the store on db ...
//	before := p.Counts()
//	... one request ...
//	cost := p.Counts().Sub(before) // cost.Commits: write transactions = WAL fsyncs; cost.Writes: statements
//	p.CrashAt(3) // the 3rd writing statement from now fails, and everything after it
//
// Counting. A transaction begun read-write that executed at least one
// writing statement (INSERT, UPDATE, DELETE, REPLACE, CREATE, ALTER, DROP)
// and committed is one write transaction; so is such a statement run
// outside a transaction (SQLite's autocommit). connectors/sqlstore opens
// SQLite in WAL mode with synchronous=FULL, under which SQLite syncs the
// WAL once at every commit that wrote
// (https://sqlite.org/pragma.html#pragma_synchronous), so Commits is also
// the number of commit fsyncs. Checkpoints (SQLite's automatic one every
// 1000 WAL pages) add two syncs each — the WAL, then the database file —
// which the probe does not see; strace does.
//
// Crashing. Probe.CrashAt(n) makes the nth writing statement from then
// on, and every operation after it, fail with ErrCrashed: the transaction
// in progress rolls back, as its frames would be ignored after a real
// crash, and nothing is committed afterwards. Close the probed DB and
// open the file again with sqlstore.Open to see what survived.
package sqlprobe

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	msqlite "modernc.org/sqlite"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqlite" // also SQLite's errors for sqlstore.IsRetryable and IsUniqueViolation
)

// ErrCrashed is what every operation returns once the probe cut the
// database off.
var ErrCrashed = errors.New("sqlprobe: the writer was killed here")

// Probe watches one database.
type Probe struct {
	path string

	commits    atomic.Int64 // write transactions committed
	writes     atomic.Int64 // writing statements executed
	crashAt    atomic.Int64 // 0: never; else the write statement number that fails
	crashed    atomic.Bool
	crashWrite atomic.Int64 // writes counted when CrashAt was armed
	trace      atomic.Pointer[func(query string, args []any)]
}

// Trace calls f with every statement from now on (reads and writes,
// with their arguments) before it runs; nil stops. Tests that check a
// request's statements with EXPLAIN QUERY PLAN collect them this way.
func (p *Probe) Trace(f func(query string, args []any)) {
	if f == nil {
		p.trace.Store(nil)
		return
	}
	p.trace.Store(&f)
}

// Counts is a snapshot of a probe's counters.
type Counts struct {
	Commits int64 // write transactions committed (each one WAL fsync)
	Writes  int64 // writing statements executed
}

// Sub returns c − d: what happened between two snapshots.
func (c Counts) Sub(d Counts) Counts {
	return Counts{Commits: c.Commits - d.Commits, Writes: c.Writes - d.Writes}
}

// Counts returns the counters.
func (p *Probe) Counts() Counts {
	return Counts{Commits: p.commits.Load(), Writes: p.writes.Load()}
}

// CrashAt arms the probe: the nth writing statement from now (1: the
// next) fails, and so does everything after it.
func (p *Probe) CrashAt(n int64) {
	p.crashWrite.Store(p.writes.Load())
	p.crashAt.Store(n)
}

// Crashed reports whether the probe cut the database off.
func (p *Probe) Crashed() bool { return p.crashed.Load() }

// Path is the database file.
func (p *Probe) Path() string { return p.path }

// Open opens the SQLite database at path (a file name, or a DSN
// "sqlite:PATH?params" as connectors/sqlstore takes it) through a new
// probe, with the settings sqlstore.Open gives (WAL, synchronous=FULL,
// busy_timeout, foreign keys, BEGIN IMMEDIATE for read-write
// transactions) unless the DSN overrides them. It does not migrate.
// Closing the returned DB closes the database.
func Open(ctx context.Context, path string) (*sqlstore.DB, *Probe, error) {
	dsn := path
	if !strings.HasPrefix(dsn, "sqlite:") {
		dsn = "sqlite:" + path
	}
	cfg, err := sqlstore.ParseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Memory {
		return nil, nil, errors.New("sqlprobe: give a file, not :memory: (a crash test reopens it)")
	}
	file, _, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite:"), "?")
	p := &Probe{path: file}
	db := sqlstore.NewDB(sql.OpenDB(connector{p: p, name: cfg.DataSource}), sqlstore.SQLite)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlprobe: open %s: %w", file, err)
	}
	return db, p, nil
}

// FileBytes returns the bytes the database occupies once its WAL is
// checkpointed into it: (page_count − freelist_count) × page_size.
func FileBytes(ctx context.Context, db *sql.DB) (int64, error) {
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return 0, err
	}
	var pages, free, size int64
	for q, v := range map[string]*int64{`PRAGMA page_count`: &pages, `PRAGMA freelist_count`: &free, `PRAGMA page_size`: &size} {
		if err := db.QueryRowContext(ctx, q).Scan(v); err != nil {
			return 0, err
		}
	}
	return (pages - free) * size, nil
}

// WALBytes is the size of the database's WAL file now (0 when absent).
func (p *Probe) WALBytes() int64 {
	fi, err := os.Stat(p.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// isWrite classifies a statement by its first keyword.
func isWrite(query string) bool {
	q := strings.TrimSpace(query)
	for strings.HasPrefix(q, "--") { // a leading comment line
		if i := strings.IndexByte(q, '\n'); i >= 0 {
			q = strings.TrimSpace(q[i+1:])
		} else {
			return false
		}
	}
	i := strings.IndexFunc(q, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' })
	if i < 0 {
		i = len(q)
	}
	switch strings.ToUpper(q[:i]) {
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP":
		return true
	}
	return false
}

// write is called before a writing statement runs: it counts it and cuts
// the database off when armed for it.
func (p *Probe) write() error {
	if p.crashed.Load() {
		return ErrCrashed
	}
	n := p.writes.Add(1)
	if at := p.crashAt.Load(); at > 0 && n-p.crashWrite.Load() >= at {
		p.crashed.Store(true)
		return ErrCrashed
	}
	return nil
}

func (p *Probe) alive() error {
	if p.crashed.Load() {
		return ErrCrashed
	}
	return nil
}

type connector struct {
	p    *Probe
	name string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	if err := c.p.alive(); err != nil {
		return nil, err
	}
	inner, err := (&msqlite.Driver{}).Open(c.name)
	if err != nil {
		return nil, err
	}
	// The statement cache sqlstore.Open's connections have, so that what
	// a probe counts and cuts off is what runs in production.
	return &conn{p: c.p, inner: sqlite.CacheStatements(inner)}, nil
}

func (c connector) Driver() driver.Driver { return &msqlite.Driver{} }

// conn wraps one SQLite connection.
type conn struct {
	p     *Probe
	inner driver.Conn
	mu    sync.Mutex
	tx    *txn // the open transaction, if any
}

type txn struct {
	c     *conn
	inner driver.Tx
	wrote bool
}

func (c *conn) statement(query string, args []driver.NamedValue) error {
	if f := c.p.trace.Load(); f != nil {
		vs := make([]any, len(args))
		for i, a := range args {
			vs[i] = a.Value
		}
		(*f)(query, vs)
	}
	if !isWrite(query) {
		return c.p.alive()
	}
	if err := c.p.write(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != nil {
		c.tx.wrote = true
	} else {
		c.p.commits.Add(1) // autocommit
	}
	return nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, inner: s, query: query}, nil
}

func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.p.alive(); err != nil {
		return nil, err
	}
	t, err := c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	tx := &txn{c: c, inner: t}
	c.mu.Lock()
	c.tx = tx
	c.mu.Unlock()
	return tx, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.statement(query, args); err != nil {
		return nil, err
	}
	return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.statement(query, args); err != nil {
		return nil, err
	}
	return c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *conn) Ping(ctx context.Context) error {
	if err := c.p.alive(); err != nil {
		return err
	}
	return c.inner.(driver.Pinger).Ping(ctx)
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (t *txn) Commit() error {
	t.c.mu.Lock()
	t.c.tx = nil
	t.c.mu.Unlock()
	if err := t.c.p.alive(); err != nil {
		_ = t.inner.Rollback()
		return err
	}
	if err := t.inner.Commit(); err != nil {
		return err
	}
	if t.wrote {
		t.c.p.commits.Add(1)
	}
	return nil
}

func (t *txn) Rollback() error {
	t.c.mu.Lock()
	t.c.tx = nil
	t.c.mu.Unlock()
	return t.inner.Rollback()
}

type stmt struct {
	c     *conn
	inner driver.Stmt
	query string
}

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, fmt.Errorf("sqlprobe: Stmt.Exec without context is not supported")
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, fmt.Errorf("sqlprobe: Stmt.Query without context is not supported")
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.c.statement(s.query, args); err != nil {
		return nil, err
	}
	return s.inner.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.c.statement(s.query, args); err != nil {
		return nil, err
	}
	return s.inner.(driver.StmtQueryContext).QueryContext(ctx, args)
}
