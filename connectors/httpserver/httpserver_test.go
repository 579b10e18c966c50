package httpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

// short are the limits the tests inject: small enough that a test waits a
// fraction of a second, large enough that a loaded machine still answers.
var short = Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
	WriteTimeout: 300 * time.Millisecond, IdleTimeout: 200 * time.Millisecond, MaxBodyBytes: 1 << 10}

// bound is how long a test waits for the server to close a connection
// whose limit has passed.
const bound = 3 * time.Second

// start serves h under lim on a loopback port and returns its address.
func start(t *testing.T, h http.Handler, lim Limits, log *slog.Logger) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(h, lim, log)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// echo reads the whole body and answers with its length.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	case err != nil:
		http.Error(w, "bad body", http.StatusBadRequest)
	default:
		_, _ = io.WriteString(w, strings.Repeat("x", len(b)))
	}
})

// awaitClosed reads c until the server closes it, and fails the test when
// that happens before atLeast (then something else than the limit closed
// it) or not within bound.
func awaitClosed(t *testing.T, c net.Conn, what string, atLeast time.Duration) {
	t.Helper()
	began := time.Now()
	_ = c.SetReadDeadline(began.Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection is still open after %v", what, bound)
	}
	if took := time.Since(began); took < atLeast {
		t.Fatalf("%s: closed after %v, before the limit (%v)", what, took, atLeast)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowBodyIsCutOff: a client that sends a few bytes of its body and
// stalls loses the connection once the read timeout has passed.
func TestSlowBodyIsCutOff(t *testing.T) {
	addr := start(t, echo, short, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, c, "slow body", short.ReadTimeout/2)
}

// TestSlowHeadersAreCutOff: the same for a client that never finishes its
// headers.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := start(t, echo, short, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, c, "slow headers", short.ReadHeaderTimeout/2)
}

// TestIdleKeepAliveIsClosed: after an answer, a keep-alive connection with
// no further request is closed once the idle timeout has passed.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	addr := start(t, echo, short, nil)
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server did not keep the connection alive: nothing to test")
	}
	awaitClosed(t, c, "idle keep-alive", short.IdleTimeout/2)
}

// TestSlowHandlerLosesItsAnswer: an answer not written within the write
// timeout is not delivered.
func TestSlowHandlerLosesItsAnswer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-time.After(2 * short.WriteTimeout):
		case <-release:
		}
		_, _ = io.WriteString(w, "late")
	}), short, nil)
	hc := &http.Client{Timeout: bound}
	resp, err := hc.Get("http://" + addr + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %s, want the connection closed", resp.Status)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client timed out (%v): the server kept the connection", err)
	}
}

// TestBodyCap: a body over the cap is not read past it; the handler sees
// *http.MaxBytesError. A body at the cap passes.
func TestBodyCap(t *testing.T) {
	addr := start(t, echo, short, nil)
	for _, tc := range []struct {
		n    int64
		want int
	}{{short.MaxBodyBytes, http.StatusOK}, {short.MaxBodyBytes + 1, http.StatusRequestEntityTooLarge}} {
		resp, err := http.Post("http://"+addr+"/", "text/plain", bytes.NewReader(make([]byte, tc.n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes: got %d, want %d", tc.n, resp.StatusCode, tc.want)
		}
	}
}

// TestDefaults: zero and negative fields take the defaults; set ones stay.
func TestDefaults(t *testing.T) {
	got := Limits{ReadTimeout: -1, WriteTimeout: 45 * time.Second, MaxBodyBytes: 16 << 20}.WithDefaults()
	want := Limits{ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout, WriteTimeout: 45 * time.Second,
		IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes, MaxBodyBytes: 16 << 20}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	srv := New(echo, Limits{}, nil)
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.ReadTimeout != DefaultReadTimeout || srv.WriteTimeout != DefaultWriteTimeout ||
		srv.IdleTimeout != DefaultIdleTimeout || srv.MaxHeaderBytes != DefaultMaxHeaderBytes || srv.ErrorLog == nil {
		t.Fatalf("server not bounded: %+v", srv)
	}
}

// TestErrorLogGoesToSlog: the server's own errors (here a handler's panic)
// reach the injected logger.
func TestErrorLogGoesToSlog(t *testing.T) {
	var buf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	addr := start(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), short, log)
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
	}
	deadline := time.Now().Add(bound)
	for !strings.Contains(buf.String(), "boom") {
		if time.Now().After(deadline) {
			t.Fatalf("the panic was not logged through slog: %q", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("want a warning: %q", buf.String())
	}
}
