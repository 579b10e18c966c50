package loadtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance/loadtest"
	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
	"github.com/kecis/kecis/examples/demo"
)

// maxHubBytesPerApproval is issue 15's bound on what the hub stores per
// card approval: the audit log kept for good plus the idempotency and
// replay rows held within their retention (KECIS §12.3).
const maxHubBytesPerApproval = 4096

// TestHubStoragePerApproval: a card approval through the demo federation
// (the merchant's facade call relayed to the PG, the PG's SOAP request
// relayed to the issuer) costs the hub's database at most 4 KB — measured
// as the report measures it (sqlprobe.MeasureSQLite: hub.db after a
// checkpoint, the WAL excluded, page by page with dbstat), over approvals
// driven by the load generator after a warm-up that made each audit
// scope's dictionary.
func TestHubStoragePerApproval(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a few hundred approvals through the demo")
	}
	ctx := context.Background()
	dir := t.TempDir()
	d, err := demo.Start(ctx, demo.Config{Dir: dir, RelayTimeout: 5 * time.Second, AllowClearCard: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	target, err := loadtest.ReadDemo(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int, seed uint64) int {
		t.Helper()
		sum, err := loadtest.Run(ctx, target, loadtest.Options{Requests: n, Concurrency: 4, Seed: seed,
			Mix: loadtest.Mix{Approve: 1}, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Clean() || len(sum.Errors) != 0 || sum.Approvals != n {
			t.Fatalf("%d approvals of %d, errors %v, reconciliation %+v", sum.Approvals, n, sum.Errors, sum.Reconciliation)
		}
		return sum.Approvals
	}
	hubDB := filepath.Join(dir, "hub", "hub.db")
	run(20, 1) // both merchants' scopes: the dictionaries, the metadata snapshots
	before, err := sqlprobe.MeasureSQLite(ctx, hubDB)
	if err != nil {
		t.Fatal(err)
	}
	n := run(400, 2)
	after, err := sqlprobe.MeasureSQLite(ctx, hubDB)
	if err != nil {
		t.Fatal(err)
	}
	grew := after.Sub(before)
	per := func(b int64) float64 { return float64(b) / float64(n) }
	var split []string
	for _, tb := range slices.Sorted(func(yield func(string) bool) {
		for k := range grew.Tables {
			if !yield(k) {
				return
			}
		}
	}) {
		split = append(split, fmt.Sprintf("%s %.0f", tb, per(grew.Tables[tb])))
	}
	retained, retention := per(grew.Class(sqlprobe.StorageRetained)), per(grew.Class(sqlprobe.StorageRetention))
	t.Logf("hub storage per approval over %d approvals: %.0f bytes (%.0f kept for good, %.0f within retention; file %+.0f): %s",
		n, retained+retention, retained, retention, per(grew.File), strings.Join(split, ", "))
	if total := retained + retention; total > maxHubBytesPerApproval {
		t.Errorf("the hub stores %.0f bytes per approval, more than %d", total, maxHubBytesPerApproval)
	}
	if other := per(grew.Class(sqlprobe.StorageOther)); other > 64 {
		t.Errorf("tables that should not grow with traffic grew by %.0f bytes per approval", other)
	}
}
