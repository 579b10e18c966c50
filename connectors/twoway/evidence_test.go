package twoway

import (
	"bytes"
	"crypto/x509"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// agreed runs a mutual-agreement transfer to completion.
func agreed(t *testing.T) (*world, *Engine, *Request) {
	t.Helper()
	w := newWorld(t)
	e := w.engine(t, nil, nil)
	r := w.flow(t, e, loan(1_000_000))
	if _, err := e.Evidence(ctx, customer, r.ID); !errors.Is(err, ErrNoAgreement) {
		t.Fatalf("evidence before the payee confirmed: %v", err)
	}
	w.clock.Advance(2 * time.Minute)
	w.send(t, e, payeePhone, "동의 "+w.codeSent(t, payeePhone), w.messageTo(payeePhone))
	if r = w.get(t, r.ID); r.State != Completed {
		t.Fatalf("state %s", r.State)
	}
	return w, e, r
}

// TestEvidenceGolden: the unsigned record is stable (go test -update
// rewrites testdata/evidence.golden.xml).
func TestEvidenceGolden(t *testing.T) {
	_, e, r := agreed(t)
	el, err := e.EvidenceElement(ctx, customer, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := saml.Serialize(el)
	if err != nil {
		t.Fatal(err)
	}
	got = indent(t, got)
	path := filepath.Join("testdata", "evidence.golden.xml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the evidence record changed (go test -update to accept):\n%s", got)
	}
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	root, err := saml.ParseDocument(b, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(root)
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEvidenceVerifiesWithXMLSec: the signed record of a mutual agreement
// verifies with xmlsec1 alone (and with saml.VerifyElement), holds the
// terms, the amount and both confirmations, no account number or code in
// clear; a changed amount no longer verifies.
func TestEvidenceVerifiesWithXMLSec(t *testing.T) {
	w, e, r := agreed(t)
	signed, err := e.Evidence(ctx, customer, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evidence(ctx, "cust-2", r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another customer's evidence: %v", err)
	}
	doc := string(signed)
	code := w.codeSent(t, payeePhone)
	for _, secret := range []string{remAccount, payeeAccount, digitsOnly(remAccount), digitsOnly(payeeAccount), ">" + code + "<", " " + code + " "} {
		if strings.Contains(doc, secret) {
			t.Fatalf("the record holds %q in clear", secret)
		}
	}
	for _, want := range []string{`Purpose="mutual-agreement"`, `Amount="1000000"`, `RepaymentDate="2027-06-30"`, `InterestRate="4.5"`,
		"원금을 일시 상환한다", `Account="****-6789"`, `Account="****-4567"`, `ConfirmedAt="2026-12-03T10:00:00.000Z"`,
		`From="+821033334444"`, `ReceivedAt="2026-12-03T10:02:00.000Z"`, `Result="code-verified"`, `State="completed"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("the record lacks %s", want)
		}
	}
	root, err := saml.ParseDocument(signed, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := saml.VerifyElement(root, nil, w.clock.Now()); err == nil {
		t.Fatal("verified without a trusted certificate")
	}
	root, _ = saml.ParseDocument(signed, saml.Limits{})
	if _, _, err := saml.VerifyElement(root, []*x509.Certificate{w.signer.Cert}, w.clock.Now()); err != nil {
		t.Fatalf("VerifyElement: %v", err)
	}

	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	dir := t.TempDir()
	pem := filepath.Join("..", "..", "saml", "testdata", "keys", "merchant-ec.cert.pem")
	verify := func(name string, data []byte) error {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", pem, "--id-attr:ID",
			saml.NSKECIS+":"+EvidenceRoot, f).CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := verify("agreement.xml", signed); err != nil {
		t.Fatalf("xmlsec1 --verify: %v", err)
	}
	tampered := bytes.Replace(signed, []byte(`Amount="1000000"`), []byte(`Amount="100000"`), 1)
	if err := verify("tampered.xml", tampered); err == nil {
		t.Fatal("xmlsec1 verified a record whose amount was changed")
	}
}
