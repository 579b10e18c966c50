package ecml

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// ValidateOptions tune [Payload.Validate].
type ValidateOptions struct {
	// Now is the validation time, for expiry checks (cards, virtual cards)
	// and dates that cannot be in the future (birth dates, valid-from
	// dates); it is compared by calendar date in its own location. Validate
	// never reads the clock: a zero Now skips these checks.
	Now time.Time
	// AllowEncrypted accepts xenc:EncryptedData stand-ins where sensitive
	// elements stand (a relaying hub, or a sender checking what it is about
	// to send). Without it each stand-in is a problem: the final recipient
	// decrypts first and validates the clear element (KECIS §14.6).
	AllowEncrypted bool
	// RequireEncrypted makes every sensitive element in clear a problem
	// (KECIS §8.1, must be encrypted): the check a sender or hub runs on a
	// message about to travel.
	RequireEncrypted bool
	// RequireSchemaVersion makes a missing Ecom/@SchemaVersion a problem:
	// RFC 4112 §3.2 requires it in every transaction on the web, and KECIS on
	// every standalone document. When present it must always be
	// urn:ietf:params:ecml:v2.0.
	RequireSchemaVersion bool
}

// Problem is one thing wrong with a payload: the XML path of the element or
// attribute (from the payload container, e.g. /Ecom/Payment/Card/@Number,
// /kx:BankAccount[2]/kx:AccountNumber) and what is wrong. A message never
// holds a secret: card numbers appear masked, secrets not at all.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Problems is every problem Validate found, in document order. It is an
// error; use [Problems.Err] to get a nil error when there is none.
type Problems []Problem

func (ps Problems) Error() string {
	switch len(ps) {
	case 0:
		return "ecml: no problems"
	case 1:
		return "ecml: " + ps[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ecml: %d problems: ", len(ps))
	for i, p := range ps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Err returns ps as an error, or nil when ps is empty.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Validate checks the payload against RFC 4112 and the KECIS profile and
// returns every problem it finds, never stopping at the first. Apart from
// the structure (which [ParsePayload] already enforces) it checks:
//
//   - presence: exactly one Ecom; Card/@Number and Card/ExpDate (Month and
//     Year); Loyalty/ExpDate; Street/@Line1 (the DTD's #REQUIRED); a Card (or
//     its stand-in) in Payment; the attributes each extension element needs;
//   - Mode is Query or Assert (§3.1); SchemaVersion (§5.2.1, and see
//     ValidateOptions.RequireSchemaVersion);
//   - every value: no leading or trailing white space (note 102), no control
//     character, at most the length the field table allows (see the
//     package documentation), and its syntax: NMTOKEN name parts and postal
//     codes, ISO 3166-1 country codes, ISO 4217 currencies, xs:language,
//     e-mail, telephone, absolute URIs, base64 signatures, xs:ID ids, the
//     card type of note 11 or a KECIS extension ([NormalizeCardType]), the
//     protocols of note 17, debit/credit (note 30, case-sensitive), digits
//     where ISO 8583 wants them;
//   - card numbers: 13 to 19 digits ([LooksLikePAN], KECIS §14.4), no
//     separators (note 12), Luhn (ISO/IEC 7812); CVV 3–4 digits; issue
//     number 1–2 digits;
//   - dates: month 1–12 (leading zero ignored, note 15), four-digit year
//     (note 16; a loyalty expiry year may have two), a day that exists in
//     that month; an expired card or virtual card, a card not yet valid, a
//     valid-from after the expiry, a birth date in the future (all against
//     ValidateOptions.Now);
//   - amounts with [ParseAmount] in the element's currency; an amount
//     without a currency; the amount-authentication challenge within
//     (0, Ceiling];
//   - extensions: bank code of 3 digits, account number, one-time code of 4
//     to 10 digits, key-in password prefix of exactly 2 digits, birth date
//     YYMMDD or business registration number (exactly one), escrow state,
//     transfer purpose, virtual card number of 16 digits passing Luhn;
//     cardholder-authentication controls (an absolute-URI acquirer,
//     true/false flags, single/multi use, an xs:dateTime with a time zone);
//   - encryption: stand-ins per AllowEncrypted, clear sensitive elements per
//     RequireEncrypted, and a slot holding both.
//
// Unknown extension elements are not validated.
func (p *Payload) Validate(opts ValidateOptions) Problems {
	v := &validator{opts: opts}
	if !opts.Now.IsZero() {
		y, m, d := opts.Now.Date()
		v.today = civil{y, int(m), d}
	}
	v.payload(p)
	return v.probs
}

// validator collects problems.
type validator struct {
	opts  ValidateOptions
	today civil // zero when no Now
	probs Problems
}

func (v *validator) add(path, msg string) {
	v.probs = append(v.probs, Problem{Path: path, Message: RedactPANs(msg)})
}

// field checks a value against its row of the field table; canon is the
// row's path (path without list indexes).
func (v *validator) fieldAt(path, canon, val string) {
	if val == "" {
		return
	}
	f := fieldByPath[canon]
	if f == nil {
		panic("ecml: no field row for " + canon) // a bug in this package
	}
	if !validXMLString(val) {
		v.add(path, "holds a character XML cannot carry")
		return
	}
	if hasEdgeSpace(val) {
		v.add(path, "has leading or trailing white space (RFC 4112 note 102)")
	}
	if f.max > 0 && utf8.RuneCountInString(val) > f.max {
		v.add(path, "is longer than "+strconv.Itoa(f.max)+" characters")
		return
	}
	if f.check != nil {
		f.check(v, path, val)
	}
}

func (v *validator) field(path, val string) { v.fieldAt(path, path, val) }

func (v *validator) mode(path, mode string) {
	if mode != "" && mode != ModeQuery && mode != ModeAssert {
		v.add(path+"/@Mode", "must be Query or Assert (RFC 4112 §3.1), not "+quote(mode))
	}
}

func (v *validator) text(path string, t *Text) {
	if t == nil {
		return
	}
	v.mode(path, t.Mode)
	v.field(path, t.Value)
}

func (v *validator) missing(path, why string) {
	v.add(path, "missing: "+why)
}

// slot applies the encryption rules to a sensitive slot.
func (v *validator) slot(path string, clear bool, enc *etree.Element) {
	if enc != nil {
		if !isStandIn(enc) {
			v.add(path, "the stand-in is not an xenc:EncryptedData of Type "+XMLEncElementType)
		}
		if !v.opts.AllowEncrypted {
			v.add(path, "is encrypted (xenc:EncryptedData): decrypt it before validating, or allow encrypted elements")
		}
		if clear {
			v.add(path, "is both in clear and encrypted")
		}
	}
	if clear && v.opts.RequireEncrypted {
		v.add(path, "sensitive element in clear: it must be encrypted (KECIS §8.1)")
	}
}

func (v *validator) payload(p *Payload) {
	if p.Ecom == nil {
		v.missing("/Ecom", "a payload holds exactly one Ecom (KECIS §14.1)")
	} else {
		v.ecom(p.Ecom)
	}
	if u := p.UserData; u != nil {
		const path = "/kx:UserData"
		v.field(path+"/@Gender", u.Gender)
		v.field(path+"/@Preferences", u.Preferences)
		v.slot(path+"/kx:BirthDate", u.BirthDate != nil, u.EncryptedBirthDate)
		if b := u.BirthDate; b != nil {
			v.birthDate(path+"/kx:BirthDate", b)
		}
	}
	if d := p.Device; d != nil {
		v.field("/kx:Device/@ID", d.ID)
		v.field("/kx:Device/@Type", d.Type)
	}
	for i, b := range p.BankAccounts {
		path := fmt.Sprintf("/kx:BankAccount[%d]", i+1)
		if b == nil {
			v.missing(path, "nil bank account")
			continue
		}
		if b.BankCode == "" {
			v.missing(path+"/@BankCode", "a bank account needs its 3-digit bank code")
		}
		v.fieldAt(path+"/@BankCode", "/kx:BankAccount/@BankCode", b.BankCode)
		v.fieldAt(path+"/@Role", "/kx:BankAccount/@Role", b.Role)
		v.fieldAt(path+"/kx:Holder", "/kx:BankAccount/kx:Holder", b.Holder)
		v.slot(path+"/kx:AccountNumber", b.AccountNumber != "", b.EncryptedAccountNumber)
		// A remitter named by its holder only (KECIS §15.8) and a holder
		// inquiry's answer (§15.9, never the number) carry no number.
		if b.AccountNumber == "" && b.EncryptedAccountNumber == nil && b.Holder == "" {
			v.missing(path+"/kx:AccountNumber", "a bank account needs its number or its holder")
		}
		v.fieldAt(path+"/kx:AccountNumber", "/kx:BankAccount/kx:AccountNumber", string(b.AccountNumber))
	}
	if t := p.Transfer; t != nil {
		const path = "/kx:Transfer"
		if t.Purpose == "" {
			v.missing(path+"/@Purpose", "a transfer needs its purpose")
		}
		v.field(path+"/@Purpose", t.Purpose)
		if tm := t.Terms; tm != nil {
			const tp = path + "/kx:Terms"
			v.field(tp+"/@Currency", tm.Currency)
			v.amount(tp+"/@Principal", tm.Principal, tp+"/@Currency", tm.Currency, false)
			v.field(tp+"/@RepaymentDate", tm.RepaymentDate)
			v.field(tp+"/@InterestRate", tm.InterestRate)
			v.field(tp, tm.Text)
		}
	}
	if a := p.AmountAuth; a != nil {
		v.amountAuth(a)
	}
	if c := p.VirtualCard; c != nil {
		const path = "/kx:VirtualCard"
		v.field(path+"/@Type", c.Type)
		v.slot(path+"/kx:Number", c.Number != "", c.EncryptedNumber)
		if c.Number != "" {
			n := string(c.Number)
			switch {
			case len(n) != 16 || !AllDigits(n):
				v.add(path+"/kx:Number", "a virtual card number is 16 digits (KECIS §15.4)")
			case !LuhnValid(n):
				v.add(path+"/kx:Number", "fails the Luhn check ("+MaskPAN(n)+")")
			}
		}
		if d := c.ExpDate; d != nil {
			dp := path + "/kx:ExpDate"
			if d.Mode != "" {
				v.add(dp+"/@Mode", "Mode is not allowed on extension elements")
			}
			v.date(dp, d, dateRule{needMonth: true, needYear: true, years: []int{4}, expiry: true})
		}
	}
	if e := p.Escrow; e != nil {
		if e.State == "" {
			v.missing("/kx:Escrow/@State", "an escrow needs its state")
		}
		for _, a := range [][2]string{{"State", e.State}, {"Carrier", e.Carrier}, {"Tracking", e.Tracking},
			{"ConfirmBy", e.ConfirmBy}, {"Reason", e.Reason}, {"Auto", e.Auto}} {
			v.field("/kx:Escrow/@"+a[0], a[1])
		}
	}
	if c := p.CardAuth; c != nil {
		const path = "/kx:CardAuth"
		v.field(path+"/@Acquirer", c.Acquirer)
		v.field(path+"/@VirtualCard", c.VirtualCard)
		v.field(path+"/@Use", c.Use)
		v.field(path+"/@MerchantLock", c.MerchantLock)
		v.field(path+"/@NotOnOrAfter", c.NotOnOrAfter)
	}
	v.slot("/kx:OneTimeCode", p.OneTimeCode != "", p.EncryptedOneTimeCode)
	v.field("/kx:OneTimeCode", string(p.OneTimeCode))
	v.slot("/kx:KeyIn", p.KeyIn != nil, p.EncryptedKeyIn)
	if k := p.KeyIn; k != nil {
		const path = "/kx:KeyIn"
		if k.PasswordPrefix == "" {
			v.missing(path+"/@PasswordPrefix", "key-in payments need the two leading digits of the card password")
		}
		v.field(path+"/@PasswordPrefix", string(k.PasswordPrefix))
		switch {
		case k.BirthDate == "" && k.BusinessNumber == "":
			v.missing(path, "key-in payments need BirthDate (personal card) or BusinessNumber (corporate card)")
		case k.BirthDate != "" && k.BusinessNumber != "":
			v.add(path, "give BirthDate or BusinessNumber, not both")
		}
		v.field(path+"/@BirthDate", string(k.BirthDate))
		v.field(path+"/@BusinessNumber", string(k.BusinessNumber))
	}
	for i, u := range p.Unknown {
		if u == nil {
			continue
		}
		if ns, ok := nsOf(u); !ok || (ns != ExtNamespace && !isStandIn(u)) {
			v.add(fmt.Sprintf("/%s", u.FullTag()), fmt.Sprintf("unknown element %d is neither in %s nor an encrypted stand-in", i+1, ExtNamespace))
		}
	}
}

func (v *validator) ecom(e *Ecom) {
	const path = "/Ecom"
	v.mode(path, e.Mode)
	v.field(path+"/@id", e.ID)
	v.field(path+"/@ConsumerOrderID", e.ConsumerOrderID)
	v.field(path+"/@Merchant", e.Merchant)
	v.field(path+"/@Processor", e.Processor)
	if e.SchemaVersion == "" && v.opts.RequireSchemaVersion {
		v.missing(path+"/@SchemaVersion", "required: "+SchemaVersion+" (RFC 4112 §3.2)")
	}
	v.field(path+"/@SchemaVersion", e.SchemaVersion)
	v.field(path+"/@WalletID", e.WalletID)
	v.field(path+"/@WalletLocation", e.WalletLocation)
	v.address(path+"/ShipTo", e.ShipTo)
	v.address(path+"/BillTo", e.BillTo)
	v.address(path+"/ReceiptTo", e.ReceiptTo)
	if pm := e.Payment; pm != nil {
		pp := path + "/Payment"
		v.mode(pp, pm.Mode)
		v.slot(pp+"/Card", pm.Card != nil, pm.EncryptedCard)
		if pm.Card == nil && pm.EncryptedCard == nil {
			v.missing(pp+"/Card", "Payment holds a Card")
		}
		if pm.Card != nil {
			v.card(pp+"/Card", pm.Card)
		}
	}
	v.slot(path+"/Loyalty", e.Loyalty != nil, e.EncryptedLoyalty)
	if l := e.Loyalty; l != nil {
		lp := path + "/Loyalty"
		v.mode(lp, l.Mode)
		v.field(lp+"/@Name", l.Name)
		v.field(lp+"/@Type", l.Type)
		v.field(lp+"/@Number", string(l.Number))
		v.field(lp+"/@Verification", string(l.Verification))
		var exp civil
		if l.ExpDate == nil {
			v.missing(lp+"/ExpDate", "required by the RFC 4112 Schema")
		} else {
			if c, ok := v.date(lp+"/ExpDate", l.ExpDate, dateRule{needMonth: true, needYear: true, years: []int{2, 4}, expiry: true}); ok {
				exp = c
			}
		}
		if l.ValidDate != nil {
			v.validFrom(lp+"/ValidDate", l.ValidDate, exp)
		}
	}
	if u := e.User; u != nil {
		up := path + "/User"
		v.mode(up, u.Mode)
		v.field(up+"/@CertificateURL", u.CertificateURL)
		v.field(up+"/@DataCountry", u.DataCountry)
		v.field(up+"/@DataLanguage", u.DataLanguage)
		v.text(up+"/UserID", u.UserID)
		v.slot(up+"/Password", u.Password != nil, u.EncryptedPassword)
		if pw := u.Password; pw != nil {
			v.mode(up+"/Password", pw.Mode)
			v.field(up+"/Password", string(pw.Value))
		}
	}
	if m := e.MerchantInfo; m != nil {
		mp := path + "/Merchant"
		v.mode(mp, m.Mode)
		v.field(mp+"/@id", m.ID)
		if t := m.Terminal; t != nil {
			v.mode(mp+"/Terminal", t.Mode)
			v.field(mp+"/Terminal/@id", t.ID)
			v.field(mp+"/Terminal/@Data", t.Data)
		}
	}
	if t := e.Transaction; t != nil {
		v.transaction(path+"/Transaction", t)
	}
	if tc := e.TransactionComplete; tc != nil {
		v.mode(path+"/TransactionComplete", tc.Mode)
	}
}

func (v *validator) address(path string, a *Address) {
	if a == nil {
		return
	}
	v.mode(path, a.Mode)
	v.field(path+"/@id", a.ID)
	if p := a.Postal; p != nil {
		pp := path + "/Postal"
		v.mode(pp, p.Mode)
		v.field(pp+"/@PostalCode", p.PostalCode)
		v.field(pp+"/@CountryCode", p.CountryCode)
		if n := p.Name; n != nil {
			np := pp + "/Name"
			v.mode(np, n.Mode)
			v.field(np+"/@Prefix", n.Prefix)
			v.field(np+"/@First", n.First)
			v.field(np+"/@Middle", n.Middle)
			v.field(np+"/@Last", n.Last)
			v.field(np+"/@Suffix", n.Suffix)
		}
		v.text(pp+"/Company", p.Company)
		if s := p.Street; s != nil {
			sp := pp + "/Street"
			v.mode(sp, s.Mode)
			if s.Line1 == "" {
				v.missing(sp+"/@Line1", "required when Street is given (RFC 4112 DTD)")
			}
			v.field(sp+"/@Line1", s.Line1)
			v.field(sp+"/@Line2", s.Line2)
			v.field(sp+"/@Line3", s.Line3)
		}
		v.text(pp+"/City", p.City)
		v.text(pp+"/StateProv", p.StateProv)
	}
	if t := a.Telecom; t != nil {
		v.mode(path+"/Telecom", t.Mode)
		if ph := t.Phone; ph != nil {
			v.mode(path+"/Telecom/Phone", ph.Mode)
			v.field(path+"/Telecom/Phone/@Number", ph.Number)
		}
	}
	if o := a.Online; o != nil {
		v.mode(path+"/Online", o.Mode)
		if em := o.Email; em != nil {
			v.mode(path+"/Online/Email", em.Mode)
			v.field(path+"/Online/Email/@Address", em.Address)
		}
	}
}

func (v *validator) card(path string, c *Card) {
	v.mode(path, c.Mode)
	v.field(path+"/@Name", c.Name)
	v.field(path+"/@Type", c.Type)
	v.cardNumber(path+"/@Number", string(c.Number))
	v.field(path+"/@Protocols", c.Protocols)
	v.field(path+"/@Verification", string(c.Verification))
	v.field(path+"/@Issuer", c.Issuer)
	var exp civil
	if c.ExpDate == nil {
		v.missing(path+"/ExpDate", "required by the RFC 4112 Schema")
	} else {
		if d, ok := v.date(path+"/ExpDate", c.ExpDate, dateRule{needMonth: true, needYear: true, years: []int{4}, expiry: true}); ok {
			exp = d
		}
	}
	if c.ValidDate != nil {
		v.validFrom(path+"/ValidDate", c.ValidDate, exp)
	}
}

// cardNumber checks a PAN (RFC 4112 note 12, ISO/IEC 7812).
func (v *validator) cardNumber(path, n string) {
	switch {
	case n == "":
		v.missing(path, "required (RFC 4112 DTD #REQUIRED)")
	case !AllDigits(n):
		v.add(path, "must be digits only, without spaces or hyphens (RFC 4112 note 12)")
	case len(n) < MinPANDigits || len(n) > MaxPANDigits:
		v.add(path, "must be "+strconv.Itoa(MinPANDigits)+" to "+strconv.Itoa(MaxPANDigits)+" digits (ISO/IEC 7812, KECIS §14.4), not "+strconv.Itoa(len(n)))
	case !LuhnValid(n):
		v.add(path, "fails the Luhn check digit (ISO/IEC 7812): "+MaskPAN(n))
	}
}

func (v *validator) transaction(path string, t *Transaction) {
	v.mode(path, t.Mode)
	v.field(path+"/@Currency", t.Currency)
	v.field(path+"/@Type", t.Type)
	v.amount(path+"/@Amount", t.Amount, path+"/@Currency", t.Currency, false)
	if id := t.ID; id != nil {
		ip := path + "/Id"
		v.mode(ip, id.Mode)
		v.field(ip+"/@Value", id.Value)
		v.field(ip+"/@CID", id.CID)
		v.field(ip+"/@Reference", id.Reference)
		v.field(ip+"/@Acquire", id.Acquire)
		v.field(ip+"/@Forward", id.Forward)
	}
	if c := t.Code; c != nil {
		cp := path + "/Code"
		v.mode(cp, c.Mode)
		v.field(cp+"/@Processing", c.Processing)
		v.field(cp+"/@Approval", c.Approval)
		v.field(cp+"/@Retrieval", c.Retrieval)
		v.field(cp+"/@Action", c.Action)
		v.field(cp+"/@Reason", c.Reason)
		v.field(cp+"/@POS", c.POS)
	}
	if d := t.Date; d != nil {
		dp := path + "/Date"
		v.mode(dp, d.Mode)
		v.field(dp+"/@Value", d.Value)
		rule := dateRule{years: []int{4}}
		if d.Effective != nil {
			v.date(dp+"/Effective", d.Effective, rule)
		}
		if d.Settle != nil {
			v.date(dp+"/Settle", d.Settle, rule)
		}
		if d.Capture != nil {
			v.date(dp+"/Capture", d.Capture, rule)
		}
	}
	if d := t.Data; d != nil {
		dp := path + "/Data"
		v.mode(dp, d.Mode)
		v.text(dp+"/Trace", d.Trace)
		v.text(dp+"/PrivateUse", d.PrivateUse)
		v.text(dp+"/Response", d.Response)
		v.text(dp+"/AAV", d.AAV)
		for _, tr := range []struct {
			name string
			t    *SecretText
			enc  *etree.Element
		}{{"Track1", d.Track1, d.EncryptedTrack1}, {"Track2", d.Track2, d.EncryptedTrack2}} {
			v.slot(dp+"/"+tr.name, tr.t != nil, tr.enc)
			if tr.t != nil {
				v.mode(dp+"/"+tr.name, tr.t.Mode)
				v.field(dp+"/"+tr.name, string(tr.t.Value))
			}
		}
	}
	v.text(path+"/Inquiry", t.Inquiry)
	v.text(path+"/Signature", t.Signature)
}

// amount checks an amount against its currency; secret amounts are never
// quoted (ParseAmount's errors never quote).
func (v *validator) amount(path, amount, currencyPath, currency string, required bool) (Money, bool) {
	if amount == "" {
		if required {
			v.missing(path, "an amount is required")
		}
		return Money{}, false
	}
	if currency == "" {
		v.add(path, "an amount needs a currency ("+currencyPath+", RFC 4112 note 28)")
		if err := amountSyntax(amount); err != nil {
			v.add(path, amountMessage(err))
		}
		return Money{}, false
	}
	if _, ok := MinorUnits(currency); !ok {
		// The currency's own problem is reported at its path; the amount's
		// syntax can still be judged.
		if err := amountSyntax(amount); err != nil {
			v.add(path, amountMessage(err))
		}
		return Money{}, false
	}
	m, err := ParseAmount(amount, currency)
	if err != nil {
		v.add(path, amountMessage(err))
		return Money{}, false
	}
	return m, true
}

// amountSyntax checks what ParseAmount checks that does not depend on the
// currency.
func amountSyntax(s string) error {
	_, _, _, err := splitAmount(s)
	return err
}

func amountMessage(err error) string {
	return "not a valid amount: " + strings.TrimPrefix(err.Error(), "ecml: ")
}

func (v *validator) amountAuth(a *AmountAuth) {
	const path = "/kx:AmountAuth"
	if a.SessionID == "" {
		v.missing(path+"/@SessionID", "an amount authentication needs its session")
	}
	v.field(path+"/@SessionID", a.SessionID)
	if a.Currency == "" {
		v.missing(path+"/@Currency", "the ceiling's currency is required")
	}
	v.field(path+"/@Currency", a.Currency)
	ceiling, cok := v.amount(path+"/@Ceiling", a.Ceiling, path+"/@Currency", a.Currency, true)
	v.slot(path+"/kx:Challenge", a.Challenge != "", a.EncryptedChallenge)
	if a.Challenge == "" {
		return
	}
	ch, err := ParseAmount(string(a.Challenge), a.Currency)
	switch {
	case errors.Is(err, ErrUnknownCurrency):
		if amountSyntax(string(a.Challenge)) != nil {
			v.add(path+"/kx:Challenge", "is not an amount (value not shown)")
		}
	case err != nil:
		v.add(path+"/kx:Challenge", "is not an amount in "+a.Currency+" (value not shown)")
	case ch.Minor == 0:
		v.add(path+"/kx:Challenge", "must be above zero")
	case cok && ch.Minor > ceiling.Minor:
		v.add(path+"/kx:Challenge", "exceeds the public ceiling (KECIS §8.1, §15.3)")
	}
}

// civil is a calendar date; zero parts are unknown.
type civil struct{ y, m, d int }

func (c civil) before(o civil) bool {
	if c.y != o.y {
		return c.y < o.y
	}
	if c.m != o.m {
		return c.m < o.m
	}
	return c.d < o.d
}

// dateRule says what a [Day Month Year] element needs.
type dateRule struct {
	needDay, needMonth, needYear bool
	years                        []int // allowed digit counts of the year
	expiry                       bool  // an expiry: reported when before today
	notFuture                    bool  // a birth date
}

// date checks a date element. The returned date has the last day of the
// month when the day is not given; ok is false when a part is bad or
// missing.
func (v *validator) date(path string, d *Date, r dateRule) (civil, bool) {
	v.mode(path, d.Mode)
	return v.dateParts(path, d.Day, d.Month, d.Year, r, false)
}

func (v *validator) dateParts(path, day, month, year string, r dateRule, secret bool) (civil, bool) {
	ok := true
	var c civil
	shown := func(s string) string {
		if secret {
			return ""
		}
		return ", not " + quote(s)
	}
	if day == "" && month == "" && year == "" {
		v.add(path, "empty date: give Day, Month and Year as needed")
		return c, false
	}
	if year == "" {
		if r.needYear {
			v.missing(path+"/@Year", "required")
		}
		ok = false
	} else {
		n := len(year)
		if !AllDigits(year) || !slices.Contains(r.years, n) || strings.Trim(year, "0") == "" {
			v.add(path+"/@Year", "must be a year of "+joinInts(r.years)+" digits (RFC 4112 note 16)"+shown(year))
			ok = false
		} else {
			c.y, _ = strconv.Atoi(year)
			if n == 2 {
				c.y += 2000
			}
		}
	}
	if month == "" {
		if r.needMonth {
			v.missing(path+"/@Month", "required")
		}
		ok = false
	} else if m, err := strconv.Atoi(month); err != nil || !AllDigits(month) || len(month) > 2 || m < 1 || m > 12 {
		v.add(path+"/@Month", "must be a month 1 to 12 (RFC 4112 note 15)"+shown(month))
		ok = false
	} else {
		c.m = m
	}
	if day == "" {
		if r.needDay {
			v.missing(path+"/@Day", "required")
			ok = false
		}
	} else {
		max := 31
		if c.m != 0 {
			y := c.y
			if y == 0 {
				y = 2000 // unknown year: allow 29 February
			}
			max = daysIn(y, c.m)
		}
		if d, err := strconv.Atoi(day); err != nil || !AllDigits(day) || len(day) > 2 || d < 1 || d > max {
			v.add(path+"/@Day", "must be a day that exists in that month"+shown(day))
			ok = false
		} else {
			c.d = d
		}
	}
	if !ok || c.y == 0 || c.m == 0 {
		return c, false
	}
	if c.d == 0 {
		c.d = daysIn(c.y, c.m)
	}
	if v.today != (civil{}) {
		if r.expiry && c.before(v.today) {
			v.add(path, "has expired: the last valid day is before the validation time")
		}
		if r.notFuture && v.today.before(c) {
			v.add(path, "is in the future")
		}
	}
	return c, true
}

// validFrom checks a ValidDate against today and the expiry date.
func (v *validator) validFrom(path string, d *Date, exp civil) {
	c, ok := v.dateParts(path, d.Day, d.Month, d.Year, dateRule{needMonth: true, needYear: true, years: []int{4}}, false)
	v.mode(path, d.Mode)
	if !ok {
		return
	}
	first := c
	if d.Day == "" {
		first.d = 1
	}
	if v.today != (civil{}) && v.today.before(first) {
		v.add(path, "the card is not valid yet at the validation time")
	}
	if exp != (civil{}) && exp.before(first) {
		v.add(path, "is after the expiry date")
	}
}

// birthDate checks kx:BirthDate, whose parts are secret: never quoted.
func (v *validator) birthDate(path string, b *BirthDate) {
	for _, part := range []struct {
		name string
		val  Secret
	}{{"Day", b.Day}, {"Month", b.Month}, {"Year", b.Year}} {
		if part.val != "" && (hasEdgeSpace(string(part.val)) || !validXMLString(string(part.val))) {
			v.add(path+"/@"+part.name, "has white space or characters XML cannot carry")
		}
	}
	c, ok := v.dateParts(path, string(b.Day), string(b.Month), string(b.Year),
		dateRule{needDay: true, needMonth: true, needYear: true, years: []int{4}, notFuture: true}, true)
	if ok && c.y < 1900 {
		v.add(path+"/@Year", "must be 1900 or later")
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " or ")
}
