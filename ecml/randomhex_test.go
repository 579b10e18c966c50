package ecml

import (
	"bytes"
	"testing"
)

// TestRandomHexNeverLooksLikeAPAN: a draw whose hex is a Luhn-valid card
// number ("4111111111111111") is drawn again.
func TestRandomHexNeverLooksLikeAPAN(t *testing.T) {
	r := bytes.NewReader(append([]byte{0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}, bytes.Repeat([]byte{0xab}, 8)...))
	got, err := RandomHex(r, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got != "abababababababab" {
		t.Fatalf("RandomHex = %q, want the second draw", got)
	}
	if _, err := RandomHex(bytes.NewReader(nil), 8); err == nil {
		t.Fatal("no error from an empty reader")
	}
}

// TestFindPANsSkipsHexTokens: a Luhn-valid run inside a long hex token (a
// SHA-256 fingerprint, a message ID) is part of the token; the same digits
// anywhere else are a card number.
func TestFindPANsSkipsHexTokens(t *testing.T) {
	const pan = "4111111111111111"
	for _, c := range []struct {
		text string
		want bool
	}{
		{"sha256 ab" + pan + "cd0123456789abcdef0123456789", false},   // 46-char hex token
		{"_" + "f0" + pan + "00112233445566", false},                  // a 32-char message ID
		{"card=" + pan, true},                                         // bounded by '='
		{"ab" + pan + "cd", true},                                     // hex, but a short token
		{"id " + pan + "0123456789012345", false},                     // no letter: a 31-digit run, too long for a PAN
		{"x " + pan + " " + "0123456789abcdef0123456789abcdef", true}, // the PAN stands apart from the token
	} {
		if got := ContainsPAN(c.text); got != c.want {
			t.Errorf("ContainsPAN(%q) = %v, want %v", c.text, got, c.want)
		}
		if got := len(FindPANs(c.text)) > 0; got != c.want {
			t.Errorf("FindPANs(%q) found %v, want %v", c.text, got, c.want)
		}
	}
}
