// Package postgres links PostgreSQL into a program that opens databases
// with connectors/sqlstore: the database/sql driver of
// github.com/jackc/pgx/v5, registered as sqlstore's PostgreSQL dialect.
// Import it for its side effect:
//
//	import _ "github.com/kecis/kecis/connectors/sqlstore/postgres"
package postgres

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/kecis/kecis/connectors/sqlstore"
)

// PostgreSQL SQLSTATE codes this package recognises.
const (
	uniqueViolationCode      = "23505"
	serializationFailureCode = "40001"
	deadlockDetectedCode     = "40P01"
	adminShutdownCode        = "57P01"
	crashShutdownCode        = "57P02"
	cannotConnectNowCode     = "57P03"
	readOnlyTransactionCode  = "25006"
	connectionExceptionClass = "08"
	insufficientResources    = "53" // disk full, out of memory, too many connections
)

func init() {
	sqlstore.Register(sqlstore.Driver{
		Dialect: sqlstore.Postgres,
		Name:    "pgx",
		// pgconn redacts the password in its own errors.
		CheckDSN:        func(dsn string) error { _, err := pgconn.ParseConfig(dsn); return err },
		Retryable:       retryable,
		UniqueViolation: uniqueViolation,
		ConnLost:        connLost,
		Unavailable:     unavailable,
	})
}

// connLost: the server ended the session (admin_shutdown — a restart or
// pg_terminate_backend —, crash_shutdown, cannot_connect_now), a
// connection exception (class 08), or the connection closed or broke
// under pgx.
func connLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case adminShutdownCode, crashShutdownCode, cannotConnectNowCode:
			return true
		}
		return strings.HasPrefix(pe.Code, connectionExceptionClass)
	}
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// unavailable: the server cannot be reached, refuses writes
// (read_only_sql_transaction: default_transaction_read_only, a standby) or
// lacks resources (class 53: disk full, out of memory, too many
// connections).
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == readOnlyTransactionCode || strings.HasPrefix(pe.Code, insufficientResources))
}

// retryable: a serialization failure or a deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == serializationFailureCode || pe.Code == deadlockDetectedCode)
}

func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolationCode
}
