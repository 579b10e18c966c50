package demo

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leaks records the goroutines and open file descriptors now; the
// function it returns fails the test unless both are back to that count
// (within a few seconds: a closed connection's reader ends on its own).
func leaks(t *testing.T) func(after string) {
	t.Helper()
	g0, f0 := runtime.NumGoroutine(), openFiles()
	return func(after string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), openFiles()
			if g <= g0 && f <= f0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("after %s: %d goroutines (was %d), %d open files (was %d)\n%s", after, g, g0, f, f0, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// openFiles counts the process's open file descriptors — listeners,
// connections, databases — or 0 where /proc does not tell.
func openFiles() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(fds)
}

// refused fails the test if anything still listens at one of urls.
func refused(t *testing.T, after string, urls ...string) {
	t.Helper()
	for _, u := range urls {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", p.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("after %s: %s still listens", after, u)
		}
	}
}

func (d *Demo) urls() []string {
	urls := []string{d.HubURL, d.HubOps, d.IssuerKECIS, d.IssuerNative, d.TelecomURL, d.PGNative, d.PGKECIS, d.PGCall, d.TelecomKECIS}
	for _, b := range d.Banks {
		urls = append(urls, b.URL, b.KECIS)
	}
	return urls
}

// TestStartCleansUpAfterEachStep: whichever start step fails, what the
// steps before it started — listeners, servers, stores, background loops —
// is closed: nothing listens at the addresses they bound, the goroutines
// and open files are back to their count before Start, no demo.json.
func TestStartCleansUpAfterEachStep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	injected := errors.New("injected failure")
	n := len((&Demo{}).steps())
	for i := range n + 1 {
		check := leaks(t)
		d, err := newDemo(Config{Dir: dir, Tester: true})
		if err != nil {
			t.Fatal(err)
		}
		steps := append(d.steps()[:i:i], step{"injected", func(context.Context) error { return injected }})
		after := "a failure before any step"
		if i > 0 {
			after = "a failure after " + steps[i-1].name
		}
		if err := d.run(ctx, steps); !errors.Is(err, injected) || !strings.Contains(err.Error(), "demo: injected:") {
			t.Fatalf("%s: %v", after, err)
		}
		if d.closers != nil {
			t.Fatalf("%s: Close did not run", after)
		}
		if i > 0 && d.HubURL == "" {
			t.Fatalf("%s: the hub did not start", after)
		}
		refused(t, after, d.urls()...)
		check(after)
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: demo.json is left: %v", after, err)
		}
	}
}

// freeAddrs are n loopback addresses free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out
}

// TestStartFailsClean: Start failing for real late in the federation — the
// PG sidecar's calling endpoint on an occupied port, the PG's directory a
// file — names what failed and leaves every port it bound free again, the
// goroutines and open files as they were; a Dir that cannot be a
// directory fails before anything starts.
func TestStartFailsClean(t *testing.T) {
	ctx := context.Background()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a := freeAddrs(t, 7)
	cfg := Config{HubListen: a[0], HubOps: a[1], IssuerKECIS: a[2], IssuerNative: a[3], Telecom: a[4], PGNative: a[5], PGKECIS: a[6]}
	for _, c := range []struct {
		name  string
		setup func(cfg *Config)
		want  string
	}{
		{"occupied port", func(cfg *Config) { cfg.PGCall = busy.Addr().String() }, "demo: PG: sidecar's calling endpoint: listen tcp " + busy.Addr().String()},
		{"PG directory a file", func(cfg *Config) {
			if err := os.WriteFile(filepath.Join(cfg.Dir, "pg"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "demo: PG: "},
		{"Dir a file's child", func(cfg *Config) {
			if err := os.WriteFile(filepath.Join(cfg.Dir, "file"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.Dir = filepath.Join(cfg.Dir, "file", "demo")
		}, "not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfg
			cfg.Dir = t.TempDir()
			c.setup(&cfg)
			check := leaks(t)
			d, err := Start(ctx, cfg)
			if err == nil {
				d.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			for _, addr := range a {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("%s is still bound: %v", addr, err)
				}
				l.Close()
			}
			check(c.name)
		})
	}
}
