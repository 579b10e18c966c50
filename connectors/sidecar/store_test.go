package sidecar

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
)

// TestOpenStoreByDSN: state.dsn chooses the adapter store — SQLite or
// PostgreSQL, both linked into the sidecar — and anything else is refused
// without its password. The database it returns (shared with the
// amountauth store) is the store's, of the DSN's dialect.
func TestOpenStoreByDSN(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{3}, 32)
	db, s, err := openStore(ctx, sqltest.TestSQLiteDSN(t), key)
	if err != nil {
		t.Fatalf("sqlite: %v", err)
	}
	if err := s.Ping(ctx); err != nil || db.Dialect != sqlstore.SQLite {
		t.Fatal(err, db.Dialect)
	}
	s.Close()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("the store's Close left the shared database open")
	}
	if _, _, err := openStore(ctx, "mysql://u:secret@h/db", key); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("mysql: %v", err)
	}
	sqltest.RequirePostgres(t)
	db, s, err = openStore(ctx, sqltest.TestPostgresDSN(t), key)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil || db.Dialect != sqlstore.Postgres {
		t.Fatal(err, db.Dialect)
	}
}
