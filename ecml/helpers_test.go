package ecml

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

const testPAN = "4111111111111111"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t testing.TB, data []byte) *Payload {
	t.Helper()
	p, err := ParseDocument(data)
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return p
}

func mustParseString(t testing.TB, s string) *Payload {
	t.Helper()
	return mustParse(t, []byte(s))
}

func mustMarshal(t testing.TB, p *Payload) []byte {
	t.Helper()
	out, err := p.MarshalDocument()
	if err != nil {
		t.Fatalf("MarshalDocument: %v", err)
	}
	return out
}

// fullPayload is testdata/full.xml, every ECML v2 field set.
func fullPayload(t testing.TB) *Payload {
	t.Helper()
	return mustParse(t, readFixture(t, "full.xml"))
}

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var strictOpts = ValidateOptions{Now: testNow, RequireSchemaVersion: true}
