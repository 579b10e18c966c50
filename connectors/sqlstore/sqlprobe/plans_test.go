package sqlprobe_test

import (
	"context"
	"testing"

	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
)

// TestScans: Record sees each statement with its arguments, and Scans
// reports a query that reads the table whole (by value of an unindexed
// column, or an aggregate), not one that searches the primary key.
func TestScans(t *testing.T) {
	ctx := context.Background()
	db, p := open(t)
	stop := p.Record()
	var v string
	_ = db.QueryRowContext(ctx, `SELECT v FROM t WHERE k = $1`, 7).Scan(&v)
	_ = db.QueryRowContext(ctx, `SELECT k FROM t WHERE v = $1`, "x").Scan(&v)
	if _, err := db.ExecContext(ctx, `INSERT INTO t (k, v) VALUES ($1, $2)`, 1, "a"); err != nil {
		t.Fatal(err)
	}
	stmts := stop()
	if len(stmts) != 3 || len(stmts[0].Args) != 1 || stmts[0].Args[0] != int64(7) {
		t.Fatalf("recorded %+v", stmts)
	}
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&v) // after stop: not recorded
	scans, err := sqlprobe.Scans(ctx, db.DB, stmts)
	if err != nil {
		t.Fatal(err)
	}
	if len(scans) != 1 || scans[0].Query != `SELECT k FROM t WHERE v = $1` || scans[0].Detail != "SCAN t" {
		t.Errorf("Scans = %+v, want the one by v", scans)
	}
}
