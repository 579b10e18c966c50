package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kecis/kecis/federation/policy"
)

// TestParse reads a whole policy section as an operator writes it.
func TestParse(t *testing.T) {
	p, err := policy.Parse([]byte(`
preset: kr-2006
classes:
  cash: [urn:kecis:service:transfer:collect, urn:kecis:service:escrow:open]
rules:
  - id: marketplace-cap
    kind: max-amount
    when:
      merchants: [https://other-shop.example]
      classes: [card, cash]
    max: {KRW: 1000000, USD: "800.00"}
    message: this marketplace takes at most 1,000,000 KRW a payment
    source: the marketplace's contract with the hub
    year: 2026
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.RuleIDs(), " "); got != "kr-2006-escrow kr-2006-card-authentication marketplace-cap" || p.Preset() != "kr-2006" {
		t.Fatalf("rules %s preset %s", got, p.Preset())
	}
	d, err := p.Evaluate(context.Background(), participants, request(approve, shop2, 1_000_001-1, false))
	if err != nil {
		t.Fatal(err)
	}
	if d.RefusedBy != "kr-2006-card-authentication" { // the preset's rules come first
		t.Fatalf("%s", d.JSON())
	}
	d, _ = p.Evaluate(context.Background(), participants, request(escrowOpen, shop2, 1_000_001, true))
	if d.RefusedBy != "marketplace-cap" || !strings.Contains(d.JSON(), "exceeds the cap 1000000 KRW") {
		t.Fatalf("%s", d.JSON())
	}
	// An empty section is the default preset.
	if p, err := policy.Parse(nil); err != nil || p.Preset() != policy.DefaultPreset || len(p.RuleIDs()) != 2 {
		t.Fatalf("empty: %v %v", p, err)
	}
}

// TestParseErrors: what is wrong is said clearly, naming the rule and the
// field.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "rules:\n  - id: x\n    kind: max-amount\n    maximum: {KRW: 1}\n    message: m\n", []string{"unknown field", "maximum"}},
		{"unknown field of when", "rules:\n  - id: x\n    kind: max-amount\n    max: {KRW: 1}\n    message: m\n    when: {service: [a]}\n", []string{"unknown field", "service"}},
		{"unknown kind", "rules:\n  - id: x\n    kind: require-2fa\n    message: m\n", []string{`policy.rules[0] (id "x")`, `unknown kind "require-2fa"`, "require-escrow, require-authentication, max-amount"}},
		{"no kind", "rules:\n  - id: x\n    message: m\n", []string{"kind is required"}},
		{"bad amount", "rules:\n  - id: x\n    kind: max-amount\n    max: {KRW: \"12.5\"}\n    message: m\n", []string{`amount "12.5" of KRW`, "amount syntax"}},
		{"negative amount", "rules:\n  - id: x\n    kind: max-amount\n    max: {KRW: -5}\n    message: m\n", []string{`amount "-5" of KRW`}},
		{"bad currency", "rules:\n  - id: x\n    kind: max-amount\n    max: {WON: 1000}\n    message: m\n", []string{"of WON", "ISO 4217"}},
		{"amount of a wrong type", "rules:\n  - id: x\n    kind: max-amount\n    max: {KRW: [1]}\n    message: m\n", []string{"amount of KRW"}},
		{"fractional amount as a number", "rules:\n  - id: x\n    kind: max-amount\n    max: {USD: 12.5}\n    message: m\n", []string{"amount of USD"}},
		{"unknown preset", "preset: kr-2099\n", []string{`unknown preset "kr-2099"`, "kr-2006, kr-2010, none"}},
		{"unknown class", "rules:\n  - id: x\n    kind: require-escrow\n    when: {classes: [crypto]}\n    message: m\n", []string{`unknown class "crypto"`}},
		{"unknown role", "rules:\n  - id: x\n    kind: require-escrow\n    when: {caller_roles: [shop]}\n    message: m\n", []string{`unknown role "shop"`}},
		{"no message", "rules:\n  - id: x\n    kind: require-escrow\n", []string{"message is required"}},
		{"no id", "rules:\n  - kind: require-escrow\n    message: m\n", []string{"id is required"}},
		{"an id twice", "rules:\n  - {id: x, kind: require-escrow, message: m}\n  - {id: x, kind: require-escrow, message: m}\n", []string{`policy.rules[1] (id "x"): the id is used twice`}},
		{"authentication without a requirement", "rules:\n  - {id: x, kind: require-authentication, message: m}\n", []string{"needs min_factors or methods"}},
		{"a field of another kind", "rules:\n  - {id: x, kind: require-escrow, message: m, min_factors: 1}\n", []string{"min_factors, methods and issuer_roles are for kind require-authentication"}},
		{"max-amount without max", "rules:\n  - {id: x, kind: max-amount, message: m}\n", []string{"needs max"}},
		{"a class that is not a service", "classes:\n  cash: [transfer]\n", []string{`policy.classes.cash: "transfer" is not a service URI`}},
		{"escrow without escrow services", "classes:\n  escrow: []\n", []string{`preset kr-2006 rule "kr-2006-escrow"`, `class "escrow"`}},
		{"not a mapping", "- a\n- b\n", []string{"policy:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// FuzzParse: no input makes the loader panic, and what it accepts
// evaluates.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "preset: kr-2010\n", "preset: none\nrules:\n  - {id: a, kind: max-amount, max: {KRW: 5}, message: m}\n",
		"rules:\n  - id: x\n    kind: require-authentication\n    when: {classes: [card], min_amount: {KRW: 1}, shipped: true}\n    methods: [urn:kecis:authn:totp]\n    message: m\n",
		"classes: {card: [urn:x]}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data)
		if err != nil {
			return
		}
		for _, r := range []*policy.Request{request(approve, shop, 150_000, true), request(collect, shop, 1, false), {Service: "urn:x", Caller: shop}} {
			if _, err := p.Evaluate(context.Background(), participants, r); err != nil {
				t.Fatal(err)
			}
		}
	})
}
