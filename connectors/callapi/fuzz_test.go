package callapi

import (
	"encoding/base64"
	"testing"
)

// FuzzParseAuthenticationResults: any item is either read as a
// kecis:AuthenticationResult element or refused with the
// invalid-authentication-result problem (or bad-request for too many),
// never a panic; what it reads encodes and reads back the same.
func FuzzParseAuthenticationResults(f *testing.F) {
	for _, s := range []string{`<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0" ID="_a"/>`,
		`<!DOCTYPE x><x/>`, `<a><b/></a>`, `<kecis:AuthenticationResult xmlns:kecis="urn:kecis:protocol:1.0"><!-- c --></kecis:AuthenticationResult>`, ``} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, item string) {
		els, err := ParseAuthenticationResults([]string{item})
		if err != nil {
			return
		}
		if len(els) != 1 || els[0].Tag != "AuthenticationResult" {
			t.Fatalf("read %d elements from %q", len(els), item)
		}
		again, err := ParseAuthenticationResults(EncodeAuthenticationResults(els))
		if err != nil || len(again) != 1 {
			t.Fatalf("the element read from %q does not read back: %v", item, err)
		}
	})
}
