package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
)

// TestRegistrationGate: with conformance.required, approval waits for a
// passing report of the participant, made with the keys it registered
// (issue 9, item 8); every report is kept in the audit log.
func TestRegistrationGate(t *testing.T) {
	h := startHubFull(t, "", 0, "conformance: {required: true, max_age: 720h}\n")
	const id = "https://issuer.test/kecis"
	md, kp := participant(t, id)
	if code, b := h.do(&kp, http.MethodPost, "/kecis/federation/participants", md); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	ctx := context.Background()
	p, err := h.st.GetParticipant(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range p.Keys {
		keys = append(keys, k.Fingerprint)
	}
	report := func(mut func(r *conformance.Report)) []byte {
		now := time.Now().UTC()
		r := &conformance.Report{Suite: "KECIS conformance suite", Version: "test", Plan: "issuer", Participant: id,
			Roles: []string{"issuer"}, Keys: keys, RunID: "run-1", Started: now.Add(-time.Minute), Finished: now, Passed: true,
			Summary: map[conformance.Result]int{conformance.Passed: 77, conformance.Skipped: 1}}
		if mut != nil {
			mut(r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	record := func(b []byte) (int, string) {
		code, out := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/conformance?entity_id="+id, b)
		return code, string(out)
	}
	approveRefused := func(why string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"entity_id": id})
		code, b := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/approve", body)
		if code != http.StatusConflict || !strings.Contains(string(b), why) {
			t.Fatalf("approve: %d %s; want 409 mentioning %q", code, b, why)
		}
	}

	approveRefused("requires a passing conformance report")
	// Only an operator records reports.
	if code, _ := h.do(&kp, http.MethodPost, "/kecis/admin/participants/conformance?entity_id="+id, report(nil)); code != http.StatusForbidden {
		t.Fatalf("a participant recorded its own report: %d", code)
	}
	for _, c := range []struct {
		name, why string
		mut       func(r *conformance.Report)
	}{
		{"failing", "did not pass (2 FAILED)", func(r *conformance.Report) {
			r.Passed, r.Summary[conformance.Failed] = false, 2
		}},
		{"stale", "older than", func(r *conformance.Report) { r.Finished = r.Finished.Add(-31 * 24 * time.Hour) }},
		{"other keys", "did not test the registered keys", func(r *conformance.Report) { r.Keys = r.Keys[1:] }},
		{"another plan", "ran the merchant plan", func(r *conformance.Report) { r.Plan = "merchant" }},
		{"partial", "limited to some modules", func(r *conformance.Report) { r.Partial = true }},
		{"from the future", "ends in the future", func(r *conformance.Report) { r.Finished = r.Finished.Add(time.Hour) }},
	} {
		code, out := record(report(c.mut))
		if code != http.StatusConflict || !strings.Contains(out, c.why) {
			t.Errorf("%s report: %d %s; want 409 mentioning %q", c.name, code, out, c.why)
		}
		approveRefused(c.why)
	}
	// A report of someone else, not a report, or one with a card number
	// in clear is refused (400) and not kept.
	if code, out := record(report(func(r *conformance.Report) { r.Participant = "https://other.test/kecis" })); code != http.StatusBadRequest || !strings.Contains(out, "certifies") {
		t.Errorf("another participant's report: %d %s", code, out)
	}
	if code, _ := record([]byte(`{"hello":"world"}`)); code != http.StatusBadRequest {
		t.Errorf("not a report: %d", code)
	}
	if code, out := record(report(func(r *conformance.Report) {
		r.Modules = []*conformance.ModuleReport{{Name: "card", Conditions: []*conformance.ConditionReport{{ID: "card.approve", Message: "card 4111111111111111"}}}}
	})); code != http.StatusBadRequest || !strings.Contains(out, "card number in clear") || strings.Contains(out, "4111111111111111") {
		t.Errorf("a report with a card number in clear: %d %s", code, out)
	}
	code, out := record(report(nil))
	if code != http.StatusOK || !strings.Contains(out, `"gate":"open"`) {
		t.Fatalf("passing report: %d %s", code, out)
	}
	if code := h.operate("approve", id); code != http.StatusOK {
		t.Fatalf("approve after a passing report: %d", code)
	}
	// Every recorded report is in the audit log, whole.
	recs, err := h.st.ListAudit(ctx, store.AuditFilter{EntityID: id, Kind: registry.KindConformance})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("%d conformance records, want 7 (6 that do not open the gate, 1 passing)", len(recs))
	}
	last := recs[0]
	for _, r := range recs {
		if r.ID > last.ID {
			last = r
		}
	}
	var d struct {
		Passed bool               `json:"passed"`
		Report conformance.Report `json:"report"`
	}
	if err := json.Unmarshal([]byte(last.Detail), &d); err != nil || !d.Passed || d.Report.RunID != "run-1" || len(d.Report.Keys) != len(keys) {
		t.Errorf("audit record %s: %v", last.Detail, err)
	}
	if last.Actor != "alice" {
		t.Errorf("recorded by %q, want the operator alice", last.Actor)
	}
}
