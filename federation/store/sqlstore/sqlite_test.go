package sqlstore_test

import (
	"context"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"testing"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/conformance"
	"github.com/kecis/kecis/federation/store/sqlstore"
)

func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", sqldb.RedactDSN(dsn), err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) store.Store {
		return openStore(t, sqltest.TestSQLiteDSN(t))
	})
}

func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) store.Store {
		return openStore(t, "sqlite::memory:")
	})
}

func TestSQLiteConcurrency(t *testing.T) {
	t.Parallel()
	conformance.RunConcurrencyTests(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := sqltest.TestSQLiteDSN(t)
		return openStore(t, dsn), openStore(t, dsn)
	})
}
