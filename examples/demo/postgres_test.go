package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
)

// TestDemoOnPostgres: Config.Postgres (kecis-demo --postgres) puts the
// hub's tables in PostgreSQL — in the directory's own schema when the DSN
// names no search_path, created on first run and found again on the next
// — and none in a hub.db; a card approval goes through the hub on it;
// a DSN that is not postgres:// is refused before anything starts.
func TestDemoOnPostgres(t *testing.T) {
	base := withoutSearchPath(t, sqltest.TestPostgresDSN(t))
	ctx := context.Background()
	dir := t.TempDir()
	schema := PostgresSchema(dir)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})

	for run := 1; run <= 2; run++ {
		d, err := Start(ctx, Config{Dir: dir, RelayTimeout: 3 * time.Second, Postgres: base, Tester: false})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if dsn := d.Hub.Config.Database.DSN; !strings.Contains(dsn, "search_path="+schema) {
			d.Close()
			t.Fatalf("run %d: the hub's DSN %s, want search_path=%s", run, dsn, schema)
		}
		c := d.Cards[0]
		o, err := d.Merchants[0].Client.Approve(ctx, PGID, &card.ApproveRequest{OrderID: fmt.Sprintf("pg-run-%d", run), Amount: krw(1000 + int64(run)),
			Card: card.Card{Number: c.PAN, ExpMonth: fmt.Sprintf("%02d", c.ExpMonth), ExpYear: fmt.Sprint(c.ExpYear)}, IdempotencyKey: fmt.Sprintf("pg-run-%d", run)})
		d.Close()
		if err != nil || !o.OK() {
			t.Fatalf("run %d: approve through the hub on PostgreSQL: %v %+v", run, err, o)
		}
	}
	var participants, audit int
	if err := admin.QueryRow(`SELECT count(*) FROM ` + schema + `.hub_participants`).Scan(&participants); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(`SELECT count(*) FROM ` + schema + `.hub_audit a JOIN ` + schema + `.hub_audit_scopes s ON s.id = a.scope_id
		WHERE s.kind = 'message.in'`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	// Seven participants (issuer, PG, two merchants, two banks, the
	// telecom), registered once; two approvals, each two messages in
	// (merchant → PG, PG → issuer).
	if participants != 7 || audit < 4 {
		t.Fatalf("schema %s: %d participants, %d messages in; want 7 and ≥ 4", schema, participants, audit)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub", "hub.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a hub.db beside the PostgreSQL store: %v", err)
	}

	if _, err := Start(ctx, Config{Dir: t.TempDir(), Postgres: "mysql://root@127.0.0.1/kecis"}); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("a DSN that is not postgres://: %v", err)
	}
}

// withoutSearchPath is dsn with its search_path parameter removed.
func withoutSearchPath(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}
