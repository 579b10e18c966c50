package sidecar

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/internal/devpki"
)

// serving starts the sidecar of testdata/good.yaml, with fresh keys, on
// loopback ports under lim, and returns the KECIS and calling endpoints'
// addresses.
func serving(t *testing.T, lim httpserver.Limits) (kecis, call string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := goodSidecar(t, ctx, "")
	s.limits = lim
	kl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, kl, cl) }()
	t.Cleanup(func() { cancel(); <-done })
	return kl.Addr().String(), cl.Addr().String()
}

// goodSidecar builds the sidecar of testdata/good.yaml and extraYAML (keys
// at its top level), with fresh keys.
func goodSidecar(t *testing.T, ctx context.Context, extraYAML string) *Sidecar {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	for _, k := range []struct {
		kind      devpki.Kind
		cert, key string
	}{
		{devpki.Signing, "s.pem", "s.key"}, {devpki.Encryption, "e.pem", "e.key"}, {devpki.TLSServer, "t.pem", "t.key"},
		{devpki.Signing, "hub-signing.pem", ""}, {devpki.TLSServer, "hub-tls.pem", ""},
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
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(append(data, extraYAML...), "good.yaml", dir, func(string) string { return "x" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSlowAndIdleConnectionsAreClosed is the regression test of issue 12
// finding 6: the sidecar's KECIS listener kept a body sent at 1 byte/s
// open past 45 s and an idle keep-alive past 100 s (it set only a header
// timeout). Both endpoints now close them once their limits have passed.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	lim := httpserver.Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: time.Second, IdleTimeout: 200 * time.Millisecond}
	kecis, call := serving(t, lim)
	dialKECIS := func(t *testing.T) net.Conn {
		c, err := tls.Dial("tcp", kecis, &tls.Config{InsecureSkipVerify: true}) // the test reaches its own listener
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dialCall := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", call)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, ep := range []struct {
		name      string
		dial      func(*testing.T) net.Conn
		post, get string
	}{
		{"kecis", dialKECIS, "/kecis/soap", "/healthz"},
		{"call", dialCall, "/v1/card/inquire", "/v1/card/inquire"},
	} {
		t.Run(ep.name+"/slow body", func(t *testing.T) {
			c := ep.dial(t)
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+ep.post+" HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<s"); err != nil {
				t.Fatal(err)
			}
			awaitClosed(t, c, lim.ReadTimeout/2)
		})
		t.Run(ep.name+"/idle keep-alive", func(t *testing.T) {
			c := ep.dial(t)
			defer c.Close()
			if _, err := io.WriteString(c, "GET "+ep.get+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				t.Fatalf("%s: the connection was not kept alive: nothing to test", resp.Status)
			}
			awaitClosed(t, c, lim.IdleTimeout/2)
		})
	}
}

// awaitClosed reads c until the server closes it; it fails when that
// happens before atLeast (something other than the limit closed it) or
// not within a few seconds.
func awaitClosed(t *testing.T, c net.Conn, atLeast time.Duration) {
	t.Helper()
	const bound = 3 * time.Second
	began := time.Now()
	_ = c.SetReadDeadline(began.Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %v", bound)
	}
	if took := time.Since(began); took < atLeast {
		t.Fatalf("closed after %v, before the limit (%v)", took, atLeast)
	}
}
