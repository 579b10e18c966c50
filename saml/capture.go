//go:build kecis_capture

package saml

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/beevik/etree"
)

// The capture hook, compiled only with the build tag kecis_capture
// (scripts/test.sh sets it for `make test`; no release build does,
// TestCaptureHookIsTagged): every document a Signer signs — requests,
// responses, authentication results, records, signed metadata — and every
// metadata document saml/metadata serialises is written to the directory
// $KECIS_CAPTURE_DIR names, one file per document named by its SHA-256, so
// that tools/schemacheck validates every message the tests exchanged
// against docs/spec/schema without a list of message kinds to maintain.

// CaptureEnv names the directory captured documents are written to; unset,
// nothing is captured.
const CaptureEnv = "KECIS_CAPTURE_DIR"

// captureOn: this build captures.
const captureOn = true

// captureSigned captures root, just signed, as a standalone document —
// unless the conformance suite signed it (fromSuite).
func captureSigned(root *etree.Element) {
	if os.Getenv(CaptureEnv) == "" || fromSuite() {
		return
	}
	doc, err := Serialize(root.Copy())
	if err != nil {
		return // SignToBytes fails the same way for the caller
	}
	CaptureDocument(doc)
}

// suitePkg is the conformance suite's import path: what its code signs
// (its probes, its broken kits' answers) is built to be refused — another
// Version, a forged ID, a wrapped message (conformance/mod_security.go) —
// and is not what KECIS sends in operation, so it is not captured. The
// participants' answers to the probes are (they are signed elsewhere).
const suitePkg = "github.com/kecis/kecis/conformance"

// fromSuite reports whether the suite's own code (not its tests) is on
// the signing goroutine's stack.
func fromSuite() bool {
	var pcs [64]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if suiteFrame(f.Function, f.File) {
			return true
		}
		if !more {
			return false
		}
	}
}

// suiteFrame: a function of the suite's packages, in a file that is not a
// test.
func suiteFrame(function, file string) bool {
	rest, ok := strings.CutPrefix(function, suitePkg)
	return ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "/")) && !strings.HasSuffix(file, "_test.go")
}

// CaptureDocument writes doc to $KECIS_CAPTURE_DIR/<sha256>.xml, once:
// an existing file of that name already holds it; a new one appears whole
// (written under a temporary name, then renamed), so that concurrent
// tests and processes never leave half a document. It exists only in
// kecis_capture builds (saml/metadata's hook calls it). A capture that
// cannot be written panics: a test run that silently captured nothing
// would prove nothing.
func CaptureDocument(doc []byte) {
	dir := os.Getenv(CaptureEnv)
	if dir == "" {
		return
	}
	sum := sha256.Sum256(doc)
	name := filepath.Join(dir, hex.EncodeToString(sum[:])+".xml")
	if _, err := os.Lstat(name); err == nil {
		return
	}
	if err := writeCapture(dir, name, doc); err != nil {
		panic(fmt.Sprintf("kecis_capture: %s: %v", CaptureEnv, err))
	}
}

func writeCapture(dir, name string, doc []byte) error {
	f, err := os.CreateTemp(dir, ".capture-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(doc)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), name)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}
