// Package testutil holds helpers shared by the project's tests: external
// tools that CI must provide, fixed clocks and deterministic randomness.
package testutil

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true), where a missing
// external tool is a failure, not a skip.
func CI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// RequireTool returns the path of an external program the test needs. On a
// laptop without it the test skips with a clear message; under CI=true it
// fails, because CI must install it (.ci/run).
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if CI() {
			t.Fatalf("%s not found, but CI=true: .ci/run must install the Debian package %s", name, debianPackage)
		}
		t.Skipf("%s not found: install the Debian package %s to run this interop test", name, debianPackage)
	}
	return p
}

// FixedNow is the instant deterministic tests run at.
var FixedNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Clock is a settable clock for tests; its zero value starts at FixedNow.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = FixedNow
	}
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = FixedNow
	}
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// DetRand is a deterministic io.Reader: SHA-256 in counter mode over a
// seed. Not for keys; for IDs and nonces in golden tests.
type DetRand struct {
	mu   sync.Mutex
	seed string
	ctr  uint64
	buf  []byte
}

// NewDetRand returns a reader whose stream depends only on seed.
func NewDetRand(seed string) *DetRand { return &DetRand{seed: seed} }

// Read implements io.Reader.
func (r *DetRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.ctr)
			r.ctr++
			sum := sha256.Sum256(append([]byte(r.seed), c[:]...))
			r.buf = sum[:]
		}
		k := copy(p[n:], r.buf)
		r.buf = r.buf[k:]
		n += k
	}
	return n, nil
}

// Race runs fn(i, s) on n goroutines per store, all released at once, and
// returns once all are done: i numbers the racers 0…2n-1, even i use a,
// odd i use b. The store conformance suites race two handles on one
// database with it.
func Race[S any](n int, a, b S, fn func(i int, s S)) {
	var (
		wg    sync.WaitGroup
		ready sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			fn(i, s)
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
}

// OneWins fails t unless exactly one of the racers' errs is nil and every
// other is lost (errors.Is): what names the race in the messages.
func OneWins(t testing.TB, errs []error, lost error, what string) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, lost):
		default:
			t.Errorf("%s: racer %d: %v", what, i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%s: %d of %d racers won, want exactly 1", what, wins, len(errs))
	}
}
