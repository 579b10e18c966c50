package vault_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/kecis/kecis/internal/vault"
)

// seq is a fixed random stream: byte i is i·7 (mod 256), so it holds
// bytes of 250 and above for RandomDigits to drop.
func seq() *bytes.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return bytes.NewReader(b)
}

func keys() (dataKey, pepper []byte) {
	dataKey, pepper = make([]byte, 32), make([]byte, 32)
	for i := range dataKey {
		dataKey[i], pepper[i] = byte(i+1), byte(0x40+i)
	}
	return dataKey, pepper
}

func mustNew(t *testing.T, dataKey []byte) *vault.Vault {
	t.Helper()
	v, err := vault.New(dataKey, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKnownAnswers pins the format: the values were computed by the
// issuer's and the bank's own vaults before they moved here, so that their
// demo databases keep opening (examples/*/vault_format_test.go pin the
// same through the companies' wrappers).
func TestKnownAnswers(t *testing.T) {
	dataKey, pepper := keys()
	v, err := vault.New(dataKey, seq())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.Seal([]byte("110123456789"), []byte("account:acc_test"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := vault.New(dataKey, seq())
	if err != nil {
		t.Fatal(err)
	}
	card, err := v2.Seal([]byte("9410123456789012"), []byte("card:card_test"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := vault.NewID(seq(), "acc")
	if err != nil {
		t.Fatal(err)
	}
	digits, err := vault.RandomDigits(seq(), 40)
	if err != nil {
		t.Fatal(err)
	}
	bank := func(l string) vault.Key { return vault.DeriveKey(pepper, "kecis/examples/bank/"+l) }
	issuer := func(l string) vault.Key { return vault.DeriveKey(pepper, "kecis/examples/issuer/"+l) }
	for _, c := range []struct{ name, got, want string }{
		// Both nonces are seq's first 12 bytes.
		{"Seal", hex.EncodeToString(sealed), "0100070e151c232a31383f464dfd448954816d5dc2767e866352004c985a807b351c8157a45650f142"},
		{"Seal 2", hex.EncodeToString(card), "0100070e151c232a31383f464df5418855826c5ac3757f8962bc495bf73e81a4be545ffd280f5b3d95778c585a"},
		{"Hash", hex.EncodeToString(bank("account-index").Hash("110123456789")), "365062f99e2e144cec43e44a2eb8c1cdc8807396d49a6aed08021d41c4c8e9f6"},
		{"Hash 2", hex.EncodeToString(issuer("pan-index").Hash("9410123456789012")), "23fda192c1f0be7c2ed9215dde6f15fb41696f56ba1898f10dbdb5a6aafeeb9c"},
		{"Fingerprint", hex.EncodeToString(bank("fingerprint").Fingerprint("transfer", "acc_a", "", "1000")), "0204fedc5e9ed744d1b2bd7017bde8bd561098cf796083f7766a4cb6dba72131"},
		{"Fingerprint 2", hex.EncodeToString(issuer("cardholder-secret").Fingerprint("password2", "\x01\x02\x03", "12")), "47d6d3ad2c033273a28ee12b192a87045bd97e0649643ed84640e9949e2a7369"},
		{"DeriveKey", hex.EncodeToString(bank("login-password")), "d6514ad780ae90187ad68f910687b9a4540ceed13efd860b8fdf9bbf28bd908f"},
		{"NewID", id, "acc_aadq4fi4emvdcob7"},
		{"RandomDigits", digits, "0741852963074185296307418529630741853074"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestSealOpen(t *testing.T) {
	dataKey, _ := keys()
	v := mustNew(t, dataKey)
	sealed, err := v.Seal([]byte("secret"), []byte("row:1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Open(sealed, []byte("row:1")); err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if sealed[0] != vault.Version || len(sealed) != 1+12+len("secret")+16 {
		t.Fatalf("sealed = %x: want version ‖ nonce ‖ ciphertext ‖ tag", sealed)
	}
	again, _ := v.Seal([]byte("secret"), []byte("row:1"))
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	other := make([]byte, 32)
	for _, c := range []struct {
		name   string
		v      *vault.Vault
		sealed []byte
		ad     string
	}{
		{"other row", v, sealed, "row:2"},
		{"other key", mustNew(t, other), sealed, "row:1"},
		{"truncated", v, sealed[:len(sealed)-1], "row:1"},
		{"too short", v, sealed[:1+12+15], "row:1"},
		{"empty", v, nil, "row:1"},
		{"other version", v, append([]byte{2}, sealed[1:]...), "row:1"},
	} {
		if _, err := c.v.Open(c.sealed, []byte(c.ad)); !errors.Is(err, vault.ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", c.name, err)
		}
	}
	for i := range sealed {
		changed := bytes.Clone(sealed)
		changed[i] ^= 1
		if _, err := v.Open(changed, []byte("row:1")); !errors.Is(err, vault.ErrOpen) {
			t.Fatalf("byte %d changed: Open = %v, want ErrOpen", i, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := vault.New(make([]byte, n), rand.Reader); err == nil {
			t.Errorf("New with a %d-byte key: no error", n)
		}
	}
	if _, err := vault.New(make([]byte, 32), nil); err == nil {
		t.Error("New without a random source: no error")
	}
	if err := vault.CheckPepper(make([]byte, 31)); err == nil {
		t.Error("CheckPepper(31 bytes): no error")
	}
	if err := vault.CheckPepper(make([]byte, 32)); err != nil {
		t.Error(err)
	}
	v2, _ := vault.New(make([]byte, 32), iotest.ErrReader(errors.New("no entropy")))
	if _, err := v2.Seal([]byte("x"), nil); err == nil {
		t.Error("Seal with a failing random source: no error")
	}
	if _, err := vault.NewID(iotest.ErrReader(errors.New("no entropy")), "x"); err == nil {
		t.Error("NewID with a failing random source: no error")
	}
	if _, err := vault.RandomDigits(iotest.ErrReader(errors.New("no entropy")), 6); err == nil {
		t.Error("RandomDigits with a failing random source: no error")
	}
	if _, err := vault.RandomBytes(iotest.ErrReader(errors.New("no entropy")), 6); err == nil {
		t.Error("RandomBytes with a failing random source: no error")
	}
}

func TestKeys(t *testing.T) {
	_, pepper := keys()
	a, b := vault.DeriveKey(pepper, "a"), vault.DeriveKey(pepper, "b")
	if bytes.Equal(a, b) || len(a) != 32 {
		t.Fatal("two labels derive the same key")
	}
	if bytes.Equal(a.Hash("1234"), b.Hash("1234")) {
		t.Fatal("one value hashes alike under two keys")
	}
	// Length prefixes: moving a boundary or an empty field changes it.
	for _, pair := range [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{"", "a"}, {"a", ""}},
	} {
		if bytes.Equal(a.Fingerprint(pair[0]...), a.Fingerprint(pair[1]...)) {
			t.Errorf("Fingerprint(%q) = Fingerprint(%q)", pair[0], pair[1])
		}
	}
}

func TestIDsAndDigits(t *testing.T) {
	id, err := vault.NewID(rand.Reader, "card")
	if err != nil || len(id) != len("card_")+16 || id[:5] != "card_" {
		t.Fatalf("NewID = %q, %v", id, err)
	}
	for _, c := range id[5:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			t.Fatalf("NewID = %q: %q is not lower-case base32", id, c)
		}
	}
	// Only bytes of 250 and above: every one is dropped until the 9s.
	r := bytes.NewReader(append(bytes.Repeat([]byte{255}, 32), bytes.Repeat([]byte{9}, 32)...))
	if d, err := vault.RandomDigits(r, 6); err != nil || d != "999999" {
		t.Fatalf("RandomDigits = %q, %v", d, err)
	}
	var count [10]int
	d, _ := vault.RandomDigits(rand.Reader, 10000)
	for _, c := range d {
		count[c-'0']++
	}
	for i, n := range count {
		if n < 800 || n > 1200 {
			t.Errorf("digit %d: %d of 10000", i, n)
		}
	}
	b, err := vault.RandomBytes(seq(), 4)
	if err != nil || hex.EncodeToString(b) != "00070e15" {
		t.Fatalf("RandomBytes = %x, %v", b, err)
	}
}

// FuzzOpen: nothing but the one value sealed opens (under its own ad), and
// garbage never panics.
func FuzzOpen(f *testing.F) {
	dataKey, _ := keys()
	v, err := vault.New(dataKey, seq()) // the same good in every worker
	if err != nil {
		f.Fatal(err)
	}
	good, _ := v.Seal([]byte("9410123456789012"), []byte("card:x"))
	f.Add(good, []byte("card:y"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{vault.Version}, []byte("card:x"))
	f.Add(bytes.Repeat([]byte{1}, 29), []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := v.Open(sealed, ad)
		if err == nil && (!bytes.Equal(sealed, good) || string(ad) != "card:x") {
			t.Fatalf("garbage opened: %q", pt)
		} else if err == nil {
			return
		} else if !errors.Is(err, vault.ErrOpen) {
			t.Fatalf("Open = %v, want ErrOpen", err)
		}
	})
}
