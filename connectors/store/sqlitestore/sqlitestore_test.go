package sqlitestore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/conformance"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
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

// TestOpen opens a working store by a SQLite DSN and refuses any other.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	s, err := sqlitestore.Open(ctx, sqliteDSN(t), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := s.Replay(func() time.Time { return now }).Remember(ctx, "https://a.example", "_1", now.Add(time.Minute)); err != nil {
		t.Fatalf("Remember: %v", err)
	}
	_, err = sqlitestore.Open(ctx, "postgres://u:secret@127.0.0.1:1/x", key)
	if err == nil || !strings.Contains(err.Error(), "not a SQLite DSN") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open(postgres DSN) = %v, want a refusal without the password", err)
	}
}
