package loadtest_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance/loadtest"
	"github.com/kecis/kecis/examples/demo"
)

// TestLoadtestDemo runs a load test against the demo federation as
// kecis loadtest --demo DIR runs it, from nothing but demo.json: 40
// requests, 4 at a time, every operation through the hub's facade, from
// both merchants, and a clean reconciliation with the issuer's ledger of
// the card the run issued.
func TestLoadtestDemo(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("KECIS_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, err := demo.Start(context.Background(), demo.Config{Dir: dir, RelayTimeout: 5 * time.Second, AllowClearCard: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	target, err := loadtest.ReadDemo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Check(nil); err != nil {
		t.Fatal(err)
	}
	if len(target.Merchants) != 2 || target.SettleURL == "" {
		t.Fatalf("demo.json: %d merchants, settle_url %q", len(target.Merchants), target.SettleURL)
	}
	sum, err := loadtest.Run(context.Background(), target, loadtest.Options{Requests: 40, Concurrency: 4, Seed: 1,
		Mix: loadtest.Mix{Approve: 40, Cancel: 20, Refund: 20, Inquire: 20}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	t.Log("\n" + text.String())
	rc := sum.Reconciliation
	if rc == nil || !sum.Clean() || rc.Acknowledged == 0 || rc.InLedger != rc.Acknowledged || rc.Unresolved != 0 ||
		rc.Reversed != rc.CancelsAcknowledged || rc.RefundedInLedger != rc.RefundedAcknowledged {
		t.Fatalf("reconciliation: %+v", rc)
	}
	if sum.Requests != 40 || len(sum.Errors) != 0 || sum.Approvals == 0 || sum.P99MS <= 0 {
		t.Errorf("%d requests, %d approvals, p99 %v ms, errors %v", sum.Requests, sum.Approvals, sum.P99MS, sum.Errors)
	}
	for _, op := range []string{loadtest.OpApprove, loadtest.OpCancel, loadtest.OpRefund, loadtest.OpInquire} {
		if st := sum.Operations[op]; st.Count == 0 || st.OK != st.Count {
			t.Errorf("%s: %+v", op, st)
		}
	}
}
