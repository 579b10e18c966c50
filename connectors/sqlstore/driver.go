package sqlstore

import (
	"fmt"
	"sync"
)

// Driver links a dialect to its database/sql driver. The dialect's
// package registers it from its init, so that a program links the
// database drivers it imports and no other: import
// github.com/kecis/kecis/connectors/sqlstore/sqlite (modernc.org/sqlite)
// or github.com/kecis/kecis/connectors/sqlstore/postgres (pgx) for its side
// effect. Open refuses a DSN whose dialect no imported package registered.
type Driver struct {
	Dialect Dialect
	// Name is the database/sql driver name, sql.Open's first argument.
	Name string
	// CheckDSN validates a DSN of the dialect before it is opened; its
	// error must not reveal a password. nil: no check beyond ParseDSN's.
	CheckDSN func(dsn string) error
	// Retryable reports a transient conflict of this driver after which
	// the same transaction, run again, may succeed (see IsRetryable).
	Retryable func(err error) bool
	// UniqueViolation reports a unique or primary-key violation of this
	// driver (see IsUniqueViolation).
	UniqueViolation func(err error) bool
	// ConnLost reports that the database ended the connection, or that it
	// broke, so that nothing of a transaction it carried and had not
	// committed holds (see IsConnLost). nil: never.
	ConnLost func(err error) bool
	// Unavailable reports that the database cannot take the work for now —
	// unreachable, refusing writes, full — though the work itself is fine
	// (see IsUnavailable). nil: never, beyond ConnLost.
	Unavailable func(err error) bool
}

var (
	driversMu sync.RWMutex
	drivers   = map[Dialect]Driver{}
)

// Register makes a dialect's driver available to Open. It panics on an
// incomplete Driver or a second registration of a dialect: registration
// happens in an init, and a mistake there must stop the program.
func Register(d Driver) {
	if d.Dialect != SQLite && d.Dialect != Postgres {
		panic(fmt.Sprintf("sqlstore: Register of unknown dialect %q", d.Dialect))
	}
	if d.Name == "" || d.Retryable == nil || d.UniqueViolation == nil {
		panic(fmt.Sprintf("sqlstore: incomplete driver for %s", d.Dialect))
	}
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[d.Dialect]; dup {
		panic(fmt.Sprintf("sqlstore: driver for %s registered twice", d.Dialect))
	}
	drivers[d.Dialect] = d
}

// DriverOf returns the registered driver of a dialect.
func DriverOf(d Dialect) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	drv, ok := drivers[d]
	return drv, ok
}

// registered returns the registered drivers.
func registered() []Driver {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]Driver, 0, len(drivers))
	for _, d := range drivers {
		out = append(out, d)
	}
	return out
}

// dialectPackage names the package that registers a dialect, for the
// error of a program that did not import it.
func dialectPackage(d Dialect) string {
	return "github.com/kecis/kecis/connectors/sqlstore/" + string(d)
}
