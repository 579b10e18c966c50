package vcn

import (
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

// TestPermutationIsBijection: over the full pool of 999,999 the keyed
// permutation gives every index exactly once, Invert undoes it, and
// another key or day gives another order (KECIS §15.4).
func TestPermutationIsBijection(t *testing.T) {
	p, err := newPermutation(key("pool key"), "404143", "2026-02-11", MaxPoolSize)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, MaxPoolSize)
	fixed := 0
	for i := range uint64(MaxPoolSize) {
		y := p.Apply(i)
		if y >= MaxPoolSize || seen[y] {
			t.Fatalf("Apply(%d) = %d: out of the pool or seen before", i, y)
		}
		seen[y] = true
		if y == i {
			fixed++
		}
		if i%997 == 0 && p.Invert(y) != i {
			t.Fatalf("Invert(Apply(%d)) = %d", i, p.Invert(y))
		}
	}
	if fixed > 20 {
		t.Errorf("%d fixed points: not a keyed shuffle", fixed)
	}
	other, _ := newPermutation(key("another key"), "404143", "2026-02-11", MaxPoolSize)
	nextDay, _ := newPermutation(key("pool key"), "404143", "2026-02-12", MaxPoolSize)
	same, sameDay := 0, 0
	for i := range uint64(1000) {
		if other.Apply(i) == p.Apply(i) {
			same++
		}
		if nextDay.Apply(i) == p.Apply(i) {
			sameDay++
		}
	}
	if same > 5 || sameDay > 5 {
		t.Errorf("another key agrees on %d of 1000, another day on %d", same, sameDay)
	}
}

// TestSmallPools: every pool size small enough to check walks each index
// once, both through the permutation and through the seed walk.
func TestSmallPools(t *testing.T) {
	rnd := testutil.NewDetRand(t.Name())
	for n := 1; n <= 400; n++ {
		p, err := newPermutation(key("k"), "404143", "2026-02-11", n)
		if err != nil {
			t.Fatal(err)
		}
		seed, acc, err := newSeed(rnd, n)
		if err != nil {
			t.Fatal(err)
		}
		if seed < 1 || seed > uint64(n) || acc >= uint64(n) {
			t.Fatalf("n=%d: seed %d, accumulated %d", n, seed, acc)
		}
		seenIdx := make([]bool, n)
		seenPerm := make([]bool, n)
		for k := range uint64(n) {
			i := poolIndex(acc, k, seed, uint64(n))
			if seenIdx[i] {
				t.Fatalf("n=%d seed=%d: index %d drawn twice", n, seed, i)
			}
			seenIdx[i] = true
			y := p.Apply(k)
			if y >= uint64(n) || seenPerm[y] || p.Invert(y) != k {
				t.Fatalf("n=%d: Apply(%d) = %d", n, k, y)
			}
			seenPerm[y] = true
		}
	}
}

// TestSerialsNotSequential: consecutive serials of a day are not a
// progression a guesser could follow (the paper's walk alone, index +
// seed, would be).
func TestSerialsNotSequential(t *testing.T) {
	p, _ := newPermutation(key("pool key"), "404143", "2026-02-11", MaxPoolSize)
	seed, acc, n := uint64(7919), uint64(123), uint64(MaxPoolSize)
	var prev, prevDiff int64
	sameDiff := 0
	for k := range uint64(200) {
		s := int64(p.Apply(poolIndex(acc, k, seed, n)))
		if k > 1 && s-prev == prevDiff {
			sameDiff++
		}
		if k > 0 {
			prevDiff = s - prev
		}
		prev = s
	}
	if sameDiff > 2 {
		t.Errorf("%d of 200 steps repeat the previous difference", sameDiff)
	}
}
