package main

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const pgEntityID = "https://pg.example/kecis"

// generatePG runs `kecis metadata generate` for a PG in a key rollover.
func generatePG(t *testing.T, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"metadata", "generate",
		"--entity-id", pgEntityID, "--display-name", "Example PG 예시",
		"--roles", "pg,issuer",
		"--signing-cert", certPath("merchant-rsa"), "--signing-cert", certPath("merchant-ec"),
		"--encryption-cert", certPath("issuer-rsa"),
		"--tls-client-cert", certPath("merchant-ec"), "--tls-server-cert", certPath("issuer-ec"),
		"--endpoint", "*|soap|https://pg.example/kecis/soap",
		"--endpoint", "*|soap|https://dr.pg.example/kecis/soap|10",
		"--endpoint", "card:approve|post|https://pg.example/kecis/post",
		"--endpoint", "urn:kecis:service:card:approve|urn:oasis:names:tc:SAML:2.0:bindings:SOAP|https://pg.example/kecis/approve|1",
		"--service", "card:approve;KRW:100-10000000;USD:0.50-5000.00;bins=404143,411111-411199;callers=merchant,tester;caller-entities=https://shop.example/kecis",
		"--service", "transfer:execute;banks=004,088;callers=bank",
		"--service", "card:cancel",
	}, extra...)
	return kecis(t, nil, args...)
}

func TestMetadataGenerate(t *testing.T) {
	code, out, stderr := generatePG(t)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ed, err := metadata.Parse([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if ed.DisplayName != "Example PG 예시" || !ed.HasRole(metadata.RoleIssuer) || len(ed.SigningCertificates()) != 2 || len(ed.TLSServerCertificates()) != 1 {
		t.Fatalf("%+v", ed)
	}
	if e, _ := ed.Endpoint(saml.ServiceURI("card", "approve"), saml.BindingSOAP); e.Location != "https://pg.example/kecis/approve" {
		t.Fatalf("endpoint %+v", e)
	}
	if e, _ := ed.Endpoint(saml.ServiceURI("card", "approve"), saml.BindingHTTPPOST); e.Location != "https://pg.example/kecis/post" {
		t.Fatalf("endpoint %+v", e)
	}
	approve, ok := ed.Offers(saml.ServiceURI("card", "approve"))
	if !ok || len(approve.Limits) != 2 || approve.Limits[1].Min != 50 || approve.Limits[1].Max != 500000 || approve.BINs.String() != "404143 411111-411199" {
		t.Fatalf("approve %+v", approve)
	}
	if len(approve.Callers) != 2 || approve.Callers[1] != metadata.RoleTester || len(approve.CallerEntities) != 1 || !approve.AdmitsCaller("https://shop.example/kecis", []metadata.Role{metadata.RoleMerchant}) {
		t.Fatalf("approve's callers %+v %+v", approve.Callers, approve.CallerEntities)
	}
	for _, want := range []string{`BINs="404143 411111-411199"`, `<kecis:Limit Currency="KRW" Min="100" Max="10000000"/>`, `<kecis:Limit Currency="USD" Min="0.50" Max="5000.00"/>`, `BankCodes="004 088"`, `Roles="pg issuer"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	// Deterministic, and --out writes the same bytes.
	f := filepath.Join(t.TempDir(), "pg.xml")
	if code, _, stderr := generatePG(t, "--out", f); code != 0 {
		t.Fatal(stderr)
	}
	if b, _ := os.ReadFile(f); string(b) != out {
		t.Fatal("--out differs from stdout")
	}

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"weak key":      {[]string{"--signing-cert", certPath("weak-rsa1024")}, "RSA of 1024 bits"},
		"bad endpoint":  {[]string{"--endpoint", "*|soap"}, "SERVICE|BINDING|URL"},
		"bad BIN":       {[]string{"--service", "card:refund;bins=4041-41"}, "same number of digits"},
		"bad amount":    {[]string{"--service", "card:refund;KRW:100.5-200"}, "minimum"},
		"bad part":      {[]string{"--service", "card:refund;fast"}, "neither"},
		"unknown role":  {[]string{"--roles", "acquirer"}, `unknown role "acquirer"`},
		"relative URL":  {[]string{"--endpoint", "*|soap|/kecis"}, "not an absolute http(s) URL"},
		"twice offered": {[]string{"--service", "card:cancel"}, "offered twice"},
	} {
		code, _, stderr := generatePG(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %s", name, code, stderr)
		}
	}
}

// TestMetadataExportVerify: a hub serves the generated descriptor; export
// fetches it per entity and as the aggregate, verifies it and writes it as
// received; verify checks the files again, and refuses them with another
// hub certificate, after validUntil, or tampered.
func TestMetadataExportVerify(t *testing.T) {
	code, out, stderr := generatePG(t)
	if code != 0 {
		t.Fatal(stderr)
	}
	pg, err := metadata.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	hubSigner, err := saml.LoadSigner(keyPath("issuer-rsa"), certPath("issuer-rsa"))
	if err != nil {
		t.Fatal(err)
	}
	others := metadatatest.GenerateParticipants(50, 7)
	h := metadatatest.NewHub(t, hubSigner, func() time.Time { return testutil.FixedNow }, append(others, pg)...)
	dir := t.TempDir()
	entityFile, aggFile := filepath.Join(dir, "pg.xml"), filepath.Join(dir, "federation.xml")
	hubCert := certPath("issuer-rsa")

	code, _, stderr = kecis(t, nil, "metadata", "export", "--hub", h.URL, "--trust", hubCert, "--entity", pgEntityID, "--out", entityFile, "--now", nowFlag)
	if code != 0 || !strings.Contains(stderr, "exported 1 entities") {
		t.Fatalf("export --entity: %d %s", code, stderr)
	}
	code, _, stderr = kecis(t, nil, "metadata", "export", "--hub", h.URL, "--trust", hubCert, "--out", aggFile, "--now", nowFlag)
	if code != 0 || !strings.Contains(stderr, "exported 51 entities") {
		t.Fatalf("export: %d %s", code, stderr)
	}

	code, summary, stderr := kecis(t, nil, "metadata", "verify", "--trust", hubCert, "--now", nowFlag, entityFile)
	if code != 0 {
		t.Fatalf("verify: %s", stderr)
	}
	rsaFP := saml.Fingerprint(loadCertT(t, "merchant-rsa"))
	for _, want := range []string{"verified md:EntityDescriptor", "entities: 1", pgEntityID, `"Example PG 예시"`, "roles: pg issuer; 4 endpoints; services: 3",
		"signing    " + rsaFP + " RSA-2048", "EC-P-256", "tls-server", "expires 2036-11-19", "valid until 2026-11-23T10:00:00Z (24h0m0s left)", "cacheDuration PT1H"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	code, summary, stderr = kecis(t, nil, "metadata", "verify", "--trust", hubCert, "--now", nowFlag, aggFile)
	if code != 0 || !strings.Contains(summary, "verified md:EntitiesDescriptor") || !strings.Contains(summary, "entities: 51") || strings.Count(summary, "\n  signing ") < 51 {
		t.Fatalf("verify aggregate: %d %s %.400s", code, stderr, summary)
	}
	// From stdin too.
	agg, _ := os.ReadFile(aggFile)
	if code, _, stderr := kecis(t, agg, "metadata", "verify", "--trust", hubCert, "--now", nowFlag); code != 0 {
		t.Fatal(stderr)
	}

	// xmlsec1 agrees with the files as exported.
	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	for file, node := range map[string]string{entityFile: "EntityDescriptor", aggFile: "EntitiesDescriptor"} {
		if b, err := execOut(xmlsec, "--verify", "--pubkey-cert-pem", hubCert, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:"+node, file); err != nil {
			t.Fatalf("xmlsec1 %s: %v\n%s", node, err, b)
		}
	}

	entity, _ := os.ReadFile(entityFile)
	for name, c := range map[string]struct {
		data  []byte
		trust string
		now   string
		want  string
	}{
		"other hub":    {entity, certPath("attacker-rsa"), nowFlag, "refused:"},
		"expired":      {entity, hubCert, "2026-11-23T10:00:00Z", "validUntil has passed"},
		"tampered":     {[]byte(strings.Replace(string(entity), "https://dr.pg.example/kecis/soap", "https://attacker.example/soap", 1)), hubCert, nowFlag, "digest"},
		"unsigned":     {[]byte(out), hubCert, nowFlag, "refused:"},
		"not metadata": {[]byte("<x/>"), hubCert, nowFlag, "not an md:EntityDescriptor"},
	} {
		code, _, stderr := kecis(t, c.data, "metadata", "verify", "--trust", c.trust, "--now", c.now)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %s", name, code, stderr)
		}
	}

	// export refuses what does not verify, and writes nothing.
	bad := filepath.Join(dir, "bad.xml")
	code, _, stderr = kecis(t, nil, "metadata", "export", "--hub", h.URL, "--trust", certPath("attacker-rsa"), "--out", bad, "--now", nowFlag)
	if code != 1 || !strings.Contains(stderr, "refused:") {
		t.Fatalf("export with another hub certificate: %d %s", code, stderr)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("export wrote a document that did not verify")
	}
	code, _, stderr = kecis(t, nil, "metadata", "export", "--hub", h.URL, "--trust", hubCert, "--entity", "https://ghost.example/kecis", "--now", nowFlag)
	if code != 1 || !strings.Contains(stderr, "is not an active participant of the hub (HTTP 404)") {
		t.Fatalf("unknown entity: %d %s", code, stderr)
	}
}

func loadCertT(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	c, err := saml.LoadCertificates(certPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

func TestMetadataHelp(t *testing.T) {
	for _, sub := range []string{"generate", "verify", "export"} {
		code, out, _ := kecis(t, nil, "metadata", sub, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "kecis metadata "+sub) {
			t.Errorf("kecis metadata %s --help:\n%s", sub, out)
		}
	}
}

func execOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
