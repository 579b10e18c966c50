package sqlstore

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestOpenRefusesAnUnlinkedDialect: a program that did not import a
// dialect's package gets an error that names the package to import, not
// database/sql's "unknown driver".
func TestOpenRefusesAnUnlinkedDialect(t *testing.T) {
	driversMu.Lock()
	saved := drivers
	drivers = map[Dialect]Driver{}
	driversMu.Unlock()
	t.Cleanup(func() {
		driversMu.Lock()
		drivers = saved
		driversMu.Unlock()
	})
	for dsn, want := range map[string]string{
		"sqlite::memory:":                             `does not link the sqlite driver (import _ "github.com/kecis/kecis/connectors/sqlstore/sqlite")`,
		"postgres://u:secret@127.0.0.1:1/x":           `does not link the postgres driver (import _ "github.com/kecis/kecis/connectors/sqlstore/postgres")`,
		"postgresql://u:secret@127.0.0.1:1/x?a=b&c=d": "does not link the postgres driver",
	} {
		_, err := Open(context.Background(), dsn)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%s) = %v, want %q without the password", RedactDSN(dsn), err, want)
		}
	}
	// Without drivers no error is classified.
	if IsRetryable(errors.New("database is locked")) || IsUniqueViolation(errors.New("UNIQUE constraint failed")) {
		t.Error("an error classified without a driver")
	}
}

// TestRegisterRefusesMistakes: an incomplete driver, an unknown dialect
// and a second registration stop the program at start-up.
func TestRegisterRefusesMistakes(t *testing.T) {
	ok := func(error) bool { return false }
	for name, d := range map[string]Driver{
		"unknown dialect": {Dialect: "oracle", Name: "x", Retryable: ok, UniqueViolation: ok},
		"no name":         {Dialect: SQLite, Retryable: ok, UniqueViolation: ok},
		"no classifier":   {Dialect: SQLite, Name: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("accepted")
				}
			}()
			Register(d)
		})
	}
	driversMu.Lock()
	saved := drivers
	drivers = map[Dialect]Driver{}
	driversMu.Unlock()
	t.Cleanup(func() {
		driversMu.Lock()
		drivers = saved
		driversMu.Unlock()
	})
	Register(Driver{Dialect: Postgres, Name: "x", Retryable: ok, UniqueViolation: ok})
	defer func() {
		if recover() == nil {
			t.Error("a second registration accepted")
		}
	}()
	Register(Driver{Dialect: Postgres, Name: "y", Retryable: ok, UniqueViolation: ok})
}
