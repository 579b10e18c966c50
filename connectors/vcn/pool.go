package vcn

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// feistelRounds is the number of rounds of the pool's permutation (FF1, NIST
// SP 800-38G, uses ten as well).
const feistelRounds = 10

// permutation is the keyed permutation of the pool indices 0…n-1 (KECIS
// §15.4: "the serial is that index under a keyed permutation of the pool"):
// a balanced Feistel network over Z_m × Z_m (m = ⌈√n⌉, so m² < n + 2√n + 1)
// with AES as its round function, restricted to [0, n) by cycle walking.
// It is a bijection for any key, so a day's walk over every index gives
// every serial once; without the key the serials of a day do not tell the
// next one.
type permutation struct {
	n, m  uint64
	block cipher.Block
}

// newPermutation keys the permutation of [0, n) for one virtual BIN and one
// day of issue: the AES key is HMAC-SHA256(poolKey, bin ‖ day), so every
// BIN and day walks its pool in an order of its own.
func newPermutation(poolKey []byte, bin, day string, n int) (*permutation, error) {
	if n < 1 || n > MaxPoolSize {
		return nil, fmt.Errorf("vcn: pool size %d out of range", n)
	}
	mac := hmac.New(sha256.New, poolKey)
	mac.Write([]byte("kecis/vcn/pool\x00" + bin + "\x00" + day))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	m := uint64(1)
	for m*m < uint64(n) {
		m++
	}
	return &permutation{n: uint64(n), m: m, block: block}, nil
}

// round is the Feistel round function F_r(x) mod m.
func (p *permutation) round(r int, x uint64) uint64 {
	var in, out [aes.BlockSize]byte
	in[0] = byte(r)
	binary.BigEndian.PutUint64(in[8:], x)
	p.block.Encrypt(out[:], in[:])
	return binary.BigEndian.Uint64(out[:8]) % p.m
}

// feistel is one pass of the network over [0, m²).
func (p *permutation) feistel(x uint64) uint64 {
	l, r := x/p.m, x%p.m
	for i := range feistelRounds {
		l, r = r, (l+p.round(i, r))%p.m
	}
	return l*p.m + r
}

// unfeistel inverts feistel.
func (p *permutation) unfeistel(y uint64) uint64 {
	l, r := y/p.m, y%p.m
	for i := feistelRounds - 1; i >= 0; i-- {
		l, r = (r+p.m-p.round(i, l))%p.m, l
	}
	return l*p.m + r
}

// Apply maps the index i in [0, n) to its place in [0, n): the network,
// applied again while the result falls outside the pool (cycle walking).
func (p *permutation) Apply(i uint64) uint64 {
	y := p.feistel(i)
	for y >= p.n {
		y = p.feistel(y)
	}
	return y
}

// Invert is Apply's inverse.
func (p *permutation) Invert(y uint64) uint64 {
	x := p.unfeistel(y)
	for x >= p.n {
		x = p.unfeistel(x)
	}
	return x
}

// poolIndex is the paper's index of the seedCount-th draw of a day (KECIS
// §15.4): (accumulated + seedCount × seed) mod n. With the seed prime to n,
// seedCount 0…n-1 give every index once.
func poolIndex(accumulated, seedCount, seed, n uint64) uint64 {
	return (accumulated + (seedCount%n)*(seed%n)) % n
}

// newSeed draws a day's seed, uniform among 1…n prime to n, and its
// starting accumulated value, uniform in [0, n).
func newSeed(rand io.Reader, n int) (seed, accumulated uint64, err error) {
	bn := big.NewInt(int64(n))
	for range 1000 {
		s, err := randBelow(rand, uint64(n))
		if err != nil {
			return 0, 0, err
		}
		s++ // 1…n
		if new(big.Int).GCD(nil, nil, big.NewInt(int64(s)), bn).Int64() == 1 {
			a, err := randBelow(rand, uint64(n))
			if err != nil {
				return 0, 0, err
			}
			return s, a, nil
		}
	}
	return 0, 0, errors.New("vcn: no seed prime to the pool size found")
}

// randBelow is uniform in [0, n), n ≥ 1, by rejection.
func randBelow(rand io.Reader, n uint64) (uint64, error) {
	limit := ^uint64(0) - ^uint64(0)%n
	var b [8]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("vcn: random source: %w", err)
		}
		if v := binary.BigEndian.Uint64(b[:]); v < limit {
			return v % n, nil
		}
	}
}
