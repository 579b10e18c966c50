package saml

import (
	"context"
	"crypto"
	"crypto/x509"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files and attack fixtures under testdata/")

const (
	merchantID       = "https://merchant.example/kecis"
	issuerID         = "https://issuer.example/kecis"
	attackerID       = "https://attacker.example/kecis"
	hubID            = "https://hub.example/kecis"
	issuerEndpoint   = "https://issuer.example/kecis/soap"
	merchantEndpoint = "https://merchant.example/kecis/soap"
)

type party struct {
	EntityID string
	Signer   *Signer
	Cert     *x509.Certificate
}

func loadParty(t testing.TB, name, entityID string) party {
	t.Helper()
	s, err := LoadSigner(filepath.Join("testdata", "keys", name+".key.pem"), filepath.Join("testdata", "keys", name+".cert.pem"))
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return party{EntityID: entityID, Signer: s, Cert: s.Cert}
}

type world struct {
	merchant, merchantEC, issuer, issuerEC, attacker party
	clock                                            *testutil.Clock
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return &world{
		merchant:   loadParty(t, "merchant-rsa", merchantID),
		merchantEC: loadParty(t, "merchant-ec", merchantID),
		issuer:     loadParty(t, "issuer-rsa", issuerID),
		issuerEC:   loadParty(t, "issuer-ec", issuerID),
		attacker:   loadParty(t, "attacker-rsa", attackerID),
		clock:      testutil.NewClock(testutil.FixedNow),
	}
}

// keys is the federation as the issuer sees it: the merchant signs with an
// RSA and an ECDSA key (a rollover in progress), the issuer with both too.
func (w *world) keys() StaticKeys {
	return StaticKeys{
		merchantID: {w.merchant.Cert, w.merchantEC.Cert},
		issuerID:   {w.issuer.Cert, w.issuerEC.Cert},
	}
}

// issuerReceiver is the card issuer's endpoint.
func (w *world) issuerReceiver() *Receiver {
	return &Receiver{
		Keys:            w.keys(),
		Replay:          NewMemoryReplayCache(w.clock.Now),
		Destinations:    []string{issuerEndpoint, "https://issuer-dr.example/kecis/soap"},
		Decrypter:       w.issuerDecryptor(),
		ValidatePayload: true,
		Now:             w.clock.Now,
	}
}

// issuerDecryptor holds the issuer's encryption keys: its RSA key, and a
// second one during a rollover.
func (w *world) issuerDecryptor() *Decryptor {
	return &Decryptor{EntityID: issuerID, Keys: []DecryptionKey{
		{Cert: w.attacker.Cert, Key: w.attacker.Signer.Key.(crypto.Decrypter)}, // stands in for a retired key
		{Cert: w.issuer.Cert, Key: w.issuer.Signer.Key.(crypto.Decrypter)},
	}}
}

// encryptFor encrypts the sensitive elements of an unsigned message for
// the issuer.
func (w *world) encryptFor(t testing.TB, root *etree.Element, e *Encryptor) {
	t.Helper()
	if e == nil {
		e = &Encryptor{Recipient: issuerID, Cert: w.issuer.Cert}
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Payload" {
			if _, err := e.EncryptPayload(c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// approveRequest is a card approval carrying the card, unsigned and in clear.
func (w *world) approveRequest(t testing.TB, seed string) *ServiceRequest {
	t.Helper()
	req, err := w.builder(merchantID, seed).NewRequest(issuerEndpoint, ServiceURI("card", "approve"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "order-20261122-0001-approve"
	req.Routing = &Routing{CardBIN: "411111", CardLast4: "1111"}
	req.Payload = payloadFrom(t, approvePayloadXML)
	return req
}

// sealedApprove is the approval encrypted for the issuer and signed.
func (w *world) sealedApprove(t testing.TB, seed string, e *Encryptor, mutate func(root *etree.Element)) []byte {
	t.Helper()
	root, err := w.approveRequest(t, seed).Element()
	if err != nil {
		t.Fatal(err)
	}
	w.encryptFor(t, root, e)
	if mutate != nil {
		mutate(root)
	}
	out, err := w.merchant.Signer.SignToBytes(root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// merchantReceiver receives the issuer's responses.
func (w *world) merchantReceiver(p PendingRequests) *Receiver {
	return &Receiver{
		Keys:            w.keys(),
		Replay:          NewMemoryReplayCache(w.clock.Now),
		Pending:         p,
		Destinations:    []string{merchantEndpoint},
		ValidatePayload: true,
		Now:             w.clock.Now,
	}
}

func (w *world) builder(issuer string, seed string) *Builder {
	return &Builder{Issuer: issuer, Now: w.clock.Now, IDs: IDSource{Rand: testutil.NewDetRand(seed)}}
}

const cancelPayloadXML = `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0">` +
	`<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="ORDER-20261122-0001">` +
	`<Transaction Amount="15000" Currency="KRW" Type="credit"><Id Reference="APV0001234"/></Transaction>` +
	`</Ecom></kecis:Payload>`

func payloadFrom(t testing.TB, xml string) *ecml.Payload {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	p, err := ecml.ParsePayload(doc.Root())
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	return p
}

// cancelRequest is a card cancellation (a void) from the merchant to the issuer.
func (w *world) cancelRequest(t testing.TB, seed string) *ServiceRequest {
	t.Helper()
	req, err := w.builder(merchantID, seed).NewRequest(issuerEndpoint, ServiceURI("card", "cancel"))
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey = "order-20261122-0001-cancel"
	req.Routing = &Routing{CardBIN: "411111", CardLast4: "1111"}
	req.Payload = payloadFrom(t, cancelPayloadXML)
	return req
}

func signRequest(t testing.TB, req *ServiceRequest, s *Signer) []byte {
	t.Helper()
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func signResponse(t testing.TB, resp *ServiceResponse, s *Signer) []byte {
	t.Helper()
	el, err := resp.Element()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file; run go test ./saml -update if the change is intended\n got: %s\nwant: %s", name, got, want)
	}
}

var bg = context.Background()
