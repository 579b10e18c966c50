package saml

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReceiveRequest feeds arbitrary bytes to the whole receive pipeline.
// The invariants: it never panics, and anything it accepts verified against
// the merchant's keys (so, for fuzzed input, nothing but the seeds).
func FuzzReceiveRequest(f *testing.F) {
	seedFromDir(f, filepath.Join("testdata", "attacks"))
	seedFromDir(f, filepath.Join("testdata", "golden"))
	f.Add([]byte(`<kecis:ServiceRequest xmlns:kecis="urn:kecis:protocol:1.0" ID="_a"/>`))
	w := newWorld(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := w.issuerReceiver()
		got, err := rc.ReceiveRequest(bg, data)
		if err != nil {
			e := AsError(err)
			if e.Public == "" || e.Reason == "" || e.Stage == 0 {
				t.Fatalf("refusal without a category: %#v", e)
			}
			return
		}
		if got.Request.Issuer != merchantID {
			t.Fatalf("accepted a request from %q", got.Request.Issuer)
		}
	})
}

// FuzzInspect: inspect never fails or panics on any input.
func FuzzInspect(f *testing.F) {
	seedFromDir(f, filepath.Join("testdata", "attacks"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rep := Inspect(data); rep == nil {
			t.Fatal("nil report")
		}
	})
}

func seedFromDir(f *testing.F, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".xml" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
}
