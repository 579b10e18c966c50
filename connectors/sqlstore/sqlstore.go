// Package sqlstore is the neutral SQL plumbing of KECIS: it opens a database
// by DSN, knows the two dialects KECIS supports, runs versioned migrations,
// maps the drivers' errors, retries transient lock errors and converts times
// and bytes the same way for both dialects. It owns no table of its own
// except schema_migrations, and imports nothing of the project.
//
// Who imports it: the hub's store (federation/store/sqlstore), the adapter
// store of the SDK (connectors/store), and the simulated companies in
// examples/ (issuer, PG, telecom) for their own native databases. Neither
// the hub nor the SDK owns it. It is public, beside the SDK that providers
// link, rather than under internal/, because the examples model separate
// companies: they may import only what an outside participant could import,
// and a real PG or issuer may use it the same way. Its test helpers (a fresh
// PostgreSQL schema or SQLite file per test) are in sqlstore/sqltest, apart
// so that production binaries do not link the testing package; sqlstore/sqlprobe
// opens a SQLite file through a driver that counts write transactions
// (fsyncs) and statements and can cut the database off at the Nth write,
// for the benchmarks and crash tests of any program built on this package.
//
// Supported DSNs:
//
//	sqlite:PATH                 a database file (created if missing), e.g. sqlite:/var/lib/kecis/hub.db
//	sqlite::memory:             a private in-memory database (one connection)
//	sqlite:PATH?_synchronous=NORMAL   modernc.org/sqlite parameters override the defaults
//	postgres://user@host:5432/db?sslmode=disable   PostgreSQL through pgx (also postgresql://)
//
// This package links no database driver: a program imports the dialects
// it supports for their side effect, and Open refuses the others (see
// Driver):
//
//	import _ "github.com/kecis/kecis/connectors/sqlstore/sqlite"   // modernc.org/sqlite
//	import _ "github.com/kecis/kecis/connectors/sqlstore/postgres" // pgx
//
// so that a provider embedding the SDK with a SQLite adapter store does
// not carry the PostgreSQL driver, nor the reverse.
//
// SQLite runs through modernc.org/sqlite (pure Go, no cgo) with WAL,
// busy_timeout, foreign keys, synchronous=FULL and BEGIN IMMEDIATE for
// read-write transactions, so that writers queue on SQLite's lock instead of
// failing on a lock upgrade; each connection keeps the statements it runs
// prepared (sqlite.DriverName), so that a statement is parsed once per
// connection rather than on every run. Group commits the writes of
// concurrent callers on SQLite in shared transactions (one fsync per group;
// the adapter store and the hub's store use it). PostgreSQL runs through the
// database/sql driver of github.com/jackc/pgx/v5.
//
// Both dialects use $1, $2… placeholders: PostgreSQL natively, and
// modernc.org/sqlite binds $N to the N-th argument.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Dialect names a supported SQL dialect.
type Dialect string

const (
	// SQLite is modernc.org/sqlite, the embedded default.
	SQLite Dialect = "sqlite"
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5.
	Postgres Dialect = "postgres"
)

// DefaultBusyTimeout is how long a SQLite connection waits for another
// connection's lock before it reports SQLITE_BUSY.
const DefaultBusyTimeout = 10 * time.Second

// DB is an open database and its dialect. The embedded *sql.DB is safe for
// concurrent use; several DBs (in one process or several) may share one
// database, as hub replicas do.
type DB struct {
	*sql.DB
	Dialect Dialect
	// writers holds the one write transaction of this process at a time
	// on SQLite (see NewDB); nil: none (PostgreSQL).
	writers chan struct{}
}

// NewDB wraps an open database of dialect d, as Open does, for a program
// that opens its own connector (sqlprobe). On SQLite, which has one writer
// at a time, WriteTx queues this process's write transactions on a Go
// semaphore before BEGIN IMMEDIATE: a writer then starts as soon as the
// one before it commits, where SQLite's busy handler would poll for the
// lock after sleeping 1, 2, 5, 10… ms (under 16 concurrent approvals those
// sleeps, not the CPU, bounded the demo's throughput). Writers of other
// processes on the same file still wait in the busy handler.
func NewDB(sdb *sql.DB, d Dialect) *DB {
	db := &DB{DB: sdb, Dialect: d}
	if d == SQLite {
		db.writers = make(chan struct{}, 1)
	}
	return db
}

// Config is a parsed DSN.
type Config struct {
	Dialect Dialect
	// DataSource is what sql.Open receives (with the registered driver's
	// name, Driver.Name).
	DataSource string
	// Memory is true for sqlite::memory:.
	Memory bool
}

// sqliteDefaults are the modernc.org/sqlite parameters every SQLite
// connection gets unless the DSN sets them itself.
var sqliteDefaults = [][2]string{
	{"_busy_timeout", fmt.Sprint(DefaultBusyTimeout.Milliseconds())},
	{"_foreign_keys", "1"},
	{"_journal_mode", "WAL"},
	// FULL: a replay or idempotency record that was acknowledged survives
	// a power cut. NORMAL is faster and may be set in the DSN.
	{"_synchronous", "FULL"},
	// Read-write transactions take the write lock at BEGIN, so that two
	// writers never deadlock on a lock upgrade (SQLITE_BUSY without
	// waiting); read-only transactions (sql.TxOptions.ReadOnly) stay
	// deferred and never block writers under WAL.
	{"_txlock", "immediate"},
}

// ParseDSN parses a KECIS DSN (see the package documentation). A
// PostgreSQL DSN is checked further by the registered driver, when linked.
func ParseDSN(dsn string) (Config, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		rest := strings.TrimPrefix(dsn, "sqlite:")
		path, rawQuery, _ := strings.Cut(rest, "?")
		if path == "" {
			return Config{}, errors.New("sqlstore: sqlite DSN without a path (want sqlite:PATH or sqlite::memory:)")
		}
		if strings.HasPrefix(path, "file:") {
			return Config{}, errors.New("sqlstore: sqlite DSN: give a plain path, not a file: URI")
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return Config{}, fmt.Errorf("sqlstore: sqlite DSN parameters: %w", err)
		}
		memory := path == ":memory:"
		for _, kv := range sqliteDefaults {
			if memory && kv[0] == "_journal_mode" {
				continue // an in-memory database has no WAL
			}
			if _, ok := q[kv[0]]; !ok {
				q.Set(kv[0], kv[1])
			}
		}
		return Config{
			Dialect:    SQLite,
			DataSource: path + "?" + q.Encode(),
			Memory:     memory,
		}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if d, ok := DriverOf(Postgres); ok && d.CheckDSN != nil {
			if err := d.CheckDSN(dsn); err != nil {
				return Config{}, fmt.Errorf("sqlstore: postgres DSN: %w", err)
			}
		}
		return Config{Dialect: Postgres, DataSource: dsn}, nil
	default:
		return Config{}, fmt.Errorf("sqlstore: unsupported DSN %q (want sqlite:PATH, sqlite::memory: or postgres://…)", RedactDSN(dsn))
	}
}

// RedactDSN returns dsn with any password replaced, for logs and errors.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		if strings.Contains(dsn, "password") || strings.Contains(dsn, "@") {
			return "<unparsable DSN>"
		}
		return dsn
	}
	return u.Redacted()
}

// Open opens the database named by dsn, applies the connection settings of
// its dialect and checks that it is reachable. It does not migrate. The
// dialect's driver must be linked (see Driver).
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	drv, ok := DriverOf(cfg.Dialect)
	if !ok {
		return nil, fmt.Errorf("sqlstore: %s: this program does not link the %s driver (import _ %q)", RedactDSN(dsn), cfg.Dialect, dialectPackage(cfg.Dialect))
	}
	sdb, err := sql.Open(drv.Name, cfg.DataSource)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", RedactDSN(dsn), err)
	}
	db := NewDB(sdb, cfg.Dialect)
	switch {
	case cfg.Memory:
		// Every connection to ":memory:" is a separate database: keep
		// exactly one, forever.
		sdb.SetMaxOpenConns(1)
		sdb.SetMaxIdleConns(1)
		sdb.SetConnMaxLifetime(0)
		sdb.SetConnMaxIdleTime(0)
	case cfg.Dialect == SQLite:
		// Writers queue on SQLite's lock; readers run in parallel (WAL).
		n := max(4, runtime.GOMAXPROCS(0))
		sdb.SetMaxOpenConns(n)
		sdb.SetMaxIdleConns(n)
	default:
		sdb.SetMaxOpenConns(16)
		sdb.SetMaxIdleConns(16)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		sdb.SetConnMaxLifetime(time.Hour)
	}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("sqlstore: connect %s: %w", RedactDSN(dsn), err)
	}
	return db, nil
}

// Queryer is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type Queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Queryer = (*sql.DB)(nil)
	_ Queryer = (*sql.Conn)(nil)
	_ Queryer = (*sql.Tx)(nil)
)

// writeTxOptions: PostgreSQL READ COMMITTED is right for statements that
// decide with a row lock (UPDATE … WHERE version = $n, INSERT … ON
// CONFLICT): a waiting writer re-checks its WHERE clause on the row the
// winner committed. SQLite ignores the level; BEGIN IMMEDIATE serialises
// writers.
func (db *DB) writeTxOptions() *sql.TxOptions {
	if db.Dialect == Postgres {
		return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	return nil
}

// readTxOptions: one snapshot for several SELECTs.
func (db *DB) readTxOptions() *sql.TxOptions {
	if db.Dialect == Postgres {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return &sql.TxOptions{ReadOnly: true}
}

// WriteTx runs fn in a read-write transaction and commits it, retrying the
// whole transaction when the database reports a transient conflict
// (SQLITE_BUSY, a PostgreSQL serialization failure or deadlock); fn must
// therefore have no effect outside the transaction that a rerun would
// repeat wrongly. An error from fn rolls back and is returned unchanged.
//
// When the database ends the connection before the commit (IsConnLost: a
// restart, an administrator's pg_terminate_backend, a pooled connection it
// had closed), nothing of the transaction holds: it runs once more, on a
// new connection. When the connection ends after COMMIT was sent, the
// outcome is unknown: the error wraps ErrCommitUnknown and nothing is run
// again. Errors IsUnavailable accepts are returned as UnavailableError.
//
// On SQLite the process's write transactions run one at a time (NewDB):
// fn must not start another WriteTx on the same DB.
func (db *DB) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.inTx(ctx, db.writeTxOptions(), db.writers, fn)
}

// ReadTx runs fn in a read-only transaction that sees one snapshot.
func (db *DB) ReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.inTx(ctx, db.readTxOptions(), nil, fn)
}

// inTx runs fn in a transaction, holding a place in writers (when not nil)
// for each attempt.
func (db *DB) inTx(ctx context.Context, opts *sql.TxOptions, writers chan struct{}, fn func(tx *sql.Tx) error) error {
	reconnected := false
	return Retry(ctx, func() error {
		for {
			committing, err := db.tryTx(ctx, opts, writers, fn)
			switch {
			case err == nil || !IsConnLost(err):
				return err
			case committing:
				// COMMIT was sent: the transaction may hold. Running it
				// again could apply it twice.
				return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
			case !reconnected && ctx.Err() == nil:
				// The database ended the connection before the commit
				// (a restart, pg_terminate_backend, a pooled connection
				// it had closed): nothing holds; run it once more on a
				// new connection (database/sql drops the dead one).
				reconnected = true
			default:
				return err
			}
		}
	})
}

// tryTx runs fn in one transaction; committing reports that the error is
// the commit's, sent to the database.
func (db *DB) tryTx(ctx context.Context, opts *sql.TxOptions, writers chan struct{}, fn func(tx *sql.Tx) error) (committing bool, err error) {
	if writers != nil {
		select {
		case writers <- struct{}{}:
			defer func() { <-writers }()
		case <-ctx.Done():
			return false, fmt.Errorf("sqlstore: begin: %w", ctx.Err())
		}
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("sqlstore: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return true, fmt.Errorf("sqlstore: commit: %w", err)
	}
	return false, nil
}

// Time converts t to the value the dialect stores for a timestamp column:
// TIMESTAMPTZ on PostgreSQL, INTEGER Unix microseconds on SQLite. Both
// keep microseconds (PostgreSQL's precision), so t is truncated to them;
// the zero time.Time round-trips as the zero time.Time.
func (d Dialect) Time(t time.Time) any {
	t = t.Round(0).UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.UnixMicro()
	}
	return t
}

// ScanTime returns a sql.Scanner that reads a column written with
// Dialect.Time into *dst, in UTC.
func ScanTime(dst *time.Time) sql.Scanner { return timeScanner{dst} }

type timeScanner struct{ dst *time.Time }

func (s timeScanner) Scan(v any) error {
	var t time.Time
	switch x := v.(type) {
	case int64:
		t = time.UnixMicro(x)
	case time.Time:
		t = x
	case nil:
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	t = t.UTC()
	if t.IsZero() {
		t = time.Time{}
	}
	*s.dst = t
	return nil
}

// Bytes returns b, or an empty non-nil slice for nil, so that a NOT NULL
// BLOB/BYTEA column receives an empty value rather than NULL.
func Bytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
