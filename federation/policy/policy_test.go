package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The participants of the tests.
const (
	shop     = "https://shop.example"
	shop2    = "https://other-shop.example"
	pg       = "https://pg.example"
	issuer   = "https://issuer.example"
	bank     = "https://bank.example"
	inactive = "https://suspended-issuer.example"

	methodPassword = "urn:kecis:authn:card-password"          // connectors/cardauth.MethodPassword
	methodCert     = "urn:kecis:authn:tls-client-certificate" // cardauth.MethodClientCert
	methodAA       = "urn:kecis:authn:amount-auth"            // connectors/amountauth.MethodURI
	collect        = policy.ServiceTransferCollect
	escrowOpen     = policy.ServiceEscrowOpen
	approve        = policy.ServiceCardApprove
)

var now = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// dir is a directory of active participants.
type dir map[string][]metadata.Role

func (d dir) Roles(_ context.Context, id string) ([]metadata.Role, bool, error) {
	r, ok := d[id]
	return r, ok, nil
}

var participants = dir{
	shop:   {metadata.RoleMerchant},
	shop2:  {metadata.RoleMerchant},
	pg:     {metadata.RolePG},
	issuer: {metadata.RoleIssuer},
	bank:   {metadata.RoleBank},
}

// request builds a request of caller for service: amount in KRW, shipped
// goods or not, order "ORD-1".
func request(service, caller string, amount int64, shipped bool, results ...*saml.AuthenticationResult) *policy.Request {
	e := &ecml.Ecom{ConsumerOrderID: "ORD-1", Transaction: &ecml.Transaction{}}
	if err := e.Transaction.SetMoney(ecml.Money{Minor: amount, Currency: "KRW"}); err != nil {
		panic(err)
	}
	if shipped {
		e.ShipTo = &ecml.Address{}
	}
	return &policy.Request{Service: service, Caller: caller, Payload: &ecml.Payload{Ecom: e}, AuthResults: results, Now: now}
}

// result is a verified result of from, bound to amount KRW, shop, ORD-1.
func result(from, method string, factors int, amount int64) *saml.AuthenticationResult {
	a, _ := ecml.FormatAmount(ecml.Money{Minor: amount, Currency: "KRW"})
	return &saml.AuthenticationResult{ID: "_r-" + method[len("urn:kecis:authn:"):], Issuer: from, Method: method, Factors: factors,
		Amount: a, Currency: "KRW", Merchant: shop, OrderID: "ORD-1", CardRef: "411111******1111",
		IssueInstant: now.Add(-time.Minute), AuthnInstant: now.Add(-time.Minute), NotOnOrAfter: now.Add(10 * time.Minute)}
}

func with(r *saml.AuthenticationResult, f func(*saml.AuthenticationResult)) *saml.AuthenticationResult {
	f(r)
	return r
}

func mustCompile(t *testing.T, c policy.Config) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPresets is the acceptance of issue 19: the defaults (kr-2006) and
// kr-2010, request by request.
func TestPresets(t *testing.T) {
	kr2006 := mustCompile(t, policy.Config{})
	kr2010 := mustCompile(t, policy.Config{Preset: policy.PresetKR2010})
	none := mustCompile(t, policy.Config{Preset: policy.PresetNone})
	cases := []struct {
		name      string
		p         *policy.Policy
		req       *policy.Request
		allowed   bool
		refusedBy string
		why       string // in the refusing (or, allowed, some matched) rule's why
	}{
		{"card is exempt from escrow", kr2006, request(approve, shop, 150_000, true, result(issuer, methodPassword, 1, 150_000)), true, "", "is not in classes cash"},
		{"a small card purchase needs nothing", kr2006, request(approve, shop, 99_999, true), true, "", ""},
		{"99,999 KRW cash shipped is exempt", kr2006, request(collect, shop, 99_999, true), true, "", ""},
		{"cash without ShipTo is exempt", kr2006, request(collect, shop, 150_000, false), true, "", ""},
		{"100,000 KRW cash shipped on transfer:collect: escrow required", kr2006, request(collect, shop, 100_000, true), false, "kr-2006-escrow", "must use a service of the class escrow"},
		{"100,000 KRW cash shipped on escrow:open: allowed", kr2006, request(escrowOpen, shop, 100_000, true), true, "", "uses escrow"},
		{"a PG's collect is not a merchant's", kr2006, request(collect, pg, 150_000, true), true, "", ""},
		{"card 150,000 KRW with the PG's amount authentication", kr2006, request(approve, shop, 150_000, true, result(pg, methodAA, 1, 150_000)), true, "", "bound to this payment"},
		{"card 150,000 KRW with the issuer's cardholder authentication", kr2006, request(approve, shop, 150_000, true, result(issuer, methodPassword, 1, 150_000)), true, "", "bound to this payment"},
		{"card 150,000 KRW with neither", kr2006, request(approve, shop, 150_000, true), false, "kr-2006-card-authentication", "embeds none"},
		{"card 100,000 KRW exactly with neither", kr2006, request(approve, shop, 100_000, false), false, "kr-2006-card-authentication", "embeds none"},
		{"a result bound to another amount", kr2006, request(approve, shop, 150_000, true, result(issuer, methodPassword, 1, 140_000)), false, "kr-2006-card-authentication", "another amount"},
		{"a result bound to another currency", kr2006, request(approve, shop, 150_000, true, with(result(issuer, methodPassword, 1, 150_000), func(r *saml.AuthenticationResult) { r.Currency, r.Amount = "USD", "150000.00" })), false, "kr-2006-card-authentication", "another amount or currency"},
		{"a result bound to another merchant", kr2006, request(approve, shop, 150_000, true, with(result(issuer, methodPassword, 1, 150_000), func(r *saml.AuthenticationResult) { r.Merchant = shop2 })), false, "kr-2006-card-authentication", "another merchant"},
		{"a result bound to another order", kr2006, request(approve, shop, 150_000, true, with(result(issuer, methodPassword, 1, 150_000), func(r *saml.AuthenticationResult) { r.OrderID = "ORD-2" })), false, "kr-2006-card-authentication", "another order"},
		{"a result of the shop itself", kr2006, request(approve, shop, 150_000, true, result(shop, methodPassword, 1, 150_000)), false, "kr-2006-card-authentication", "none of [issuer pg]"},
		{"a result of a bank", kr2006, request(approve, shop, 150_000, true, result(bank, methodPassword, 1, 150_000)), false, "kr-2006-card-authentication", "none of [issuer pg]"},
		{"a result of a participant no longer active", kr2006, request(approve, shop, 150_000, true, result(inactive, methodPassword, 1, 150_000)), false, "kr-2006-card-authentication", "not an active participant"},
		{"an expired result", kr2006, request(approve, shop, 150_000, true, with(result(issuer, methodPassword, 1, 150_000), func(r *saml.AuthenticationResult) { r.NotOnOrAfter = now })), false, "kr-2006-card-authentication", "expired"},
		{"one bad result and one good", kr2006, request(approve, shop, 150_000, true, result(issuer, methodPassword, 1, 1), result(pg, methodAA, 1, 150_000)), true, "", "bound to this payment"},
		{"the facade's caller is the merchant it names", kr2006, request(approve, shop, 150_000, false, result(issuer, methodPassword, 1, 150_000)), true, "", ""},

		{"kr-2010: 300,000 KRW card with a password-only result", kr2010, request(approve, shop, 300_000, true, result(issuer, methodPassword, 1, 300_000)), false, "kr-2010-certificate", "is not accepted"},
		{"kr-2010: 300,000 KRW card with a certificate result", kr2010, request(approve, shop, 300_000, true, result(issuer, methodCert, 2, 300_000)), true, "", ""},
		{"kr-2010: 299,999 KRW card with a password result", kr2010, request(approve, shop, 299_999, true, result(issuer, methodPassword, 1, 299_999)), true, "", ""},
		{"kr-2010: 300,000 KRW cash not shipped without a result", kr2010, request(collect, shop, 300_000, false), false, "kr-2010-certificate", "embeds none"},
		{"kr-2010: 300,000 KRW escrow with the bank's certificate result", kr2010, request(escrowOpen, shop, 300_000, true, result(bank, methodCert, 2, 300_000)), true, "", ""},
		{"kr-2010 keeps the 2006 escrow rule", kr2010, request(collect, shop, 100_000, true), false, "kr-2006-escrow", ""},

		{"none: everything goes", none, request(collect, shop, 10_000_000, true), true, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.p.Evaluate(context.Background(), participants, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allowed || d.RefusedBy != c.refusedBy {
				t.Fatalf("allowed %v refused by %q, want %v %q\n%s", d.Allowed, d.RefusedBy, c.allowed, c.refusedBy, d.JSON())
			}
			if len(d.Rules) != len(c.p.RuleIDs()) {
				t.Fatalf("%d rules explained, the policy has %d", len(d.Rules), len(c.p.RuleIDs()))
			}
			if !c.allowed {
				if d.Status().SubCode != saml.CodePolicyViolation || d.Status().Code != saml.StatusResponder || d.Message == "" {
					t.Fatalf("status %+v", d.Status())
				}
			}
			if c.why != "" && !strings.Contains(d.JSON(), c.why) {
				t.Fatalf("no %q in the explanation\n%s", c.why, d.JSON())
			}
			// No card reference, no card number in the explanation.
			if strings.Contains(d.JSON(), "411111") || ecml.ContainsPAN(d.JSON()) {
				t.Fatalf("the explanation holds a card reference\n%s", d.JSON())
			}
		})
	}
}

// TestExplanation checks the decision's record: every rule, matched or
// not, satisfied when matched, the source and year, the refusing rule.
func TestExplanation(t *testing.T) {
	p := mustCompile(t, policy.Config{})
	d, err := p.Evaluate(context.Background(), participants, request(collect, shop, 150_000, true))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Allowed   bool   `json:"allowed"`
		RefusedBy string `json:"refused_by"`
		Message   string `json:"message"`
		Preset    string `json:"preset"`
		Request   struct {
			Service     string   `json:"service"`
			Caller      string   `json:"caller"`
			CallerRoles []string `json:"caller_roles"`
			Classes     []string `json:"classes"`
			Amount      string   `json:"amount"`
			Shipped     bool     `json:"shipped"`
		} `json:"request"`
		Rules []struct {
			ID        string `json:"id"`
			Kind      string `json:"kind"`
			Source    string `json:"source"`
			Year      int    `json:"year"`
			Matched   bool   `json:"matched"`
			Satisfied *bool  `json:"satisfied"`
			Why       string `json:"why"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(d.JSON()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Allowed || got.RefusedBy != "kr-2006-escrow" || got.Preset != "kr-2006" || !strings.Contains(got.Message, "escrow") {
		t.Fatalf("decision %+v", got)
	}
	if got.Request.Service != collect || got.Request.Caller != shop || got.Request.Amount != "150000 KRW" || !got.Request.Shipped ||
		strings.Join(got.Request.Classes, ",") != "cash" || strings.Join(got.Request.CallerRoles, ",") != "merchant" {
		t.Fatalf("request %+v", got.Request)
	}
	if len(got.Rules) != 2 {
		t.Fatalf("rules %+v", got.Rules)
	}
	esc, card := got.Rules[0], got.Rules[1]
	if !esc.Matched || esc.Satisfied == nil || *esc.Satisfied || esc.Year != 2006 || !strings.Contains(esc.Source, "1 April 2006") || esc.Kind != "require-escrow" {
		t.Fatalf("escrow rule %+v", esc)
	}
	if card.Matched || card.Satisfied != nil || !strings.Contains(card.Why, "not in classes card") {
		t.Fatalf("card rule %+v", card)
	}
	if !d.Matched() {
		t.Fatal("Matched is false")
	}
	small, _ := p.Evaluate(context.Background(), participants, request(collect, shop, 5_000, true))
	if !small.Allowed || small.Matched() {
		t.Fatalf("a small payment: %s", small.JSON())
	}
}

// TestMaxAmount: a cap per merchant and per class.
func TestMaxAmount(t *testing.T) {
	p := mustCompile(t, policy.Config{Preset: policy.PresetNone, Rules: []policy.Rule{
		{ID: "new-shop-cap", Kind: policy.KindMaxAmount, When: policy.Conditions{Merchants: []string{shop2}},
			Max: policy.Amounts{"KRW": {Minor: 500_000, Currency: "KRW"}}, Message: "new shops are capped at 500,000 KRW a payment", Source: "the hub's onboarding contract", Year: 2026},
		{ID: "cash-cap", Kind: policy.KindMaxAmount, When: policy.Conditions{Classes: []string{policy.ClassCash}},
			Max: policy.Amounts{"KRW": {Minor: 2_000_000, Currency: "KRW"}}, Message: "cash payments are capped at 2,000,000 KRW"},
	}})
	cases := []struct {
		req       *policy.Request
		refusedBy string
	}{
		{request(approve, shop2, 500_000, false), ""},
		{request(approve, shop2, 500_001, false), "new-shop-cap"},
		{request(approve, shop, 900_000, false), ""},
		{request(collect, shop, 2_000_000, false), ""},
		{request(collect, shop, 2_000_001, false), "cash-cap"},
		{request(collect, shop2, 2_000_001, false), "new-shop-cap"}, // the first rule refusing names the decision
	}
	for _, c := range cases {
		d, err := p.Evaluate(context.Background(), participants, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if d.RefusedBy != c.refusedBy || d.Allowed != (c.refusedBy == "") {
			t.Errorf("%s %s by %s: refused by %q, want %q\n%s", c.req.Service, c.req.Payload.Ecom.Transaction.Amount, c.req.Caller, d.RefusedBy, c.refusedBy, d.JSON())
		}
	}
	// A currency without a cap is not capped.
	usd := request(approve, shop2, 0, false)
	usd.Payload.Ecom.Transaction = &ecml.Transaction{Amount: "1000000.00", Currency: "USD"}
	if d, _ := p.Evaluate(context.Background(), participants, usd); !d.Allowed || d.Matched() {
		t.Fatalf("USD: %s", d.JSON())
	}
}

// TestCustomRules: the operator's rules replace a preset rule of the same
// id, or are appended; classes are configuration too.
func TestCustomRules(t *testing.T) {
	p := mustCompile(t, policy.Config{
		Classes: map[string][]string{"cash": {collect, escrowOpen, "urn:kecis:service:transfer:credit"}},
		Rules: []policy.Rule{
			// A regulator lowers the escrow threshold to 50,000 KRW.
			{ID: "kr-2006-escrow", Kind: policy.KindRequireEscrow,
				When:    policy.Conditions{Classes: []string{"cash"}, MinAmount: policy.Amounts{"KRW": {Minor: 50_000, Currency: "KRW"}}},
				Message: "escrow from 50,000 KRW", Source: "a later amendment", Year: 2013},
			{ID: "pg-authentication", Kind: policy.KindRequireAuthentication, When: policy.Conditions{Services: []string{"urn:kecis:service:card:approve-verification"}, CallerRoles: []string{"pg"}},
				MinFactors: 1, Message: "verification approvals need a result"},
		}})
	if got := strings.Join(p.RuleIDs(), " "); got != "kr-2006-escrow kr-2006-card-authentication pg-authentication" {
		t.Fatalf("rules %s", got)
	}
	for _, c := range []struct {
		req       *policy.Request
		refusedBy string
	}{
		{request(collect, shop, 50_000, false), "kr-2006-escrow"}, // not shipped: the replacement has no shipped condition
		{request("urn:kecis:service:transfer:credit", shop, 60_000, false), "kr-2006-escrow"},
		{request(collect, shop, 49_999, true), ""},
		{request("urn:kecis:service:card:approve-verification", pg, 1_000, false), "pg-authentication"},
		{request("urn:kecis:service:card:approve-verification", shop, 1_000, false), ""},
	} {
		d, err := p.Evaluate(context.Background(), participants, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if d.RefusedBy != c.refusedBy {
			t.Errorf("%s %s: refused by %q, want %q\n%s", c.req.Service, c.req.Payload.Ecom.Transaction.Amount, d.RefusedBy, c.refusedBy, d.JSON())
		}
	}
}

type failingDir struct{}

func (failingDir) Roles(context.Context, string) ([]metadata.Role, bool, error) {
	return nil, false, errors.New("database down")
}

// TestDirectoryFailure: a directory that cannot answer decides nothing.
func TestDirectoryFailure(t *testing.T) {
	p := mustCompile(t, policy.Config{})
	if _, err := p.Evaluate(context.Background(), failingDir{}, request(collect, shop, 150_000, true)); err == nil {
		t.Fatal("decided without the directory")
	}
	// A policy without rules asks nothing.
	if d, err := mustCompile(t, policy.Config{Preset: "none"}).Evaluate(context.Background(), failingDir{}, request(collect, shop, 150_000, true)); err != nil || !d.Allowed {
		t.Fatalf("none: %v %v", d, err)
	}
}
