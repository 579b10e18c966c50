package router_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore/probe"
	"github.com/kecis/kecis/saml"
)

// The payment policy in Relay (KECIS §12.9): decided after verification
// and authorization, before the idempotency claim; a refusal is the hub's
// signed Responder / PolicyViolation, nothing forwarded, the decision in
// the first commit with the request's records; an allowed request a rule
// matched costs no commit more.

const cardAuthRule = "kr-2006-card-authentication"

// withPolicy gives the fixture's router the default policy (kr-2006).
func withPolicy(t testing.TB, f *fixture) {
	t.Helper()
	p, err := policy.Compile(policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.policy = p
	f.restart(f.st)
}

// cardResult is the issuer's signed cardholder-authentication result for
// the fixture's request with key and amount (KRW), bound to merchant.
func (f *fixture) cardResult(t testing.TB, key, amount, merchant string) *etree.Element {
	t.Helper()
	now := time.Now()
	r := &saml.AuthenticationResult{ID: "_ca-" + key, IssueInstant: now, Issuer: issuerID, Method: "urn:kecis:authn:card-password", Factors: 1,
		Amount: amount, Currency: "KRW", Merchant: merchant, OrderID: "ORD-" + key, CardRef: "411111******1111",
		AuthnInstant: now, NotOnOrAfter: now.Add(10 * time.Minute)}
	el, err := r.Sign(f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// audit lists the records of a request, by kind.
func (f *fixture) audit(t *testing.T, requestID string) map[string]*store.AuditRecord {
	t.Helper()
	recs, err := f.st.ListAudit(context.Background(), store.AuditFilter{RequestID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*store.AuditRecord{}
	for _, r := range recs {
		out[r.Kind] = r
	}
	return out
}

func decisionOf(t *testing.T, rec *store.AuditRecord) policy.Decision {
	t.Helper()
	var d policy.Decision
	if err := json.Unmarshal([]byte(rec.Detail), &d); err != nil {
		t.Fatalf("policy.decision detail: %v\n%s", err, rec.Detail)
	}
	return d
}

// TestPolicyOnTheSOAPEndpoint: a merchant's card approval of 150,000 KRW
// without a cardholder-authentication result is refused by the hub, not
// forwarded, audited with the decision; the same idempotency key then
// carries the corrected request, with the issuer's result, to the issuer.
func TestPolicyOnTheSOAPEndpoint(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	withPolicy(t, f)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)

	req, msg := f.request(t, "pol-1", "150000", p.url)
	w := f.serve(msg, f.merchantTLS)
	st := f.hubStatus(t, w.Body.Bytes(), req.ID)
	if st.Code != saml.StatusResponder || st.SubCode != saml.CodePolicyViolation || !strings.Contains(st.Message, "100,000 KRW or more needs the cardholder's authentication") {
		t.Fatalf("status %+v", st)
	}
	if got := p.received(); len(got) != 0 {
		t.Fatalf("forwarded %v", got)
	}
	recs := f.audit(t, req.ID)
	for _, k := range []string{"message.in", "policy.decision", "message.hub"} {
		if recs[k] == nil {
			t.Fatalf("no %s record: %v", k, slices.Collect(func(yield func(string) bool) {
				for k := range recs {
					yield(k)
				}
			}))
		}
	}
	dec := recs["policy.decision"]
	d := decisionOf(t, dec)
	if d.Allowed || d.RefusedBy != cardAuthRule || dec.Actor != hubID || dec.EntityID != issuerID || dec.TxID != merchantID+"|pol-1" || dec.IdempotencyKey != "pol-1" {
		t.Fatalf("decision record %+v\n%s", dec, dec.Detail)
	}
	if strings.Contains(dec.Detail, "4111111111111111") || strings.Contains(dec.Detail, "411111") {
		t.Fatalf("the decision holds card data: %s", dec.Detail)
	}
	if n := f.counter(t, "kecis_hub_policy_decisions_total", map[string]string{"rule": cardAuthRule, "decision": "refused"}); n != 1 {
		t.Fatalf("refused counter %v", n)
	}
	// No idempotency claim: the corrected request uses the same key.
	req2, msg2 := f.requestFrom(t, merchantID, f.merchant, "pol-1", "150000", p.url, f.cardResult(t, "pol-1", "150000", merchantID))
	if w := f.serve(msg2, f.merchantTLS); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "APV-") {
		t.Fatalf("the corrected request: %d %s", w.Code, w.Body.String())
	}
	if got := p.received(); len(got) != 1 || got[0] != req2.ID {
		t.Fatalf("received %v", got)
	}
	d2 := decisionOf(t, f.audit(t, req2.ID)["policy.decision"])
	if !d2.Allowed || d2.Rules[1].Satisfied == nil || !*d2.Rules[1].Satisfied || !strings.Contains(d2.Rules[1].Why, "_ca-pol-1") {
		t.Fatalf("allowed decision %+v", d2)
	}
	if n := f.counter(t, "kecis_hub_policy_decisions_total", map[string]string{"rule": cardAuthRule, "decision": "allowed"}); n != 1 {
		t.Fatalf("allowed counter %v", n)
	}
}

// TestPolicyBinding: a result bound to another amount, or to another
// merchant, does not count; a small amount needs none and leaves no
// decision record.
func TestPolicyBinding(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	withPolicy(t, f)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	f.addRecipient(t, issuerID, p.url)
	for _, c := range []struct {
		name, key, amount string
		result            *etree.Element
		refused           bool
		why               string
	}{
		{"another amount", "b-1", "150000", f.cardResult(t, "b-1", "140000", merchantID), true, "another amount"},
		{"another merchant", "b-2", "150000", f.cardResult(t, "b-2", "150000", otherID), true, "another merchant"},
		{"another order", "b-3", "150000", f.cardResult(t, "b-9", "150000", merchantID), true, "another order"},
		{"a small amount", "b-4", "15000", nil, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rs []*etree.Element
			if c.result != nil {
				rs = append(rs, c.result)
			}
			req, msg := f.requestFrom(t, merchantID, f.merchant, c.key, c.amount, p.url, rs...)
			w := f.serve(msg, f.merchantTLS)
			recs := f.audit(t, req.ID)
			if !c.refused {
				if w.Code != http.StatusOK || recs["policy.decision"] != nil {
					t.Fatalf("%d %s; decision %v", w.Code, w.Body.String(), recs["policy.decision"])
				}
				return
			}
			if st := f.hubStatus(t, w.Body.Bytes(), req.ID); st.SubCode != saml.CodePolicyViolation {
				t.Fatalf("status %+v", st)
			}
			if d := recs["policy.decision"]; d == nil || !strings.Contains(d.Detail, c.why) {
				t.Fatalf("decision %v", d)
			}
		})
	}
}

// TestPolicyCosts: what the policy costs the store (KECIS §12.3): an
// allowed approval a rule matched is still two commits — its decision is
// in the first —, and a refused one is one commit (Relay's, as the facade
// calls it: its audit record, the decision, no claim) with nothing
// forwarded.
func TestPolicyCosts(t *testing.T) {
	st, pr := probe.Open(t, filepath.Join(t.TempDir(), "hub.db"))
	f := newFixtureOn(t, st, 5*time.Second)
	withPolicy(t, f)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	dest := f.addRecipient(t, issuerID, p.url)
	ctx := context.Background()
	relay := func(key, amount string, results ...*etree.Element) (*router.Result, probe.Counts) {
		req, msg := f.requestFrom(t, merchantID, f.merchant, key, amount, p.url, results...)
		verified := f.rt.VerifyAuthResults(ctx, req.AuthResults)
		if len(verified) != len(results) {
			t.Fatalf("%d of %d results verify", len(verified), len(results))
		}
		before := pr.Counts()
		res := f.rt.Relay(ctx, req, dest, saml.WrapSOAP(msg), router.WithAudit(facadeAudit(req, msg)), router.WithAuthResults(verified...))
		return res, pr.Counts().Sub(before)
	}
	relay("warm-up", "15000") // the metadata snapshots, once per participant
	_, small := relay("c-small", "15000")
	res, allowed := relay("c-allowed", "150000", f.cardResult(t, "c-allowed", "150000", merchantID))
	if res.Outcome != router.OutcomeAnswered || res.Decision == nil || !res.Decision.Allowed || !res.Decision.Matched() {
		t.Fatalf("allowed: %+v", res)
	}
	if allowed.Commits != 2 || allowed.Commits != small.Commits {
		t.Fatalf("an allowed approval a rule matched costs %d commits, one no rule matched %d; want 2", allowed.Commits, small.Commits)
	}
	n := len(p.received())
	res, refused := relay("c-refused", "150000")
	wantOutcome(t, "refused", res, router.OutcomeRefused, saml.CodePolicyViolation)
	if res.Decision == nil || res.Decision.RefusedBy != cardAuthRule || res.Status.Message != res.Decision.Message {
		t.Fatalf("refused: %+v", res)
	}
	if refused.Commits != 1 || len(p.received()) != n {
		t.Fatalf("a refused request costs %d commits (want 1), forwarded %d", refused.Commits, len(p.received())-n)
	}
	// An unverifiable result counts for nothing.
	forged := f.cardResult(t, "c-forged", "150000", merchantID)
	forged.FindElement(".//BoundTo").CreateAttr("Amount", "1")
	if got := f.rt.VerifyAuthResults(ctx, []*etree.Element{forged}); len(got) != 0 {
		t.Fatalf("a tampered result verifies: %+v", got)
	}
}
