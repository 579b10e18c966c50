package bank

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestVaultFormat pins the bank's sealed account numbers, look-up hashes,
// fingerprints, derived keys and IDs for fixed keys and a fixed random
// stream: the values were computed by the bank's own vault before it moved
// to internal/vault, so that a demo database written then still opens.
func TestVaultFormat(t *testing.T) {
	seq := func() *bytes.Reader {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return bytes.NewReader(b)
	}
	dataKey, pepper := make([]byte, 32), make([]byte, 32)
	for i := range dataKey {
		dataKey[i], pepper[i] = byte(i+1), byte(0x40+i)
	}
	v, err := newVault(dataKey, pepper, seq())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.seal("110123456789", "account:acc_test")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.open(sealed, "account:acc_test"); err != nil || got != "110123456789" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := v.open(sealed, "account:acc_other"); err == nil {
		t.Fatal("a sealed number opened under another row's id")
	}
	id, err := newID(seq(), "acc")
	if err != nil {
		t.Fatal(err)
	}
	digits, err := randomDigits(seq(), 40)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"seal", hex.EncodeToString(sealed), "0100070e151c232a31383f464dfd448954816d5dc2767e866352004c985a807b351c8157a45650f142"},
		{"numberHash", hex.EncodeToString(v.numberHash("110123456789")), "365062f99e2e144cec43e44a2eb8c1cdc8807396d49a6aed08021d41c4c8e9f6"},
		{"fingerprint", hex.EncodeToString(v.fingerprint("transfer", "acc_a", "", "1000")), "0204fedc5e9ed744d1b2bd7017bde8bd561098cf796083f7766a4cb6dba72131"},
		{"pwKey", hex.EncodeToString(v.pwKey), "d6514ad780ae90187ad68f910687b9a4540ceed13efd860b8fdf9bbf28bd908f"},
		{"sessKey", hex.EncodeToString(v.sessKey), "025a33ba6d72c6404a75b248705d6f5e1e011eed0d7f0c93d5ec1a936fbf1beb"},
		{"newID", id, "acc_aadq4fi4emvdcob7"},
		{"randomDigits", digits, "0741852963074185296307418529630741853074"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
