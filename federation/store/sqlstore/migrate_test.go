package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/federation/store"
)

var migrateT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// openAtVersion opens dsn with the hub's migrations applied up to version.
func openAtVersion(t *testing.T, dsn string, version int) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms, err := sqldb.LoadMigrations(migrations, path.Join("migrations", string(db.Dialect)))
	if err != nil {
		t.Fatal(err)
	}
	var upTo []sqldb.Migration
	for _, m := range ms {
		if m.Version <= version {
			upTo = append(upTo, m)
		}
	}
	if _, err := db.Migrate(ctx, Component, upTo); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestMigrateFromVersion4: a database written by the schema of version 4
// (replay records by issuer and ID in clear; audit records repeating
// their kind, actor, entity and transaction ID, their messages raw or
// compressed without their detail) is migrated to the compact rows of
// versions 5 and 6 (KECIS §12.3) with nothing lost: a message remembered
// before is still refused while its record lives, every audit record reads
// back as it was written — detail, message bytes and transaction ID — and
// is found by each filter, IDs keep increasing past the old sequence, and
// the log is still append-only.
func TestMigrateFromVersion4(t *testing.T) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return sqltest.TestSQLiteDSN(t) }},
		{"postgres", func(t *testing.T) string { return sqltest.TestPostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testMigrateFromVersion4(t, b.dsn(t))
		})
	}
}

func testMigrateFromVersion4(t *testing.T, dsn string) {
	ctx := context.Background()
	db := openAtVersion(t, dsn, 4)
	ts := db.Dialect.Time
	const (
		hub    = "https://hub.example/kecis"
		pg     = "https://pg.example/kecis"
		issuer = "https://issuer.example/kecis"
		shop   = "https://shop.example/kecis"
	)
	// The replay cache: one record live at migrateT0, one expired.
	for _, r := range []struct {
		id      string
		expires time.Time
	}{{"_live", migrateT0.Add(time.Hour)}, {"_gone", migrateT0.Add(-time.Minute)}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO hub_replay (issuer, message_id, expires) VALUES ($1, $2, $3)`,
			pg, r.id, ts(r.expires)); err != nil {
			t.Fatal(err)
		}
	}
	// The audit log, as version 4 wrote it.
	long := func(id string) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, `<kecis:ServiceRequest xmlns:kecis="urn:kecis:protocol:1.0" ID="%s">`, id)
		for j := range 30 {
			fmt.Fprintf(&b, "<f n=\"%d\">%s</f>\n", j, strings.Repeat(id, 3))
		}
		b.WriteString("</kecis:ServiceRequest>")
		return b.Bytes()
	}
	dictData := long("_dict")
	d := newDict("message.in "+pg+" "+issuer, dictData)
	var dictID int64
	if err := db.QueryRowContext(ctx, `INSERT INTO hub_audit_dicts (sha256, scope, dict, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		d.sum[:], d.scope, d.data, ts(migrateT0)).Scan(&dictID); err != nil {
		t.Fatal(err)
	}
	want := []*store.AuditRecord{
		{Kind: "facade.request", Actor: shop, EntityID: shop, TxID: hub + "|order-1", RequestID: "_f1", IdempotencyKey: "order-1",
			Detail: `{"auth_method":"api-key"}`, Message: long("_f1")},
		{Kind: "message.out", Actor: hub, EntityID: pg, TxID: hub + "|order-1", RequestID: "_f1", IdempotencyKey: "order-1",
			Detail: `{"status":"Success"}`, Message: long("_f1-answer")},
		{Kind: "message.in", Actor: pg, EntityID: issuer, TxID: pg + "|a|b", RequestID: "_p1", IdempotencyKey: "a|b",
			Detail: `{"service":"approve"}`, Message: long("_p1")},
		{Kind: "message.in", Actor: pg, EntityID: issuer, TxID: "_p2", RequestID: "_p2", Detail: `{}`, Message: long("_p2")},
		{Kind: "message.hub", Actor: hub, RequestID: "_p3", Detail: `{"status":"Requester"}`, Message: []byte("<short/>")},
		{Kind: "participant.approve", Actor: "operator:kim", EntityID: pg, Detail: `{"version":2}`},
	}
	for i, r := range want {
		r.Time = migrateT0.Add(time.Duration(i) * time.Second)
		codec, data, dict := codecRaw, r.Message, any(nil)
		if r.Kind == "message.in" { // compressed, as version 3 and 4 stored them
			codec, data, dict = codecZlib, d.compress(r.Message), dictID
		}
		if data == nil {
			data = []byte{}
		}
		if err := db.QueryRowContext(ctx, `INSERT INTO hub_audit
			(time, kind, actor, entity_id, tx_id, request_id, idempotency_key, detail, message, codec, dict_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			ts(r.Time), r.Kind, r.Actor, r.EntityID, r.TxID, r.RequestID, r.IdempotencyKey, r.Detail, data, codec, dict).Scan(&r.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The sequence may be past the last record kept (records archived).
	const seq = 1000
	if db.Dialect == sqldb.SQLite {
		if _, err := db.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = $1 WHERE name = 'hub_audit'`, seq); err != nil {
			t.Fatal(err)
		}
	} else if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('hub_audit', 'id'), $1)`, seq); err != nil {
		t.Fatal(err)
	}

	s, err := New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := db.AppliedVersions(ctx, Component); err != nil || len(vs) < 6 {
		t.Fatalf("versions applied: %v, %v", vs, err)
	}
	if db.Dialect == sqldb.SQLite {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'hub_replay_v4'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("hub_replay_v4 left behind: %d, %v", n, err)
		}
	}

	if err := s.RememberMessage(ctx, pg, "_live", migrateT0.Add(2*time.Hour), migrateT0); !errors.Is(err, store.ErrAlreadySeen) {
		t.Errorf("a message remembered before the migration, again: %v, want ErrAlreadySeen", err)
	}
	if err := s.RememberMessage(ctx, pg, "_gone", migrateT0.Add(time.Hour), migrateT0); err != nil {
		t.Errorf("a message whose record expired before the migration: %v", err)
	}

	check := func(what string, f store.AuditFilter, want []*store.AuditRecord) {
		t.Helper()
		got, err := s.ListAudit(ctx, f)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
		}
		for i, r := range got {
			w := want[i]
			if r.ID != w.ID || !r.Time.Equal(w.Time) || r.Kind != w.Kind || r.Actor != w.Actor || r.EntityID != w.EntityID ||
				r.TxID != w.TxID || r.RequestID != w.RequestID || r.IdempotencyKey != w.IdempotencyKey || r.Detail != w.Detail ||
				!bytes.Equal(r.Message, w.Message) {
				t.Errorf("%s, record %d:\n got %+v\nwant %+v", what, i, r, w)
			}
		}
	}
	check("all", store.AuditFilter{}, want)
	check("the facade's transaction", store.AuditFilter{TxID: hub + "|order-1"}, want[:2])
	check("a key holding a |", store.AuditFilter{TxID: pg + "|a|b"}, want[2:3])
	check("a request ID as the transaction", store.AuditFilter{TxID: "_p2"}, want[3:4])
	check("by request", store.AuditFilter{RequestID: "_p3"}, want[4:5])
	check("by entity and kind", store.AuditFilter{EntityID: issuer, Kind: "message.in"}, want[2:4])
	check("by kind", store.AuditFilter{Kind: "participant.approve"}, want[5:])

	// New records after the old ones, past the old sequence, read back.
	next := &store.AuditRecord{Time: migrateT0.Add(time.Minute), Kind: "message.in", Actor: pg, EntityID: issuer,
		TxID: pg + "|order-2", RequestID: "_p4", IdempotencyKey: "order-2", Detail: `{"service":"approve"}`, Message: long("_p4")}
	if err := s.AppendAudit(ctx, next); err != nil {
		t.Fatal(err)
	}
	if next.ID <= seq {
		t.Errorf("the first record after the migration has ID %d, not past the old sequence %d", next.ID, seq)
	}
	check("by entity and kind, with the new record", store.AuditFilter{EntityID: issuer, Kind: "message.in"}, append(want[2:4:4], next))
	if _, err := db.ExecContext(ctx, `UPDATE hub_audit SET detail = 'forged' WHERE id = $1`, want[0].ID); err == nil ||
		!strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of a migrated record: %v, want refused", err)
	}
	// A restart (or another replica) migrates nothing more.
	s2, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.ListAudit(ctx, store.AuditFilter{TxID: hub + "|order-1"})
	if err != nil || len(got) != 2 || !bytes.Equal(got[0].Message, want[0].Message) {
		t.Errorf("after a restart: %d records, %v", len(got), err)
	}
}

// TestAuditRowsCompact: what the hub stores for an audit record
// (KECIS §12.3): a message long enough is stored zlib-compressed with its
// detail (codec 2, the detail column empty), a transaction ID of the form
// Issuer|IdempotencyKey is not stored (its scope's prefix gives it), and
// the records of one exchange share one scope row.
func TestAuditRowsCompact(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := bytes.Repeat([]byte("<kecis:Field>value</kecis:Field>\n"), 40)
	for i := range 3 {
		r := &store.AuditRecord{Time: migrateT0, Kind: "message.in", Actor: "https://pg.example", EntityID: "https://issuer.example",
			TxID: fmt.Sprintf("https://pg.example|k%d", i), RequestID: fmt.Sprintf("_r%d", i), IdempotencyKey: fmt.Sprintf("k%d", i),
			Detail: `{"service":"urn:kecis:service:card:approve"}`, Message: msg}
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.DB().QueryContext(ctx, `SELECT codec, detail, tx_id, scope_id, length(message) FROM hub_audit ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	scopes := map[int64]bool{}
	for rows.Next() {
		var (
			codec         int
			detail, txID  string
			scope, length int64
		)
		if err := rows.Scan(&codec, &detail, &txID, &scope, &length); err != nil {
			t.Fatal(err)
		}
		if codec != codecZlibDetail || detail != "" || txID != "" || length >= int64(len(msg))/4 {
			t.Errorf("row: codec %d, detail %q, tx_id %q, message %d bytes of %d", codec, detail, txID, length, len(msg))
		}
		scopes[scope] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(scopes) != 1 {
		t.Errorf("%d scopes for the records of one exchange", len(scopes))
	}
}
