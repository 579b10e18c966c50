package sidecar

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// lineOf is the 1-based line of doc where needle first appears.
func lineOf(t *testing.T, doc, needle string) int {
	t.Helper()
	i := strings.Index(doc, needle)
	if i < 0 {
		t.Fatalf("%q not in the document", needle)
	}
	return strings.Count(doc[:i], "\n") + 1
}

// TestEnvDefault: ${NAME:-default} stands for default when NAME is not
// set or empty, and for NAME's value otherwise; a default holding "$" is
// refused.
func TestEnvDefault(t *testing.T) {
	good := readGood(t)
	doc := strings.Replace(good, "  dsn: sqlite:adapter.db\n", "  dsn: sqlite:${STATE:-/var/lib/kecis}/${DB:-adapter}.db\n", 1)
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "sqlite:/var/lib/kecis/adapter.db"},
		{map[string]string{"STATE": "/srv"}, "sqlite:/srv/adapter.db"},
		{map[string]string{"STATE": "", "DB": "pg"}, "sqlite:/var/lib/kecis/pg.db"},
	} {
		env := goodEnv()
		for k, v := range c.env {
			env[k] = v
		}
		cfg, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(env))
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if cfg.State.DSN != c.want {
			t.Errorf("%v: dsn %q, want %q", c.env, cfg.State.DSN, c.want)
		}
	}
	bad := strings.Replace(good, "  dsn: sqlite:adapter.db\n", "  dsn: \"${STATE:-$HOME}\"\n", 1)
	if _, err := parse([]byte(bad), "good.yaml", t.TempDir(), envOf(goodEnv())); err == nil ||
		!strings.Contains(err.Error(), `good.yaml:15: state.dsn: "${STATE:-$HOME}" is not a variable reference`) {
		t.Fatalf("a default with $: %v", err)
	}
}

const aaSection = `amountauth:
  enabled: ${AA:-false}
  key_file: aa.key
  page_listen: 127.0.0.1:0
  page_url: https://pg.test/pay/amountauth/
  trusted_proxies: [10.0.0.0/8, 192.0.2.1]
  recover_every: 30s
  options:
    highest_challenge: 30000
    timeout: 2m
    attempts: 4
    profile_period: 720h
  limits: {card_per_hour: 5, client_burst: 7}
`

// aaDoc is testdata/good.yaml with the amountauth section and shop A's
// amountauth entry.
func aaDoc(t *testing.T, section string) string {
	t.Helper()
	good := readGood(t)
	shopALine := `    https://shop.test/kecis: {id: M000001, headers: {X-PG-Key: "${PG_KEY}"}}` + "\n"
	if !strings.Contains(good, shopALine) {
		t.Fatal("testdata/good.yaml changed: shop A's line")
	}
	doc := strings.Replace(good, shopALine, `    https://shop.test/kecis: {id: M000001, headers: {X-PG-Key: "${PG_KEY}"}, `+
		`amountauth: {attempts: 2, method: descriptor, return_url: "https://shop.test/done", name: "KECIS 상점"}}`+"\n", 1)
	return strings.Replace(doc, "services:\n", section+"services:\n", 1)
}

// TestAmountAuthConfig: the amountauth section turns the engine on by
// configuration, ${AA:-false} off unless set; a merchant's entry
// overrides the defaults it sets; the page is published at page_url with
// the HTTP-POST binding and served under its path.
func TestAmountAuthConfig(t *testing.T) {
	doc := aaDoc(t, aaSection)
	cfg, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AmountAuthEnabled() || len(cfg.Endpoints()) != 1 {
		t.Fatalf("enabled %v without AA, endpoints %v", cfg.AmountAuthEnabled(), cfg.Endpoints())
	}
	env := goodEnv()
	env["AA"] = "true"
	cfg, err = parse([]byte(doc), "good.yaml", t.TempDir(), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.AmountAuth
	if !cfg.AmountAuthEnabled() || a.RecoverEvery != 30*time.Second || a.pagePrefix() != "/pay/amountauth" || len(a.trusted()) != 2 ||
		a.trusted()[1].String() != "192.0.2.1/32" {
		t.Fatalf("section %+v, prefix %q, proxies %v", a, a.pagePrefix(), a.trusted())
	}
	def := a.engineOptions(nil)
	if def.Method != "" || def.HighestChallenge != 30000 || def.Timeout != 2*time.Minute || def.Attempts != 4 || def.ProfilePeriod != 720*time.Hour {
		t.Errorf("defaults %+v", def)
	}
	m := cfg.Native.Merchants[shopA].AmountAuth
	if m == nil || m.Name != "KECIS 상점" {
		t.Fatalf("shop A's entry %+v", m)
	}
	o := a.engineOptions(m)
	if o.Method != amountauth.ByDescriptor || o.Attempts != 2 || o.ReturnURL != "https://shop.test/done" || o.HighestChallenge != 30000 ||
		o.Timeout != 2*time.Minute {
		t.Errorf("shop A's options %+v", o)
	}
	if l := a.engineLimits(); l.CardPerHour != 5 || l.ClientBurst != 7 || l.UserPerHour != 0 {
		t.Errorf("limits %+v", l)
	}
	eps := cfg.Endpoints()
	want := metadata.Endpoint{Service: PageService, Binding: saml.BindingHTTPPOST, Location: "https://pg.test/pay/amountauth/"}
	if len(eps) != 2 || eps[1] != want || eps[0].Binding != saml.BindingSOAP || eps[0].Location != "https://127.0.0.1:8445/kecis/soap" {
		t.Errorf("endpoints %+v", eps)
	}
}

// TestAmountAuthConfigMistakes: every mistake of the amountauth section
// and of the merchants' entries — in adapter.yaml and in the merchants
// file — is reported at once with its file, line and field, as --check
// reports them.
func TestAmountAuthConfigMistakes(t *testing.T) {
	section := `amountauth:
  enabled: yes please
  page_tls: maybe
  page_listen: localhost
  page_url: http://pg.example/amountauth
  trusted_proxies: [10.0.0.0/33]
  recover_every: 10ms
  options:
    method: sms
    lowest_challenge: 0
    highest_challenge: 50
    min_purchase: 40
    timeout: 0s
    attempts: 11
    profile_period: -1h
    return_url: /done
  limits: {card_per_hour: -1}
`
	doc := aaDoc(t, section)
	doc = strings.Replace(doc, `amountauth: {attempts: 2, method: descriptor`, `amountauth: {attempts: 0, method: descriptor`, 1)
	dir := t.TempDir()
	mf := "merchants:\n  https://shop3.test/kecis:\n    id: M3\n    headers: {X-PG-Key: k3}\n    amountauth:\n      method: code\n      lowest_challenge: 100\n      highest_challenge: 100\n"
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(mf), 0o600); err != nil {
		t.Fatal(err)
	}
	doc = strings.Replace(doc, "  merchants:\n", "  merchants_file: m.yaml\n  merchants:\n", 1)
	_, err := parse([]byte(doc), "good.yaml", dir, envOf(goodEnv()))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	at := func(needle, field, msg string) string {
		return fmt.Sprintf("good.yaml:%d: %s: %s", lineOf(t, doc, needle), field, msg)
	}
	mfile := filepath.Join(dir, "m.yaml")
	for _, w := range []string{
		at("  enabled: yes", "amountauth.enabled", "must be true or false"),
		at("  page_tls:", "amountauth.page_tls", "must be true or false"),
		at("    method: sms", "amountauth.options.method", "must be amount or descriptor"),
		at("    lowest_challenge: 0", "amountauth.options.lowest_challenge", "must be an amount of at least 1"),
		at("    timeout: 0s", "amountauth.options.timeout", "must be at least 1s"),
		at("    attempts: 11", "amountauth.options.attempts", "must be from 1 to 10"),
		at("    profile_period:", "amountauth.options.profile_period", "must be a duration, 0 for no profile store"),
		at("    return_url: /done", "amountauth.options.return_url", "is not an absolute http(s) URL"),
		at("    highest_challenge: 50", "amountauth.options.highest_challenge", "must be above the lowest challenge (100)"),
		at("    min_purchase: 40", "amountauth.options.min_purchase", "must be above the lowest challenge (100)"),
		at("  limits:", "amountauth.limits.card_per_hour", "must not be negative"),
		at("amountauth: {attempts: 0", "native.merchants.https://shop.test/kecis.amountauth.attempts", "must be from 1 to 10"),
		fmt.Sprintf("%s:6: merchants.https://shop3.test/kecis.amountauth.method: must be amount or descriptor", mfile),
		fmt.Sprintf("%s:8: merchants.https://shop3.test/kecis.amountauth.highest_challenge: must be above the lowest challenge (100)", mfile),
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	// Off ("yes please" is not true): what only an enabled engine needs is
	// not checked.
	if strings.Contains(err.Error(), "page_url") {
		t.Errorf("a switched-off section's page_url was checked:\n%v", err)
	}

	// Enabled: its listener, URL, proxies and period, the key file, the
	// card:approve mapping it approves through, and no mapping of its own
	// services.
	section = `amountauth:
  enabled: true
  page_listen: localhost
  page_url: http://pg.example/amountauth
  trusted_proxies: [10.0.0.0/33]
  recover_every: 10ms
`
	doc = aaDoc(t, section)
	doc = strings.Replace(doc, "urn:kecis:service:card:approve:", "urn:kecis:service:amountauth:start:", 1)
	_, err = parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv()))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		"good.yaml:" + fmt.Sprint(lineOf(t, doc, "amountauth:\n")) + ": amountauth.key_file: is required when amountauth is enabled",
		at2(t, doc, "  page_listen:", "amountauth.page_listen", "is not host:port"),
		at2(t, doc, "  page_url:", "amountauth.page_url", "must be https"),
		at2(t, doc, "  trusted_proxies:", "amountauth.trusted_proxies[0]", "is not an IP address or CIDR prefix"),
		at2(t, doc, "  recover_every:", "amountauth.recover_every", "must be at least 1s"),
		at2(t, doc, "  enabled: true", "amountauth.enabled", "needs the mapping of urn:kecis:service:card:approve"),
		at2(t, doc, "  urn:kecis:service:amountauth:start:", "services.urn:kecis:service:amountauth:start", "is served by the amountauth engine"),
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func at2(t *testing.T, doc, needle, field, msg string) string {
	t.Helper()
	return fmt.Sprintf("good.yaml:%d: %s: %s", lineOf(t, doc, needle), field, msg)
}

// TestKECISSource: {kecis: authentication_results} is a JSON request
// source only, of that one name, without transforms.
func TestKECISSource(t *testing.T) {
	good := readGood(t)
	anchor := "      productName: {const: \"KECIS order\"}\n"
	for _, c := range []struct{ add, want string }{
		{"      auth: {kecis: authentication_results, optional: true}\n", ""},
		{"      auth: {kecis: cookies}\n", "request.auth.kecis: must be authentication_results"},
		{"      auth: {kecis: authentication_results, transform: upper}\n", "request.auth.kecis: takes no transform:, map: or default:"},
		{"      auth: {kecis: authentication_results, ecml: Ecom_ConsumerOrderID}\n", "request.auth: needs exactly one of ecml:, const:, merchant:, capture:, kecis:"},
	} {
		doc := strings.Replace(good, anchor, anchor+c.add, 1)
		_, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv()))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.add, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("good.yaml:%d: services.urn:kecis:service:card:approve.%s", lineOf(t, doc, c.add), c.want))):
			t.Errorf("%q: want %q, got %v", c.add, c.want, err)
		}
	}
	// In a response: refused.
	doc := strings.Replace(good, "      Ecom_Transaction_CurrencyCode: {const: KRW}\n", "      Ecom_Transaction_CurrencyCode: {const: KRW, kecis: authentication_results}\n", 1)
	if _, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv())); err == nil ||
		!strings.Contains(err.Error(), "response.Ecom_Transaction_CurrencyCode.kecis: applies to requests only") {
		t.Errorf("in a response: %v", err)
	}
	// In a query or a form body: refused.
	doc = strings.Replace(good, "        orderNo: {ecml: Ecom_ConsumerOrderID}\n      capture:", "        orderNo: {ecml: Ecom_ConsumerOrderID}\n        auth: {kecis: authentication_results}\n      capture:", 1)
	if _, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv())); err == nil ||
		!strings.Contains(err.Error(), "lookup.query.auth.kecis: yields a JSON array: only in the request of a JSON call") {
		t.Errorf("in a query: %v", err)
	}
}
