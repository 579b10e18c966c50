package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
)

// TestHubBoundsSlowClientsAndBodies: the hub's public listener, built with
// connectors/httpserver under its configured limits (KECIS §9.10), cuts
// off a client that stalls in its body after read_timeout; a conformance
// report above the 1 MiB message cap still reaches its handler, and every
// other route keeps max_body_bytes.
func TestHubBoundsSlowClientsAndBodies(t *testing.T) {
	dir := t.TempDir()
	h := &testHub{t: t, dir: dir}
	_, _ = writeKey(t, filepath.Join(dir, "signing"), devpki.Signing, "hub signing")
	_, h.tlsCert = writeKey(t, filepath.Join(dir, "tls"), devpki.TLSServer, "hub tls")
	var opCert *x509.Certificate
	h.operator, opCert = writeKey(t, filepath.Join(dir, "operator"), devpki.TLSClient, "operator")
	const readTimeout = time.Second
	cfg := fmt.Sprintf(`entity_id: https://hub.test/kecis
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: "sqlite:hub.db"}
log: {level: error}
limits: {read_timeout: %v, write_timeout: 5s, relay_timeout: 2s}
operators:
  - {name: alice, cert_sha256: %s}
`, readTimeout, saml.Fingerprint(opCert))
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := server.LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlstore.Open(ctx, c.SQLiteDSN())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(c, st, nil, server.Describe, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Publisher = srv.DefaultPublisher()
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ol, _ := net.Listen("tcp", "127.0.0.1:0")
	h.url = "https://" + pl.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, ol) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})

	t.Run("slow body", func(t *testing.T) {
		conn, err := tls.Dial("tcp", pl.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{h.operator}}) // the test reaches its own hub
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "PUT /kecis/federation/participants HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<md"); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_ = conn.SetReadDeadline(began.Add(readTimeout + 3*time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection is still open %v after read_timeout", 3*time.Second)
		}
		if took := time.Since(began); took < readTimeout/2 {
			t.Fatalf("closed after %v, before read_timeout", took)
		}
	})
	t.Run("a large conformance report is read", func(t *testing.T) {
		report := []byte(`{"plan":"` + strings.Repeat("x", 2<<20) + `"}`)
		code, body := h.do(&h.operator, http.MethodPost, "/kecis/admin/participants/conformance?entity_id=https://nobody.test/kecis", report)
		if code == http.StatusRequestEntityTooLarge || code < 400 {
			t.Fatalf("got %d %s, want the report read and refused on its content", code, body)
		}
	})
	t.Run("other routes keep max_body_bytes", func(t *testing.T) {
		code, _ := h.do(&h.operator, http.MethodPut, "/kecis/federation/participants", make([]byte, c.Limits.MaxBodyBytes+1))
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", code)
		}
	})
}

// TestWriteTimeoutMustExceedRelayTimeout: a Pending sent after the relay
// timeout must still be writable, so a configuration where it is not is
// refused at start-up.
func TestWriteTimeoutMustExceedRelayTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	cfg := `entity_id: https://hub.test/kecis
tls: {cert: t.pem, key: t.key}
signing: {cert: s.pem, key: s.key}
limits: {write_timeout: 20s, relay_timeout: 20s}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.LoadConfig(path, nil)
	if err == nil || !strings.Contains(err.Error(), "limits.write_timeout (20s) must exceed limits.relay_timeout (20s)") {
		t.Fatalf("got %v", err)
	}
}
