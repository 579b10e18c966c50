package router_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/federation/store/sqlstore"
)

// TestApprovalPlansPostgres is TestApprovalCostAfterHistory's index check
// on PostgreSQL (KECIS §12.3): after 100,000 past approvals and ANALYZE,
// no statement an approval runs through either path reads one of the
// tables that grow with transactions sequentially (EXPLAIN of each, with
// its arguments). It skips without a server, and fails under CI=true.
func TestApprovalPlansPostgres(t *testing.T) {
	sqltest.RequirePostgres(t)
	t.Parallel() // seeding waits on the disk, or on PostgreSQL
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(sqltest.TestPostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &pgRecorder{}
	cfg.Tracer = rec
	db := &sqldb.DB{DB: stdlib.OpenDB(*cfg), Dialect: sqldb.Postgres}
	st, err := sqlstore.New(ctx, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixtureOn(t, st, 5*time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)
	c := &costFixture{fixture: f, st: st, p: p, dest: p.url}
	paths := []string{"soap", "facade"}
	for _, path := range paths {
		c.approve(t, path, "warm-up-"+path)
	}
	start := time.Now()
	seedHistoryPostgres(t, st, 100_000)
	t.Logf("100,000 past approvals seeded in %v", time.Since(start).Round(time.Millisecond))
	for _, path := range paths {
		rec.start()
		c.approve(t, path, "after-history-"+path)
		stmts := rec.stop()
		explained := 0
		for _, s := range stmts {
			if !strings.Contains(s.sql, "hub_") {
				continue
			}
			rows, err := db.QueryContext(ctx, "EXPLAIN "+s.sql, s.args...)
			if err != nil {
				t.Fatalf("EXPLAIN %s: %v", s.sql, err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			rows.Close()
			explained++
			for _, line := range plan {
				for _, table := range []string{"hub_idempotency", "hub_replay", "hub_audit"} {
					if strings.Contains(line, "Seq Scan on "+table+" ") || strings.HasSuffix(line, "Seq Scan on "+table) {
						t.Errorf("%s: %s\nreads %s whole:\n%s", path, s.sql, table, strings.Join(plan, "\n"))
					}
				}
			}
		}
		if explained < 5 {
			t.Fatalf("%s: %d statements explained", path, explained)
		}
	}
}

// pgRecorder records the statements pgx runs, with their arguments.
type pgRecorder struct {
	mu    sync.Mutex
	on    bool
	stmts []pgStatement
}

type pgStatement struct {
	sql  string
	args []any
}

func (r *pgRecorder) start() {
	r.mu.Lock()
	r.on, r.stmts = true, nil
	r.mu.Unlock()
}

func (r *pgRecorder) stop() []pgStatement {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.stmts
}

func (r *pgRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	if r.on {
		r.stmts = append(r.stmts, pgStatement{sql: data.SQL, args: data.Args})
	}
	r.mu.Unlock()
	return ctx
}

func (r *pgRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// seedHistoryPostgres is seedHistory on PostgreSQL, then ANALYZE. The
// tables' secondary indexes are dropped while it writes and built again
// after, exactly as the migrations defined them (pg_indexes), which is
// several times faster than maintaining them row by row.
func seedHistoryPostgres(tb testing.TB, st *sqlstore.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	rows, err := st.DB().QueryContext(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('hub_idempotency', 'hub_replay', 'hub_audit')
			AND indexname NOT LIKE '%\_pkey'`)
	if err != nil {
		tb.Fatal(err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			tb.Fatal(err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	if len(defs) < 5 {
		tb.Fatalf("%d secondary indexes found: %q", len(defs), names)
	}
	for _, name := range names {
		if _, err := st.DB().ExecContext(ctx, `DROP INDEX `+pgx.Identifier{name}.Sanitize()); err != nil {
			tb.Fatal(err)
		}
	}
	t0 := time.Now().Add(-48 * time.Hour)
	live := time.Now().Add(time.Hour)
	msg := []byte(strings.Repeat("<x>past message</x>", 20))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO hub_idempotency (scope, idem_key, fingerprint, state, lease_owner, lease_expires, request_id, attempts, created_at, updated_at)
			SELECT $1, 'past-' || lpad(i::text, 6, '0'), '\x6670'::bytea, 'done', '', $2::timestamptz + i * interval '1 second',
				'_reqpast-' || lpad(i::text, 6, '0'), 1, $2::timestamptz + i * interval '1 second', $2::timestamptz + i * interval '1 second'
			FROM generate_series(0, $3::int - 1) AS i`, []any{merchantID, t0, n}},
		{`INSERT INTO hub_replay (digest, expires)
			SELECT sha256(convert_to($1, 'UTF8') || '\x00'::bytea ||
					convert_to(CASE i % 2 WHEN 0 THEN '_reqpast-' ELSE '_resppast-' END || lpad((i / 2)::text, 6, '0'), 'UTF8')),
				CASE (i / 2) % 2 WHEN 0 THEN $3::timestamptz ELSE $2::timestamptz + (i / 2) * interval '1 second' + interval '6 minutes' END
			FROM generate_series(0, $4::int - 1) AS i`, []any{merchantID, t0, live, 2 * n}},
		{`INSERT INTO hub_audit_scopes (kind, actor, entity_id, tx_prefix)
			VALUES ('facade.request', $1, $2, $1), ('message.in', $1, $2, $1), ('message.out', $1, $2, $1)
			ON CONFLICT DO NOTHING`, []any{merchantID, issuerID}},
		{`INSERT INTO hub_audit (time, scope_id, tx_id, request_id, idempotency_key, detail, message)
			SELECT $1::timestamptz + (i / 4) * interval '1 second',
				(SELECT id FROM hub_audit_scopes WHERE actor = $2 AND entity_id = $3 AND tx_prefix = $2
					AND kind = CASE i % 4 WHEN 0 THEN 'facade.request' WHEN 2 THEN 'message.in' ELSE 'message.out' END),
				'', '_reqpast-' || lpad((i / 4)::text, 6, '0'), 'past-' || lpad((i / 4)::text, 6, '0'), '{}', $4
			FROM generate_series(0, $5::int - 1) AS i`, []any{t0, merchantID, issuerID, msg, 4 * n}},
	} {
		if _, err := st.DB().ExecContext(ctx, q.sql, q.args...); err != nil {
			tb.Fatalf("seeding: %v", err)
		}
	}
	for _, def := range append(defs, `ANALYZE hub_idempotency, hub_replay, hub_audit`) {
		if _, err := st.DB().ExecContext(ctx, def); err != nil {
			tb.Fatalf("%s: %v", def, err)
		}
	}
}
