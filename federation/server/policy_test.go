package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/saml"
)

// TestPolicyConfig: the policy: section of the hub's YAML (KECIS §12.9)
// — the default preset, KECIS_POLICY_PRESET over the file, the operator's
// rules and classes — and a policy that does not compile stops the hub
// at start-up, the error naming the rule and the field.
func TestPolicyConfig(t *testing.T) {
	write := func(t *testing.T, section string) string {
		path := filepath.Join(t.TempDir(), "hub.yaml")
		cfg := "entity_id: https://hub.test/kecis\ntls: {cert: tls/cert.pem, key: tls/key.pem}\nsigning: {cert: s/cert.pem, key: s/key.pem}\n" + section
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	compiled := func(t *testing.T, c *server.Config) *policy.Policy {
		t.Helper()
		p, err := policy.Compile(c.Policy)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := server.LoadConfig(write(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := compiled(t, c); p.Preset() != "kr-2006" || strings.Join(p.RuleIDs(), " ") != "kr-2006-escrow kr-2006-card-authentication" {
		t.Fatalf("default: %s %v", p.Preset(), p.RuleIDs())
	}
	section := `policy:
  preset: kr-2006
  classes:
    cash: [urn:kecis:service:transfer:collect, urn:kecis:service:escrow:open, urn:kecis:service:twoway:request]
  rules:
    - id: shop-cap
      kind: max-amount
      when: {merchants: [https://shop.example/kecis]}
      max: {KRW: 3000000}
      message: this shop takes at most 3,000,000 KRW a payment
      source: the shop's contract
      year: 2026
`
	c, err = server.LoadConfig(write(t, section), []string{"KECIS_POLICY_PRESET=kr-2010"})
	if err != nil {
		t.Fatal(err)
	}
	if p := compiled(t, c); p.Preset() != "kr-2010" || strings.Join(p.RuleIDs(), " ") != "kr-2006-escrow kr-2006-card-authentication kr-2010-certificate shop-cap" {
		t.Fatalf("kr-2010 by the environment: %s %v", p.Preset(), p.RuleIDs())
	}
	for name, c := range map[string]struct {
		section string
		environ []string
		want    string
	}{
		"unknown preset by the environment": {"", []string{"KECIS_POLICY_PRESET=kr-1999"}, `policy.preset: unknown preset "kr-1999"`},
		"unknown kind":                      {"policy:\n  rules:\n    - {id: a, kind: escrow, message: m}\n", nil, `policy.rules[0] (id "a"): unknown kind "escrow"`},
		"unknown field":                     {"policy:\n  rule: []\n", nil, `unknown field "rule"`},
		"bad amount":                        {"policy:\n  rules:\n    - {id: a, kind: max-amount, max: {KRW: 1.5}, message: m}\n", nil, "amount of KRW"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := server.LoadConfig(write(t, c.section), c.environ)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want %q", err, c.want)
			}
		})
	}
}

// TestHubPolicy: a running hub enforces its configured policy (KECIS
// §12.9) — by default kr-2006, whose card rule refuses a merchant's card
// approval of 150,000 KRW without the cardholder's authentication with
// the hub's signed Responder / PolicyViolation, counted in /metrics —; a
// small one, or any under preset none, reaches the issuer.
func TestHubPolicy(t *testing.T) {
	f := setupFederation(t, 2*time.Second)
	st, issuer, err := f.send(t, &f.mTLS, f.approve(t, "policy-1", "150000", f.dest))
	if err != nil {
		t.Fatal(err)
	}
	if issuer != "https://hub.test/kecis" || st.Code != saml.StatusResponder || st.SubCode != saml.CodePolicyViolation ||
		!strings.Contains(st.Message, "cardholder's authentication") {
		t.Fatalf("the hub's answer: %s %+v", issuer, st)
	}
	if st, issuer, err := f.send(t, &f.mTLS, f.approve(t, "policy-2", "15000", f.dest)); err != nil || issuer != issuerID || !st.OK() {
		t.Fatalf("a small approval: %v %s %v", st, issuer, err)
	}
	resp, err := http.Get(f.h.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `kecis_hub_policy_decisions_total{decision="refused",rule="kr-2006-card-authentication"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %s:\n%s", want, grepLines(string(body), "policy"))
	}

	none := setupFederationWith(t, 2*time.Second, "policy: {preset: none}\n")
	if st, issuer, err := none.send(t, &none.mTLS, none.approve(t, "policy-3", "150000", none.dest)); err != nil || issuer != issuerID || !st.OK() {
		t.Fatalf("preset none: %v %s %v", st, issuer, err)
	}
}
