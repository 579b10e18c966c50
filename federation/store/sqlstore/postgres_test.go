package sqlstore_test

import (
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"testing"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/conformance"
)

// The PostgreSQL tests run against KECIS_TEST_POSTGRES_DSN (default: the
// local server), one fresh schema per store; they skip when the server is
// unreachable, and fail under CI=true.

func TestPostgres(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) store.Store {
		return openStore(t, sqltest.TestPostgresDSN(t))
	})
}

func TestPostgresConcurrency(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Parallel()
	conformance.RunConcurrencyTests(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := sqltest.TestPostgresDSN(t)
		return openStore(t, dsn), openStore(t, dsn)
	})
}
