package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/devpki"
)

// TestFederationChangeCLI drives a governed metadata change through the
// CLI: update answers that the change awaits approval, list and show
// display it (show as a diff), reject-change needs a reason, approve-change
// puts it in force, a key rollover applies at once.
func TestFederationChangeCLI(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, k := range []struct {
		name string
		kind devpki.Kind
	}{{"operator", devpki.TLSClient}, {"p-tls", devpki.TLSClient}, {"p-sig", devpki.Signing}, {"p-sig2", devpki.Signing}, {"hub-tls", devpki.TLSServer}, {"hub-sig", devpki.Signing}} {
		if _, err := devpki.Ensure(filepath.Join(dir, k.name), k.kind, k.name, devpki.LoopbackHosts, now); err != nil {
			t.Fatal(err)
		}
	}
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	cfg := fmt.Sprintf(`entity_id: https://hub.test/kecis
tls: {cert: hub-tls/cert.pem, key: hub-tls/key.pem}
signing: {cert: hub-sig/cert.pem, key: hub-sig/key.pem}
database: {dsn: "sqlite:hub.db"}
log: {level: warn}
open_registration: true
operators: [{name: alice, cert_sha256: %s}]
`, certFingerprint(t, p("operator", "cert.pem")))
	os.WriteFile(p("hub.yaml"), []byte(cfg), 0o600)
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ol, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHub(ctx, p("hub.yaml"), false, pl, ol) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + ol.Addr().String() + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	hub := []string{"--hub", "https://" + pl.Addr().String(), "--hub-tls-cert", p("hub-tls", "cert.pem")}
	asOperator := append(append([]string{}, hub...), "--client-cert", p("operator", "cert.pem"), "--client-key", p("operator", "key.pem"))
	asParticipant := append(append([]string{}, hub...), "--client-cert", p("p-tls", "cert.pem"), "--client-key", p("p-tls", "key.pem"))
	run := func(ok bool, args ...string) string {
		t.Helper()
		code, out, stderr := kecis(t, nil, args...)
		if (code == 0) != ok {
			t.Fatalf("kecis %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
		return out + stderr
	}
	const id = "https://shop.test/kecis"
	generate := func(file string, extra ...string) string {
		args := append([]string{"metadata", "generate", "--entity-id", id, "--display-name", "Test shop",
			"--signing-cert", p("p-sig", "cert.pem"), "--tls-client-cert", p("p-tls", "cert.pem"),
			"--endpoint", "*|soap|https://shop.test/kecis/soap", "--out", p(file)}, extra...)
		run(true, args...)
		return p(file)
	}
	run(true, append([]string{"federation", "register", "--metadata", generate("shop.xml", "--roles", "merchant")}, asParticipant...)...)
	run(true, append([]string{"federation", "approve", id}, asOperator...)...)

	// A trust change: the PG role and card:approve.
	out := run(true, append([]string{"federation", "update", "--entity-id", id, "--metadata",
		generate("pg.xml", "--roles", "merchant,pg", "--service", "card:approve;KRW:100-1000000;bins=404143")}, asParticipant...)...)
	if !strings.Contains(out, "awaits an operator's approval") || !strings.Contains(out, "+ role pg") ||
		!strings.Contains(out, "+ service urn:kecis:service:card:approve BINs 404143; limits KRW 100-1000000") {
		t.Fatalf("update with a trust change:\n%s", out)
	}
	if out := run(true, append([]string{"federation", "list"}, asOperator...)...); !strings.Contains(out, "pending") {
		t.Fatalf("list does not show the pending change:\n%s", out)
	}
	out = run(true, append([]string{"federation", "show", id}, asOperator...)...)
	if !strings.Contains(out, "pending change ") || !strings.Contains(out, "    + role pg") || !strings.Contains(out, "roles:      merchant\n") {
		t.Fatalf("show:\n%s", out)
	}
	changeID := strings.Fields(out[strings.Index(out, "pending change ")+len("pending change "):])[0]
	changeID = strings.TrimSuffix(changeID, ",")

	if out := run(false, append([]string{"federation", "reject-change", id}, asOperator...)...); !strings.Contains(out, "reason") {
		t.Fatalf("reject-change without a reason:\n%s", out)
	}
	if out := run(false, append([]string{"federation", "approve-change", id, "--change", "feed"}, asOperator...)...); !strings.Contains(out, "not the one reviewed") {
		t.Fatalf("approve-change of another change:\n%s", out)
	}
	if out := run(false, append([]string{"federation", "approve-change", id, "--reason", "x"}, asParticipant...)...); !strings.Contains(out, "operator") {
		t.Fatalf("approve-change by the participant:\n%s", out)
	}
	if out := run(true, append([]string{"federation", "approve-change", id, "--change", changeID, "--reason", "PG licence"}, asOperator...)...); !strings.Contains(out, "in force") {
		t.Fatalf("approve-change:\n%s", out)
	}
	out = run(true, append([]string{"federation", "show", id}, asOperator...)...)
	if strings.Contains(out, "pending change") || !strings.Contains(out, "roles:      merchant, pg") || !strings.Contains(out, "BINs 404143") {
		t.Fatalf("show after approval:\n%s", out)
	}

	// A key rollover applies at once.
	out = run(true, append([]string{"federation", "update", "--entity-id", id, "--metadata",
		generate("rolled.xml", "--roles", "merchant,pg", "--service", "card:approve;KRW:100-1000000;bins=404143", "--signing-cert", p("p-sig2", "cert.pem"))}, asParticipant...)...)
	if !strings.Contains(out, "updated "+id) || !strings.Contains(out, "+ key signing sha256 "+certFingerprint(t, p("p-sig2", "cert.pem"))) {
		t.Fatalf("key rollover:\n%s", out)
	}
}
