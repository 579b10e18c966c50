package ecml

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// vcase is one validation rule exercised on a copy of the full fixture: the
// listed problems, by path, must be exactly what Validate reports (none for
// a positive case); msg, when set, must be part of the first one's message.
type vcase struct {
	name   string
	mutate func(p *Payload)
	want   []string
	msg    string
	opts   *ValidateOptions
}

func runCases(t *testing.T, cases []vcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fullPayload(t)
			tc.mutate(p)
			opts := strictOpts
			if tc.opts != nil {
				opts = *tc.opts
			}
			probs := p.Validate(opts)
			var got []string
			for _, pr := range probs {
				got = append(got, pr.Path)
				if strings.Contains(pr.Message, testPAN) || strings.Contains(pr.Path, testPAN) {
					t.Errorf("a problem shows the card number: %v", pr)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems %v; want paths %v", probs, tc.want)
				return
			}
			if tc.msg != "" && !strings.Contains(probs[0].Message, tc.msg) {
				t.Errorf("message %q lacks %q", probs[0].Message, tc.msg)
			}
		})
	}
}

func card(p *Payload) *Card      { return p.Ecom.Payment.Card }
func tx(p *Payload) *Transaction { return p.Ecom.Transaction }
func ship(p *Payload) *Postal    { return p.Ecom.ShipTo.Postal }

func TestValidateEcom(t *testing.T) {
	runCases(t, []vcase{
		{name: "valid", mutate: func(*Payload) {}},
		{name: "mode-query", mutate: func(p *Payload) { p.Ecom.Mode = ModeQuery }},
		{name: "mode-bad", mutate: func(p *Payload) { p.Ecom.Mode = "query" }, want: []string{"/Ecom/@Mode"}, msg: "Query or Assert"},
		{name: "mode-bad-deep", mutate: func(p *Payload) { card(p).ExpDate.Mode = "x"; p.Ecom.TransactionComplete.Mode = "y" },
			want: []string{"/Ecom/Payment/Card/ExpDate/@Mode", "/Ecom/TransactionComplete/@Mode"}},
		{name: "schema-version-wrong", mutate: func(p *Payload) { p.Ecom.SchemaVersion = "urn:ietf:params:ecml:v1.1" }, want: []string{"/Ecom/@SchemaVersion"}, msg: SchemaVersion},
		{name: "schema-version-missing", mutate: func(p *Payload) { p.Ecom.SchemaVersion = "" }, want: []string{"/Ecom/@SchemaVersion"}, msg: "missing"},
		{name: "schema-version-optional", mutate: func(p *Payload) { p.Ecom.SchemaVersion = "" }, opts: &ValidateOptions{Now: testNow}},
		{name: "no-ecom", mutate: func(p *Payload) { p.Ecom = nil }, want: []string{"/Ecom"}, msg: "exactly one Ecom"},
		{name: "id-ncname", mutate: func(p *Payload) { p.Ecom.ID = "1abc" }, want: []string{"/Ecom/@id"}},
		{name: "order-id-ascii", mutate: func(p *Payload) { p.Ecom.ConsumerOrderID = "주문-1" }, want: []string{"/Ecom/@ConsumerOrderID"}, msg: "ASCII"},
		{name: "order-id-length", mutate: func(p *Payload) { p.Ecom.ConsumerOrderID = strings.Repeat("A", 129) }, want: []string{"/Ecom/@ConsumerOrderID"}, msg: "longer than 128"},
		{name: "order-id-128", mutate: func(p *Payload) { p.Ecom.ConsumerOrderID = strings.Repeat("A", 128) }},
		{name: "merchant-control", mutate: func(p *Payload) { p.Ecom.Merchant = "shop\x7f" }, want: []string{"/Ecom/@Merchant"}, msg: "control"},
		{name: "wallet-location", mutate: func(p *Payload) { p.Ecom.WalletLocation = "wallet here" }, want: []string{"/Ecom/@WalletLocation"}, msg: "absolute URI"},
		{name: "edge-space", mutate: func(p *Payload) { p.Ecom.WalletID = " w" }, want: []string{"/Ecom/@WalletID"}, msg: "note 102"},
		{name: "xml-char", mutate: func(p *Payload) { p.Ecom.WalletID = "w\x00" }, want: []string{"/Ecom/@WalletID"}, msg: "XML cannot carry"},
	})
}

func TestValidateAddress(t *testing.T) {
	runCases(t, []vcase{
		{name: "hangul-nmtoken", mutate: func(p *Payload) { ship(p).Name.First = "길동" }},
		{name: "name-space", mutate: func(p *Payload) { ship(p).Name.First = "Gil Dong" }, want: []string{"/Ecom/ShipTo/Postal/Name/@First"}, msg: "NMTOKEN"},
		{name: "prefix-length", mutate: func(p *Payload) { ship(p).Name.Prefix = strings.Repeat("M", 17) }, want: []string{"/Ecom/ShipTo/Postal/Name/@Prefix"}},
		{name: "postal-code-space", mutate: func(p *Payload) { p.Ecom.BillTo.Postal.PostalCode = "SW1A 1AA" }, want: []string{"/Ecom/BillTo/Postal/@PostalCode"}},
		{name: "country-lower", mutate: func(p *Payload) { ship(p).CountryCode = "kr" }, want: []string{"/Ecom/ShipTo/Postal/@CountryCode"}, msg: `"kr"`},
		{name: "country-unassigned", mutate: func(p *Payload) { p.Ecom.ReceiptTo.Postal.CountryCode = "XX" }, want: []string{"/Ecom/ReceiptTo/Postal/@CountryCode"}},
		{name: "phone", mutate: func(p *Payload) { p.Ecom.ShipTo.Telecom.Phone.Number = "call me" }, want: []string{"/Ecom/ShipTo/Telecom/Phone/@Number"}},
		{name: "phone-ok", mutate: func(p *Payload) { p.Ecom.ShipTo.Telecom.Phone.Number = "(02) 123-4567" }},
		{name: "email", mutate: func(p *Payload) { p.Ecom.ShipTo.Online.Email.Address = "gildong@localhost" }, want: []string{"/Ecom/ShipTo/Online/Email/@Address"}},
		{name: "email-two-at", mutate: func(p *Payload) { p.Ecom.ShipTo.Online.Email.Address = "a@b@c.kr" }, want: []string{"/Ecom/ShipTo/Online/Email/@Address"}},
		{name: "street-line1", mutate: func(p *Payload) { ship(p).Street.Line1 = "" }, want: []string{"/Ecom/ShipTo/Postal/Street/@Line1"}, msg: "missing"},
		{name: "city-space", mutate: func(p *Payload) { ship(p).City.Value = "Seoul " }, want: []string{"/Ecom/ShipTo/Postal/City"}},
		{name: "company-length", mutate: func(p *Payload) { ship(p).Company.Value = strings.Repeat("가", 129) }, want: []string{"/Ecom/ShipTo/Postal/Company"}},
		{name: "company-mode", mutate: func(p *Payload) { ship(p).Company.Mode = "Maybe" }, want: []string{"/Ecom/ShipTo/Postal/Company/@Mode"}},
	})
}

func TestValidateCard(t *testing.T) {
	runCases(t, []vcase{
		{name: "number-missing-real", mutate: func(p *Payload) { card(p).Number = "" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "missing"},
		{name: "number-spaces", mutate: func(p *Payload) { card(p).Number = "4111 1111 1111 1111" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "digits only"},
		{name: "number-short", mutate: func(p *Payload) { card(p).Number = "41111111111" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "13 to 19"},
		{name: "number-long", mutate: func(p *Payload) { card(p).Number = "41111111111111111111" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "13 to 19"},
		{name: "number-luhn", mutate: func(p *Payload) { card(p).Number = "4111111111111112" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "411111******1112"},
		{name: "number-12", mutate: func(p *Payload) { card(p).Number = "123456789015" }, want: []string{"/Ecom/Payment/Card/@Number"}, msg: "13 to 19"}, // Luhn-valid, too short
		{name: "number-13", mutate: func(p *Payload) { card(p).Number = "4222222222222" }},
		{name: "number-19", mutate: func(p *Payload) { card(p).Number = "6011000990139424124" }},
		{name: "type-unknown", mutate: func(p *Payload) { card(p).Type = "FOO" }, want: []string{"/Ecom/Payment/Card/@Type"}, msg: "note 11"},
		{name: "type-mastercard", mutate: func(p *Payload) { card(p).Type = "MasterCard" }},
		{name: "type-lower", mutate: func(p *Payload) { card(p).Type = "visa" }},
		{name: "type-jcb", mutate: func(p *Payload) { card(p).Type = "JCB" }},
		{name: "type-korean", mutate: func(p *Payload) { card(p).Type = "Shinhan" }},
		{name: "type-bc", mutate: func(p *Payload) { card(p).Type = "BC" }},
		{name: "protocols-unknown", mutate: func(p *Payload) { card(p).Protocols = "set foo" }, want: []string{"/Ecom/Payment/Card/@Protocols"}, msg: "note 17"},
		{name: "protocols-repeat", mutate: func(p *Payload) { card(p).Protocols = "set SET" }, want: []string{"/Ecom/Payment/Card/@Protocols"}, msg: "repeated"},
		{name: "protocols-none", mutate: func(p *Payload) { card(p).Protocols = "none set" }, want: []string{"/Ecom/Payment/Card/@Protocols"}, msg: "none"},
		{name: "protocols-double-space", mutate: func(p *Payload) { card(p).Protocols = "set  iotp" }, want: []string{"/Ecom/Payment/Card/@Protocols"}},
		{name: "protocols-all", mutate: func(p *Payload) { card(p).Protocols = "set setcert iotp echeck simcard phoneid" }},
		{name: "cvv-short", mutate: func(p *Payload) { card(p).Verification = "12" }, want: []string{"/Ecom/Payment/Card/@Verification"}, msg: "3 to 4 digits"},
		{name: "cvv-long", mutate: func(p *Payload) { card(p).Verification = "12345" }, want: []string{"/Ecom/Payment/Card/@Verification"}},
		{name: "cvv-4", mutate: func(p *Payload) { card(p).Verification = "1234" }},
		{name: "issue-number", mutate: func(p *Payload) { card(p).Issuer = "123" }, want: []string{"/Ecom/Payment/Card/@Issuer"}},
		{name: "issue-number-1", mutate: func(p *Payload) { card(p).Issuer = "1" }},
		{name: "card-name-length", mutate: func(p *Payload) { card(p).Name = strings.Repeat("A", 129) }, want: []string{"/Ecom/Payment/Card/@Name"}},
		{name: "no-card", mutate: func(p *Payload) { p.Ecom.Payment.Card = nil }, want: []string{"/Ecom/Payment/Card"}, msg: "missing"},
		{name: "expdate-missing", mutate: func(p *Payload) { card(p).ExpDate = nil }, want: []string{"/Ecom/Payment/Card/ExpDate"}, msg: "missing"},
		{name: "exp-month-13", mutate: func(p *Payload) { card(p).ExpDate.Month = "13" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Month"}, msg: "1 to 12"},
		{name: "exp-month-0", mutate: func(p *Payload) { card(p).ExpDate.Month = "0" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Month"}},
		{name: "exp-month-leading-zero", mutate: func(p *Payload) { card(p).ExpDate.Month = "05"; card(p).ExpDate.Day = "" }},
		{name: "exp-month-missing", mutate: func(p *Payload) { card(p).ExpDate.Month = "" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Month"}, msg: "missing"},
		{name: "exp-year-2", mutate: func(p *Payload) { card(p).ExpDate.Year = "29" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Year"}, msg: "4 digits"},
		{name: "exp-year-missing", mutate: func(p *Payload) { card(p).ExpDate.Year = "" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Year"}},
		{name: "exp-day-31-feb", mutate: func(p *Payload) { card(p).ExpDate.Month = "2" }, want: []string{"/Ecom/Payment/Card/ExpDate/@Day"}},
		{name: "exp-leap", mutate: func(p *Payload) { *card(p).ExpDate = Date{Day: "29", Month: "2", Year: "2028"} }},
		{name: "exp-not-leap", mutate: func(p *Payload) { *card(p).ExpDate = Date{Day: "29", Month: "2", Year: "2027"} }, want: []string{"/Ecom/Payment/Card/ExpDate/@Day"}},
		{name: "expired", mutate: func(p *Payload) { *card(p).ExpDate = Date{Month: "10", Year: "2026"} }, want: []string{"/Ecom/Payment/Card/ExpDate"}, msg: "expired"},
		{name: "expires-this-month", mutate: func(p *Payload) { *card(p).ExpDate = Date{Month: "11", Year: "2026"} }},
		{name: "expired-yesterday", mutate: func(p *Payload) { *card(p).ExpDate = Date{Day: "4", Month: "11", Year: "2026"} }, want: []string{"/Ecom/Payment/Card/ExpDate"}},
		{name: "expires-today", mutate: func(p *Payload) { *card(p).ExpDate = Date{Day: "5", Month: "11", Year: "2026"} }},
		{name: "expired-no-clock", mutate: func(p *Payload) { *card(p).ExpDate = Date{Month: "10", Year: "2020"}; card(p).ValidDate = nil }, opts: &ValidateOptions{}},
		{name: "valid-from-future", mutate: func(p *Payload) { *card(p).ValidDate = Date{Month: "12", Year: "2026"} }, want: []string{"/Ecom/Payment/Card/ValidDate"}, msg: "not valid yet"},
		{name: "valid-from-this-month", mutate: func(p *Payload) { *card(p).ValidDate = Date{Month: "11", Year: "2026"} }},
		{name: "valid-from-after-exp", mutate: func(p *Payload) {
			*card(p).ValidDate = Date{Month: "1", Year: "2026"}
			*card(p).ExpDate = Date{Month: "12", Year: "2025"}
		}, want: []string{"/Ecom/Payment/Card/ExpDate", "/Ecom/Payment/Card/ValidDate"}},
		{name: "valid-from-year", mutate: func(p *Payload) { card(p).ValidDate.Year = "24" }, want: []string{"/Ecom/Payment/Card/ValidDate/@Year"}},
	})
}

func TestValidateLoyaltyUserMerchant(t *testing.T) {
	runCases(t, []vcase{
		{name: "loyalty-year-4", mutate: func(p *Payload) { p.Ecom.Loyalty.ExpDate.Year = "2030" }},
		{name: "loyalty-year-3", mutate: func(p *Payload) { p.Ecom.Loyalty.ExpDate.Year = "203" }, want: []string{"/Ecom/Loyalty/ExpDate/@Year"}, msg: "2 or 4"},
		{name: "loyalty-expired", mutate: func(p *Payload) { p.Ecom.Loyalty.ExpDate.Year = "25" }, want: []string{"/Ecom/Loyalty/ExpDate"}},
		{name: "loyalty-expdate-missing", mutate: func(p *Payload) { p.Ecom.Loyalty.ExpDate = nil }, want: []string{"/Ecom/Loyalty/ExpDate"}},
		{name: "loyalty-number-space", mutate: func(p *Payload) { p.Ecom.Loyalty.Number = "941 012" }, want: []string{"/Ecom/Loyalty/@Number"}},
		{name: "loyalty-verification-length", mutate: func(p *Payload) { p.Ecom.Loyalty.Verification = Secret(strings.Repeat("1", 17)) }, want: []string{"/Ecom/Loyalty/@Verification"}},
		{name: "certificate-url", mutate: func(p *Payload) { p.Ecom.User.CertificateURL = "ca.example.kr/cert" }, want: []string{"/Ecom/User/@CertificateURL"}},
		{name: "data-country", mutate: func(p *Payload) { p.Ecom.User.DataCountry = "ZZ" }, want: []string{"/Ecom/User/@DataCountry"}},
		{name: "data-language", mutate: func(p *Payload) { p.Ecom.User.DataLanguage = "ko_KR" }, want: []string{"/Ecom/User/@DataLanguage"}},
		{name: "data-language-ok", mutate: func(p *Payload) { p.Ecom.User.DataLanguage = "en-Latn-US" }},
		{name: "password-length", mutate: func(p *Payload) { p.Ecom.User.Password.Value = Secret(strings.Repeat("p", 129)) }, want: []string{"/Ecom/User/Password"}},
		{name: "user-id-mode", mutate: func(p *Payload) { p.Ecom.User.UserID.Mode = "x" }, want: []string{"/Ecom/User/UserID/@Mode"}},
		{name: "merchant-id", mutate: func(p *Payload) { p.Ecom.MerchantInfo.ID = strings.Repeat("M", 1025) }, want: []string{"/Ecom/Merchant/@id"}},
		{name: "merchant-id-entity", mutate: func(p *Payload) { p.Ecom.MerchantInfo.ID = "https://p0042.merchant.example/kecis" }},
		{name: "terminal-id", mutate: func(p *Payload) { p.Ecom.MerchantInfo.Terminal.ID = "터미널" }, want: []string{"/Ecom/Merchant/Terminal/@id"}},
	})
}

func TestValidateTransaction(t *testing.T) {
	runCases(t, []vcase{
		{name: "currency-unknown", mutate: func(p *Payload) { tx(p).Currency = "XYZ" }, want: []string{"/Ecom/Transaction/@Currency"}, msg: "ISO 4217"},
		{name: "currency-lower", mutate: func(p *Payload) { tx(p).Currency = "krw" }, want: []string{"/Ecom/Transaction/@Currency"}},
		{name: "currency-unknown-bad-amount", mutate: func(p *Payload) { tx(p).Currency = "XYZ"; tx(p).Amount = "-5" },
			want: []string{"/Ecom/Transaction/@Currency", "/Ecom/Transaction/@Amount"}},
		{name: "type-case", mutate: func(p *Payload) { tx(p).Type = "Debit" }, want: []string{"/Ecom/Transaction/@Type"}, msg: "debit, credit"},
		{name: "type-credit", mutate: func(p *Payload) { tx(p).Type = "credit" }},
		{name: "amount-krw-fraction", mutate: func(p *Payload) { tx(p).Amount = "100.5" }, want: []string{"/Ecom/Transaction/@Amount"}, msg: "no minor units"},
		{name: "amount-krw-zero-fraction", mutate: func(p *Payload) { tx(p).Amount = "15000.00" }},
		{name: "amount-negative", mutate: func(p *Payload) { tx(p).Amount = "-15000" }, want: []string{"/Ecom/Transaction/@Amount"}},
		{name: "amount-no-currency", mutate: func(p *Payload) { tx(p).Currency = "" }, want: []string{"/Ecom/Transaction/@Amount"}, msg: "needs a currency"},
		{name: "amount-usd", mutate: func(p *Payload) { tx(p).Currency = "USD"; tx(p).Amount = "12.34" }},
		{name: "amount-usd-one-digit", mutate: func(p *Payload) { tx(p).Currency = "USD"; tx(p).Amount = "12.3" }, want: []string{"/Ecom/Transaction/@Amount"}},
		{name: "processing-code", mutate: func(p *Payload) { tx(p).Code.Processing = "12345" }, want: []string{"/Ecom/Transaction/Code/@Processing"}, msg: "exactly 6"},
		{name: "approval-length", mutate: func(p *Payload) { tx(p).Code.Approval = "1234567890123" }, want: []string{"/Ecom/Transaction/Code/@Approval"}},
		{name: "reference-length", mutate: func(p *Payload) { tx(p).ID.Reference = "1234567890123" }, want: []string{"/Ecom/Transaction/Id/@Reference"}},
		{name: "tx-id-ascii", mutate: func(p *Payload) { tx(p).ID.Value = "거래" }, want: []string{"/Ecom/Transaction/Id/@Value"}},
		{name: "settle-month", mutate: func(p *Payload) { tx(p).Date.Settle.Month = "13" }, want: []string{"/Ecom/Transaction/Date/Settle/@Month"}},
		{name: "settle-no-year-leap", mutate: func(p *Payload) { *tx(p).Date.Settle = Date{Month: "2", Day: "29"} }},
		{name: "capture-empty", mutate: func(p *Payload) { *tx(p).Date.Capture = Date{} }, want: []string{"/Ecom/Transaction/Date/Capture"}, msg: "empty date"},
		{name: "effective-year", mutate: func(p *Payload) { tx(p).Date.Effective.Year = "26" }, want: []string{"/Ecom/Transaction/Date/Effective/@Year"}},
		{name: "trace", mutate: func(p *Payload) { tx(p).Data.Trace.Value = "12a" }, want: []string{"/Ecom/Transaction/Data/Trace"}},
		{name: "track2-length", mutate: func(p *Payload) { tx(p).Data.Track2.Value = Secret(strings.Repeat("1", 41)) }, want: []string{"/Ecom/Transaction/Data/Track2"}},
		{name: "track1-mode", mutate: func(p *Payload) { tx(p).Data.Track1.Mode = "q" }, want: []string{"/Ecom/Transaction/Data/Track1/@Mode"}},
		{name: "aav-space", mutate: func(p *Payload) { tx(p).Data.AAV.Value = "jJJ LtQ" }, want: []string{"/Ecom/Transaction/Data/AAV"}},
		{name: "inquiry", mutate: func(p *Payload) { tx(p).Inquiry.Value = "/orders/1" }, want: []string{"/Ecom/Transaction/Inquiry"}},
		{name: "signature", mutate: func(p *Payload) { tx(p).Signature.Value = "not base64!" }, want: []string{"/Ecom/Transaction/Signature"}},
		{name: "signature-wrapped", mutate: func(p *Payload) { tx(p).Signature.Value = "c2lnbmF0dXJl\nIG9mIHRoZSB0cmFuc2FjdGlvbg==" }},
	})
}

func TestValidateExtensions(t *testing.T) {
	runCases(t, []vcase{
		{name: "gender", mutate: func(p *Payload) { p.UserData.Gender = "X" }, want: []string{"/kx:UserData/@Gender"}},
		{name: "gender-lower", mutate: func(p *Payload) { p.UserData.Gender = "f" }},
		{name: "birth-future", mutate: func(p *Payload) { p.UserData.BirthDate.Year = "2027" }, want: []string{"/kx:UserData/kx:BirthDate"}, msg: "future"},
		{name: "birth-feb-30", mutate: func(p *Payload) { p.UserData.BirthDate.Day = "30"; p.UserData.BirthDate.Month = "2" }, want: []string{"/kx:UserData/kx:BirthDate/@Day"}},
		{name: "birth-1800", mutate: func(p *Payload) { p.UserData.BirthDate.Year = "1800" }, want: []string{"/kx:UserData/kx:BirthDate/@Year"}},
		{name: "birth-day-missing", mutate: func(p *Payload) { p.UserData.BirthDate.Day = "" }, want: []string{"/kx:UserData/kx:BirthDate/@Day"}},
		{name: "birth-space", mutate: func(p *Payload) { p.UserData.BirthDate.Day = "1 " }, want: []string{"/kx:UserData/kx:BirthDate/@Day", "/kx:UserData/kx:BirthDate/@Day"}},
		{name: "preferences-length", mutate: func(p *Payload) { p.UserData.Preferences = strings.Repeat("p", 501) }, want: []string{"/kx:UserData/@Preferences"}},
		{name: "device-id", mutate: func(p *Payload) { p.Device.ID = "기기" }, want: []string{"/kx:Device/@ID"}},
		{name: "bank-code", mutate: func(p *Payload) { p.BankAccounts[1].BankCode = "88" }, want: []string{"/kx:BankAccount[2]/@BankCode"}, msg: "exactly 3"},
		{name: "bank-code-missing", mutate: func(p *Payload) { p.BankAccounts[0].BankCode = "" }, want: []string{"/kx:BankAccount[1]/@BankCode"}},
		{name: "bank-role", mutate: func(p *Payload) { p.BankAccounts[0].Role = "boss" }, want: []string{"/kx:BankAccount[1]/@Role"}},
		{name: "account-hyphen", mutate: func(p *Payload) { p.BankAccounts[0].AccountNumber = "123456-" }, want: []string{"/kx:BankAccount[1]/kx:AccountNumber"}},
		{name: "account-short", mutate: func(p *Payload) { p.BankAccounts[0].AccountNumber = "12345" }, want: []string{"/kx:BankAccount[1]/kx:AccountNumber"}},
		{name: "account-plain", mutate: func(p *Payload) { p.BankAccounts[0].AccountNumber = "12345678901234" }},
		{name: "account-missing", mutate: func(p *Payload) { p.BankAccounts[0].AccountNumber, p.BankAccounts[0].Holder = "", "" }, want: []string{"/kx:BankAccount[1]/kx:AccountNumber"}},
		// A holder without a number: a remitter (KECIS §15.8), a holder inquiry's answer (§15.9).
		{name: "account-holder-only", mutate: func(p *Payload) { p.BankAccounts[0].AccountNumber, p.BankAccounts[0].Holder = "", "홍길동" }},
		{name: "holder-length", mutate: func(p *Payload) { p.BankAccounts[0].Holder = strings.Repeat("홍", 65) }, want: []string{"/kx:BankAccount[1]/kx:Holder"}},
		{name: "purpose", mutate: func(p *Payload) { p.Transfer.Purpose = "gift" }, want: []string{"/kx:Transfer/@Purpose"}},
		{name: "purpose-missing", mutate: func(p *Payload) { p.Transfer.Purpose = "" }, want: []string{"/kx:Transfer/@Purpose"}},
		{name: "purpose-phishing", mutate: func(p *Payload) { p.Transfer.Purpose = PurposePhishingPrevention; p.Transfer.Terms = nil }},
		{name: "principal", mutate: func(p *Payload) { p.Transfer.Terms.Principal = "1.5" }, want: []string{"/kx:Transfer/kx:Terms/@Principal"}},
		{name: "principal-no-currency", mutate: func(p *Payload) { p.Transfer.Terms.Currency = "" }, want: []string{"/kx:Transfer/kx:Terms/@Principal"}},
		{name: "rate", mutate: func(p *Payload) { p.Transfer.Terms.InterestRate = "101" }, want: []string{"/kx:Transfer/kx:Terms/@InterestRate"}},
		{name: "rate-100", mutate: func(p *Payload) { p.Transfer.Terms.InterestRate = "100.0" }},
		{name: "rate-decimals", mutate: func(p *Payload) { p.Transfer.Terms.InterestRate = "4.56789" }, want: []string{"/kx:Transfer/kx:Terms/@InterestRate"}},
		{name: "repayment-date", mutate: func(p *Payload) { p.Transfer.Terms.RepaymentDate = "2027-02-30" }, want: []string{"/kx:Transfer/kx:Terms/@RepaymentDate"}},
		{name: "terms-multiline", mutate: func(p *Payload) { p.Transfer.Terms.Text = "line 1\nline 2" }},
		{name: "terms-control", mutate: func(p *Payload) { p.Transfer.Terms.Text = "bell\a" }, want: []string{"/kx:Transfer/kx:Terms"}},
		{name: "aa-session-missing", mutate: func(p *Payload) { p.AmountAuth.SessionID = "" }, want: []string{"/kx:AmountAuth/@SessionID"}},
		{name: "aa-session-chars", mutate: func(p *Payload) { p.AmountAuth.SessionID = "a b" }, want: []string{"/kx:AmountAuth/@SessionID"}},
		{name: "aa-currency-missing", mutate: func(p *Payload) { p.AmountAuth.Currency = "" },
			want: []string{"/kx:AmountAuth/@Currency", "/kx:AmountAuth/@Ceiling"}},
		{name: "aa-ceiling-missing", mutate: func(p *Payload) { p.AmountAuth.Ceiling = "" }, want: []string{"/kx:AmountAuth/@Ceiling"}},
		{name: "aa-challenge-above", mutate: func(p *Payload) { p.AmountAuth.Challenge = "1001" }, want: []string{"/kx:AmountAuth/kx:Challenge"}, msg: "ceiling"},
		{name: "aa-challenge-equal", mutate: func(p *Payload) { p.AmountAuth.Challenge = "1000" }},
		{name: "aa-challenge-zero", mutate: func(p *Payload) { p.AmountAuth.Challenge = "0" }, want: []string{"/kx:AmountAuth/kx:Challenge"}},
		{name: "aa-challenge-syntax", mutate: func(p *Payload) { p.AmountAuth.Challenge = "7.42" }, want: []string{"/kx:AmountAuth/kx:Challenge"}, msg: "value not shown"},
		{name: "vcn-length", mutate: func(p *Payload) { p.VirtualCard.Number = "404143042123456" }, want: []string{"/kx:VirtualCard/kx:Number"}, msg: "16 digits"},
		{name: "vcn-luhn", mutate: func(p *Payload) { p.VirtualCard.Number = "4041430421234561" }, want: []string{"/kx:VirtualCard/kx:Number"}, msg: "404143******4561"},
		{name: "vcn-type", mutate: func(p *Payload) { p.VirtualCard.Type = "gold" }, want: []string{"/kx:VirtualCard/@Type"}},
		{name: "vcn-expired", mutate: func(p *Payload) { p.VirtualCard.ExpDate.Year = "2025" }, want: []string{"/kx:VirtualCard/kx:ExpDate"}},
		{name: "vcn-exp-mode", mutate: func(p *Payload) { p.VirtualCard.ExpDate.Mode = ModeQuery }, want: []string{"/kx:VirtualCard/kx:ExpDate/@Mode"}},
		{name: "escrow-state", mutate: func(p *Payload) { p.Escrow.State = "lost" }, want: []string{"/kx:Escrow/@State"}},
		{name: "escrow-missing", mutate: func(p *Payload) { p.Escrow.State = "" }, want: []string{"/kx:Escrow/@State"}},
		{name: "escrow-refunded", mutate: func(p *Payload) { p.Escrow.State = EscrowRefunded }},
		{name: "escrow-awaiting", mutate: func(p *Payload) { p.Escrow.State = EscrowAwaitingPayment; p.Escrow.Carrier, p.Escrow.Tracking = "", "" }},
		{name: "escrow-paid", mutate: func(p *Payload) { p.Escrow.State = EscrowPaid }},
		{name: "escrow-carrier-korean", mutate: func(p *Payload) { p.Escrow.Carrier = "CJ대한통운" }},
		{name: "escrow-carrier-long", mutate: func(p *Payload) { p.Escrow.Carrier = strings.Repeat("c", 65) }, want: []string{"/kx:Escrow/@Carrier"}, msg: "64"},
		{name: "escrow-tracking-ascii", mutate: func(p *Payload) { p.Escrow.Tracking = "운송장 1" }, want: []string{"/kx:Escrow/@Tracking"}},
		{name: "escrow-confirmby-date", mutate: func(p *Payload) { p.Escrow.ConfirmBy = "2026-11-12" }, want: []string{"/kx:Escrow/@ConfirmBy"}},
		{name: "escrow-confirmby-utc", mutate: func(p *Payload) { p.Escrow.ConfirmBy = "2026-11-12T01:00:00Z" }},
		{name: "escrow-reason-200", mutate: func(p *Payload) { p.Escrow.Reason = strings.Repeat("파", EscrowReasonMax) }},
		{name: "escrow-reason-201", mutate: func(p *Payload) { p.Escrow.Reason = strings.Repeat("파", EscrowReasonMax+1) }, want: []string{"/kx:Escrow/@Reason"}, msg: "200"},
		{name: "escrow-reason-control", mutate: func(p *Payload) { p.Escrow.Reason = "broken\nbox" }, want: []string{"/kx:Escrow/@Reason"}},
		{name: "escrow-auto", mutate: func(p *Payload) { p.Escrow.Auto = "yes" }, want: []string{"/kx:Escrow/@Auto"}},
		{name: "escrow-auto-true", mutate: func(p *Payload) { p.Escrow.State = EscrowConfirmed; p.Escrow.Auto = "true" }},
		{name: "cardauth-acquirer", mutate: func(p *Payload) { p.CardAuth.Acquirer = "pg.example.kr" }, want: []string{"/kx:CardAuth/@Acquirer"}, msg: "absolute URI"},
		{name: "cardauth-acquirer-urn", mutate: func(p *Payload) { p.CardAuth.Acquirer = "urn:kecis:pg:demo" }},
		{name: "cardauth-virtual", mutate: func(p *Payload) { p.CardAuth.VirtualCard = "yes" }, want: []string{"/kx:CardAuth/@VirtualCard"}},
		{name: "cardauth-virtual-case", mutate: func(p *Payload) { p.CardAuth.VirtualCard = "True" }, want: []string{"/kx:CardAuth/@VirtualCard"}},
		{name: "cardauth-use", mutate: func(p *Payload) { p.CardAuth.Use = "twice" }, want: []string{"/kx:CardAuth/@Use"}, msg: "single"},
		{name: "cardauth-use-multi", mutate: func(p *Payload) { p.CardAuth.Use = CardAuthMultiUse }},
		{name: "cardauth-lock", mutate: func(p *Payload) { p.CardAuth.MerchantLock = "1" }, want: []string{"/kx:CardAuth/@MerchantLock"}},
		{name: "cardauth-expiry-no-zone", mutate: func(p *Payload) { p.CardAuth.NotOnOrAfter = "2026-11-05T10:30:00" }, want: []string{"/kx:CardAuth/@NotOnOrAfter"}, msg: "time zone"},
		{name: "cardauth-expiry-date", mutate: func(p *Payload) { p.CardAuth.NotOnOrAfter = "2026-11-05" }, want: []string{"/kx:CardAuth/@NotOnOrAfter"}},
		{name: "cardauth-expiry-utc", mutate: func(p *Payload) { p.CardAuth.NotOnOrAfter = "2026-11-05T01:30:00.5Z" }},
		{name: "cardauth-all-absent", mutate: func(p *Payload) { p.CardAuth = &CardAuth{} }},
		{name: "cardauth-all-bad", mutate: func(p *Payload) {
			p.CardAuth = &CardAuth{Acquirer: "x y", VirtualCard: "no", Use: "", MerchantLock: "off", NotOnOrAfter: "soon"}
		}, want: []string{"/kx:CardAuth/@Acquirer", "/kx:CardAuth/@VirtualCard", "/kx:CardAuth/@MerchantLock", "/kx:CardAuth/@NotOnOrAfter"}},
		{name: "otc-short", mutate: func(p *Payload) { p.OneTimeCode = "123" }, want: []string{"/kx:OneTimeCode"}, msg: "4 to 10"},
		{name: "otc-long", mutate: func(p *Payload) { p.OneTimeCode = "12345678901" }, want: []string{"/kx:OneTimeCode"}},
		{name: "otc-letters", mutate: func(p *Payload) { p.OneTimeCode = "12a4" }, want: []string{"/kx:OneTimeCode"}},
		{name: "otc-4", mutate: func(p *Payload) { p.OneTimeCode = "0000" }},
		{name: "keyin-prefix", mutate: func(p *Payload) { p.KeyIn.PasswordPrefix = "1" }, want: []string{"/kx:KeyIn/@PasswordPrefix"}, msg: "exactly 2"},
		{name: "keyin-prefix-missing", mutate: func(p *Payload) { p.KeyIn.PasswordPrefix = "" }, want: []string{"/kx:KeyIn/@PasswordPrefix"}},
		{name: "keyin-birth", mutate: func(p *Payload) { p.KeyIn.BirthDate = "851332" }, want: []string{"/kx:KeyIn/@BirthDate"}},
		{name: "keyin-birth-leap", mutate: func(p *Payload) { p.KeyIn.BirthDate = "000229" }},
		{name: "keyin-birth-not-leap", mutate: func(p *Payload) { p.KeyIn.BirthDate = "010229" }, want: []string{"/kx:KeyIn/@BirthDate"}},
		{name: "keyin-both", mutate: func(p *Payload) { p.KeyIn.BusinessNumber = "1234567891" }, want: []string{"/kx:KeyIn"}, msg: "not both"},
		{name: "keyin-none", mutate: func(p *Payload) { p.KeyIn.BirthDate = "" }, want: []string{"/kx:KeyIn"}, msg: "missing"},
		{name: "keyin-brn", mutate: func(p *Payload) { p.KeyIn.BirthDate = ""; p.KeyIn.BusinessNumber = "220-81-23455" }},
		{name: "keyin-brn-check", mutate: func(p *Payload) { p.KeyIn.BirthDate = ""; p.KeyIn.BusinessNumber = "2208123456" }, want: []string{"/kx:KeyIn/@BusinessNumber"}},
		{name: "unknown-foreign", mutate: func(p *Payload) { p.Unknown = append(p.Unknown, etree.NewElement("Foreign")) }, want: []string{"/Foreign"}},
	})
}

func TestValidateEncryption(t *testing.T) {
	standIn := func() *etree.Element {
		e := etree.NewElement("xenc:EncryptedData")
		e.CreateAttr("xmlns:xenc", XMLEncNamespace)
		e.CreateAttr("Type", XMLEncElementType)
		return e
	}
	require := &ValidateOptions{Now: testNow, RequireEncrypted: true, AllowEncrypted: true}
	runCases(t, []vcase{
		{name: "require-encrypted", mutate: func(*Payload) {}, opts: require, want: []string{
			"/Ecom/Payment/Card", "/Ecom/Loyalty", "/Ecom/User/Password", "/Ecom/Transaction/Data/Track1", "/Ecom/Transaction/Data/Track2",
			"/kx:UserData/kx:BirthDate", "/kx:BankAccount[1]/kx:AccountNumber", "/kx:BankAccount[2]/kx:AccountNumber",
			"/kx:AmountAuth/kx:Challenge", "/kx:VirtualCard/kx:Number", "/kx:OneTimeCode", "/kx:KeyIn",
		}, msg: "must be encrypted"},
		{name: "stand-in-refused", mutate: func(p *Payload) { p.Ecom.Payment.Card = nil; p.Ecom.Payment.EncryptedCard = standIn() },
			want: []string{"/Ecom/Payment/Card"}, msg: "decrypt"},
		{name: "stand-in-allowed", mutate: func(p *Payload) { p.Ecom.Payment.Card = nil; p.Ecom.Payment.EncryptedCard = standIn() },
			opts: &ValidateOptions{Now: testNow, AllowEncrypted: true}},
		{name: "both", mutate: func(p *Payload) { p.OneTimeCode = "1234"; p.EncryptedOneTimeCode = standIn() },
			opts: &ValidateOptions{Now: testNow, AllowEncrypted: true}, want: []string{"/kx:OneTimeCode"}, msg: "both"},
		{name: "not-a-stand-in", mutate: func(p *Payload) { p.KeyIn = nil; p.EncryptedKeyIn = etree.NewElement("Foo") },
			opts: &ValidateOptions{Now: testNow, AllowEncrypted: true}, want: []string{"/kx:KeyIn"}, msg: "not an xenc:EncryptedData"},
		{name: "account-stand-in", mutate: func(p *Payload) {
			p.BankAccounts[0].AccountNumber = ""
			p.BankAccounts[0].EncryptedAccountNumber = standIn()
		}, opts: &ValidateOptions{Now: testNow, AllowEncrypted: true}},
	})
}

// TestEveryFieldValidated: every row of the field table is checked: a
// value of 5,000 characters is a problem at the row's own path.
func TestEveryFieldValidated(t *testing.T) {
	junk := strings.Repeat("x!", 2500)
	for _, f := range fields {
		if f.set == nil || f.flat == "Ecom_TransactionComplete" || strings.HasSuffix(f.flat, "_Effective_Date") ||
			strings.HasSuffix(f.flat, "_Settle_Date") || strings.HasSuffix(f.flat, "_Capture_Date") {
			continue
		}
		p := &Payload{}
		if err := f.set(p, junk); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pr := range p.Validate(ValidateOptions{}) {
			found = found || pr.Path == f.path
		}
		if !found {
			t.Errorf("%s: no problem for a 5,000-character value", f.path)
		}
	}
}

// TestProblemsError: the error forms.
func TestProblemsError(t *testing.T) {
	var none Problems
	if none.Err() != nil {
		t.Error("Err of no problems")
	}
	one := Problems{{"/a", "bad"}}
	if one.Error() != "ecml: /a: bad" || one.Err() == nil {
		t.Error(one.Error())
	}
	two := Problems{{"/a", "bad"}, {"/b", "worse"}}
	if two.Error() != "ecml: 2 problems: /a: bad; /b: worse" {
		t.Error(two.Error())
	}
}

// TestValidateGolden pins the full report of a document with many problems.
func TestValidateGolden(t *testing.T) {
	p := mustParse(t, readFixture(t, "invalid.xml"))
	var b strings.Builder
	for _, pr := range p.Validate(ValidateOptions{Now: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), RequireSchemaVersion: true}) {
		b.WriteString(pr.String() + "\n")
	}
	if strings.Contains(b.String(), "4111111111111112") || strings.Contains(b.String(), "110-123") {
		t.Error("the report shows a secret")
	}
	golden(t, "invalid.problems", []byte(b.String()))
}

// TestAccountDigits: the one rule for account numbers (KECIS §14.5) and
// its mask.
func TestAccountDigits(t *testing.T) {
	for in, want := range map[string]string{"110-123-456789": "110123456789", "123456": "123456", "12345678901234567890": "12345678901234567890",
		"12345": "", "123456789012345678901": "", "-123456": "", "123456-": "", "12--3456": "", "12 3456": "", "": "", "１２３４５６": ""} {
		got, ok := AccountDigits(in)
		if got != want || ok != (want != "") {
			t.Errorf("AccountDigits(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for in, want := range map[string]string{"110-123-456789": "****-6789", "6789": "****-6789", "123": "****", "": "****"} {
		if got := MaskAccount(in); got != want {
			t.Errorf("MaskAccount(%q) = %q, want %q", in, got, want)
		}
	}
}
