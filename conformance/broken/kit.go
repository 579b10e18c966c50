package broken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml/metadata"
)

// Entity IDs of the identities the kits register: the tester, a second
// participant of the tester's standing, and an outsider (a merchant, which
// the broken issuer's services do not admit).
const (
	TesterID   = "https://tester.conformance.kecis.test/kecis"
	SecondID   = "https://second.conformance.kecis.test/kecis"
	OutsiderID = "https://outsider.conformance.kecis.test/kecis"
)

// TesterFiles are the key files (PEM) and certificates of the tester (or
// of another identity of the kit, which has no TLS client certificate).
type TesterFiles struct {
	EntityID string
	Roles    []metadata.Role
	// Directory layout: signing/, encryption/, tls/, each with cert.pem
	// and key.pem.
	Dir                                  string
	SigningCert, EncryptionCert, TLSCert *x509.Certificate
}

// Peer is the tester as a provider knows it.
func (t *TesterFiles) Peer() Peer {
	return Peer{EntityID: t.EntityID, Roles: t.Roles, Signing: []*x509.Certificate{t.SigningCert}, Encryption: t.EncryptionCert, TLSClient: t.TLSCert}
}

type pemPair struct {
	key, cert []byte
	c         *x509.Certificate
}

// identityKeys are made once per process and identity: RSA generation is
// slow.
var (
	identityMu   sync.Mutex
	identityKeys = map[string]map[string]pemPair{}
)

func makePair(kind, cn string) (pemPair, error) {
	var key crypto.Signer
	var err error
	if kind == "encryption" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return pemPair{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	if kind == "tls" {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return pemPair{}, err
	}
	c, _ := x509.ParseCertificate(der)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return pemPair{}, err
	}
	return pemPair{key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c: c}, nil
}

// WriteTester writes the tester's keys under dir (made once per process,
// written as often as asked).
func WriteTester(dir string) (*TesterFiles, error) {
	return writeIdentity(dir, TesterID, metadata.RoleTester, "signing", "encryption", "tls")
}

// writeIdentity writes an identity's keys of kinds under dir.
func writeIdentity(dir, entityID string, role metadata.Role, kinds ...string) (*TesterFiles, error) {
	identityMu.Lock()
	keys := identityKeys[entityID]
	if keys == nil {
		keys = map[string]pemPair{}
		for _, k := range kinds {
			p, err := makePair(k, "KECIS conformance "+string(role)+" "+k)
			if err != nil {
				identityMu.Unlock()
				return nil, err
			}
			keys[k] = p
		}
		identityKeys[entityID] = keys
	}
	identityMu.Unlock()
	for k, p := range keys {
		d := filepath.Join(dir, k)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(d, "key.pem"), p.key, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(d, "cert.pem"), p.cert, 0o644); err != nil {
			return nil, err
		}
	}
	return &TesterFiles{EntityID: entityID, Roles: []metadata.Role{role}, Dir: dir, SigningCert: keys["signing"].c, EncryptionCert: keys["encryption"].c, TLSCert: keys["tls"].c}, nil
}

// TestPAN returns a Luhn-valid 16-digit card number on a test BIN.
func TestPAN(serial int) string {
	body := fmt.Sprintf("940000%09d", serial)
	d, _ := ecml.LuhnCheckDigit(body)
	return body + string(d)
}

// Kit is a broken provider with everything a run against it needs on
// disk: its metadata, the keys of the tester and of the profile's second
// and outsider identities, and a test profile.
type Kit struct {
	Provider     *Provider
	Tester       *TesterFiles
	Second       *TesterFiles
	Outsider     *TesterFiles
	Dir          string
	ProfilePath  string
	MetadataPath string
}

// NewKit starts a provider with flaw and writes the files of a run into
// dir. With hooks, the profile names the provider's settle and stall
// hooks (the stall costs the run about a second).
//
// extra are further peers the provider trusts, such as the hub the suite
// runs itself (--own-hub).
func NewKit(dir string, flaw Flaw, hooks bool, extra ...Peer) (*Kit, error) {
	return newKit(dir, flaw, hooks, nil, nil, extra)
}

// PGTimeout is the session timeout of a PG kit's amount authentication:
// short, for the suite waits it out.
const PGTimeout = 2 * time.Second

// NewPGKit is NewKit for a PG that also offers amount authentication
// (KECIS §15.3): its flaw may be one of PGFlaws. The profile gives its
// amountauth section (the good card, a purchase of 15,000 KRW, 3 attempts,
// PGTimeout) and the amountauth hook, and waits 2 s for the truth.
func NewPGKit(dir string, flaw Flaw, hooks bool, extra ...Peer) (*Kit, error) {
	return newKit(dir, flaw, hooks, &AmountAuthConfig{Attempts: 3, Timeout: PGTimeout}, nil, extra)
}

// The cardholder credentials of an issuer kit's cards, and the tester's
// HTTP-POST endpoint its page answers to (the suite reads the answer from
// the page; nothing listens there).
const (
	KitPassword     = "kit-pw-2718"
	KitPostEndpoint = "https://tester.conformance.kecis.test/kecis/front"
)

// NewIssuerKit is NewKit for an issuer that also offers cardholder
// authentication and virtual card numbers (KECIS §15.7, §15.4): its flaw
// may be one of CardAuthFlaws. Its cards share KitPassword and a TOTP seed
// of the kit's (a code at or above 100,000 KRW); the profile gives its
// cardauth section, the tester's endpoint KitPostEndpoint.
func NewIssuerKit(dir string, flaw Flaw, extra ...Peer) (*Kit, error) {
	seed := make([]byte, 20)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return newKit(dir, flaw, false, nil, &CardAuthConfig{Password: KitPassword, TOTPSeed: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)}, extra)
}

func newKit(dir string, flaw Flaw, hooks bool, aa *AmountAuthConfig, ca *CardAuthConfig, extra []Peer) (*Kit, error) {
	t, err := WriteTester(filepath.Join(dir, "tester"))
	if err != nil {
		return nil, err
	}
	second, err := writeIdentity(filepath.Join(dir, "second"), SecondID, metadata.RoleTester, "signing", "encryption")
	if err != nil {
		return nil, err
	}
	outsider, err := writeIdentity(filepath.Join(dir, "outsider"), OutsiderID, metadata.RoleMerchant, "signing", "encryption")
	if err != nil {
		return nil, err
	}
	good, low := TestPAN(1), TestPAN(2)
	tp := t.Peer()
	if ca != nil {
		tp.PostEndpoint = KitPostEndpoint
	}
	p, err := Start(Config{Flaw: flaw, AmountAuth: aa, CardAuth: ca, Peers: append([]Peer{tp, second.Peer(), outsider.Peer()}, extra...), Cards: []Card{
		{PAN: good, ExpMonth: "12", ExpYear: "2030", Limit: 5_000_000},
		{PAN: low, ExpMonth: "12", ExpYear: "2030", Limit: 50_000},
	}})
	if err != nil {
		return nil, err
	}
	k := &Kit{Provider: p, Tester: t, Second: second, Outsider: outsider, Dir: dir, ProfilePath: filepath.Join(dir, "profile.yaml"), MetadataPath: filepath.Join(dir, "metadata.xml")}
	if err := os.WriteFile(k.MetadataPath, p.Metadata, 0o644); err != nil {
		p.Close()
		return nil, err
	}
	profile := fmt.Sprintf(`# Test profile of the broken provider %q (conformance/broken).
participant: %s
tester:
  entity_id: %s
  signing:    {cert: tester/signing/cert.pem,    key: tester/signing/key.pem}
  encryption: {cert: tester/encryption/cert.pem, key: tester/encryption/key.pem}
  tls:        {cert: tester/tls/cert.pem,        key: tester/tls/key.pem}
# Another participant of the tester's standing, and one of a role the
# provider's services do not admit (the authorization module).
second:
  entity_id: %[6]s
  signing:    {cert: second/signing/cert.pem,    key: second/signing/key.pem}
  encryption: {cert: second/encryption/cert.pem, key: second/encryption/key.pem}
outsider:
  entity_id: %[7]s
  signing:    {cert: outsider/signing/cert.pem,  key: outsider/signing/key.pem}
  roles: [merchant]
card:
  currency: KRW
  approve: {number: "%[4]s", expiry: 12/2030, amount: "15000"}
  declines:
    - {name: over the limit, number: "%[5]s", expiry: 12/2030, amount: "60000", expect: LimitExceeded}
    - {name: wrong expiry, number: "%[4]s", expiry: 11/2031, amount: "1000", expect: InvalidCard}
  settle_before_refund: true
`, flaw, p.EntityID, t.EntityID, good, low, second.EntityID, outsider.EntityID)
	settle := "10s"
	if aa != nil {
		// The module asks the hook until a verification approval is
		// voided: the broken PG voids at once, or never.
		settle = "2s"
		profile += fmt.Sprintf("amountauth:\n  card: {number: %q, expiry: 12/2030, amount: \"15000\"}\n  attempts: %d\n  timeout: %s\n", good, aa.Attempts, aa.Timeout)
	}
	if ca != nil {
		profile += fmt.Sprintf("cardauth:\n  card: {number: %q, expiry: 12/2030, amount: \"15000\"}\n  password: %q\n  totp_seed: %q\n  endpoint: %s\n", good, ca.Password, ca.TOTPSeed, KitPostEndpoint)
	}
	profile += fmt.Sprintf("timeouts: {request: 10s, stall: 1s, settle: %s}\n", settle)
	profile += fmt.Sprintf("hooks:\n  settle: {url: %s/settle}\n", p.HooksURL)
	if hooks {
		profile += fmt.Sprintf("  stall: {url: %s/stall}\n", p.HooksURL)
	}
	if aa != nil {
		profile += fmt.Sprintf("  amountauth: {url: %s/amountauth}\n", p.HooksURL)
	}
	if err := os.WriteFile(k.ProfilePath, []byte(profile), 0o644); err != nil {
		p.Close()
		return nil, err
	}
	return k, nil
}

// Close stops the provider.
func (k *Kit) Close() { k.Provider.Close() }
