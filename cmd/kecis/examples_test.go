package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/spf13/cobra"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/internal/xsd/xsdtest"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// exampleSkips are the examples no test can run offline, by design, with
// the reason: the command line of the example (its start) → why.
var exampleSkips = map[string]string{
	"kecis federation register --hub https://hub.example":         "needs a running hub at https://hub.example, over mutual TLS (TestFederationCLI runs the commands against one)",
	"kecis federation list --hub https://hub.example":             "needs a running hub at https://hub.example and an operator's certificate (TestFederationCLI runs the commands against one)",
	"kecis conformance run --target-metadata pg-metadata.xml":     "needs the participant under test, running, and a hub (TestConformanceRun runs the suite against test providers)",
	"kecis conformance run --own-hub ./own-hub --target-metadata": "needs the participant under test, running (TestConformanceOwnHub runs it)",
	"kecis serve --config examples/hub/hub.yaml --dev-keys":       "runs the hub until stopped, on its fixed ports (TestServeExampleConfig starts it on free ones)",
	"KECIS_DATABASE_DSN=postgres://kecis@db/kecis kecis serve":    "runs a hub on a PostgreSQL server named db, until stopped",
	"kecis adapter --config adapter.yaml\n":                       "runs the sidecar until stopped, against the provider's own API",
	"kecis loadtest --demo .kecis-dev":                            "needs a running demo (TestLoadtestDemo, in conformance/loadtest, runs the load test against one)",
	"kecis loadtest --target staging.yaml":                        "needs a hub at hub.staging.internal and its target file",
	"kecis metadata export --hub https://hub.example":             "needs a running hub at https://hub.example (TestMetadataExportVerify runs export against one)",
}

// exampleFixtures prepare, per command, the files its examples name, in
// the directory they run in; a command without one runs in an empty
// directory.
var exampleFixtures = map[string]func(t *testing.T, dir string){
	"kecis adapter":          adapterFixture,
	"kecis audit export":     auditFixture,
	"kecis ecml from-form":   ecmlFixture,
	"kecis ecml to-form":     ecmlFixture,
	"kecis ecml validate":    ecmlFixture,
	"kecis envelope encrypt": envelopeFixture,
	"kecis envelope sign":    envelopeFixture,
	"kecis envelope inspect": envelopeFixture,
	"kecis envelope verify":  envelopeFixture,
	"kecis metadata generate": func(t *testing.T, dir string) {
		copyFile(t, certPath("merchant-ec"), dir, "keys/signing/cert.pem")
		copyFile(t, certPath("issuer-rsa"), dir, "keys/encryption/cert.pem")
		copyFile(t, certPath("merchant-rsa"), dir, "tls/client.pem")
		copyFile(t, certPath("issuer-ec"), dir, "tls/server.pem")
	},
	"kecis metadata verify": metadataFixture,
	// The schema checks run xmllint (TestHelpExamples needs it for them).
	"kecis envelope validate": envelopeFixture,
	"kecis metadata validate": metadataFixture,
}

// TestHelpExamples runs every Example: of every command as written, in a
// shell, top to bottom in a directory of its own holding the files the
// examples name (exampleFixtures), with kecis on the PATH (this test
// binary, RUN_AS_KECIS_MAIN): each must exit 0. Examples that need a
// running hub or run a server until stopped are listed in exampleSkips.
func TestHelpExamples(t *testing.T) {
	bash := testutil.RequireTool(t, "bash", "bash")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "kecis")); err != nil {
		t.Fatal(err)
	}
	environ := append(os.Environ(), "RUN_AS_KECIS_MAIN=1", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ran, skipped := 0, 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		examples := splitExamples(c.Example)
		if len(examples) == 0 {
			return
		}
		t.Run(strings.ReplaceAll(c.CommandPath(), " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			if f := exampleFixtures[c.CommandPath()]; f != nil {
				f(t, dir)
			}
			for _, ex := range examples {
				if why := skipReason(ex); why != "" {
					t.Logf("skipped by design: %s\n  (%s)", strings.TrimSpace(ex), why)
					skipped++
					continue
				}
				if strings.HasSuffix(c.CommandPath(), " validate") && c.Parent().Name() != "ecml" {
					xsdtest.Require(t) // xmllint and the schema packages
				}
				if strings.HasPrefix(ex, "sh ") && strings.HasSuffix(strings.TrimSpace(ex), "VERIFY.sh") {
					testutil.RequireTool(t, "xmlsec1", "xmlsec1")
					testutil.RequireTool(t, "openssl", "openssl")
				}
				cmd := exec.Command(bash, "-e", "-o", "pipefail", "-c", ex)
				cmd.Dir, cmd.Env = dir, append(environ, exampleEnv(c.CommandPath(), dir)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("the example of %s fails as written: %v\n%s\n%s", c.CommandPath(), err, ex, out)
				}
				ran++
			}
		})
	}
	walk(newRootCmd())
	t.Logf("%d examples ran, %d skipped by design", ran, skipped)
}

// splitExamples cuts an Example: into shell commands: a line ending in \ or
// | goes on on the next; comment lines are dropped.
func splitExamples(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" && cur.Len() == 0 {
			continue
		}
		cur.WriteString(strings.TrimPrefix(line, "  "))
		cur.WriteString("\n")
		if t := strings.TrimRight(line, " "); strings.HasSuffix(t, `\`) || strings.HasSuffix(t, "|") {
			continue
		}
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func skipReason(ex string) string {
	for prefix, why := range exampleSkips {
		if strings.HasPrefix(ex, prefix) {
			return why
		}
	}
	return ""
}

// TestExampleSkipsAreExamples: every entry of exampleSkips names an example
// that exists, so that the table cannot hide one by a stale prefix.
func TestExampleSkipsAreExamples(t *testing.T) {
	var all []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, splitExamples(c.Example)...)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for prefix := range exampleSkips {
		if !slices.ContainsFunc(all, func(ex string) bool { return strings.HasPrefix(ex, prefix) }) {
			t.Errorf("exampleSkips names no example: %q", prefix)
		}
	}
}

// exampleEnv is the environment the examples of a command need beyond the
// files: the ${VARS} the adapter's configuration names.
func exampleEnv(path, dir string) []string {
	if path != "kecis adapter" {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(dir, "adapter.yaml"))
	var env []string
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(string(b), -1) {
		env = append(env, m[1]+"=example-"+strings.ToLower(m[1]))
	}
	return env
}

func copyFile(t *testing.T, from, dir, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFixture(t, dir, to, b)
}

func writeFixture(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// adapterFixture is the sidecar's configuration of its own tests.
func adapterFixture(t *testing.T, dir string) {
	copyFile(t, "../../connectors/sidecar/testdata/good.yaml", dir, "adapter.yaml")
}

// exampleExpiry is a card expiry in the future whenever the test runs.
func exampleExpiry() string { return time.Now().AddDate(3, 0, 0).Format("2006") }

// ecmlFixture: a valid order, the same order as checkout form fields (and
// one field the form has that ECML does not), and the order with its card
// encrypted.
func ecmlFixture(t *testing.T, dir string) {
	order := strings.Replace(ecmlValidDoc, `Year="2029"`, `Year="`+exampleExpiry()+`"`, 1)
	writeFixture(t, dir, "order.xml", []byte(order))
	form := "Ecom_Payment_Card_Number=4111111111111111&Ecom_Payment_Card_ExpDate_Month=12&Ecom_Payment_Card_ExpDate_Year=" + exampleExpiry() +
		"&Ecom_Transaction_Amount=15000&Ecom_Transaction_CurrencyCode=KRW\n"
	writeFixture(t, dir, "form.txt", []byte(form))
	writeFixture(t, dir, "checkout-form.txt", []byte("Ecom_ShipTo_Postal_City=Seoul&Ecom_Gift_Wrap=yes&"+form))
	code, enc, stderr := kecis(t, []byte(order), "envelope", "encrypt", "--recipient-cert", certPath("issuer-rsa"))
	if code != 0 {
		t.Fatalf("encrypt: %s", stderr)
	}
	writeFixture(t, dir, "outgoing-payload.xml", []byte(enc))
}

// envelopeFixture: keys under the names the examples use, a card approval
// to sign or encrypt, a message signed now, and one archived from
// 2026-11-22T10:00:00Z signed with the newer of two keys.
func envelopeFixture(t *testing.T, dir string) {
	copyFile(t, keyPath("merchant-rsa"), dir, "keys/signing/key.pem")
	copyFile(t, certPath("merchant-rsa"), dir, "keys/signing/cert.pem")
	copyFile(t, keyPath("merchant-rsa"), dir, "merchant.key")
	copyFile(t, certPath("merchant-rsa"), dir, "merchant.pem")
	copyFile(t, certPath("merchant-rsa"), dir, "partner-cert.pem")
	copyFile(t, certPath("issuer-rsa"), dir, "issuer-enc.pem")
	copyFile(t, certPath("attacker-rsa"), dir, "old.pem")
	copyFile(t, certPath("merchant-ec"), dir, "new.pem")

	b := &saml.Builder{Issuer: "https://merchant.example/kecis", Now: func() time.Time { return testutil.FixedNow }, IDs: saml.IDSource{Rand: testutil.NewDetRand("example")}}
	req, err := b.NewRequest(destination, saml.ServiceURI("card", "approve"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "order-1001"
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0"><Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="order-1001"><Payment><Card Type="VISA" Number="4111111111111111"><ExpDate Month="12" Year="` + exampleExpiry() + `"/></Card></Payment><Transaction Amount="15000" Currency="KRW" Type="debit"/></Ecom></kecis:Payload>`); err != nil {
		t.Fatal(err)
	}
	if req.Payload, err = ecml.ParsePayload(doc.Root()); err != nil {
		t.Fatal(err)
	}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	request, err := saml.Serialize(el)
	if err != nil {
		t.Fatal(err)
	}
	writeFixture(t, dir, "request.xml", request)
	code, signed, stderr := kecis(t, request, "envelope", "sign", "--key", keyPath("merchant-rsa"), "--cert", certPath("merchant-rsa"))
	if code != 0 {
		t.Fatal(stderr)
	}
	writeFixture(t, dir, "signed.xml", []byte(signed))
	code, archived, stderr := kecis(t, request, "envelope", "sign", "--keep", "--key", keyPath("merchant-ec"), "--cert", certPath("merchant-ec"))
	if code != 0 {
		t.Fatal(stderr)
	}
	writeFixture(t, dir, "archived.xml", []byte(archived))
}

// metadataFixture: the hub's certificate (and an older one), a PG's
// descriptor as the hub's Metadata Query endpoint serves it, valid now, and
// the aggregate, valid now and at 2026-11-22T10:00:00Z.
func metadataFixture(t *testing.T, dir string) {
	hub, err := saml.LoadSigner(keyPath("issuer-rsa"), certPath("issuer-rsa"))
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, certPath("issuer-rsa"), dir, "hub-cert.pem")
	copyFile(t, certPath("issuer-rsa"), dir, "hub-new.pem")
	copyFile(t, certPath("attacker-rsa"), dir, "hub-old.pem")
	signing := func(name string) *x509.Certificate {
		c, err := saml.LoadCertificates(certPath(name))
		if err != nil {
			t.Fatal(err)
		}
		return c[0]
	}
	validUntil := time.Now().Add(24 * time.Hour)
	if validUntil.Before(testutil.FixedNow) {
		validUntil = testutil.FixedNow.Add(24 * time.Hour)
	}
	pg := metadatatest.Simple("https://pg.example/kecis", signing("merchant-ec"))
	pg.ID, pg.ValidUntil = "_pg1", validUntil
	signed, err := metadata.SignEntity(pg, hub)
	if err != nil {
		t.Fatal(err)
	}
	writeFixture(t, dir, "pg.xml", signed)
	issuer := metadatatest.Simple("https://issuer.example/kecis", signing("issuer-ec"))
	agg, err := metadata.BuildAggregate([]*metadata.EntityDescriptor{pg, issuer}, "", "_federation1", validUntil, time.Hour, hub)
	if err != nil {
		t.Fatal(err)
	}
	writeFixture(t, dir, "federation.xml", agg)
}

// The demo's hub, and the payment of audit export's examples: its request
// ID (the facade's request_id) and Idempotency-Key.
const (
	exampleHubID     = "https://hub.kecis.test/kecis"
	exampleRequestID = "_6f1d0c4be2a9487391a05d7e3c2b8f14"
)

// auditFixture is the demo hub's configuration and database
// (.kecis-dev/hub) holding one payment through the JSON facade, as the
// facade audits it: the request the hub signed for the merchant, with the
// record of how it authenticated the merchant.
func auditFixture(t *testing.T, dir string) {
	hubDir := filepath.Join(dir, ".kecis-dev", "hub")
	copyFile(t, keyPath("issuer-rsa"), hubDir, "signing/key.pem")
	copyFile(t, certPath("issuer-rsa"), hubDir, "signing/cert.pem")
	copyFile(t, keyPath("issuer-ec"), hubDir, "tls/key.pem")
	copyFile(t, certPath("issuer-ec"), hubDir, "tls/cert.pem")
	writeFixture(t, hubDir, "hub.yaml", []byte("entity_id: "+exampleHubID+`
signing: {cert: signing/cert.pem, key: signing/key.pem}
tls: {cert: tls/cert.pem, key: tls/key.pem}
database: {dsn: "sqlite:hub.db"}
`))
	hub, err := saml.LoadSigner(keyPath("issuer-rsa"), certPath("issuer-rsa"))
	if err != nil {
		t.Fatal(err)
	}
	b := &saml.Builder{Issuer: exampleHubID, Now: func() time.Time { return testutil.FixedNow }}
	req, err := b.NewRequest("https://pg.kecis.test/kecis/soap", saml.ServiceURI("card", "approve"))
	if err != nil {
		t.Fatal(err)
	}
	req.ID, req.IdempotencyKey, req.OnBehalfOf = exampleRequestID, "order-1001", "https://shop.kecis.test/kecis"
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0"><Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="order-1001"><Transaction Amount="15000" Currency="KRW" Type="debit"/></Ecom></kecis:Payload>`); err != nil {
		t.Fatal(err)
	}
	if req.Payload, err = ecml.ParsePayload(doc.Root()); err != nil {
		t.Fatal(err)
	}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := hub.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(hubDir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	detail, _ := json.Marshal(map[string]string{"service": req.Service, "on_behalf_of": req.OnBehalfOf, "auth_method": "api-key"})
	if err := st.AppendAudit(ctx, &store.AuditRecord{Time: testutil.FixedNow, Kind: "facade.request", Actor: req.OnBehalfOf, EntityID: req.OnBehalfOf,
		TxID: exampleHubID + "|" + req.IdempotencyKey, RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: string(detail), Message: signed}); err != nil {
		t.Fatal(err)
	}
}
