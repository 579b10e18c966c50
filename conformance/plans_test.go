package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/saml/metadata"
)

// TestPlansAreWellFormed: every plan validates (unique IDs named after
// their module, clauses on every check, Needs that run earlier).
func TestPlansAreWellFormed(t *testing.T) {
	for _, p := range Plans() {
		if err := p.validate(); err != nil {
			t.Error(err)
		}
		if len(p.ConditionIDs()) == 0 {
			t.Errorf("plan %s has no checks", p.Name)
		}
	}
}

// TestCitedClausesExist: every "KECIS §N.M" a check cites is a section of
// docs/spec, so that a report's clause can be looked up.
func TestCitedClausesExist(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "docs", "spec", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("docs/spec: %v", err)
	}
	heading := regexp.MustCompile(`(?m)^#+ (\d+(?:\.\d+)*)\.? `)
	sections := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
			sections[m[1]] = true
		}
	}
	cited := regexp.MustCompile(`^KECIS §(\d+(?:\.\d+)*)$`)
	for _, p := range Plans() {
		for _, m := range p.Modules {
			for _, c := range m.Conditions {
				for _, cl := range c.Clauses {
					if strings.HasPrefix(cl, "KECIS") {
						mm := cited.FindStringSubmatch(cl)
						if mm == nil || !sections[mm[1]] {
							t.Errorf("%s cites %q, which is no section of docs/spec", c.ID, cl)
						}
					}
				}
			}
		}
	}
}

func TestSelectPlan(t *testing.T) {
	for _, tc := range []struct {
		roles []metadata.Role
		want  string
	}{
		{[]metadata.Role{metadata.RoleIssuer}, "issuer"},
		{[]metadata.Role{metadata.RoleMerchant, metadata.RolePG}, "pg"},
		{[]metadata.Role{metadata.RoleBank}, "bank"},
		{[]metadata.Role{metadata.RoleMerchant}, "merchant"},
		{[]metadata.Role{metadata.RoleHub}, "hub"},
		{[]metadata.Role{metadata.RoleTelecom}, "telecom"},
		{[]metadata.Role{metadata.RoleTester}, ""},
	} {
		p, err := SelectPlan(&metadata.EntityDescriptor{EntityID: "https://x.example/kecis", Roles: tc.roles}, "")
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%v: plan %s, want none", tc.roles, p.Name)
		case tc.want != "" && (err != nil || p.Name != tc.want):
			t.Errorf("%v: %v %v, want %s", tc.roles, p, err, tc.want)
		}
	}
	if p, err := SelectPlan(nil, "bank"); err != nil || p.Name != "bank" {
		t.Errorf("named plan: %v %v", p, err)
	}
	if _, err := SelectPlan(nil, ""); err == nil {
		t.Error("no metadata and no plan name: no error")
	}
}

func TestProfileIsStrict(t *testing.T) {
	base := `participant: https://issuer.example/kecis
tester:
  entity_id: https://tester.example/kecis
  signing: {cert: s.pem, key: s.key}
card:
  approve: {number: "4111111111111111", expiry: 12/2030, amount: "15000"}
  declines:
    - {number: "4111111111111111", expiry: 12/2030, amount: "60000", expect: LimitExceeded}
timeouts: {request: 5s}
`
	good := base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "15000"`, "3", "5s") + "hooks:\n  amountauth: {url: https://pg.example/test-hooks/amountauth}\n"
	p, err := ParseProfile([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if a := p.AmountAuth; a == nil || a.Currency != "KRW" || a.Attempts != 3 || time.Duration(a.Timeout) != 5*time.Second || p.Hooks.AmountAuth == nil {
		t.Fatalf("amountauth: %+v, hook %v", p.AmountAuth, p.Hooks.AmountAuth)
	}
	if p.Card.Currency != "KRW" || p.Card.Declines[0].expectCode() != "urn:kecis:status:LimitExceeded" || time.Duration(p.Timeouts.Request) != 5*time.Second {
		t.Fatalf("%+v", p.Card)
	}
	for name, bad := range map[string]string{
		"unknown key":                 base + "colour: blue\n",
		"not a card number":           strings.Replace(base, `number: "4111111111111111", expiry: 12/2030, amount: "15000"`, `number: "4111111111111112", expiry: 12/2030, amount: "15000"`, 1),
		"amount":                      strings.Replace(base, `amount: "15000"`, `amount: "15000.5"`, 1),
		"expiry":                      strings.Replace(base, `expiry: 12/2030, amount: "15000"`, `expiry: 2030-12, amount: "15000"`, 1),
		"decline without code":        strings.Replace(base, `, expect: LimitExceeded`, ``, 1),
		"no participant":              strings.Replace(base, "participant: https://issuer.example/kecis\n", "", 1),
		"hook URL":                    base + "hooks:\n  settle: {url: ftp://x}\n",
		"incomplete hub":              base + "hub: {url: https://hub.example}\n",
		"second without keys":         base + "second: {entity_id: https://two.example/kecis}\n",
		"second is the tester":        base + "second: {entity_id: https://tester.example/kecis, signing: {cert: c.pem, key: k.pem}}\n",
		"outsider is the participant": base + "outsider: {entity_id: https://issuer.example/kecis, signing: {cert: c.pem, key: k.pem}}\n",
		"outsider of no role":         base + "outsider: {entity_id: https://shop.example/kecis, signing: {cert: c.pem, key: k.pem}, roles: [shopkeeper]}\n",
		"amountauth hook URL":         base + "hooks:\n  amountauth: {url: file:///x}\n",
		"amountauth card":             base + aa(`number: "4111111111111112", expiry: 12/2030, amount: "15000"`, "3", "5s"),
		"amountauth amount zero":      base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "0"`, "3", "5s"),
		"amountauth card with expect": base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "15000", expect: Declined`, "3", "5s"),
		"amountauth long timeout":     base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "15000"`, "3", "5m"),
		"amountauth attempts":         base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "15000"`, "-1", "5s"),
		"amountauth unknown key":      base + aa(`number: "4111111111111111", expiry: 12/2030, amount: "15000"`, "3", "5s") + "  minimum: 100\n",
	} {
		if _, err := ParseProfile([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// aa is a profile's amountauth section.
func aa(card, attempts, timeout string) string {
	return "amountauth:\n  card: {" + card + "}\n  attempts: " + attempts + "\n  timeout: " + timeout + "\n"
}

// TestDocumentedProfileParses: the annotated profile of
// docs/conformance.md is a valid profile.
func TestDocumentedProfileParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "conformance.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "```yaml\n")
	if i < 0 {
		t.Fatal("no YAML example in docs/conformance.md")
	}
	y := doc[i+len("```yaml\n"):]
	y = y[:strings.Index(y, "```")]
	p, err := ParseProfile([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hub == nil || p.Card == nil || len(p.Card.Declines) != 2 || p.Hooks.Stall == nil || time.Duration(p.Timeouts.Stall) != 3*time.Second ||
		p.Second == nil || p.Outsider == nil || len(p.Outsider.Roles) != 1 || p.AmountAuth == nil || p.Hooks.AmountAuth == nil {
		t.Fatalf("%+v", p)
	}
	if e := p.Escrow; e == nil || e.Settlement.BankCode != "088" || e.Buyer.Login == "" || e.CollectAmount != "1000" {
		t.Fatalf("escrow: %+v", p.Escrow)
	}
}
