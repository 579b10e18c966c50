package cardauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kecis/kecis/ecml"
)

// AAV mints and checks authentication values (KECIS §15.7.3): a keyed MAC
// (HMAC-SHA256) of the issuer over a canonical encoding of the card number
// as the approval will carry it, the amount in minor units, the currency,
// the merchant's entityID, the order, the method, a random nonce and the
// expiry — any change of one invalidates it (dynamic linking). The value
// is public (it travels in Transaction/Data/AAV): 62 characters of
// base64url, of
//
//	key id (1) ‖ method (1) ‖ expiry, Unix seconds (8) ‖ nonce (12) ‖ MAC (24)
//
// The key id is derived from the key, so that keys may be added and
// retired in any order: Keys[0] mints, every key checks. Single use is the
// issuer's: it records the id CheckAuthValue returns in the transaction of
// the approval.
type AAV struct {
	// Keys are HMAC keys of at least 32 bytes; the first mints.
	Keys [][]byte
	Now  func() time.Time
	Rand io.Reader
}

// Layout of a value.
const (
	aavNonce = 12
	aavMAC   = 24
	aavBytes = 1 + 1 + 8 + aavNonce + aavMAC
	// AAVMaxLen is the longest value a KECIS AAV may be (KECIS §15.7.3).
	AAVMaxLen = 64
)

// Errors of CheckAuthValue.
var (
	// ErrAAVMismatch: the value is malformed, was minted under no known
	// key, or is bound to another number, amount, currency, merchant or
	// order.
	ErrAAVMismatch = errors.New("cardauth: the authentication value does not match the payment")
	// ErrAAVExpired: the value matches but has expired.
	ErrAAVExpired = errors.New("cardauth: the authentication value has expired")
)

// methodCodes are the methods' codes in a value.
var methodCodes = map[string]byte{MethodPassword: 1, MethodClientCert: 2, MethodTOTP: 3}

func methodOf(code byte) (string, bool) {
	for m, c := range methodCodes {
		if c == code {
			return m, true
		}
	}
	return "", false
}

// keyID is a key's one-byte id: the first byte of a hash of the key.
func keyID(key []byte) byte {
	h := sha256.Sum256(append([]byte("kecis-aav-key-id:"), key...))
	return h[0]
}

// CheckKeys reports keys that cannot serve.
func (a *AAV) CheckKeys() error {
	if len(a.Keys) == 0 {
		return errors.New("cardauth: AAV needs at least one key")
	}
	for i, k := range a.Keys {
		if len(k) < 32 {
			return fmt.Errorf("cardauth: AAV key %d is shorter than 32 bytes", i)
		}
	}
	return nil
}

// Mint returns a value bound to a payment, valid until expires.
func (a *AAV) Mint(pan ecml.PAN, amount int64, currency, merchant, orderID, method string, expires time.Time) (string, error) {
	if err := a.CheckKeys(); err != nil {
		return "", err
	}
	code, ok := methodCodes[method]
	switch {
	case !ok:
		return "", fmt.Errorf("cardauth: AAV: unknown method %q", method)
	case !ecml.AllDigits(pan.Reveal()) || pan.Reveal() == "":
		return "", errors.New("cardauth: AAV: the card number is not digits")
	case amount < 0 || currency == "" || merchant == "" || orderID == "":
		return "", errors.New("cardauth: AAV: amount, currency, merchant and order are required")
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if !expires.After(now()) {
		return "", errors.New("cardauth: AAV: the expiry is not in the future")
	}
	r := a.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, aavBytes)
	key := a.Keys[0]
	b[0], b[1] = keyID(key), code
	binary.BigEndian.PutUint64(b[2:10], uint64(expires.Unix()))
	if _, err := io.ReadFull(r, b[10:10+aavNonce]); err != nil {
		return "", fmt.Errorf("cardauth: AAV: random: %w", err)
	}
	copy(b[10+aavNonce:], aavMAC256(key, b[:10+aavNonce], pan, amount, currency, merchant, orderID, method))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// aavToken is a parsed value.
type aavToken struct {
	keyID   byte
	method  string
	expires time.Time
	head    []byte // key id, method, expiry, nonce: what the MAC covers with the payment
	nonce   []byte
	mac     []byte
}

// parseAAV parses a value's form; it says nothing of its MAC.
func parseAAV(s string) (*aavToken, error) {
	if len(s) > AAVMaxLen || base64.RawURLEncoding.EncodedLen(aavBytes) != len(s) {
		return nil, ErrAAVMismatch
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != aavBytes {
		return nil, ErrAAVMismatch
	}
	m, ok := methodOf(b[1])
	if !ok {
		return nil, ErrAAVMismatch
	}
	exp := binary.BigEndian.Uint64(b[2:10])
	if exp > 1<<40 {
		return nil, ErrAAVMismatch
	}
	return &aavToken{keyID: b[0], method: m, expires: time.Unix(int64(exp), 0).UTC(), head: b[:10+aavNonce],
		nonce: b[10 : 10+aavNonce], mac: b[10+aavNonce:]}, nil
}

// CheckAuthValue checks a value against the approval's number, amount
// (minor units), currency, merchant and order at now (KECIS §15.7.3). It
// returns the value's id (to record its single use) and expiry;
// ErrAAVMismatch or ErrAAVExpired otherwise. The MAC is compared in
// constant time, and expiry is told only of a value that matches.
func (a *AAV) CheckAuthValue(aav string, pan ecml.PAN, amount int64, currency, merchant, orderID string, now time.Time) (id string, expires time.Time, err error) {
	t, err := parseAAV(aav)
	if err != nil {
		return "", time.Time{}, err
	}
	ok := false
	for _, k := range a.Keys {
		if len(k) < 32 || keyID(k) != t.keyID {
			continue
		}
		if hmac.Equal(t.mac, aavMAC256(k, t.head, pan, amount, currency, merchant, orderID, t.method)) {
			ok = true
		}
	}
	if !ok {
		return "", time.Time{}, ErrAAVMismatch
	}
	if !now.Before(t.expires) {
		return "", t.expires, ErrAAVExpired
	}
	return base64.RawURLEncoding.EncodeToString(t.nonce), t.expires, nil
}

// MethodOfAuthValue returns the method a value was minted for (its form
// only: CheckAuthValue is the check).
func MethodOfAuthValue(aav string) (string, error) {
	t, err := parseAAV(aav)
	if err != nil {
		return "", err
	}
	return t.method, nil
}

// aavMAC256 is the truncated HMAC over the canonical encoding: a label,
// then every field as a 4-byte length and its bytes.
func aavMAC256(key, head []byte, pan ecml.PAN, amount int64, currency, merchant, orderID, method string) []byte {
	m := hmac.New(sha256.New, key)
	field := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		m.Write(l[:])
		m.Write(b)
	}
	field([]byte("KECIS-AAV-1"))
	field(head)
	field([]byte(pan.Reveal()))
	field([]byte(strconv.FormatInt(amount, 10)))
	field([]byte(currency))
	field([]byte(merchant))
	field([]byte(orderID))
	field([]byte(method))
	return m.Sum(nil)[:aavMAC]
}
