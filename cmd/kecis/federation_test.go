package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
)

func certFingerprint(t *testing.T, path string) string {
	t.Helper()
	certs, err := saml.LoadCertificates(path)
	if err != nil {
		t.Fatal(err)
	}
	return saml.Fingerprint(certs[0])
}

// TestFederationCLI drives registration and the operator commands against a
// running hub over mutual TLS.
func TestFederationCLI(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, k := range []struct {
		name string
		kind devpki.Kind
	}{{"operator", devpki.TLSClient}, {"p-tls", devpki.TLSClient}, {"p-sig", devpki.Signing}, {"hub-tls", devpki.TLSServer}, {"hub-sig", devpki.Signing}} {
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
conformance: {required: true}
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

	const id = "https://shop.test/kecis"
	code, md, stderr := kecis(t, nil, "metadata", "generate", "--entity-id", id, "--display-name", "Test shop", "--roles", "merchant",
		"--signing-cert", p("p-sig", "cert.pem"), "--tls-client-cert", p("p-tls", "cert.pem"))
	if code != 0 {
		t.Fatalf("metadata generate: %s", stderr)
	}
	os.WriteFile(p("shop.xml"), []byte(md), 0o600)
	if code, out, stderr := kecis(t, nil, append([]string{"federation", "register", "--metadata", p("shop.xml")}, asParticipant...)...); code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("register: %d %s %s", code, out, stderr)
	}
	// A participant is no operator.
	if code, _, stderr := kecis(t, nil, append([]string{"federation", "approve", id}, asParticipant...)...); code == 0 || !strings.Contains(stderr, "operator") {
		t.Fatalf("approve by a participant: %d %s", code, stderr)
	}
	if code, out, stderr := kecis(t, nil, append([]string{"federation", "list", "--status", "pending"}, asOperator...)...); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("list: %d %s %s", code, out, stderr)
	}
	// The registration gate: approval waits for a passing conformance report.
	if code, _, stderr := kecis(t, nil, append([]string{"federation", "approve", id}, asOperator...)...); code == 0 || !strings.Contains(stderr, "conformance") {
		t.Fatalf("approve without a report: %d %s", code, stderr)
	}
	writeReport := func(name string, passed bool) string {
		summary := map[conformance.Result]int{conformance.Passed: 6}
		if !passed {
			summary[conformance.Failed] = 1
		}
		b, _ := json.Marshal(&conformance.Report{Plan: "merchant", Participant: id, Roles: []string{"merchant"}, RunID: name,
			Keys:    []string{certFingerprint(t, p("p-sig", "cert.pem")), certFingerprint(t, p("p-tls", "cert.pem"))},
			Started: time.Now(), Finished: time.Now(), Passed: passed, Summary: summary})
		os.WriteFile(p(name+".json"), b, 0o600)
		return p(name + ".json")
	}
	if code, _, stderr := kecis(t, nil, append([]string{"federation", "conformance", id, writeReport("failing", false)}, asOperator...)...); code == 0 || !strings.Contains(stderr, "did not pass") {
		t.Fatalf("a failing report: %d %s", code, stderr)
	}
	if code, out, stderr := kecis(t, nil, append([]string{"federation", "conformance", id, writeReport("passing", true)}, asOperator...)...); code != 0 || !strings.Contains(out, "gate is open") {
		t.Fatalf("a passing report: %d %s %s", code, out, stderr)
	}
	if code, out, stderr := kecis(t, nil, append([]string{"federation", "approve", id, "--reason", "contract signed"}, asOperator...)...); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("approve: %d %s %s", code, out, stderr)
	}
	if code, out, _ := kecis(t, nil, append([]string{"federation", "show", id}, asOperator...)...); code != 0 || !strings.Contains(out, "status:     active") || !strings.Contains(out, "signing") {
		t.Fatalf("show: %s", out)
	}
	// The hub now publishes it; the exported descriptor verifies against the hub's key.
	out := p("exported.xml")
	if code, _, stderr := kecis(t, nil, "metadata", "export", "--hub", "https://"+pl.Addr().String(), "--trust", p("hub-sig", "cert.pem"), "--entity", id, "--out", out, "--hub-tls-cert", p("hub-tls", "cert.pem")); code != 0 {
		t.Fatalf("metadata export: %s", stderr)
	} else if code, _, stderr := kecis(t, nil, "metadata", "verify", "--trust", p("hub-sig", "cert.pem"), out); code != 0 {
		t.Fatalf("metadata verify: %s", stderr)
	}
	for _, action := range []string{"suspend", "reinstate", "remove"} {
		if code, out, stderr := kecis(t, nil, append([]string{"federation", action, id}, asOperator...)...); code != 0 {
			t.Fatalf("%s: %s %s", action, out, stderr)
		}
	}
}
