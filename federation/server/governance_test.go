package server_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// TestFinding1MetadataChangeIsGoverned is the regression test of issue 12,
// finding 1 (governance half), through the hub's HTTP API: an active
// merchant replaces its own metadata adding the issuer role, card:approve
// with a BIN range and an endpoint of its own. The hub answers 202; the
// merchant stays active with its active version unchanged — the MDQ
// document and the aggregate do not offer card:approve, the facade still
// routes the BIN to the real issuer — until an operator approves (refused
// first: the claim overlaps the active issuer's). A key-only rollover
// applies at once.
func TestFinding1MetadataChangeIsGoverned(t *testing.T) {
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	h := f.h
	ctx := context.Background()
	approve := saml.ServiceURI("card", "approve")
	cur, err := h.st.GetParticipant(ctx, merchantID)
	if err != nil {
		t.Fatal(err)
	}
	active, err := metadata.Parse(cur.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	mdq := func() *metadata.EntityDescriptor {
		t.Helper()
		code, b := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+metadata.EncodeMDQ(merchantID), nil)
		if code != http.StatusOK {
			t.Fatalf("MDQ: %d %s", code, b)
		}
		ed, err := metadata.VerifyEntity(b, []*x509.Certificate{h.hubCert}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ed
	}
	aggregated := func() *metadata.EntityDescriptor {
		t.Helper()
		_, b := h.do(nil, http.MethodGet, "/kecis/metadata", nil)
		a, err := metadata.VerifyAggregate(b, []*x509.Certificate{h.hubCert}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ed, ok := a.Entity(merchantID)
		if !ok {
			t.Fatal("the merchant is not in the aggregate")
		}
		return ed
	}
	unchanged := func(what string, ed *metadata.EntityDescriptor) {
		t.Helper()
		if d := metadata.Compare(active, ed); !d.Empty() {
			t.Fatalf("%s changed before approval:\n%s", what, d)
		}
		if _, ok := ed.Offers(approve); ok || ed.HasRole(metadata.RoleIssuer) {
			t.Fatalf("%s offers card:approve or has the issuer role", what)
		}
	}
	unchanged("the MDQ document", mdq())
	unchanged("the aggregate", aggregated())

	// The attack: issuer role, card:approve for the card's BIN, its own endpoint.
	attack := *active
	attack.Roles = []metadata.Role{metadata.RoleMerchant, metadata.RoleIssuer}
	bins, _ := metadata.ParseBINList("411111-411199")
	attack.Services = []metadata.OfferedService{{Service: approve, BINs: bins, Callers: []metadata.Role{metadata.RoleMerchant, metadata.RolePG}}}
	attack.Endpoints = []metadata.Endpoint{{Service: approve, Binding: saml.BindingSOAP, Location: "https://capture.merchant.test/kecis/soap"}}
	md, err := metadata.Marshal(&attack)
	if err != nil {
		t.Fatal(err)
	}
	put := "/kecis/federation/participants?entity_id=" + url.QueryEscape(merchantID)
	code, b := h.do(&f.mTLS, http.MethodPut, put, md)
	if code != http.StatusAccepted {
		t.Fatalf("PUT with a trust change: %d %s, want 202", code, b)
	}
	var accepted struct {
		Status        string `json:"status"`
		Message       string `json:"message"`
		PendingChange struct {
			ID     string   `json:"id"`
			Diff   []string `json:"diff"`
			Awaits string   `json:"awaits"`
		} `json:"pending_change"`
	}
	if err := json.Unmarshal(b, &accepted); err != nil {
		t.Fatal(err)
	}
	wantDiff := []string{
		"+ role issuer",
		"+ service " + approve + " BINs 411111-411199; callers merchant pg",
		"+ endpoint " + approve + " soap https://capture.merchant.test/kecis/soap priority 0",
	}
	if accepted.Status != "active" || !strings.Contains(accepted.Message, "awaits an operator's approval") ||
		accepted.PendingChange.ID == "" || !slices.Equal(accepted.PendingChange.Diff, wantDiff) {
		t.Fatalf("202 body: %s", b)
	}

	// Nothing of it is in force: status, published metadata, routing.
	unchanged("the MDQ document", mdq())
	unchanged("the aggregate", aggregated())
	if code, route := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": approve, "amount": "15000", "currency": "KRW", "card_bin": "411111"}); code != 200 || route["recipient"] != issuerID {
		t.Fatalf("the BIN no longer routes to the issuer: %d %v", code, route)
	}
	code, b = h.do(&h.operator, http.MethodGet, "/kecis/admin/participant?entity_id="+url.QueryEscape(merchantID), nil)
	var shown struct {
		Status        string `json:"status"`
		PendingChange struct {
			ID   string   `json:"id"`
			Diff []string `json:"diff"`
		} `json:"pending_change"`
	}
	if json.Unmarshal(b, &shown); code != 200 || shown.Status != "active" || shown.PendingChange.ID != accepted.PendingChange.ID || !slices.Equal(shown.PendingChange.Diff, wantDiff) {
		t.Fatalf("operator's view: %d %s", code, b)
	}

	// The operator approves. The claim overlaps the active issuer's (it
	// lists no BINs: it claims every one), so the approval is refused,
	// naming it, until the operator allows the overlap with a reason.
	decide := func(action string, body map[string]any) (int, string) {
		t.Helper()
		body["entity_id"] = merchantID
		jb, _ := json.Marshal(body)
		code, b := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/"+action, jb)
		return code, string(b)
	}
	if code, b := decide("approve-change", map[string]any{"reason": "issuing contract", "change": accepted.PendingChange.ID}); code != http.StatusConflict ||
		!strings.Contains(b, "urn:kecis:problem:overlap") || !strings.Contains(b, issuerID) {
		t.Fatalf("approve-change over an overlapping claim: %d %s", code, b)
	}
	if code, b := decide("approve-change", map[string]any{"change": "0000"}); code != http.StatusConflict || !strings.Contains(b, "stale-change") {
		t.Fatalf("approve-change of another change: %d %s", code, b)
	}
	if code, b := decide("approve-change", map[string]any{"allow_overlap": []string{issuerID}}); code != http.StatusBadRequest {
		t.Fatalf("an overlap allowed without a reason: %d %s", code, b)
	}
	unchanged("the MDQ document", mdq())
	if code, b := decide("approve-change", map[string]any{"reason": "issuing contract; co-issued range", "change": accepted.PendingChange.ID,
		"allow_overlap": []string{issuerID}}); code != http.StatusOK {
		t.Fatalf("approve-change: %d %s", code, b)
	}
	now := mdq()
	if _, ok := now.Offers(approve); !ok || !now.HasRole(metadata.RoleIssuer) || !now.HasLocation("https://capture.merchant.test/kecis/soap") {
		t.Fatalf("the approved change is not in force: %+v", now)
	}
	if _, ok := aggregated().Offers(approve); !ok {
		t.Fatal("the aggregate lacks the approved change")
	}

	// A key-only rollover applies at once: 200, published immediately.
	_, newSig := writeKey(t, filepath.Join(t.TempDir(), "sig2"), devpki.Signing, "merchant signing 2")
	rolled := *now
	rolled.ID, rolled.ValidUntil, rolled.CacheDuration = "", time.Time{}, 0
	rolled.Keys = append(slices.Clone(now.Keys), metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: newSig})
	md, err = metadata.Marshal(&rolled)
	if err != nil {
		t.Fatal(err)
	}
	code, b = h.do(&f.mTLS, http.MethodPut, put, md)
	var applied struct {
		Status string   `json:"status"`
		Diff   []string `json:"diff"`
	}
	if json.Unmarshal(b, &applied); code != http.StatusOK || applied.Status != "active" || len(applied.Diff) != 1 || !strings.HasPrefix(applied.Diff[0], "+ key signing sha256 "+saml.Fingerprint(newSig)) {
		t.Fatalf("key rollover: %d %s", code, b)
	}
	if !slices.ContainsFunc(mdq().SigningCertificates(), func(c *x509.Certificate) bool { return c.Equal(newSig) }) {
		t.Fatal("the rolled-over key is not published")
	}

	// Every step is in the audit log and counted.
	recs, err := h.st.ListAudit(ctx, store.AuditFilter{EntityID: merchantID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if want := []string{registry.KindChangeRequest, registry.KindChangeApprove, registry.KindUpdate}; !slices.Equal(kinds, want) {
		t.Fatalf("audit %v, want %v", kinds, want)
	}
	resp, err := http.Get(h.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, k := range []string{registry.KindChangeRequest, registry.KindChangeApprove, registry.KindUpdate} {
		if !strings.Contains(string(mb), `kecis_hub_registry_events_total{action="`+k+`"} 1`) {
			t.Errorf("metrics lack %s", k)
		}
	}
}

// TestRejectedChangeOverHTTP: reject-change needs a reason, drops the
// pending version and leaves the active one.
func TestRejectedChangeOverHTTP(t *testing.T) {
	f := setupFederation(t, 2*time.Second)
	h := f.h
	ctx := context.Background()
	cur, err := h.st.GetParticipant(ctx, merchantID)
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := metadata.Parse(cur.Metadata)
	ed.Roles = append(ed.Roles, metadata.RolePG)
	md, _ := metadata.Marshal(ed)
	if code, b := h.do(&f.mTLS, http.MethodPut, "/kecis/federation/participants?entity_id="+url.QueryEscape(merchantID), md); code != http.StatusAccepted {
		t.Fatalf("PUT: %d %s", code, b)
	}
	body, _ := json.Marshal(map[string]string{"entity_id": merchantID})
	if code, b := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/reject-change", body); code != http.StatusBadRequest {
		t.Fatalf("reject-change without a reason: %d %s", code, b)
	}
	// A participant is no operator.
	body, _ = json.Marshal(map[string]string{"entity_id": merchantID, "reason": "self-approval"})
	if code, _ := h.do(&f.mTLS, http.MethodPost, "/kecis/admin/participants/approve-change", body); code != http.StatusForbidden {
		t.Fatalf("a participant approved its own change: %d", code)
	}
	body, _ = json.Marshal(map[string]string{"entity_id": merchantID, "reason": "no PG licence"})
	if code, b := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/reject-change", body); code != http.StatusOK {
		t.Fatalf("reject-change: %d %s", code, b)
	}
	p, _ := h.st.GetParticipant(ctx, merchantID)
	if p.Pending != nil || string(p.Metadata) != string(cur.Metadata) {
		t.Fatalf("after rejection: %+v", p)
	}
	if code, b := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/reject-change", body); code != http.StatusConflict {
		t.Fatalf("reject-change with nothing pending: %d %s", code, b)
	}
}
