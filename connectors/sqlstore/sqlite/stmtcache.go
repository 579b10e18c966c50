package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"

	_ "modernc.org/sqlite" // the "sqlite" driver this one wraps
)

// DriverName is the database/sql driver this package registers and
// sqlstore.Open uses for SQLite: modernc.org/sqlite with a cache of
// prepared statements per connection.
const DriverName = "kecis-sqlite"

// StmtCacheSize is how many prepared statements each connection keeps, the
// least recently used dropped first. A program's statements are a fixed
// set of constant strings, well under this; the bound keeps a program that
// builds its SQL (an IN list of varying length) from growing without end.
const StmtCacheSize = 128

func init() {
	// The driver instance modernc.org/sqlite registered as "sqlite", not
	// a new one: its connection hooks (sqlite.RegisterConnectionHook) are
	// that instance's.
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err)
	}
	base := db.Driver()
	_ = db.Close()
	sql.Register(DriverName, cachingDriver{base: base})
}

// cachingDriver is modernc.org/sqlite whose connections keep their prepared
// statements. modernc.org/sqlite prepares (parses and plans) every
// statement that database/sql runs on a connection without db.Prepare, and
// finalizes it afterwards; in the demo federation parsing SQL was 15 % of
// the CPU of an approval. A cached statement is reset and its bindings
// cleared after every use (modernc's own reuse path for prepared
// statements), so one run leaves nothing to the next; SQLite recompiles a
// statement whose schema changed (sqlite3_prepare_v2).
type cachingDriver struct{ base driver.Driver }

func (d cachingDriver) Open(name string) (driver.Conn, error) {
	inner, err := d.base.Open(name)
	if err != nil {
		return nil, err
	}
	return CacheStatements(inner), nil
}

// CacheStatements wraps a modernc.org/sqlite connection so that it keeps
// the statements run on it through ExecContext and QueryContext prepared,
// up to StmtCacheSize of them (what the registered driver does; for
// programs that open connections themselves, like sqlprobe). inner must
// implement driver.ConnPrepareContext, ExecerContext, QueryerContext and
// ConnBeginTx, as modernc's connections do.
func CacheStatements(inner driver.Conn) driver.Conn {
	return &cachingConn{inner: inner, stmts: map[string]*list.Element{}, lru: list.New()}
}

// cachingConn is one connection and its statements. database/sql uses a
// connection from one goroutine at a time, so it needs no lock.
type cachingConn struct {
	inner driver.Conn
	stmts map[string]*list.Element // of *cachedStmt, by query
	lru   *list.List               // most recently used first
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	// busy: rows of this statement are open (a query run again while its
	// earlier rows are read is prepared apart); evicted: dropped from the
	// cache while busy, closed when its rows close.
	busy, evicted bool
}

// errUncached is an internal signal: run the statement uncached.
var errUncached = errors.New("sqlite: statement not cached")

// get returns the cached statement for query, preparing it on a miss; it
// returns errUncached when the statement is in use by open rows.
func (c *cachingConn) get(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, errUncached
		}
		c.lru.MoveToFront(e)
		return cs, nil
	}
	s, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: s}
	c.stmts[query] = c.lru.PushFront(cs)
	for c.lru.Len() > StmtCacheSize {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.stmts, old.query)
		if old.busy {
			old.evicted = true
		} else {
			_ = old.stmt.Close()
		}
	}
	return cs, nil
}

// drop closes a statement whose run failed, and forgets it: whatever state
// a failure left in it, the next run prepares the query afresh.
func (c *cachingConn) drop(cs *cachedStmt) {
	if e, ok := c.stmts[cs.query]; ok && e.Value == cs {
		c.lru.Remove(e)
		delete(c.stmts, cs.query)
	}
	_ = cs.stmt.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.get(ctx, query)
	if errors.Is(err, errUncached) {
		return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	if err != nil {
		return nil, err
	}
	res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if err != nil {
		c.drop(cs)
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.get(ctx, query)
	if errors.Is(err, errUncached) {
		return c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	if err != nil {
		return nil, err
	}
	r, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.drop(cs)
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: r, cs: cs}, nil
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext is db.Prepare's: the caller owns and closes the statement,
// so it is not the cache's.
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		_ = e.Value.(*cachedStmt).stmt.Close()
	}
	c.lru.Init()
	clear(c.stmts)
	return c.inner.Close()
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows releases its statement back to the cache when closed.
type cachedRows struct {
	driver.Rows
	cs     *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.cs.busy = false
		if r.cs.evicted {
			_ = r.cs.stmt.Close()
		}
	}
	return err
}

// The column type methods database/sql's ColumnTypes looks for, forwarded.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
