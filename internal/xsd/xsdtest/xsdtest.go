// Package xsdtest is the test helper of internal/xsd: tests that validate
// with xmllint skip, with the packages to install, where it is missing —
// never under CI=true, where .ci/run installs them.
package xsdtest

import (
	"context"
	"errors"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/internal/xsd"
)

// Require returns a Validator, or skips t (fails it under CI=true) when
// xmllint or the Debian schema files are missing.
func Require(t testing.TB) *xsd.Validator {
	t.Helper()
	if err := xsd.Available(); err != nil {
		if !errors.Is(err, xsd.ErrUnavailable) {
			t.Fatal(err) // the schemas themselves do not load
		}
		if testutil.CI() {
			t.Fatalf("%v (CI=true: .ci/run must install them)", err)
		}
		t.Skipf("%v", err)
	}
	return &xsd.Validator{}
}

// Valid fails t unless doc is valid against the KECIS schemas; what names
// the document in the failure.
func Valid(t testing.TB, v *xsd.Validator, what string, doc []byte) {
	t.Helper()
	ps, err := v.Validate(context.Background(), doc)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, p := range ps {
		t.Errorf("%s: %s", what, p)
	}
}
