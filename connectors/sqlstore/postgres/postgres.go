// Package postgres links PostgreSQL into a program that opens databases
// with connectors/sqlstore: the database/sql driver of
// github.com/jackc/pgx/v5, registered as sqlstore's PostgreSQL dialect.
// Import it for its side effect:
//
//	import _ "github.com/kecis/kecis/connectors/sqlstore/postgres"
package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/kecis/kecis/connectors/sqlstore"
)

// PostgreSQL SQLSTATE codes this package recognises.
const (
	uniqueViolationCode      = "23505"
	serializationFailureCode = "40001"
	deadlockDetectedCode     = "40P01"
)

func init() {
	sqlstore.Register(sqlstore.Driver{
		Dialect: sqlstore.Postgres,
		Name:    "pgx",
		// pgconn redacts the password in its own errors.
		CheckDSN:        func(dsn string) error { _, err := pgconn.ParseConfig(dsn); return err },
		Retryable:       retryable,
		UniqueViolation: uniqueViolation,
	})
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
