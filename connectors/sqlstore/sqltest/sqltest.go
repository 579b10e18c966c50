// Package sqltest provides DB-backed test helpers: a fresh PostgreSQL
// schema per test (skipped on a laptop without PostgreSQL, failing under
// CI=true) and a temporary SQLite file. It is kept apart from sqlstore so
// that production binaries do not link the testing package. It links both
// dialects' drivers, so that a test using it may open either.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the test databases of both dialects
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/internal/testutil"
)

// EnvTestPostgresDSN names the environment variable that points DB-backed
// tests at a PostgreSQL server.
const EnvTestPostgresDSN = "KECIS_TEST_POSTGRES_DSN"

// DefaultTestPostgresDSN is the local server the tests use when
// EnvTestPostgresDSN is unset (trust authentication, database "test").
const DefaultTestPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// TestPostgresDSN returns a DSN for a fresh schema of its own on the test
// PostgreSQL server (EnvTestPostgresDSN, else DefaultTestPostgresDSN): the
// schema is created now, named uniquely, selected through search_path in
// the returned DSN, and dropped with everything in it when the test ends.
// Each call gives a new schema, so tests may run in parallel.
//
// When the server is unreachable the test is skipped with a message that
// says how to provide one; under CI=true it fails instead, because CI must
// run the PostgreSQL backend.
func TestPostgresDSN(t testing.TB) string {
	t.Helper()
	base, admin := connectTestPostgres(t)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random schema name: %v", err)
	}
	schema := "kecis_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create test schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", sqlstore.RedactDSN(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestSQLiteDSN returns a DSN for a fresh SQLite database file in the
// test's temporary directory, removed when the test ends. Several Open
// calls with it reach the same database, as hub replicas would.
func TestSQLiteDSN(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// RequirePostgres skips the test (fails it under CI=true) unless the test
// PostgreSQL server is reachable; call it first in a test whose subtests
// all need the server, to skip once with one message.
func RequirePostgres(t testing.TB) {
	t.Helper()
	_, admin := connectTestPostgres(t)
	admin.Close()
}

// connectTestPostgres returns the base test DSN and a connected pool to
// it, or skips (fails under CI=true) when the server is unreachable.
func connectTestPostgres(t testing.TB) (string, *sql.DB) {
	t.Helper()
	base := os.Getenv(EnvTestPostgresDSN)
	if base == "" {
		base = DefaultTestPostgresDSN
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %s", EnvTestPostgresDSN, sqlstore.RedactDSN(base))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		msg := "PostgreSQL at " + sqlstore.RedactDSN(base) + " is unreachable (" + err.Error() + "); start it " +
			"(pg_ctlcluster <version> main start) or set " + EnvTestPostgresDSN
		if testutil.CI() {
			t.Fatalf("%s; CI=true requires the PostgreSQL backend tests to run", msg)
		}
		t.Skip(msg)
	}
	return base, admin
}
