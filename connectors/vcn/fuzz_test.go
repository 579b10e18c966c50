package vcn

import (
	"strings"
	"testing"

	"github.com/kecis/kecis/ecml"
)

// FuzzParse: Parse never panics, accepts only what Format writes, and its
// error never shows the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"4041430420000011", "4041430420000010", "404143366999999", "4041433670000015",
		"", "abcdefghijklmnop", "40414304200000١1", strings.Repeat("9", 16), "0000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(ecml.PAN(s))
		if err != nil {
			if len(s) >= 4 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error shows its input")
			}
			return
		}
		back, err := Format(p)
		if err != nil || back.Reveal() != s {
			t.Fatalf("Format(Parse(%q)) = %q, %v", s, back.Reveal(), err)
		}
	})
}

// FuzzPermutation: for any key, BIN, day and pool size the permutation
// stays in the pool and Invert undoes Apply.
func FuzzPermutation(f *testing.F) {
	f.Add([]byte("pool key"), "404143", "2026-02-11", 999_999, uint64(0))
	f.Add([]byte{}, "", "", 1, uint64(5))
	f.Add([]byte("k"), "512345", "2027-01-01", 97, uint64(96))
	f.Fuzz(func(t *testing.T, k []byte, bin, day string, n int, i uint64) {
		p, err := newPermutation(k, bin, day, n)
		if err != nil {
			if n >= 1 && n <= MaxPoolSize {
				t.Fatal(err)
			}
			return
		}
		i %= uint64(n)
		y := p.Apply(i)
		if y >= uint64(n) || p.Invert(y) != i {
			t.Fatalf("n=%d: Apply(%d) = %d, Invert = %d", n, i, y, p.Invert(y))
		}
	})
}
