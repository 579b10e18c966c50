package conformance_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/saml"
)

// TestRunNeedsARegisteredTester: before any check, a run through a hub
// asks it for the tester's metadata, and stops with a plain
// ErrTesterNotReady — instead of ten FAILED checks that blame the
// participant — when the tester is unknown there or its keys are not the
// registered ones.
func TestRunNeedsARegisteredTester(t *testing.T) {
	dir := t.TempDir()
	d, err := demo.Start(context.Background(), demo.Config{Dir: dir, Tester: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hubCerts, err := saml.LoadCertificates(d.HubSigningCert)
	if err != nil {
		t.Fatal(err)
	}
	tlsCerts, err := saml.LoadCertificates(d.HubTLSCert)
	if err != nil {
		t.Fatal(err)
	}
	hub := &conformance.HubConfig{URL: d.HubURL, EntityID: demo.HubID, SigningCerts: hubCerts, TLSCerts: tlsCerts}
	signer := func(sub string) *saml.Signer {
		t.Helper()
		certs, err := saml.LoadCertificates(filepath.Join(sub, "signing", "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := saml.LoadKey(filepath.Join(sub, "signing", "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := saml.NewSigner(key, certs[0])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	run := func(tester *conformance.Tester) error {
		_, err := conformance.Run(context.Background(), conformance.Config{Target: &conformance.Target{}, Profile: &conformance.Profile{},
			Tester: tester, Hub: hub})
		return err
	}
	for _, c := range []struct {
		name   string
		tester *conformance.Tester
		says   string
	}{
		{"unknown at the hub", &conformance.Tester{EntityID: "https://nobody.kecis.test/kecis", Signer: signer(d.TesterDir)}, "is not registered or not active"},
		{"other keys", &conformance.Tester{EntityID: demo.TesterID, Signer: signer(filepath.Join(dir, "tester2"))}, "does not publish the profile's tester signing certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run(c.tester)
			if !errors.Is(err, conformance.ErrTesterNotReady) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Run = %v, want ErrTesterNotReady saying %q", err, c.says)
			}
		})
	}
	// The registered tester with its own keys passes the check (and then
	// stops at the empty target, which has no plan).
	if err := run(&conformance.Tester{EntityID: demo.TesterID, Signer: signer(d.TesterDir)}); errors.Is(err, conformance.ErrTesterNotReady) {
		t.Fatalf("the registered tester was refused: %v", err)
	}
}
