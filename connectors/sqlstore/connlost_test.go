package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
)

func TestConnLostClassification(t *testing.T) {
	lost := []error{
		&pgconn.PgError{Code: "57P01"}, &pgconn.PgError{Code: "57P02"}, &pgconn.PgError{Code: "57P03"},
		&pgconn.PgError{Code: "08006"}, &pgconn.PgError{Code: "08003"},
		fmt.Errorf("wrapped: %w", pgconn.ErrConnClosed), io.ErrUnexpectedEOF, driver.ErrBadConn,
	}
	for _, err := range lost {
		if !sqlstore.IsConnLost(err) || !sqlstore.IsUnavailable(err) || sqlstore.IsRetryable(err) {
			t.Errorf("%v: conn lost %v, unavailable %v, retryable %v; want true, true, false", err,
				sqlstore.IsConnLost(err), sqlstore.IsUnavailable(err), sqlstore.IsRetryable(err))
		}
	}
	refusing := []error{&pgconn.PgError{Code: "25006"}, &pgconn.PgError{Code: "53100"}, &pgconn.PgError{Code: "53300"},
		&pgconn.ConnectError{}, fmt.Errorf("x: %w", sqlstore.ErrCommitUnknown)}
	for _, err := range refusing {
		if sqlstore.IsConnLost(err) || !sqlstore.IsUnavailable(err) {
			t.Errorf("%v: conn lost %v, unavailable %v; want false, true", err, sqlstore.IsConnLost(err), sqlstore.IsUnavailable(err))
		}
	}
	for _, err := range []error{nil, errors.New("plain"), &pgconn.PgError{Code: "23505"}, &pgconn.PgError{Code: "42P01"}, &pgconn.PgError{Code: "40001"}} {
		if sqlstore.IsConnLost(err) || sqlstore.IsUnavailable(err) {
			t.Errorf("%v: conn lost %v, unavailable %v; want false", err, sqlstore.IsConnLost(err), sqlstore.IsUnavailable(err))
		}
	}
}

// TestRetryMarksUnavailable: Retry (so WriteTx and ReadTx) returns an
// unavailable error marked by the method a layer above recognises without
// importing this package; other errors unchanged.
func TestRetryMarksUnavailable(t *testing.T) {
	ctx := ctxFor(t)
	ro := &pgconn.PgError{Code: "25006"}
	err := sqlstore.Retry(ctx, func() error { return fmt.Errorf("insert: %w", ro) })
	var u interface{ Unavailable() bool }
	if !errors.As(err, &u) || !u.Unavailable() || !errors.Is(err, ro) {
		t.Errorf("read-only refusal through Retry: %v (%T), want it marked unavailable and wrapping the driver's error", err, err)
	}
	plain := errors.New("plain")
	if err := sqlstore.Retry(ctx, func() error { return plain }); err != plain {
		t.Errorf("plain error through Retry: %v (%T), want it unchanged", err, err)
	}
}

// TestSQLiteRefusedWriteIsUnavailable: a SQLite connection that refuses
// writes (query_only) fails WriteTx with an error IsUnavailable accepts.
func TestSQLiteRefusedWriteIsUnavailable(t *testing.T) {
	db := open(t, sqltest.TestSQLiteDSN(t))
	ctx := ctxFor(t)
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA query_only = ON`); err != nil {
		t.Fatal(err)
	}
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (1)`)
		return err
	})
	if err == nil || !sqlstore.IsUnavailable(err) || sqlstore.IsConnLost(err) {
		t.Errorf("write to a query_only SQLite: %v, want an unavailable refusal", err)
	}
}

// pgOneConn opens a fresh PostgreSQL schema through a pool of one
// connection, with table c, and an admin pool to end its sessions.
func pgOneConn(t *testing.T) (db *sqlstore.DB, admin *sql.DB) {
	t.Helper()
	dsn := sqltest.TestPostgresDSN(t)
	db = open(t, dsn)
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctxFor(t), `CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return db, admin
}

// terminate ends the backend pid from another connection, as an
// administrator or a restart does, and waits until it is gone.
func terminate(t *testing.T, admin *sql.DB, pid int) {
	t.Helper()
	ctx := ctxFor(t)
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond) // the backend exiting: no clock of ours to inject
	}
	t.Fatalf("backend %d still there after pg_terminate_backend", pid)
}

// TestWriteTxRetriedAfterTerminatedBackend: the server ends the
// connection in the middle of a transaction (57P01 admin_shutdown);
// WriteTx runs the transaction again, once, on a new connection, and it
// commits once.
func TestWriteTxRetriedAfterTerminatedBackend(t *testing.T) {
	db, admin := pgOneConn(t)
	ctx := ctxFor(t)
	runs := 0
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		runs++
		var pid int
		if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		if runs == 1 {
			terminate(t, admin, pid)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES ($1)`, runs)
		return err
	})
	if err != nil || runs != 2 {
		t.Fatalf("WriteTx across a terminated backend: %v after %d runs, want success after 2", err, runs)
	}
	var n, last int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(n) FROM c`).Scan(&n, &last); err != nil || n != 1 || last != 2 {
		t.Errorf("rows %d (last %d), %v; want the second run's alone", n, last, err)
	}

	// Twice in a row: retried once only, and the error says the database
	// is unavailable (not an internal error).
	runs = 0
	err = db.WriteTx(ctx, func(tx *sql.Tx) error {
		runs++
		var pid int
		if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		terminate(t, admin, pid)
		_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (9)`)
		return err
	})
	if err == nil || runs != 2 || !sqlstore.IsConnLost(err) || !sqlstore.IsUnavailable(err) || errors.Is(err, sqlstore.ErrCommitUnknown) {
		t.Errorf("WriteTx whose connection ends every time: %v after %d runs, want a lost connection after 2", err, runs)
	}
}

// TestWriteTxCommitUnknownNotRetried: the connection ends when COMMIT is
// sent: the outcome is unknown, so the transaction is not run again and
// the error wraps ErrCommitUnknown.
func TestWriteTxCommitUnknownNotRetried(t *testing.T) {
	db, admin := pgOneConn(t)
	ctx := ctxFor(t)
	runs := 0
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		runs++
		var pid int
		if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (1)`); err != nil {
			return err
		}
		terminate(t, admin, pid)
		return nil
	})
	if !errors.Is(err, sqlstore.ErrCommitUnknown) || runs != 1 || !sqlstore.IsUnavailable(err) {
		t.Fatalf("WriteTx whose COMMIT meets a terminated backend: %v after %d runs, want ErrCommitUnknown after 1", err, runs)
	}
	// The pool recovers: the next transaction runs on a new connection.
	if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(context.WithoutCancel(ctx), `INSERT INTO c VALUES (2)`)
		return err
	}); err != nil {
		t.Errorf("the next WriteTx: %v", err)
	}
}

// TestRetryReadAfterTerminatedBackend: a read outside a transaction on a
// pooled connection the server ended runs once more on a new connection
// with RetryRead; Retry, for statements that may write, does not.
func TestRetryReadAfterTerminatedBackend(t *testing.T) {
	db, admin := pgOneConn(t)
	ctx := ctxFor(t)
	pid := func() int {
		var pid int
		if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	count := func() error {
		var n int
		return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM c`).Scan(&n)
	}
	terminate(t, admin, pid())
	runs := 0
	if err := sqlstore.RetryRead(ctx, func() error { runs++; return count() }); err != nil || runs != 2 {
		t.Errorf("RetryRead across a terminated backend: %v after %d runs, want success after 2", err, runs)
	}
	terminate(t, admin, pid())
	runs = 0
	err := sqlstore.Retry(ctx, func() error { runs++; return count() })
	if err == nil || runs != 1 || !sqlstore.IsUnavailable(err) {
		t.Errorf("Retry across a terminated backend: %v after %d runs, want an unavailable error after 1", err, runs)
	}
}
