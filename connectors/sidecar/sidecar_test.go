package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// TestBadMappingRefusedAtStartUp: every mistake is reported with the file,
// the line and the field, before any payment.
func TestBadMappingRefusedAtStartUp(t *testing.T) {
	_, err := Load("testdata/bad.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want mapping errors", err)
	}
	want := []string{
		"testdata/bad.yaml:20: services.urn:kecis:service:card:approve.path: placeholder {Ecom_Order} is neither an ECML field nor a captured lookup field",
		"testdata/bad.yaml:23: services.urn:kecis:service:card:approve.request.amount.ecml: unknown ECML field Ecom_Transaction_Amont",
		"testdata/bad.yaml:24: services.urn:kecis:service:card:approve.request.cardNo.transform: unknown transform rot13",
		"testdata/bad.yaml:27: services.urn:kecis:service:card:approve.response.Ecom_Transaction_PrivateUseData.format: needs exactly one {} (the value)",
		"testdata/bad.yaml:31: services.urn:kecis:service:card:approve.status.codes.3011: unknown KECIS status Refused",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	// An unknown key is refused by name too.
	if _, err := Load("testdata/typo.yaml"); err == nil {
		t.Fatal("typo accepted")
	}
}

// TestEngineMapsToTheNativeAPI drives the mapping against a fake native PG.
func TestEngineMapsToTheNativeAPI(t *testing.T) {
	t.Setenv("PG_KEY", "pgkey-123")
	t.Setenv("PG_KEY_2", "pgkey-456")
	var seen []map[string]any
	var seenKeys []string
	native := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-PG-Key") != "pgkey-123" {
			w.WriteHeader(401)
			return
		}
		switch {
		case r.Method == "POST" && r.URL.Path == "/pg/v1/payments":
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			seen = append(seen, body)
			seenKeys = append(seenKeys, r.Header.Get("Idempotency-Key"))
			if body["amount"].(float64) > 100000 {
				io.WriteString(w, `{"resultCode":"3012","resultMsg":"limit exceeded for card 949010******5583"}`)
				return
			}
			io.WriteString(w, `{"resultCode":"0000","resultMsg":"ok","tid":"T1","approvalNo":"12345678","amount":15000,"status":"APPROVED"}`)
		case r.Method == "GET" && r.URL.Path == "/pg/v1/payments":
			if r.URL.Query().Get("orderNo") != "ORD-1" || r.URL.Query().Get("mid") != "M000001" {
				io.WriteString(w, `{"resultCode":"4004","resultMsg":"not found"}`)
				return
			}
			io.WriteString(w, `{"resultCode":"0000","tid":"T1"}`)
		case r.Method == "POST" && r.URL.Path == "/pg/v1/payments/T1/cancel":
			io.WriteString(w, `{"resultCode":"0000","status":"CANCELLED","amount":15000,"refundedAmount":15000}`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer native.Close()
	cfg, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Native.BaseURL = native.URL
	svc := NewEngine(cfg, nil, nil).Services()
	form := url.Values{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-1"}, "Ecom_Transaction_Amount": {"15000"},
		"Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Payment_Card_Number": {"9490100895085583"},
		"Ecom_Payment_Card_ExpDate_Month": {"11"}, "Ecom_Payment_Card_ExpDate_Year": {"2031"}}
	p, err := ecml.FromForm(form)
	if err != nil {
		t.Fatal(err)
	}
	req := &connectors.Request{Service: "urn:kecis:service:card:approve", Issuer: "https://shop.test/kecis", IdempotencyKey: "k1", Payload: p}
	resp, err := svc[req.Service](context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0]["mid"] != "M000001" || seen[0]["amount"].(float64) != 15000 || seen[0]["card"].(map[string]any)["expiry"] != "3111" ||
		seen[0]["card"].(map[string]any)["number"] != "9490100895085583" || seen[0]["productName"] != "KECIS order" {
		t.Fatalf("native request: %v", seen)
	}
	if !strings.HasPrefix(seenKeys[0], "kecis-") {
		t.Fatalf("native idempotency key %q", seenKeys[0])
	}
	tx := resp.Payload.Ecom.Transaction
	if tx.Code.Approval != "12345678" || tx.Amount != "15000" || tx.Data.Response.Value != "approved" {
		t.Fatalf("mapped answer: %+v", tx)
	}
	// omit_zero: the native answer has no refundedAmount, so no field.
	if tx.Data.PrivateUse != nil {
		t.Errorf("PrivateUseData %q for an answer without a refunded amount", tx.Data.PrivateUse.Value)
	}
	// A native decline code maps to the KECIS status; the message is redacted.
	form.Set("Ecom_Transaction_Amount", "200000")
	p2, _ := ecml.FromForm(form)
	_, err = svc[req.Service](context.Background(), &connectors.Request{Service: req.Service, Issuer: req.Issuer, IdempotencyKey: "k2", Payload: p2})
	st, ok := connectors.AsStatus(err)
	if !ok || st.SubCode != saml.CodeInsufficientFunds || ecml.ContainsPAN(st.Message) {
		t.Fatalf("decline: %v", err)
	}
	// The cancel looks the transaction up by order, then cancels it.
	cp, _ := ecml.FromForm(url.Values{"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-1"}})
	cresp, err := svc["urn:kecis:service:card:cancel"](context.Background(), &connectors.Request{Service: "urn:kecis:service:card:cancel", Issuer: req.Issuer, IdempotencyKey: "c1", Payload: cp})
	if err != nil || cresp.Payload.Ecom.Transaction.Data.Response.Value != "cancelled" {
		t.Fatalf("cancel: %v %+v", err, cresp)
	}
	// format: the amount, transformed, inside the template.
	if pu := cresp.Payload.Ecom.Transaction.Data.PrivateUse; pu == nil || pu.Value != "refunded=15000" {
		t.Errorf("PrivateUseData %+v, want refunded=15000", pu)
	}
	// A merchant without a native account is refused (KECIS §13.3).
	_, err = svc[req.Service](context.Background(), &connectors.Request{Service: req.Service, Issuer: "https://other.test/kecis", IdempotencyKey: "k3", Payload: p})
	if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.StatusRequestDenied {
		t.Fatalf("unknown merchant: %v", err)
	}
}
