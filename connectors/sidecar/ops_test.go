package sidecar

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

// opsFixture is a sidecar of testdata/good.yaml with fresh keys, a hub
// publishing its descriptor and a native API.
type opsFixture struct {
	s      *Sidecar
	hub    *metadatatest.Hub
	native *httptest.Server
	self   *metadata.EntityDescriptor // as published
	down   *atomic.Bool               // the native API drops every connection
}

func newOpsFixture(t *testing.T) *opsFixture {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	for _, k := range []struct {
		kind      devpki.Kind
		cert, key string
	}{
		{devpki.Signing, "s.pem", "s.key"}, {devpki.Encryption, "e.pem", "e.key"}, {devpki.TLSServer, "t.pem", "t.key"},
		{devpki.Signing, "hub-signing.pem", "hub-signing.key"}, {devpki.TLSServer, "hub-tls.pem", ""},
	} {
		keyPEM, certPEM, err := devpki.Generate(k.kind, k.cert, devpki.LoopbackHosts, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k.cert), certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if k.key != "" {
			if err := os.WriteFile(filepath.Join(dir, k.key), keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	hubSigner, err := saml.LoadSigner(filepath.Join(dir, "hub-signing.key"), filepath.Join(dir, "hub-signing.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert := func(name string) *x509.Certificate {
		c, err := saml.LoadCertificates(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return c[0]
	}
	self := metadatatest.Simple("https://pg.test/kecis", cert("s.pem"))
	self.Keys = append(self.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: cert("e.pem")})
	hub := metadatatest.NewHub(t, hubSigner, nil, self)
	down := &atomic.Bool{}
	native := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"resultCode":"0000"}`)
	}))
	t.Cleanup(native.Close)
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "url: https://127.0.0.1:8443", "url: "+hub.URL, 1)
	doc = strings.Replace(doc, "base_url: http://127.0.0.1:9", "base_url: "+native.URL, 1)
	cfg, err := Parse([]byte(doc), "good.yaml", dir, func(string) string { return "x" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	return &opsFixture{s: s, hub: hub, native: native, self: self, down: down}
}

// get answers GET path from the operations handler.
func (f *opsFixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.s.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestReadyz: each check is named in the answer; the answer is 503 as
// soon as one fails, and says why.
func TestReadyz(t *testing.T) {
	f := newOpsFixture(t)
	code, body := f.get(t, "/readyz")
	if code != http.StatusOK || body != "keys: ok\nmetadata: ok\nnative: ok\nstore: ok\n" {
		t.Fatalf("ready: %d\n%s", code, body)
	}
	if code, body := f.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	for _, c := range []struct {
		name   string
		break_ func()
		mend   func()
		want   string
	}{
		{"keys expired", func() { f.s.now = func() time.Time { return time.Now().AddDate(30, 0, 0) } }, func() { f.s.now = time.Now },
			"keys: keys.signing: the certificate expired at "},
		{"not in the metadata", func() { f.hub.Remove(f.self.EntityID); f.s.dir.Invalidate(f.self.EntityID) },
			func() { f.hub.Put(f.self); f.s.dir.Invalidate(f.self.EntityID) },
			"metadata: no verified descriptor of https://pg.test/kecis from the hub"},
		{"encryption certificate not published", func() {
			other := metadatatest.Simple(f.self.EntityID, f.self.SigningCertificates()...)
			f.hub.Put(other)
			f.s.dir.Invalidate(f.self.EntityID)
		}, func() { f.hub.Put(f.self); f.s.dir.Invalidate(f.self.EntityID) },
			"metadata: the published descriptor does not list keys.encryption's certificate"},
		{"signing certificate not published", func() {
			other := metadatatest.Simple(f.self.EntityID, metadatatest.Pool()[2])
			other.Keys = append(other.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: f.self.EncryptionCertificates()[1]})
			f.hub.Put(other)
			f.s.dir.Invalidate(f.self.EntityID)
		}, func() { f.hub.Put(f.self); f.s.dir.Invalidate(f.self.EntityID) },
			"metadata: the published descriptor does not list keys.signing's certificate"},
		{"native down", func() { f.down.Store(true) }, func() { f.down.Store(false) }, "native: the native API does not answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.break_()
			code, body := f.get(t, "/readyz")
			c.mend()
			if code != http.StatusServiceUnavailable || !strings.Contains(body, c.want) {
				t.Fatalf("%d\n%s\nwant %q", code, body, c.want)
			}
			if n := strings.Count(body, ": ok\n"); n != 3 && c.name != "keys expired" { // expired keys come with expired metadata
				t.Errorf("%d checks ok, want the other 3:\n%s", n, body)
			}
			if code, body := f.get(t, "/readyz"); code != http.StatusOK {
				t.Fatalf("not ready again: %d\n%s", code, body)
			}
		})
	}
	// The hub down: the cached descriptor stands in while it is valid
	// (KECIS §11.2), so the adapter stays ready.
	f.hub.SetDown(true)
	f.s.dir.RetryInterval = time.Millisecond
	if code, body := f.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("hub down with a valid cached descriptor: %d\n%s", code, body)
	}
	f.hub.SetDown(false)
	// The store closed.
	f.s.store.Close()
	if code, body := f.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store: ") || strings.Contains(body, "store: ok") {
		t.Fatalf("store closed: %d\n%s", code, body)
	}
}

// TestMetrics: the endpoints' requests, the native calls and the
// readiness checks are counted, beside the Go and process collectors, on
// the operations listener that Serve starts.
func TestMetrics(t *testing.T) {
	f := newOpsFixture(t)
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.s.OpsListener = ops
	kl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.s.Serve(ctx, kl, cl) }()
	defer func() { cancel(); <-done }()

	// A native call, a request to the calling endpoint, a readiness check.
	st := &callState{fields: map[string][]string{"Ecom_ConsumerOrderID": {"O-1"}}, account: &Merchant{ID: "M1"}, captured: map[string]string{}}
	if _, _, err := f.s.engine.do(ctx, "urn:kecis:service:card:inquire", "lookup", &Call{Method: "GET", Path: "/x"}, st, "", ""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+cl.Addr().String()+"/v1/card/nothing", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + ops.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz over the listener: %d\n%s", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, w := range []string{
		`kecis_adapter_native_calls_total{call="lookup",result="200",service="urn:kecis:service:card:inquire"} 1`,
		`kecis_adapter_native_call_duration_seconds_count{call="lookup",service="urn:kecis:service:card:inquire"} 1`,
		`kecis_adapter_http_requests_total{code="` + strconv.Itoa(resp.StatusCode) + `",endpoint="call"} 1`,
		`kecis_adapter_ready{check="metadata"} 1`,
		`kecis_adapter_ready{check="native"} 1`,
		"go_goroutines ",
		"process_",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("missing %q in the metrics", w)
		}
	}
}

// TestOpsListenChecked: ops_listen must be host:port.
func TestOpsListenChecked(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := "ops_listen: localhost\n" + string(data)
	_, err = Parse([]byte(doc), "good.yaml", t.TempDir(), func(string) string { return "x" })
	if err == nil || !strings.Contains(err.Error(), "good.yaml:1: ops_listen: is not host:port") {
		t.Fatalf("got %v", err)
	}
	cfg, err := Parse([]byte("ops_listen: 127.0.0.1:9091\n"+string(data)), "good.yaml", t.TempDir(), func(string) string { return "x" })
	if err != nil || cfg.OpsListen != "127.0.0.1:9091" {
		t.Fatalf("%v %+v", err, cfg)
	}
}

// TestProviderKeyChangePickedUp: the sidecar's one metadata cache (the
// Handler's Directory, the Caller's client and Resolver) refreshes a
// provider's descriptor after the hub's cacheDuration, capped at an hour
// (metadata.DefaultMaxTTL): a new encryption certificate the provider
// publishes is what the sidecar encrypts for within that time, never
// later, and the old one is used until then — the provider keeps both
// keys through the rollover (KECIS §8.3, §11.2).
func TestProviderKeyChangePickedUp(t *testing.T) {
	f := newOpsFixture(t)
	base := time.Now()
	for _, c := range []struct {
		name          string
		cacheDuration time.Duration
		stale, fresh  time.Duration // still the old certificate at stale, the new one at fresh
	}{
		{"hub default (1h)", time.Hour, 59 * time.Minute, 61 * time.Minute},
		{"hub 10 minutes", 10 * time.Minute, 9 * time.Minute, 11 * time.Minute},
		{"hub 6h, capped at 1h", 6 * time.Hour, 59 * time.Minute, 61 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := base
			f.s.dir.Now = func() time.Time { return at }
			f.hub.SetValidity(24*time.Hour+c.fresh, c.cacheDuration)
			const provider = "https://issuer.test/kecis"
			encCert := func(issued time.Time) *x509.Certificate {
				_, certPEM, err := devpki.Generate(devpki.Encryption, "issuer encryption", nil, issued)
				if err != nil {
					t.Fatal(err)
				}
				c, err := saml.ParseCertificatesPEM(certPEM)
				if err != nil {
					t.Fatal(err)
				}
				return c[0]
			}
			oldCert := encCert(base)
			descriptor := func(enc ...*x509.Certificate) *metadata.EntityDescriptor {
				ed := metadatatest.Simple(provider, metadatatest.Pool()[2])
				ed.Keys = []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: metadatatest.Pool()[2]}}
				for _, c := range enc {
					ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: c})
				}
				return ed
			}
			f.hub.Put(descriptor(oldCert))
			f.s.dir.Invalidate(provider)
			ctx := context.Background()
			got, err := f.s.dir.EncryptionCertificate(ctx, provider)
			if err != nil || !got.Equal(oldCert) {
				t.Fatalf("first lookup: %v", err)
			}
			// The provider publishes a new encryption certificate beside
			// the old one (it expires later: the one senders choose).
			newCert := encCert(base.Add(30 * time.Minute))
			f.hub.Put(descriptor(oldCert, newCert))

			at = base.Add(c.stale)
			if got, err := f.s.dir.EncryptionCertificate(ctx, provider); err != nil || !got.Equal(oldCert) {
				t.Fatalf("at +%v: want the cached (old) certificate, err %v", c.stale, err)
			}
			at = base.Add(c.fresh)
			if got, err := f.s.dir.EncryptionCertificate(ctx, provider); err != nil || !got.Equal(newCert) {
				t.Fatalf("at +%v: want the new certificate, err %v", c.fresh, err)
			}
		})
	}
}
