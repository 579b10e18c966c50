package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kecis/kecis/federation/store"
)

// TestApprovalCostsTwoCommits: a card approval through the facade costs the
// hub's store two commits (KECIS §12.3), the router's — the facade's
// record of how it authenticated the merchant rides in the first
// (router.WithAudit) with the idempotency claim, instead of a commit of
// its own before it. The record is there, with the request the hub signed,
// before the answer's; a retry refused by the idempotency guard is audited
// too, in the one commit the refusal costs.
func TestApprovalCostsTwoCommits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, options{probe: true})
	card := browserCard(t, e.issuer, issuerID, "4111111111111111")
	approveBody := func(order, amount string) string {
		return jsonBody(t, map[string]any{"fields": approveFields(order, amount), "encrypted": map[string]string{"card": card}})
	}
	// The first request takes the participants' metadata snapshots.
	if a := e.do(t, request{path: approve, key: "cost-warm-up", body: approveBody("COST-0", "15000")}); a.status != 200 {
		t.Fatalf("warm-up: %v", a)
	}

	before := e.probe.Counts()
	a := e.do(t, request{path: approve, key: "cost-1", body: approveBody("COST-1", "15000")})
	if a.status != 200 {
		t.Fatalf("approval: %v", a)
	}
	cost := e.probe.Counts().Sub(before)
	t.Logf("a facade approval: %d commits, %d writes", cost.Commits, cost.Writes)
	if cost.Commits != 2 {
		t.Errorf("a facade approval costs %d commits; want 2 (the claim with the facade's audit record, then the answer)", cost.Commits)
	}
	reqID, _ := a.json["request_id"].(string)
	recs, err := e.st.ListAudit(ctx, store.AuditFilter{RequestID: reqID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if len(recs) != 2 || kinds[0] != "facade.request" || kinds[1] != "message.out" {
		t.Fatalf("the request's audit records are %v; want [facade.request message.out]", kinds)
	}
	checkFacadeRecord(t, recs[0], "cost-1")
	if _, sent := e.issuer.received(); !bytes.Contains(sent[len(sent)-1], recs[0].Message) {
		t.Error("the audited message is not the one the issuer received in its SOAP body")
	}

	// The same key with another amount: refused by the guard, audited in
	// the one commit that refused it, and not forwarded.
	n, _ := e.issuer.received()
	before = e.probe.Counts()
	a = e.do(t, request{path: approve, key: "cost-1", body: approveBody("COST-1", "16000")})
	checkProblem(t, a, 422, "idempotency-key-reused", "")
	if cost := e.probe.Counts().Sub(before); cost.Commits != 1 {
		t.Errorf("a refused retry costs %d commits; want 1", cost.Commits)
	}
	if m, _ := e.issuer.received(); len(m) != len(n) {
		t.Error("the refused retry was forwarded")
	}
	recs, err = e.st.ListAudit(ctx, store.AuditFilter{Kind: "facade.request"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d facade.request records; want 3 (warm-up, approval, refused retry)", len(recs))
	}
	checkFacadeRecord(t, recs[2], "cost-1")
}

// TestStoreDownNothingForwarded: when the store cannot write the first
// commit — the facade's audit record with the idempotency claim — the
// request is not forwarded and the merchant is told unavailable (fail
// closed: nothing leaves the hub that its audit does not hold).
func TestStoreDownNothingForwarded(t *testing.T) {
	e := newEnv(t, options{probe: true})
	card := browserCard(t, e.issuer, issuerID, "4111111111111111")
	body := jsonBody(t, map[string]any{"fields": approveFields("DOWN-0", "15000"), "encrypted": map[string]string{"card": card}})
	if a := e.do(t, request{path: approve, key: "down-warm-up", body: body}); a.status != 200 {
		t.Fatalf("warm-up: %v", a)
	}
	n, _ := e.issuer.received()
	e.probe.CrashAt(1)
	body = jsonBody(t, map[string]any{"fields": approveFields("DOWN-1", "15000"), "encrypted": map[string]string{"card": card}})
	a := e.do(t, request{path: approve, key: "down-1", body: body})
	if a.status != 503 || a.json["outcome"] != "unavailable" {
		t.Fatalf("with the store down: %v; want 503 unavailable", a)
	}
	if m, _ := e.issuer.received(); len(m) != len(n) {
		t.Error("the request was forwarded though its audit record was not written")
	}
}

// checkFacadeRecord checks the facade's audit record of a request with
// Idempotency-Key key sent with the test API key: stored (ID set), by and
// about the merchant, with how it authenticated and never the key itself.
func checkFacadeRecord(t *testing.T, r *store.AuditRecord, key string) {
	t.Helper()
	if r.ID == 0 || r.Actor != shopID || r.EntityID != shopID || r.IdempotencyKey != key || r.TxID != hubID+"|"+key || len(r.Message) == 0 {
		t.Errorf("facade.request record %+v", r)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		t.Fatal(err)
	}
	if d["auth_method"] != "api-key" || d["on_behalf_of"] != shopID || d["credential_sha256"] == "" {
		t.Errorf("facade.request detail %v", d)
	}
	if strings.Contains(r.Detail, apiKey) {
		t.Error("the audit record holds the API key")
	}
}
