package ecml

import (
	"bytes"
	"math/rand"
	"reflect"
	"testing"
)

// TestMutatedDocuments runs the FuzzParseDocument property on a fixed,
// seeded series of mutations of the fixtures (byte changes, cuts, splices,
// duplications), so that every go test run covers malformed input, not only
// fuzzing sessions.
func TestMutatedDocuments(t *testing.T) {
	seeds := [][]byte{readFixture(t, "full.xml"), readFixture(t, "encrypted.xml"), readFixture(t, "invalid.xml")}
	r := rand.New(rand.NewSource(4112))
	n := 3000
	if testing.Short() {
		n = 300
	}
	opts := ValidateOptions{Now: testNow, AllowEncrypted: true, RequireSchemaVersion: true}
	parsed := 0
	for range n {
		in := mutate(r, seeds)
		p, err := ParseDocument(in)
		if err != nil {
			continue
		}
		parsed++
		probs := p.Validate(opts)
		out, err := p.MarshalDocument()
		if err != nil {
			t.Fatalf("MarshalDocument: %v\ninput: %q", err, in)
		}
		p2, err := ParseDocument(out)
		if err != nil {
			t.Fatalf("reparse: %v\ninput: %q", err, in)
		}
		out2, _ := p2.MarshalDocument()
		if !bytes.Equal(out, out2) || !reflect.DeepEqual(probs, p2.Validate(opts)) {
			t.Fatalf("not stable\ninput: %q", in)
		}
		for _, pr := range probs {
			if ContainsPAN(pr.String()) {
				t.Fatalf("problem shows a card number: %v", pr)
			}
		}
	}
	if parsed == 0 {
		t.Error("no mutation parsed")
	}
}

func mutate(r *rand.Rand, seeds [][]byte) []byte {
	in := append([]byte(nil), seeds[r.Intn(len(seeds))]...)
	for k := r.Intn(6) + 1; k > 0; k-- {
		switch r.Intn(4) {
		case 0:
			in[r.Intn(len(in))] = byte(r.Intn(256))
		case 1:
			i := r.Intn(len(in))
			j := i + r.Intn(min(len(in)-i, 64))
			in = append(in[:i], in[j:]...)
		case 2:
			s := seeds[r.Intn(len(seeds))]
			i := r.Intn(len(s))
			j := i + r.Intn(min(len(s)-i, 400))
			at := r.Intn(len(in) + 1)
			in = append(in[:at], append(append([]byte(nil), s[i:j]...), in[at:]...)...)
		case 3:
			i := r.Intn(len(in))
			in = append(in[:i], append([]byte{in[i]}, in[i:]...)...)
		}
		if len(in) == 0 {
			in = []byte("<")
		}
	}
	return in
}
