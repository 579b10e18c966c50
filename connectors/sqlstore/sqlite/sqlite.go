// Package sqlite links SQLite into a program that opens databases with
// connectors/sqlstore: modernc.org/sqlite (pure Go, no cgo), with a cache
// of prepared statements per connection (DriverName), registered as
// sqlstore's SQLite dialect. Import it for its side effect:
//
//	import _ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
package sqlite

import (
	"errors"

	msqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kecis/kecis/connectors/sqlstore"
)

func init() {
	sqlstore.Register(sqlstore.Driver{
		Dialect:         sqlstore.SQLite,
		Name:            DriverName,
		Retryable:       retryable,
		UniqueViolation: uniqueViolation,
		Unavailable:     unavailable,
	})
}

// unavailable: the database file refuses writes (SQLITE_READONLY), is
// full (SQLITE_FULL: the disk, or max_page_count), cannot be opened, or
// the disk failed (SQLITE_IOERR).
func unavailable(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR:
			return true
		}
	}
	return false
}

// retryable: SQLITE_BUSY or SQLITE_LOCKED (busy_timeout ran out, or a
// deferred transaction could not upgrade its lock).
func retryable(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

func uniqueViolation(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
