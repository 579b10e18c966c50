package conformance

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestEscrowPageForms: the suite reads a buyer page's select as
// connectors/escrow/page serves it (option value the bank's id, text the
// masked number and the balance) and picks the profile's account by its
// masked form, or by its digits when the value is the number.
func TestEscrowPageForms(t *testing.T) {
	base, _ := url.Parse("https://bank.test/escrow/pay/ES1234567890")
	body := `<html><body><form method="post" action="/escrow/logout"><input type="hidden" name="csrf" value="t1"></form>
<form method="post" action="/escrow/pay/ES1234567890/pay"><input type="hidden" name="csrf" value="t1">
<select id="account" name="account" required>
<option value="acc-7">****-5502 · 5,000원</option>
<option value="acc-3">****-5501 · 1,000,000원</option>
</select><button type="submit">Pay</button></form>
<form method="post" action="https://shop.test/return"><input type="hidden" name="reference" value="ES1234567890"></form></body></html>`
	p := &page{Forms: parseForms(base, []byte(body))}
	f := p.formAction(esActionPay)
	if f == nil || !f.has(esFieldAccount) || f.Values.Get("csrf") != "t1" {
		t.Fatalf("pay form %+v", f)
	}
	if got := f.Options[esFieldAccount]; len(got) != 2 || got[1].Value != "acc-3" || !strings.HasPrefix(got[1].Text, "****-5501") {
		t.Fatalf("options %+v", got)
	}
	if v, ok := pickAccount(f, "110-222-555501"); !ok || v != "acc-3" {
		t.Errorf("picked %q %v, want acc-3", v, ok)
	}
	if v, ok := pickAccount(f, "110-222-559999"); ok {
		t.Errorf("picked %q for an account the page does not offer", v)
	}
	if p.formAction(esActionConfirm) != nil {
		t.Error("a confirm form found on the pay page")
	}
	// An option whose value is the number itself.
	byNumber := &form{Options: map[string][]option{esFieldAccount: {{Value: "110222555502", Text: "savings"}, {Value: "110-222-555501", Text: "checking"}}}}
	if v, ok := pickAccount(byNumber, "110222555501"); !ok || v != "110-222-555501" {
		t.Errorf("picked %q %v by number", v, ok)
	}
}

// TestEscrowProfile: the escrow section's defaults and its required
// fields.
func TestEscrowProfile(t *testing.T) {
	const head = "participant: https://bank.test/kecis\ntester: {entity_id: https://t.test/kecis, signing: {cert: c, key: k}}\nbank: {code: \"088\", caller_code: \"099\", account: {number: \"110-222-333301\"}}\n"
	p, err := ParseProfile([]byte(head + "escrow:\n  buyer: {login: b, password: pw, account: \"110-222-555501\"}\n  settlement: {account: \"110-222-444401\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := p.Escrow
	if e.Currency != "KRW" || e.Amount != "150000" || e.CollectAmount != "1000" || e.BankCode != "088" || e.Settlement.BankCode != "088" {
		t.Errorf("defaults %+v", e)
	}
	if !slices.Contains(p.secrets(), "pw") {
		t.Error("the buyer's password is not scrubbed")
	}
	_, err = ParseProfile([]byte(head + "escrow:\n  amount: \"-5\"\n  buyer: {account: x}\n  settlement: {bank_code: \"88\", account: \"110\"}\n"))
	for _, want := range []string{"escrow.amount", "escrow.buyer.login", "escrow.buyer.account", "escrow.settlement"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	_, err = ParseProfile([]byte(head + "escrow:\n  buyer: {login: b, password: pw, account: \"110-222-555501\"}\n  settlement: {account: \"110222555501\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "another account than the buyer's") {
		t.Errorf("the buyer's account as the settlement: %v", err)
	}
}
