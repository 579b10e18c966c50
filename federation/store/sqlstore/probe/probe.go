// Package probe opens the hub's store on SQLite through a database/sql
// driver that watches it, for the tests and benchmarks that measure what
// the hub writes (KECIS §12.3): it counts the write transactions that
// commit and the statements that write, and can cut the database off at
// the Nth write statement, the way a killed process stops between two
// writes.
//
// Counting. A transaction begun read-write that executed at least one
// writing statement (INSERT, UPDATE, DELETE, REPLACE, CREATE, ALTER, DROP)
// and committed is one write transaction; so is such a statement run
// outside a transaction (SQLite's autocommit). The store opens SQLite in
// WAL mode with synchronous=FULL (connectors/sqlstore), under which SQLite
// syncs the WAL once at every commit that wrote (https://sqlite.org/pragma.html#pragma_synchronous),
// so Commits is also the number of commit fsyncs. Checkpoints (SQLite's
// automatic one every 1000 WAL pages) add two syncs each — the WAL, then
// the database file — which the probe does not see; strace does.
//
// Crashing. Probe.CrashAt(n) makes the nth writing statement from then
// on, and every operation after it, fail with ErrCrashed: the transaction
// in progress rolls back, as its frames would be ignored after a real
// crash, and nothing is committed afterwards. Reopen the file with a
// plain store to see what survived.
package probe

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
	"testing"

	msqlite "modernc.org/sqlite"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/store/sqlstore"
)

// ErrCrashed is what every operation returns once the probe cut the
// database off.
var ErrCrashed = errors.New("probe: the writer was killed here")

// Probe watches one database.
type Probe struct {
	path string

	commits    atomic.Int64 // write transactions committed
	writes     atomic.Int64 // writing statements executed
	crashAt    atomic.Int64 // 0: never; else the write statement number that fails
	crashed    atomic.Bool
	crashWrite atomic.Int64 // writes counted when CrashAt was armed
}

// Counts is a snapshot of a probe's counters.
type Counts struct {
	Commits int64 // write transactions committed (each one WAL fsync)
	Writes  int64 // writing statements executed
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

// Open opens the hub's store on a SQLite file at path through a probe,
// with the settings sqlstore.Open gives (WAL, synchronous=FULL, immediate
// write transactions) and migrated; the store is closed when tb ends.
func Open(tb testing.TB, path string) (*sqlstore.Store, *Probe) {
	tb.Helper()
	cfg, err := sqldb.ParseDSN("sqlite:" + path)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Probe{path: path}
	db := &sqldb.DB{DB: sql.OpenDB(connector{p: p, name: cfg.DataSource}), Dialect: sqldb.SQLite}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	st, err := sqlstore.New(context.Background(), db)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st, p
}

// Reopen opens path again with a plain store (the restart after a crash);
// it is closed when tb ends.
func Reopen(tb testing.TB, path string) *sqlstore.Store {
	tb.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
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
	return &conn{p: c.p, inner: inner}, nil
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

func (c *conn) statement(query string) error {
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
	if err := c.statement(query); err != nil {
		return nil, err
	}
	return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.statement(query); err != nil {
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
	return nil, fmt.Errorf("probe: Stmt.Exec without context is not supported")
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, fmt.Errorf("probe: Stmt.Query without context is not supported")
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.c.statement(s.query); err != nil {
		return nil, err
	}
	return s.inner.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.c.statement(s.query); err != nil {
		return nil, err
	}
	return s.inner.(driver.StmtQueryContext).QueryContext(ctx, args)
}
