package kecisadapter

import (
	"strings"
	"testing"

	"github.com/kecis/kecis/connectors/card"
)

// TestMerchantName: the cardholder's text names the sub-merchant an
// acquirer pays for when it names one, cut to what the issuer keeps;
// otherwise — no name, or one the issuer could not keep (control
// characters, a card number) — the caller's name, or nothing (the issuer
// then shows the caller's entityID).
func TestMerchantName(t *testing.T) {
	a := &Adapter{MerchantNames: map[string]string{"https://pg.example/kecis": "Example PG"}}
	long := strings.Repeat("가", maxMerchantName+10)
	for _, c := range []struct{ caller, sub, want string }{
		{"https://pg.example/kecis", "Demo shop", "Demo shop"},
		{"https://pg.example/kecis", "  Demo shop ", "Demo shop"},
		{"https://pg.example/kecis", "", "Example PG"},
		{"https://pg.example/kecis", "shop\nline", "Example PG"},
		{"https://pg.example/kecis", "shop 4111111111111111", "Example PG"},
		{"https://pg.example/kecis", long, strings.Repeat("가", maxMerchantName)},
		{"https://other.example/kecis", "", ""},
	} {
		if got := a.merchantName(&card.ApproveRequest{Merchant: c.caller, SubMerchant: c.sub}); got != c.want {
			t.Errorf("caller %s, sub-merchant %q: %q, want %q", c.caller, c.sub, got, c.want)
		}
	}
}
