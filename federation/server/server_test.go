package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// testHub is a hub on loopback with an operator and a participant key set.
type testHub struct {
	t        *testing.T
	dir      string
	srv      *server.Server
	st       store.Store
	url, ops string
	hubCert  *x509.Certificate // signing
	tlsCert  *x509.Certificate
	operator tls.Certificate
	cancel   context.CancelFunc
	done     chan error
	logs     *testutil.SyncBuffer
	dbPath   string
	cfgPath  string
}

// replica starts a second hub on the same configuration and database: two
// replicas of one hub.
func (h *testHub) replica(t *testing.T) *testHub {
	c, err := server.LoadConfig(h.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlstore.Open(ctx, c.SQLiteDSN())
	if err != nil {
		t.Fatal(err)
	}
	r := *h
	r.st, r.logs = st, &testutil.SyncBuffer{}
	srv, err := server.New(c, st, nil, server.Describe, slog.New(slog.NewJSONHandler(r.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Publisher = srv.DefaultPublisher()
	r.srv = srv
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ol, _ := net.Listen("tcp", "127.0.0.1:0")
	r.url, r.ops = "https://"+pl.Addr().String(), "http://"+ol.Addr().String()
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- srv.Serve(ctx, pl, ol) }()
	t.Cleanup(func() {
		r.cancel()
		<-r.done
		st.Close()
	})
	return &r
}

func writeKey(t *testing.T, dir string, kind devpki.Kind, cn string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	if _, err := devpki.Ensure(dir, kind, cn, devpki.LoopbackHosts, time.Now()); err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(kp.Certificate[0])
	return kp, c
}

func startHub(t *testing.T, dsn string) *testHub { return startHubWith(t, dsn, 0) }

func startHubWith(t *testing.T, dsn string, relayTimeout time.Duration) *testHub {
	return startHubFull(t, dsn, relayTimeout, "")
}

func startHubFull(t *testing.T, dsn string, relayTimeout time.Duration, extraYAML string) *testHub {
	t.Helper()
	dir := t.TempDir()
	h := &testHub{t: t, dir: dir}
	_, h.hubCert = writeKey(t, filepath.Join(dir, "signing"), devpki.Signing, "hub signing")
	_, h.tlsCert = writeKey(t, filepath.Join(dir, "tls"), devpki.TLSServer, "hub tls")
	var opCert *x509.Certificate
	h.operator, opCert = writeKey(t, filepath.Join(dir, "operator"), devpki.TLSClient, "operator")
	if dsn == "" {
		h.dbPath = filepath.Join(dir, "hub.db")
		dsn = "sqlite:" + h.dbPath
	}
	cfg := fmt.Sprintf(`entity_id: https://hub.test/kecis
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: %q}
log: {level: warn}
limits: {relay_timeout: %s}
open_registration: true
operators:
  - {name: alice, cert_sha256: %s}
`+extraYAML, dsn, relayTimeoutOr(relayTimeout), saml.Fingerprint(opCert))
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfgPath = path
	c, err := server.LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlstore.Open(ctx, c.SQLiteDSN())
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	h.logs = &testutil.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(c, st, nil, server.Describe, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv.Publisher = srv.DefaultPublisher()
	h.srv = srv
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ol, _ := net.Listen("tcp", "127.0.0.1:0")
	h.url, h.ops = "https://"+pl.Addr().String(), "http://"+ol.Addr().String()
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- srv.Serve(ctx, pl, ol) }()
	t.Cleanup(func() {
		h.cancel()
		if err := <-h.done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
		st.Close()
	})
	return h
}

// client presents cert (if any) and pins the hub's TLS certificate.
func (h *testHub) client(cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(h.tlsCert)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func (h *testHub) do(cert *tls.Certificate, method, path string, body []byte) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	resp, err := h.client(cert).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *testHub) operate(action, entity string) int {
	body, _ := json.Marshal(map[string]string{"entity_id": entity, "reason": "test"})
	code, _ := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/"+action, body)
	return code
}

// participant makes a participant's metadata with its own TLS client key.
func participant(t *testing.T, entityID string) ([]byte, tls.Certificate) {
	dir := t.TempDir()
	kp, tlsCert := writeKey(t, filepath.Join(dir, "tls"), devpki.TLSClient, entityID)
	_, sig := writeKey(t, filepath.Join(dir, "sig"), devpki.Signing, entityID)
	_, enc := writeKey(t, filepath.Join(dir, "enc"), devpki.Encryption, entityID)
	ed := &metadata.EntityDescriptor{
		EntityID: entityID, DisplayName: "Test issuer", Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: sig}, {Use: metadata.UseEncryption, Certificate: enc}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: tlsCert}},
		Endpoints: []metadata.Endpoint{{Service: "*", Binding: saml.BindingSOAP, Location: "https://issuer.test/kecis/soap"}},
		Services:  []metadata.OfferedService{{Service: saml.ServiceURI("card", "approve"), Callers: []metadata.Role{metadata.RoleMerchant}}},
	}
	md, err := metadata.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return md, kp
}

func TestHubLifecycleAndMetadata(t *testing.T) {
	h := startHub(t, "")
	// Ready: database, keys, metadata.
	resp, err := http.Get(h.ops + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "metadata: ok") {
		t.Fatalf("/readyz: %d %s", resp.StatusCode, b)
	}

	const id = "https://issuer.test/kecis"
	md, kp := participant(t, id)
	other := writeOther(t)
	// Registration needs the TLS client certificate the metadata publishes.
	if code, _ := h.do(&other, http.MethodPost, "/kecis/federation/participants", md); code != http.StatusForbidden {
		t.Fatalf("registration with a foreign certificate: %d", code)
	}
	if code, b := h.do(&kp, http.MethodPost, "/kecis/federation/participants", md); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	if code, _ := h.do(&kp, http.MethodPost, "/kecis/federation/participants", md); code != http.StatusConflict {
		t.Fatalf("second registration: %d", code)
	}
	// Pending participants are not published.
	if code, _ := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+metadata.EncodeMDQ(id), nil); code != http.StatusNotFound {
		t.Fatalf("pending participant served: %d", code)
	}
	// Operator API refuses a participant's certificate.
	body, _ := json.Marshal(map[string]string{"entity_id": id})
	if code, _ := h.do(&kp, http.MethodPost, "/kecis/admin/participants/approve", body); code != http.StatusForbidden {
		t.Fatalf("approval by a non-operator: %d", code)
	}
	if code := h.operate("approve", id); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	for _, seg := range []string{metadata.EncodeMDQ(id), metadata.EncodeMDQ(metadata.SHA1ID(id))} {
		code, b := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+seg, nil)
		if code != 200 {
			t.Fatalf("MDQ %s: %d %s", seg, code, b)
		}
		ed, err := metadata.VerifyEntity(b, []*x509.Certificate{h.hubCert}, time.Now())
		if err != nil || ed.EntityID != id {
			t.Fatalf("MDQ document does not verify: %v", err)
		}
	}
	// The hub's own descriptor answers in both forms too (MDQ §2.5).
	for _, seg := range []string{metadata.EncodeMDQ("https://hub.test/kecis"), metadata.EncodeMDQ(metadata.SHA1ID("https://hub.test/kecis"))} {
		code, b := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+seg, nil)
		if code != 200 {
			t.Fatalf("MDQ of the hub %s: %d %s", seg, code, b)
		}
		if ed, err := metadata.VerifyEntity(b, []*x509.Certificate{h.hubCert}, time.Now()); err != nil || ed.EntityID != "https://hub.test/kecis" {
			t.Fatalf("the hub's MDQ document: %v", err)
		}
	}
	code, agg := h.do(nil, http.MethodGet, "/kecis/metadata", nil)
	a, err := metadata.VerifyAggregate(agg, []*x509.Certificate{h.hubCert}, time.Now())
	if code != 200 || err != nil {
		t.Fatalf("aggregate: %d %v", code, err)
	}
	if _, ok := a.Entity(id); !ok {
		t.Fatal("approved participant missing from the aggregate")
	}
	// Suspended: gone from what the hub serves.
	if code := h.operate("suspend", id); code != 200 {
		t.Fatalf("suspend: %d", code)
	}
	if code, _ := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+metadata.EncodeMDQ(id), nil); code != http.StatusNotFound {
		t.Fatalf("suspended participant still served: %d", code)
	}
	_, agg = h.do(nil, http.MethodGet, "/kecis/metadata", nil)
	a, _ = metadata.VerifyAggregate(agg, []*x509.Certificate{h.hubCert}, time.Now())
	if _, ok := a.Entity(id); ok {
		t.Fatal("suspended participant still in the aggregate")
	}
	if code := h.operate("approve", id); code != http.StatusConflict {
		t.Fatalf("approving a suspended participant: %d (reinstate is the way)", code)
	}
	// Every change is audited.
	recs, err := h.st.ListAudit(context.Background(), store.AuditFilter{EntityID: id})
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
	// Metrics are exposed.
	resp, _ = http.Get(h.ops + "/metrics")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `kecis_hub_registry_events_total{action="participant.suspend"} 1`) {
		t.Fatalf("metrics lack the registry events")
	}
}

func writeOther(t *testing.T) tls.Certificate {
	kp, _ := writeKey(t, filepath.Join(t.TempDir(), "x"), devpki.TLSClient, "someone else")
	return kp
}

// TestThousandParticipants: the per-entity descriptors and the aggregate of
// 1,000 generated participants are served and verify with xmlsec1 against
// the hub's certificate.
func TestThousandParticipants(t *testing.T) {
	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	h := startHub(t, "")
	ctx := context.Background()
	eds := metadatatest.GenerateParticipants(1000, 7)
	now := time.Now().UTC()
	start := time.Now()
	for _, ed := range eds {
		md, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		p, err := server.Describe(md)
		if err != nil {
			t.Fatal(err)
		}
		p.Status, p.Metadata, p.CreatedAt, p.UpdatedAt = store.StatusActive, md, now, now
		if err := h.st.CreateParticipant(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stored 1,000 participants in %s", time.Since(start))
	start = time.Now()
	code, agg := h.do(nil, http.MethodGet, "/kecis/metadata", nil)
	if code != 200 {
		t.Fatalf("aggregate: %d", code)
	}
	t.Logf("aggregate: %d bytes, built, signed and served in %s", len(agg), time.Since(start))
	pem := filepath.Join(h.dir, "signing", "cert.pem")
	verify := func(doc []byte, idAttr string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "md.xml")
		os.WriteFile(f, doc, 0o600)
		out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", pem, "--id-attr:ID", idAttr, f).CombinedOutput()
		if err != nil {
			t.Fatalf("xmlsec1 --verify: %v\n%s", err, out)
		}
	}
	start = time.Now()
	verify(agg, "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor")
	t.Logf("xmlsec1 verified the aggregate in %s", time.Since(start))
	a, err := metadata.VerifyAggregate(agg, []*x509.Certificate{h.hubCert}, time.Now())
	if err != nil || len(a.Entities) != 1001 { // the participants and the hub itself
		t.Fatalf("aggregate: %v", err)
	}
	start = time.Now()
	for i, ed := range eds {
		code, doc := h.do(nil, http.MethodGet, "/kecis/metadata/entities/"+metadata.EncodeMDQ(ed.EntityID), nil)
		if code != 200 {
			t.Fatalf("MDQ %s: %d", ed.EntityID, code)
		}
		if _, err := metadata.VerifyEntity(doc, []*x509.Certificate{h.hubCert}, time.Now()); err != nil {
			t.Fatalf("MDQ %s: %v", ed.EntityID, err)
		}
		if i%100 == 0 {
			verify(doc, "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor")
		}
	}
	t.Logf("1,000 per-entity descriptors served and verified in %s", time.Since(start))
}

func relayTimeoutOr(d time.Duration) string {
	if d == 0 {
		d = 5 * time.Second
	}
	return d.String()
}
