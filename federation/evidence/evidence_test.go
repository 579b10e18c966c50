package evidence_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/federation/evidence"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The bundle's own tests: the audit records and snapshots are written into
// a store on SQLite as the router and the facade write them, at chosen
// times, so that the bundle's choice of the metadata in force can be
// checked across a key rollover. federation/server's evidence_test.go
// exports the bundles of exchanges through a running hub.

const (
	hubID      = "https://hub.test/kecis"
	merchantID = "https://merchant.test/kecis"
	issuerID   = "https://issuer.test/kecis"
	endpoint   = "https://issuer.test/kecis/soap"
)

var (
	approveService = saml.ServiceURI("card", "approve")
	t0             = testutil.FixedNow
	rollover       = t0.Add(2 * time.Hour) // the issuer's signing key changes
)

func testdataSigner(t *testing.T, name string) *saml.Signer {
	t.Helper()
	dir := filepath.Join("..", "..", "saml", "testdata", "keys")
	s, err := saml.LoadSigner(filepath.Join(dir, name+".key.pem"), filepath.Join(dir, name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type world struct {
	st       store.Store
	hub      *saml.Signer
	merchant *saml.Signer
	issuer   *saml.Signer // the issuer's signing key until the rollover; its encryption key throughout
	issuer2  *saml.Signer // its signing key after the rollover
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keyPEM, certPEM, err := devpki.Generate(devpki.Signing, "hub signing", nil, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, err := saml.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := saml.ParseCertificatesPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := saml.NewSigner(key, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	w := &world{st: st, hub: hub, merchant: testdataSigner(t, "merchant-rsa"),
		issuer: testdataSigner(t, "issuer-rsa"), issuer2: testdataSigner(t, "issuer-ec")}

	// The metadata in force, as the router snapshots it: the merchant's,
	// and the issuer's before and after its key rollover.
	w.snapshot(t, &metadata.EntityDescriptor{EntityID: merchantID, Roles: []metadata.Role{metadata.RoleMerchant},
		Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: w.merchant.Cert}}}, 1, t0)
	issuer := func(signing *x509.Certificate) *metadata.EntityDescriptor {
		return &metadata.EntityDescriptor{EntityID: issuerID, Roles: []metadata.Role{metadata.RoleIssuer},
			Keys: []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: signing},
				{Use: metadata.UseEncryption, Certificate: w.issuer.Cert}},
			Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: endpoint}},
			Services:  []metadata.OfferedService{{Service: approveService, Callers: []metadata.Role{metadata.RoleMerchant}}}}
	}
	w.snapshot(t, issuer(w.issuer.Cert), 1, t0)
	w.snapshot(t, issuer(w.issuer2.Cert), 2, rollover)
	return w
}

// snapshot stores ed, signed by the hub, as version version in force from
// from on.
func (w *world) snapshot(t *testing.T, ed *metadata.EntityDescriptor, version int64, from time.Time) {
	t.Helper()
	ed.ValidUntil = from.Add(10 * 365 * 24 * time.Hour)
	signed, err := metadata.SignEntity(ed, w.hub)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.PutSnapshot(context.Background(), &store.MetadataSnapshot{EntityID: ed.EntityID, Version: version, ValidFrom: from, Signed: signed}); err != nil {
		t.Fatal(err)
	}
}

// request is a card approval from issuer (the merchant, or the hub on the
// merchant's behalf), the card encrypted for the card issuer, signed.
func (w *world) request(t *testing.T, signer *saml.Signer, issuer, onBehalfOf, key string, at time.Time) (string, []byte) {
	t.Helper()
	b := &saml.Builder{Issuer: issuer, Now: func() time.Time { return at }}
	req, err := b.NewRequest(endpoint, approveService)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey, req.OnBehalfOf = key, onBehalfOf
	if req.Payload, err = ecml.FromForm(map[string][]string{
		"Ecom_SchemaVersion": {ecml.SchemaVersion}, "Ecom_ConsumerOrderID": {"ORD-" + key},
		"Ecom_Payment_Card_Number": {"4111111111111111"}, "Ecom_Payment_Card_ExpDate_Month": {"12"}, "Ecom_Payment_Card_ExpDate_Year": {"2030"},
		"Ecom_Transaction_Amount": {"15000"}, "Ecom_Transaction_CurrencyCode": {"KRW"}, "Ecom_Transaction_Type": {"credit"},
	}); err != nil {
		t.Fatal(err)
	}
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: issuerID, Cert: w.issuer.Cert}); err != nil {
		t.Fatal(err)
	}
	msg, err := signer.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return req.ID, msg
}

// response is signer's answer to inResponseTo.
func (w *world) response(t *testing.T, signer *saml.Signer, issuer, inResponseTo string, st saml.Status, at time.Time) []byte {
	t.Helper()
	b := &saml.Builder{Issuer: issuer, Now: func() time.Time { return at }}
	resp, err := b.NewResponse(inResponseTo, "", st)
	if err != nil {
		t.Fatal(err)
	}
	el, err := resp.Element()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := signer.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (w *world) audit(t *testing.T, r *store.AuditRecord) {
	t.Helper()
	if err := w.st.AppendAudit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// relayed records, as the router does, a merchant's card approval under key
// at: a first attempt the hub answered Pending (its status filed by request
// ID only), then the retry the issuer answered with signer. It returns the
// messages in order.
func (w *world) relayed(t *testing.T, key string, at time.Time, signer *saml.Signer) [][]byte {
	tx := merchantID + "|" + key
	id0, in0 := w.request(t, w.merchant, merchantID, "", key, at)
	w.audit(t, &store.AuditRecord{Time: at, Kind: "message.in", Actor: merchantID, EntityID: issuerID, TxID: tx, RequestID: id0, IdempotencyKey: key,
		Detail: `{"service":"` + approveService + `"}`, Message: in0})
	hub0 := w.response(t, w.hub, hubID, id0, saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending}, at.Add(20*time.Second))
	w.audit(t, &store.AuditRecord{Time: at.Add(20 * time.Second), Kind: "message.hub", Actor: hubID, RequestID: id0,
		Detail: `{"sub":"` + saml.CodePending + `"}`, Message: hub0})
	at = at.Add(time.Minute)
	id1, in1 := w.request(t, w.merchant, merchantID, "", key, at)
	w.audit(t, &store.AuditRecord{Time: at, Kind: "message.in", Actor: merchantID, EntityID: issuerID, TxID: tx, RequestID: id1, IdempotencyKey: key,
		Detail: `{"service":"` + approveService + `"}`, Message: in1})
	out1 := w.response(t, signer, issuerID, id1, saml.Status{Code: saml.StatusSuccess, Message: "APV00001"}, at.Add(time.Second))
	w.audit(t, &store.AuditRecord{Time: at.Add(time.Second), Kind: "message.out", Actor: merchantID, EntityID: issuerID, TxID: tx, RequestID: id1, IdempotencyKey: key,
		Detail: `{"status":"` + saml.StatusSuccess + `"}`, Message: out1})
	// Another transaction's records stay out of the bundle.
	_, other := w.request(t, w.merchant, merchantID, "", key+"-other", at)
	w.audit(t, &store.AuditRecord{Time: at, Kind: "message.in", Actor: merchantID, EntityID: issuerID, TxID: tx + "-other", RequestID: "_other", Message: other})
	return [][]byte{in0, hub0, in1, out1}
}

func export(t *testing.T, w *world, tx string) (*evidence.Manifest, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := evidence.Export(context.Background(), w.st, hubID, w.hub.Cert, tx, dir, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("export %s: %v", tx, err)
	}
	return m, dir
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A relayed exchange's bundle holds every signed message of the
// transaction byte for byte, in order (the hub's own status found by the
// request it answers), each signer's certificate as its signature carries
// it, and the hub-signed metadata of each signer as it was at the time of
// its message — before the issuer's key rollover, the old key's version —;
// the manifest says what each file is; no card number in clear anywhere.
func TestExportRelayed(t *testing.T) {
	w := newWorld(t)
	msgs := w.relayed(t, "k1", t0.Add(time.Hour), w.issuer)
	m, dir := export(t, w, merchantID+"|k1")

	if m.Tx != merchantID+"|k1" || m.Hub != hubID || !m.ExportedAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("manifest: %+v", m)
	}
	if !bytes.Equal(readFile(t, dir, m.HubCert), saml.EncodeCertPEM(w.hub.Cert)) {
		t.Fatal("the hub's certificate")
	}
	want := []struct {
		kind, root, issuer string
		signer             *x509.Certificate
		snapshot           string
	}{
		{"message.in", "ServiceRequest", merchantID, w.merchant.Cert, "metadata/https___merchant.test_kecis-v1.xml"},
		{"message.hub", "ServiceResponse", hubID, w.hub.Cert, ""},
		{"message.in", "ServiceRequest", merchantID, w.merchant.Cert, "metadata/https___merchant.test_kecis-v1.xml"},
		{"message.out", "ServiceResponse", issuerID, w.issuer.Cert, "metadata/https___issuer.test_kecis-v1.xml"},
	}
	if len(m.Items) != len(want) {
		t.Fatalf("%d items, want %d: %+v", len(m.Items), len(want), m.Items)
	}
	for i, it := range m.Items {
		wt := want[i]
		if it.Kind != wt.kind || it.Root != wt.root || it.Issuer != wt.issuer || it.Snapshot != wt.snapshot || it.AuthDetail != "" {
			t.Errorf("item %d: %+v, want %+v", i, it, wt)
		}
		if !bytes.Equal(readFile(t, dir, it.File), msgs[i]) {
			t.Errorf("item %d: %s is not the message as relayed", i, it.File)
		}
		if it.SignerCert != "certs/"+saml.Fingerprint(wt.signer)+".pem" || !bytes.Equal(readFile(t, dir, it.SignerCert), saml.EncodeCertPEM(wt.signer)) {
			t.Errorf("item %d: signer certificate %s", i, it.SignerCert)
		}
		if root, _ := saml.ParseDocument(msgs[i], saml.Limits{}); it.ID != root.SelectAttrValue("ID", "") {
			t.Errorf("item %d: ID %s", i, it.ID)
		}
	}
	if len(m.Snapshots) != 2 {
		t.Fatalf("snapshots %v, want the merchant's and the issuer's of the time", m.Snapshots)
	}
	for _, s := range m.Snapshots {
		id := merchantID
		if strings.Contains(s, "issuer") {
			id = issuerID
		}
		snap, err := w.st.SnapshotAt(context.Background(), id, t0.Add(time.Hour))
		if err != nil || !bytes.Equal(readFile(t, dir, s), snap.Signed) {
			t.Errorf("%s is not the snapshot in force: %v", s, err)
		}
	}
	var onDisk evidence.Manifest
	if err := json.Unmarshal(readFile(t, dir, "manifest.json"), &onDisk); err != nil || len(onDisk.Items) != len(m.Items) || onDisk.Items[3] != m.Items[3] {
		t.Fatalf("manifest.json: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "VERIFY.sh")); err != nil || fi.Mode()&0o100 == 0 {
		t.Fatalf("VERIFY.sh is not executable: %v", err)
	}
	readFile(t, dir, "README.txt")
	noPAN(t, dir)

	// A message ID finds its transaction's records too.
	byID, _ := export(t, w, m.Items[2].ID)
	if len(byID.Items) != 2 || byID.Items[0].ID != m.Items[2].ID {
		t.Fatalf("by message ID: %+v", byID.Items)
	}
	// An unknown transaction is an error, and writes nothing.
	empty := t.TempDir()
	if _, err := evidence.Export(context.Background(), w.st, hubID, w.hub.Cert, merchantID+"|nope", empty, t0); !errors.Is(err, evidence.ErrNoRecords) {
		t.Fatalf("unknown transaction: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("an unknown transaction wrote %d files", len(ents))
	}
}

// After the issuer's key rollover its answer is signed with the new key,
// and the bundle carries the metadata version that lists it.
func TestExportAfterRollover(t *testing.T) {
	w := newWorld(t)
	w.relayed(t, "k2", rollover.Add(time.Hour), w.issuer2)
	m, _ := export(t, w, merchantID+"|k2")
	out := m.Items[len(m.Items)-1]
	if out.Issuer != issuerID || out.Snapshot != "metadata/https___issuer.test_kecis-v2.xml" || out.SignerCert != "certs/"+saml.Fingerprint(w.issuer2.Cert)+".pem" {
		t.Fatalf("the issuer's answer after the rollover: %+v", out)
	}
}

// A facade transaction's bundle carries the hub's record of how it
// authenticated the merchant, with the request it signed on the merchant's
// behalf.
func TestExportFacade(t *testing.T) {
	w := newWorld(t)
	at := t0.Add(time.Hour)
	id, req := w.request(t, w.hub, hubID, merchantID, "web-1", at)
	auth := `{"auth_method":"api-key","credential_sha256":"3f1d…","on_behalf_of":"` + merchantID + `","service":"` + approveService + `"}`
	tx := hubID + "|web-1"
	w.audit(t, &store.AuditRecord{Time: at, Kind: "facade.request", Actor: merchantID, EntityID: merchantID, TxID: tx, RequestID: id, IdempotencyKey: "web-1", Detail: auth, Message: req})
	ans := w.response(t, w.issuer, issuerID, id, saml.Status{Code: saml.StatusSuccess}, at.Add(time.Second))
	w.audit(t, &store.AuditRecord{Time: at.Add(time.Second), Kind: "message.out", Actor: hubID, EntityID: issuerID, TxID: tx, RequestID: id, IdempotencyKey: "web-1", Message: ans})

	m, dir := export(t, w, tx)
	if len(m.Items) != 2 || m.Items[0].Kind != "facade.request" || m.Items[0].AuthDetail != auth || m.Items[0].Issuer != hubID || m.Items[0].Snapshot != "" {
		t.Fatalf("facade request: %+v", m.Items)
	}
	if m.Items[1].AuthDetail != "" || m.Items[1].Snapshot != "metadata/https___issuer.test_kecis-v1.xml" {
		t.Fatalf("the issuer's answer: %+v", m.Items[1])
	}
	var onDisk evidence.Manifest
	if err := json.Unmarshal(readFile(t, dir, "manifest.json"), &onDisk); err != nil || onDisk.Items[0].AuthDetail != auth {
		t.Fatalf("manifest.json lacks the merchant's authentication: %v", err)
	}
}

func noPAN(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(p); err != nil || ecml.ContainsPAN(string(b)) {
			t.Errorf("%s: a card number in clear (%v)", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verify runs the bundle's VERIFY.sh.
func verify(t *testing.T, dir string) (string, error) {
	t.Helper()
	out, err := exec.Command("sh", filepath.Join(dir, "VERIFY.sh")).CombinedOutput()
	return string(out), err
}

// VERIFY.sh checks the bundle with xmlsec1 and openssl alone: it passes on
// the bundle as exported, confirming each signer is listed in its
// snapshot, and fails when a message or a snapshot was altered, when a
// message's certificate was swapped, or when a snapshot does not list the
// message's signer.
func TestVerifyScript(t *testing.T) {
	testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	testutil.RequireTool(t, "openssl", "openssl")
	w := newWorld(t)
	w.relayed(t, "k1", t0.Add(time.Hour), w.issuer)
	fresh := func() (*evidence.Manifest, string) { return export(t, w, merchantID+"|k1") }

	m, dir := fresh()
	out, err := verify(t, dir)
	if err != nil || !strings.Contains(out, "all signatures verify") {
		t.Fatalf("VERIFY.sh on the bundle as exported: %v\n%s", err, out)
	}
	for _, it := range m.Items {
		if it.Snapshot != "" && !strings.Contains(out, it.File+": signer listed in "+it.Snapshot) {
			t.Errorf("VERIFY.sh did not confirm the signer of %s in %s:\n%s", it.File, it.Snapshot, out)
		}
	}

	const notListed = "signer NOT listed as a signing key"
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, m *evidence.Manifest, dir string)
		reason string // in the output, when the failure has one of its own
	}{
		{"a tampered message", func(t *testing.T, m *evidence.Manifest, dir string) {
			out := m.Items[3].File // the issuer's answer
			b := readFile(t, dir, out)
			write(t, dir, out, bytes.Replace(b, []byte("APV00001"), []byte("APV00002"), 1))
		}, ""},
		{"a tampered snapshot", func(t *testing.T, m *evidence.Manifest, dir string) {
			b := readFile(t, dir, m.Snapshots[0])
			write(t, dir, m.Snapshots[0], bytes.Replace(b, []byte(`validUntil="`), []byte(`validUntil="2`), 1))
		}, ""},
		{"a message's certificate swapped for another signer's", func(t *testing.T, m *evidence.Manifest, dir string) {
			write(t, dir, m.Items[3].SignerCert, saml.EncodeCertPEM(w.merchant.Cert))
		}, ""},
		{"a snapshot that does not list the signer", func(t *testing.T, m *evidence.Manifest, dir string) {
			// The merchant's metadata, validly signed by the hub, in place of
			// the issuer's.
			write(t, dir, m.Items[3].Snapshot, readFile(t, dir, m.Items[0].Snapshot))
		}, notListed},
		{"a snapshot that lists the signer's certificate, not as a signing key", func(t *testing.T, m *evidence.Manifest, dir string) {
			// The issuer's later metadata, validly signed by the hub, lists
			// only its new key.
			later, err := w.st.SnapshotAt(context.Background(), issuerID, rollover)
			if err != nil {
				t.Fatal(err)
			}
			write(t, dir, m.Items[3].Snapshot, later.Signed)
		}, notListed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := fresh()
			tc.tamper(t, m, dir)
			out, err := verify(t, dir)
			if err == nil || strings.Contains(out, "all signatures verify") {
				t.Fatalf("VERIFY.sh passed:\n%s", out)
			}
			if !strings.Contains(out, tc.reason) {
				t.Fatalf("VERIFY.sh failed without saying %q:\n%s", tc.reason, out)
			}
		})
	}
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
