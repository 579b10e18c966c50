package store_test

import (
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/conformance"
)

// The PostgreSQL tests run against KECIS_TEST_POSTGRES_DSN (default: the
// local server), one fresh schema per subtest; they skip when the server
// is unreachable, and fail under CI=true.

func postgresDSN(t *testing.T) string { return sqltest.TestPostgresDSN(t) }

func TestPostgres(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Parallel()
	conformance.RunTests(t, postgresDSN)
}

func TestPostgresConcurrency(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Parallel()
	conformance.RunConcurrencyTests(t, postgresDSN)
}
