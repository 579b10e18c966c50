// Package passwordhash hashes and checks the passwords the simulated
// companies keep (examples/issuer's authentication passwords, KECIS §15.7.2;
// examples/bank's customer logins, KECIS §15.5): argon2id (RFC 9106,
// golang.org/x/crypto/argon2) over the password keyed with a pepper-derived
// key (HMAC-SHA256), with a fresh 16-byte salt, stored as a PHC string
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash). A hash keeps the parameters it
// was made with, so changing them affects new passwords only. At most
// Params.MaxConcurrent hashes run at once, so that a burst of checks
// cannot take more than MaxConcurrent × MemoryKiB.
package passwordhash

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id parameters of new hashes.
type Params struct {
	// Time is the number of passes; default 1.
	Time uint32 `json:"time,omitempty"`
	// MemoryKiB is the memory in KiB; default 65536 (64 MiB).
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	// Threads is the parallelism; default 4.
	Threads uint8 `json:"threads,omitempty"`
	// MaxConcurrent bounds the hashes computed at once; default 4.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// WithDefaults fills the zero fields with the documented defaults.
func (p Params) WithDefaults() Params {
	if p.Time == 0 {
		p.Time = 1
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = 64 * 1024
	}
	if p.Threads == 0 {
		p.Threads = 4
	}
	if p.MaxConcurrent <= 0 {
		p.MaxConcurrent = 4
	}
	return p
}

// Hasher makes and checks password hashes under one key. It is safe for
// concurrent use.
type Hasher struct {
	p     Params
	key   []byte
	rand  io.Reader
	slots chan struct{}
}

// New returns a Hasher: key (at least 32 bytes, derived from the
// program's pepper) keys every password before argon2id; rand supplies
// the salts.
func New(p Params, key []byte, rand io.Reader) (*Hasher, error) {
	if len(key) < 32 {
		return nil, errors.New("passwordhash: the key must be at least 32 bytes")
	}
	if rand == nil {
		return nil, errors.New("passwordhash: a random source is required")
	}
	p = p.WithDefaults()
	return &Hasher{p: p, key: key, rand: rand, slots: make(chan struct{}, p.MaxConcurrent)}, nil
}

var b64 = base64.RawStdEncoding

// ErrMalformed is returned by Verify for a stored hash it cannot read.
var ErrMalformed = errors.New("passwordhash: stored password hash is malformed")

// Hash returns the PHC string of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("passwordhash: salt: %w", err)
	}
	p := h.p
	sum, err := h.argon2id(ctx, pw, salt, p.Time, p.MemoryKiB, p.Threads)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// Verify reports whether pw matches phc, a string Hash made (with any
// parameters), in constant time.
func (h *Hasher) Verify(ctx context.Context, phc, pw string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false, ErrMalformed
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false, ErrMalformed
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, ErrMalformed
	}
	got, err := h.argon2id(ctx, pw, salt, t, m, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// argon2id computes one hash, waiting for a slot.
func (h *Hasher) argon2id(ctx context.Context, pw string, salt []byte, t, m uint32, p uint8) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.slots }()
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(pw))
	return argon2.IDKey(mac.Sum(nil), salt, t, m, p, 32), nil
}
