package saml

import (
	"crypto/sha256"
	"encoding/hex"
	"go/build/constraint"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// TestCaptureHookIsTagged: the capture hook (capture.go here and in
// saml/metadata) is compiled only with the build tag kecis_capture, its
// no-op twin only without it, and no build but scripts/test.sh's sets the
// tag: a release binary never writes a signed message to disk.
func TestCaptureHookIsTagged(t *testing.T) {
	tagged := func(tag string) func(string) bool { return func(s string) bool { return s == tag } }
	for _, f := range []struct {
		path  string
		forOn bool // compiled with the tag, not without
	}{
		{"capture.go", true}, {"capture_off.go", false},
		{"metadata/capture.go", true}, {"metadata/capture_off.go", false},
	} {
		expr := buildConstraint(t, f.path)
		if expr == nil {
			t.Errorf("%s has no //go:build line", f.path)
			continue
		}
		// Any other tag, GOOS or GOARCH alone never selects the hook.
		for _, other := range []string{"", "nomsgpack", "linux", "amd64", "cgo"} {
			if expr.Eval(tagged(other)) == f.forOn {
				t.Errorf("%s (%s) with %q set: compiled=%v", f.path, expr, other, !f.forOn)
			}
		}
		if expr.Eval(tagged("kecis_capture")) != f.forOn {
			t.Errorf("%s (%s) with kecis_capture set: compiled=%v", f.path, expr, !f.forOn)
		}
	}
	// Where the project sets build tags: only the test script names this one.
	for _, p := range []string{"../Makefile", "../scripts/lint.sh", "../scripts/fuzz.sh", "../scripts/bench-report.sh", "../.ci/run", "../.goreleaser.yaml", "../Dockerfile"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // not every file exists
		}
		if strings.Contains(string(b), "kecis_capture") {
			t.Errorf("%s sets kecis_capture: only scripts/test.sh may", p)
		}
	}
	if b, err := os.ReadFile("../scripts/test.sh"); err != nil || !strings.Contains(string(b), "kecis_capture") {
		t.Errorf("scripts/test.sh does not set kecis_capture (%v): make test captures nothing", err)
	}
}

func buildConstraint(t *testing.T, path string) constraint.Expr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if constraint.IsGoBuild(line) {
			expr, err := constraint.Parse(line)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return expr
		}
		if strings.HasPrefix(line, "package ") {
			break
		}
	}
	return nil
}

// TestCapture: a signed document lands in $KECIS_CAPTURE_DIR in a
// kecis_capture build, named by its SHA-256, once however often it is
// signed; in any other build nothing is written.
func TestCapture(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KECIS_CAPTURE_DIR", dir)
	w := newWorld(t)
	sign := func() []byte {
		root := etree.NewElement("kecis:Record")
		root.CreateAttr("xmlns:kecis", NSKECIS)
		root.CreateAttr("ID", "_capture-test")
		b, err := w.merchant.Signer.SignToBytes(root)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	doc := sign()
	sign() // RSA PKCS#1 v1.5 is deterministic: the same document again
	sum := sha256.Sum256(doc)
	want := filepath.Join(dir, hex.EncodeToString(sum[:])+".xml")
	got, err := os.ReadFile(want)
	if !captureOn {
		if err == nil {
			t.Fatal("a build without kecis_capture captured a document")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a build without kecis_capture wrote %d files", len(entries))
		}
		return
	}
	if err != nil || string(got) != string(doc) {
		t.Fatalf("captured %q, %v; want the signed document", got, err)
	}
	for _, e := range mustReadDir(t, dir) {
		if strings.HasPrefix(e.Name(), ".capture-") {
			t.Errorf("a temporary file was left: %s", e.Name())
		}
	}
}

// withoutCapture keeps what t signs out of make test's capture (the
// kecis_capture hook, tools/schemacheck): for a test that signs a
// deliberately invalid document for the receiver to refuse. Everything a
// test signs otherwise is schema-checked; a test that calls this must say
// why. It sets the environment, so t must not be parallel.
func withoutCapture(t *testing.T) {
	t.Helper()
	t.Setenv("KECIS_CAPTURE_DIR", "")
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return es
}
