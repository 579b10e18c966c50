package issuer

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestVaultFormat pins the issuer's sealed card numbers and TOTP seeds,
// look-up and secret hashes, fingerprints, derived keys and IDs for fixed
// keys and a fixed random stream: the values were computed by the issuer's
// own vault before it moved to internal/vault, so that a demo database
// written then still opens.
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
	const pan = "9410123456789012"
	sealed, err := v.sealPAN("card_test", pan)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.openPAN("card_test", sealed); err != nil || got != pan {
		t.Fatalf("openPAN = %v", err)
	}
	if _, err := v.openPAN("card_other", sealed); err == nil {
		t.Fatal("a sealed PAN opened under another card's id")
	}
	ds := domainSealer{v: v, domain: "vcn"}
	dsealed, err := ds.Seal([]byte("virtual"), []byte("row1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ds.Open(dsealed, []byte("row1")); err != nil || string(got) != "virtual" {
		t.Fatalf("domainSealer.Open = %q, %v", got, err)
	}
	if _, err := v.Open(dsealed, []byte("row1")); err == nil {
		t.Fatal("a domain-sealed value opened without its domain")
	}
	id, err := newID(seq(), "card")
	if err != nil {
		t.Fatal(err)
	}
	digits, err := randomDigits(seq(), 40)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := randomBytes(seq(), 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"sealPAN", hex.EncodeToString(sealed), "0100070e151c232a31383f464df5418855826c5ac3757f8962bc495bf73e81a4be545ffd280f5b3d95778c585a"},
		{"domainSealer", hex.EncodeToString(dsealed), "01545b626970777e858c939aa1a9b59d6e9b769a099cf5c7595527e7384f315cd8a30bc4"},
		{"panHash", hex.EncodeToString(v.panHash(pan)), "23fda192c1f0be7c2ed9215dde6f15fb41696f56ba1898f10dbdb5a6aafeeb9c"},
		{"secretHash", hex.EncodeToString(v.secretHash("password2", []byte{1, 2, 3}, "12")), "47d6d3ad2c033273a28ee12b192a87045bd97e0649643ed84640e9949e2a7369"},
		{"fingerprint", hex.EncodeToString(v.fingerprint("issue", "cust_a", "", pan)), "519d311cffefc0f1c1427898b5163529e7386604f7b76a561ebd99b589e96873"},
		{"authKey", hex.EncodeToString(v.authKey), "7a84405ac8b616c4498b09b842c3860b6dbaf9dd5ab00f20994e975eab4476f9"},
		{"pepper", hex.EncodeToString(v.pepper), "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"},
		{"newID", id, "card_aadq4fi4emvdcob7"},
		{"randomDigits", digits, "0741852963074185296307418529630741853074"},
		{"randomBytes", hex.EncodeToString(rb), "00070e151c232a31"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
