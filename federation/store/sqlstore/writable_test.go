package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kecis/kecis/federation/store"
)

// TestWritable: the readiness check sees a database that refuses writes
// — PostgreSQL read-only (default_transaction_read_only), SQLite
// query_only or at its max_page_count — and a write the database refuses
// is an error store.IsUnavailable accepts, not an internal one.
func TestWritable(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		defer s.Close()
		s.DB().SetMaxOpenConns(1) // the settings below are the one connection's
		if err := s.Writable(ctx); err != nil {
			t.Fatalf("Writable on a fresh database: %v", err)
		}
		write := func() error {
			return s.AppendAudit(ctx, &store.AuditRecord{Time: t0, Kind: "message.in", Message: []byte("<x/>")})
		}
		if err := write(); err != nil {
			t.Fatal(err)
		}

		refuse, allow, want := `SET default_transaction_read_only = on`, `SET default_transaction_read_only = off`, "transaction_read_only"
		if strings.HasPrefix(dsn, "sqlite:") {
			refuse, allow, want = `PRAGMA query_only = ON`, `PRAGMA query_only = OFF`, "query_only"
		}
		if _, err := s.DB().ExecContext(ctx, refuse); err != nil {
			t.Fatal(err)
		}
		if err := s.Writable(ctx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Writable on a read-only database: %v, want an error naming %s", err, want)
		}
		if err := write(); err == nil || !store.IsUnavailable(err) {
			t.Errorf("a write the read-only database refuses: %v, want one store.IsUnavailable accepts", err)
		}
		if _, err := s.DB().ExecContext(ctx, allow); err != nil {
			t.Fatal(err)
		}
		if err := s.Writable(ctx); err != nil {
			t.Errorf("Writable once writes are allowed again: %v", err)
		}

		if strings.HasPrefix(dsn, "sqlite:") {
			// max_page_count cannot go below the file's size: set, it
			// stops the file where it is.
			if _, err := s.DB().ExecContext(ctx, `PRAGMA max_page_count = 1`); err != nil {
				t.Fatal(err)
			}
			var free int
			if err := s.DB().QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
				t.Fatal(err)
			}
			err := s.Writable(ctx)
			t.Logf("at max_page_count with %d free pages: %v", free, err)
			if free == 0 && (err == nil || !strings.Contains(err.Error(), "full")) {
				t.Errorf("Writable on a SQLite database at its max_page_count: %v, want it full", err)
			}
		}
	})
}
