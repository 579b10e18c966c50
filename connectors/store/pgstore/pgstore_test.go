package pgstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/conformance"
	"github.com/kecis/kecis/connectors/store/pgstore"
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

// TestOpen refuses a SQLite DSN, and opens a working store by a
// PostgreSQL one.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	if _, err := pgstore.Open(ctx, "sqlite::memory:", key); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL DSN") {
		t.Fatalf("Open(sqlite DSN) = %v, want a refusal", err)
	}
	sqltest.RequirePostgres(t)
	s, err := pgstore.Open(ctx, postgresDSN(t), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := s.Replay(func() time.Time { return now }).Remember(ctx, "https://a.example", "_1", now.Add(time.Minute)); err != nil {
		t.Fatalf("Remember: %v", err)
	}
}
