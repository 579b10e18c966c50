// Package probe opens the hub's store on SQLite through
// connectors/sqlstore/sqlprobe, for the tests and benchmarks that measure
// what the hub writes per request and crash it between two writes
// (KECIS §12.3). Everything but the store is sqlprobe's.
package probe

import (
	"context"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/federation/store/sqlstore"
)

// Probe is sqlprobe's.
type Probe = sqlprobe.Probe

// Counts is sqlprobe's.
type Counts = sqlprobe.Counts

// ErrCrashed is what every operation returns once the probe cut the
// database off.
var ErrCrashed = sqlprobe.ErrCrashed

// FileBytes is sqlprobe.FileBytes.
var FileBytes = sqlprobe.FileBytes

// Open opens the hub's store on a SQLite file at path through a probe,
// migrated; the store is closed when tb ends.
func Open(tb testing.TB, path string) (*sqlstore.Store, *Probe) {
	tb.Helper()
	ctx := context.Background()
	db, p, err := sqlprobe.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := sqlstore.New(ctx, db)
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
