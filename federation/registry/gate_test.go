package registry

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// TestGateRefusesReports: with the registration gate (KECIS §12.6), a
// report that did not pass, was partial, is too old or ends in the future,
// ran another role's plan or tested other keys is recorded but opens
// nothing — RecordConformance says so and approval, which reads the latest
// report, is refused — until a passing report of the whole plan made with
// the registered keys is recorded.
func TestGateRefusesReports(t *testing.T) {
	f := newFixture(t)
	f.reg.Gate = ConformanceGate{Required: true, MaxAge: 24 * time.Hour}
	shop := f.entity(shopID, []metadata.Role{metadata.RoleMerchant}, offer(t, svcNotify, ""))
	f.register(shop)
	var keys []string
	for _, k := range append(slices.Clone(shop.Keys), shop.TLSKeys...) {
		keys = append(keys, saml.Fingerprint(k.Certificate))
	}
	// good is a passing report of the whole merchant plan with the
	// registered keys, finished now; each case changes one thing.
	good := func() map[string]any {
		return map[string]any{"suite": "KECIS conformance suite", "plan": "merchant", "participant": shopID,
			"roles": []string{"merchant"}, "runId": "run", "finished": f.now, "passed": true,
			"summary": map[string]int{"PASSED": 9}, "keys": keys}
	}
	record := func(rep map[string]any) error {
		t.Helper()
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.reg.RecordConformance(f.ctx, shopID, "alice", b)
		f.tick()
		return err
	}
	approve := func() error {
		_, err := f.reg.Decide(f.ctx, Decision{EntityID: shopID, Action: ActionApprove, Operator: "alice", Reason: "test"})
		return err
	}
	if err := approve(); !errors.Is(err, ErrConformance) {
		t.Fatalf("approve without any report: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(map[string]any)
	}{
		{"not passed", func(r map[string]any) { r["passed"] = false }},
		{"passed with a FAILED check", func(r map[string]any) { r["summary"] = map[string]int{"PASSED": 8, "FAILED": 1} }},
		{"a partial run", func(r map[string]any) { r["partial"] = true }},
		{"older than MaxAge", func(r map[string]any) { r["finished"] = f.now.Add(-25 * time.Hour) }},
		{"ending in the future", func(r map[string]any) { r["finished"] = f.now.Add(time.Hour) }},
		{"another role's plan", func(r map[string]any) { r["plan"], r["roles"] = "issuer", []string{"issuer"} }},
		{"other keys", func(r map[string]any) { r["keys"] = keys[:1] }},
	} {
		rep := good()
		tc.change(rep)
		if err := record(rep); !errors.Is(err, ErrConformance) {
			t.Errorf("%s: RecordConformance = %v, want ErrConformance", tc.name, err)
		}
		if err := approve(); !errors.Is(err, ErrConformance) {
			t.Errorf("%s: approve = %v, want ErrConformance", tc.name, err)
		}
	}
	recorded := 0
	for _, k := range f.kinds(shopID) {
		if k == KindConformance {
			recorded++
		}
	}
	if recorded != 7 {
		t.Fatalf("%d reports recorded, want 7 (a failing report is recorded too)", recorded)
	}
	if err := record(good()); err != nil {
		t.Fatalf("a passing report: %v", err)
	}
	if err := approve(); err != nil {
		t.Fatalf("approve after a passing report: %v", err)
	}
	if p := f.get(shopID); p.Status != store.StatusActive {
		t.Fatalf("after approval: %s", p.Status)
	}
}
