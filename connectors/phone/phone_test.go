package phone

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// TestPayloads: a request is written into the ECML slots and read back
// (words of the name family name first; more than three run together in
// Middle), valid ECML; an answer carries the outcome alone.
func TestPayloads(t *testing.T) {
	for _, c := range []struct{ name, last, first, middle, read string }{
		{"홍길동", "홍길동", "", "", "홍길동"},
		{" 홍  길동 ", "홍", "길동", "", "홍 길동"},
		{"Hong Gil Dong", "Hong", "Gil", "Dong", "Hong Gil Dong"},
		{"A B C D", "A", "B", "CD", "A B CD"},
	} {
		p, err := RequestPayload(" 010-1234-5678 ", c.name)
		if err != nil {
			t.Fatal(err)
		}
		if probs := p.Validate(ecml.ValidateOptions{RequireSchemaVersion: true}); len(probs) > 0 {
			t.Fatalf("%q: %v", c.name, probs)
		}
		n := p.Ecom.BillTo.Postal.Name
		if n.Last != c.last || n.First != c.first || n.Middle != c.middle {
			t.Errorf("%q: %+v", c.name, n)
		}
		req, err := RequestFrom(&connectors.Request{Issuer: "https://bank.test/kecis", Payload: p})
		if err != nil || req.Name != c.read || req.Phone != "010-1234-5678" || req.Caller != "https://bank.test/kecis" {
			t.Errorf("%q: %+v, %v", c.name, req, err)
		}
	}
	for _, o := range []Outcome{Match, CloseMatch, NoMatch, NotPossible} {
		p := OutcomePayload(o)
		if probs := p.Validate(ecml.ValidateOptions{RequireSchemaVersion: true}); len(probs) > 0 {
			t.Fatalf("%s: %v", o, probs)
		}
		if got, err := OutcomeFrom(p); err != nil || got != o {
			t.Errorf("%s: %s, %v", o, got, err)
		}
	}
	if _, err := OutcomeFrom(OutcomePayload("maybe")); err == nil {
		t.Error("an unknown outcome was read")
	}
	if _, err := OutcomeFrom(&ecml.Payload{}); err == nil {
		t.Error("an answer without an outcome was read")
	}
}

// TestServices: the function answers the provider's outcome, refuses an
// outcome that is none of the four (not a business answer), and passes a
// provider's refusal on.
func TestServices(t *testing.T) {
	var give Outcome
	var refuse error
	fn := Services(HolderCheckerFunc(func(_ context.Context, r *HolderCheckRequest) (Outcome, error) {
		return give, refuse
	}))[ServiceHolderCheck]
	p, err := RequestPayload("010-1234-5678", "홍길동")
	if err != nil {
		t.Fatal(err)
	}
	req := &connectors.Request{Issuer: "https://bank.test/kecis", Payload: p}
	give = CloseMatch
	resp, err := fn(context.Background(), req)
	if err != nil || !resp.Status.OK() {
		t.Fatalf("%+v, %v", resp, err)
	}
	if o, _ := OutcomeFrom(resp.Payload); o != CloseMatch {
		t.Fatalf("outcome %s", o)
	}
	give = "match!"
	if _, err := fn(context.Background(), req); err == nil {
		t.Fatal("an invalid outcome was answered")
	}
	refuse = RequestDenied("banks only")
	_, err = fn(context.Background(), req)
	if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.StatusRequestDenied || st.Code != saml.StatusRequester {
		t.Fatalf("%v", err)
	}
}

// TestRequestPrintsMasked: the request prints and logs the number masked
// and without the name.
func TestRequestPrintsMasked(t *testing.T) {
	r := HolderCheckRequest{Caller: "https://bank.test/kecis", Phone: "010-1234-5678", Name: "홍길동"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("check", "req", r)
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r), b.String()} {
		if strings.Contains(s, "1234-5678") || strings.Contains(s, "12345678") || strings.Contains(s, "홍길동") {
			t.Errorf("%s", s)
		}
		if !strings.Contains(s, "010-****-5678") {
			t.Errorf("no masked number in %s", s)
		}
	}
}
