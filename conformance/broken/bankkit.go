package broken

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kecis/kecis/saml/metadata"
)

// The bank and telecom kits' test data: the bank's code, the code the
// tester credits as (a bank-role caller in test mode), the accounts and
// the telecom's subscribers.
const (
	KitBankCode       = "088"
	KitCallerBankCode = "099"
	KitPayeeAccount   = "110-222-333301"
	KitPayeeHolder    = "김하나"
	KitPayeePhone     = "01012345678"
	KitClosedAccount  = "110-222-333302"
	KitRemitterLogin  = "remitter"
	KitOtherPhone     = "01099990000"
	// The escrow's buyer (who logs in on the bank's page with
	// KitPassword) and the merchant's settlement account.
	KitBuyerLogin        = "buyer"
	KitBuyerAccount      = "110-222-555501"
	KitSettlementAccount = "110-222-444401"
)

// NewBankKit starts a bank (KECIS §15.8, §15.9, §15.5, §15.6) with flaw
// (one of BankFlaws, or None) and writes the files of a run into dir: the
// profile has bank, twoway, escrow (the buyer has two accounts, the
// module pays from the first) and the sms, sms_reply and balance hooks.
func NewBankKit(dir string, flaw Flaw) (*Kit, error) {
	cfg := &BankConfig{Code: KitBankCode, Accounts: []Account{
		{Number: KitPayeeAccount, Holder: KitPayeeHolder, Phone: KitPayeePhone},
		{Number: KitClosedAccount, Holder: "박닫힘", Closed: true},
		{Number: "110-222-999901", Holder: "이보냄", Phone: "01098765432", Balance: 50_000_000, Login: KitRemitterLogin, Password: KitPassword},
		{Number: KitBuyerAccount, Holder: "최구매", Phone: "01022223333", Balance: 1_000_000, Login: KitBuyerLogin, Password: KitPassword},
		{Number: "110-222-555502", Holder: "최구매", Balance: 5_000, Login: KitBuyerLogin, Password: KitPassword},
		{Number: KitSettlementAccount, Holder: "주식회사 시험상점"},
	}, Escrow: &EscrowConfig{}}
	profile := fmt.Sprintf(`bank:
  code: "%s"
  caller_code: "%s"
  account: {number: "%s", holder: "%s"}
  closed_account: "%s"
  foreign_account: "220-333-444455"
  amount: "1000"
twoway:
  endpoint: %[6]s
  login: %[7]s
  password: %[8]q
  payee: {bank_code: "%[1]s", account: "%[3]s", phone: "%[9]s"}
  other_phone: "%[10]s"
  amount: "10000"
escrow:
  amount: "150000"
  collect_amount: "1000"
  buyer: {login: %[11]s, password: %[8]q, account: "%[12]s"}
  settlement: {account: "%[13]s"}
`, KitBankCode, KitCallerBankCode, KitPayeeAccount, KitPayeeHolder, KitClosedAccount, KitPostEndpoint, KitRemitterLogin, KitPassword, KitPayeePhone, KitOtherPhone,
		KitBuyerLogin, KitBuyerAccount, KitSettlementAccount)
	hooks := "  sms: {url: %[1]s/sms}\n  sms_reply: {url: %[1]s/sms/reply}\n  balance: {url: %[1]s/balance}\n"
	return newBankingKit(dir, Config{Flaw: flaw, Bank: cfg}, profile, hooks)
}

// NewTelecomKit starts a telecom (KECIS §15.10) with flaw (None: the
// telecom kit has no flaw of its own yet) and writes the files of a run
// into dir: the profile's phone section lists a match, a close match, a
// no-match and two not-possible numbers (suspended, unknown).
func NewTelecomKit(dir string, flaw Flaw) (*Kit, error) {
	cfg := &TelecomConfig{Subscribers: []Subscriber{
		{Number: KitPayeePhone, Name: KitPayeeHolder},
		{Number: "01055556666", Name: "박정지", Suspended: true},
		{Number: "01033334444", Name: "John Smith"},
	}}
	profile := fmt.Sprintf(`phone:
  checks:
    - {number: "%[1]s", name: "%[2]s", expect: match}
    - {number: "+82 10-1234-5678", name: "김하니", expect: close-match}
    - {number: "01033334444", name: "SMITH JOHN", expect: close-match}
    - {number: "%[1]s", name: "이철수", expect: no-match}
    - {number: "01055556666", name: "박정지", expect: not-possible}
    - {number: "01000000001", name: "%[2]s", expect: not-possible}
`, KitPayeePhone, KitPayeeHolder)
	return newBankingKit(dir, Config{Flaw: flaw, Telecom: cfg}, profile, "")
}

func newBankingKit(dir string, cfg Config, sections, hooks string) (*Kit, error) {
	t, err := WriteTester(filepath.Join(dir, "tester"))
	if err != nil {
		return nil, err
	}
	second, err := writeIdentity(filepath.Join(dir, "second"), SecondID, metadata.RoleTester, "signing", "encryption")
	if err != nil {
		return nil, err
	}
	outsider, err := writeIdentity(filepath.Join(dir, "outsider"), OutsiderID, metadata.RoleMerchant, "signing", "encryption")
	if err != nil {
		return nil, err
	}
	tp := t.Peer()
	tp.PostEndpoint = KitPostEndpoint
	cfg.Peers = []Peer{tp, second.Peer(), outsider.Peer()}
	p, err := Start(cfg)
	if err != nil {
		return nil, err
	}
	k := &Kit{Provider: p, Tester: t, Second: second, Outsider: outsider, Dir: dir, ProfilePath: filepath.Join(dir, "profile.yaml"), MetadataPath: filepath.Join(dir, "metadata.xml")}
	if err := os.WriteFile(k.MetadataPath, p.Metadata, 0o644); err != nil {
		p.Close()
		return nil, err
	}
	profile := fmt.Sprintf(`# Test profile of the broken participant %q (conformance/broken).
participant: %s
tester:
  entity_id: %s
  signing:    {cert: tester/signing/cert.pem,    key: tester/signing/key.pem}
  encryption: {cert: tester/encryption/cert.pem, key: tester/encryption/key.pem}
  tls:        {cert: tester/tls/cert.pem,        key: tester/tls/key.pem}
second:
  entity_id: %s
  signing:    {cert: second/signing/cert.pem,    key: second/signing/key.pem}
  encryption: {cert: second/encryption/cert.pem, key: second/encryption/key.pem}
outsider:
  entity_id: %s
  signing:    {cert: outsider/signing/cert.pem,  key: outsider/signing/key.pem}
  roles: [merchant]
timeouts: {request: 10s}
`, cfg.Flaw, p.EntityID, t.EntityID, second.EntityID, outsider.EntityID) + sections
	if hooks != "" {
		profile += "hooks:\n" + fmt.Sprintf(hooks, p.HooksURL)
	}
	if err := os.WriteFile(k.ProfilePath, []byte(profile), 0o644); err != nil {
		p.Close()
		return nil, err
	}
	return k, nil
}
