//go:build kecis_capture

package saml

import "testing"

// TestCaptureLeavesTheSuite: what the conformance suite's code signs (its
// probes, built to be refused) is not captured; its tests' helpers and
// every other package are.
func TestCaptureLeavesTheSuite(t *testing.T) {
	for _, tc := range []struct {
		function, file string
		want           bool
	}{
		{"github.com/kecis/kecis/conformance.modified.func1", "/src/conformance/mod_security.go", true},
		{"github.com/kecis/kecis/conformance.(*Env).Sealed", "/src/conformance/env.go", true},
		{"github.com/kecis/kecis/conformance/broken.(*pg).answer", "/src/conformance/broken/pg.go", true},
		{"github.com/kecis/kecis/conformance.TestRun.func2", "/src/conformance/run_test.go", false},
		{"github.com/kecis/kecis/conformancex.F", "/src/conformancex/f.go", false},
		{"github.com/kecis/kecis/connectors.(*Handler).ServeHTTP", "/src/connectors/handler.go", false},
		{"github.com/kecis/kecis/saml.(*Signer).Sign", "/src/saml/sign.go", false},
	} {
		if got := suiteFrame(tc.function, tc.file); got != tc.want {
			t.Errorf("suiteFrame(%s, %s) = %v", tc.function, tc.file, got)
		}
	}
	if fromSuite() {
		t.Error("a saml test is taken for the suite")
	}
}
