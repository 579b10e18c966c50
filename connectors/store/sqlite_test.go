package store_test

import (
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/conformance"
)

func sqliteDSN(t *testing.T) string { return sqltest.TestSQLiteDSN(t) }

func TestSQLite(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, sqliteDSN)
}

func TestSQLiteConcurrency(t *testing.T) {
	t.Parallel()
	conformance.RunConcurrencyTests(t, sqliteDSN)
}
