package conformance

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Profile is the per-participant test profile (docs/conformance.md, "The
// test profile"): everything a run needs that the participant's metadata
// does not carry. It is read from YAML strictly: an unknown key is an
// error. Relative paths are relative to the profile file.
type Profile struct {
	// Participant is the entityID under test; it must match the metadata.
	Participant string `yaml:"participant"`
	// Plan overrides discovery from the metadata's roles.
	Plan string `yaml:"plan,omitempty"`

	// Tester is the suite's own identity: a participant of the test
	// federation with the `tester` role.
	Tester TesterProfile `yaml:"tester"`
	// Second is another identity of the tester's standing — a registered
	// participant the provider admits as it admits the tester, with keys of
	// its own: the authorization module acts as it to reach the tester's
	// objects (KECIS §13.3).
	Second *IdentityProfile `yaml:"second,omitempty"`
	// Outsider is a registered participant of a role the provider's
	// services do not admit: the authorization module calls as it and must
	// be refused (KECIS §13.2).
	Outsider *IdentityProfile `yaml:"outsider,omitempty"`
	// Hub is the federation's hub the suite sends ordinary requests
	// through; without it every request goes directly to the participant.
	Hub *HubProfile `yaml:"hub,omitempty"`

	// Card describes the test cards of a card service provider.
	Card *CardProfile `yaml:"card,omitempty"`
	// AmountAuth describes the amount authentication a PG offers the
	// tester (the amountauth module, KECIS §15.3).
	AmountAuth *AmountAuthProfile `yaml:"amountauth,omitempty"`
	// CardAuth describes an issuer's cardholder authentication for the
	// tester (the cardauth and vcn modules, KECIS §15.7, §15.4).
	CardAuth *CardAuthProfile `yaml:"cardauth,omitempty"`
	// Bank describes a bank's test accounts (the transfer and account
	// modules, KECIS §15.8, §15.9).
	Bank *BankProfile `yaml:"bank,omitempty"`
	// Phone lists a telecom's holder checks and their outcomes (the phone
	// module, KECIS §15.10).
	Phone *PhoneProfile `yaml:"phone,omitempty"`
	// TwoWay describes a 2-WAY transfer the suite requests as the
	// requester and drives as the remitter and the payee (the twoway
	// module, KECIS §15.5).
	TwoWay *TwoWayProfile `yaml:"twoway,omitempty"`
	// Escrow describes the escrow and the collect payment a bank holds
	// for the tester as a merchant (the escrow module, KECIS §15.6,
	// §15.8): the buyer who pays on the bank's page and the settlement
	// account the released money goes to. Without it the module is
	// SKIPPED.
	Escrow *EscrowProfile `yaml:"escrow,omitempty"`
	// Router names the provider the hub plan relays to.
	Router *RouterProfile `yaml:"router,omitempty"`
	// Hooks are the participant's test hooks: out-of-band steps the suite
	// triggers (settlement, a stalled call).
	Hooks Hooks `yaml:"hooks,omitempty"`
	// Secrets are extra strings scrubbed from every report (the test
	// cards' passwords, say); card numbers are masked anyway.
	Secrets []string `yaml:"secrets,omitempty"`
	// Timeouts bound the run's waits.
	Timeouts Timeouts `yaml:"timeouts,omitempty"`

	dir string
}

// TesterProfile names the tester's key files.
type TesterProfile struct {
	EntityID   string  `yaml:"entity_id"`
	Signing    KeyPair `yaml:"signing"`
	Encryption KeyPair `yaml:"encryption"`
	TLS        KeyPair `yaml:"tls"`
}

// IdentityProfile names the key files of another identity the suite acts
// as (second:, outsider:). Its requests go directly to the participant over
// the tester's TLS client certificate, signed with the identity's key.
type IdentityProfile struct {
	EntityID string  `yaml:"entity_id"`
	Signing  KeyPair `yaml:"signing"`
	// Encryption, when given, decrypts what is encrypted for the identity.
	Encryption KeyPair `yaml:"encryption,omitempty"`
	// Roles are the identity's roles, used when the hub does not publish
	// its metadata (a run without a hub); the hub's metadata decides
	// otherwise.
	Roles []string `yaml:"roles,omitempty"`
}

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// HubProfile is the test federation's hub.
type HubProfile struct {
	URL      string `yaml:"url"`
	EntityID string `yaml:"entity_id"`
	// SigningCerts verify the metadata the hub serves and the statuses it
	// signs; TLSCerts pin its TLS server certificate.
	SigningCerts []string `yaml:"signing_certs"`
	TLSCerts     []string `yaml:"tls_certs"`
}

// CardProfile describes the cards the card service module uses.
type CardProfile struct {
	// Currency of the amounts below (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// Approve is a card the participant approves for Amount (ECML amount
	// form, e.g. "15000" KRW): the module approves, voids, refunds and
	// retries with it.
	Approve TestCard `yaml:"approve"`
	// Declines are cards (or amounts) the participant refuses, each with
	// the second-level status code it must answer.
	Declines []TestCard `yaml:"declines,omitempty"`
	// SettleBeforeRefund says refunds need a settled approval: the module
	// calls hooks.settle after approving what it refunds.
	SettleBeforeRefund bool `yaml:"settle_before_refund,omitempty"`
}

// AmountAuthProfile is what the amountauth module needs to know of the
// PG's amount authentication for the tester (KECIS §15.3.4: the PG's
// options for this merchant).
type AmountAuthProfile struct {
	// Currency of Card.Amount (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// Card is the card the purchases are made with; its Amount is the
	// purchase amount, at or above the PG's minimum purchase for
	// amount authentication (below it the PG approves at once).
	Card TestCard `yaml:"card"`
	// Attempts is the PG's attempt limit for the tester; without it the
	// attempt-limit checks are SKIPPED.
	Attempts int `yaml:"attempts,omitempty"`
	// Timeout is the PG's session timeout for the tester, short (a few
	// seconds: the run waits it out, MaxAmountAuthTimeout at most);
	// without it the timeout checks are SKIPPED.
	Timeout Duration `yaml:"timeout,omitempty"`
}

// CardAuthProfile is what the cardauth and vcn modules need to
// authenticate as a cardholder of the issuer (KECIS §15.7): a test card
// with its authentication password (and TOTP seed), and where the issuer
// must post its answers. The password and the seed are scrubbed from every
// report, as is each TOTP code the run computes.
type CardAuthProfile struct {
	// Currency of the amounts (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// Card is one of the issuer's cards; its Amount is a purchase below
	// Threshold (one factor).
	Card TestCard `yaml:"card"`
	// Password is the card's authentication password (안심클릭).
	Password string `yaml:"password"`
	// TOTPSeed is the card's RFC 6238 seed (base32); without it the
	// second-factor check is SKIPPED.
	TOTPSeed string `yaml:"totp_seed,omitempty"`
	// Threshold is the amount from which the issuer's policy asks for a
	// second factor (default 100000, KECIS §15.7.2's default policy).
	Threshold string `yaml:"threshold,omitempty"`
	// Endpoint is the tester's HTTP-POST endpoint for the services, as its
	// metadata at the hub publishes it: the Destination of every answer.
	Endpoint string `yaml:"endpoint"`
	// PageTLSCerts pin the TLS server certificate of the issuer's page
	// when its metadata does not publish it (PEM files).
	PageTLSCerts []string `yaml:"page_tls_certs,omitempty"`
}

// BankProfile is what the transfer and account modules need of a bank
// (KECIS §15.8, §15.9). The tester calls as a bank: in test mode the bank
// admits the registered tester as a bank-role caller, crediting from
// CallerCode.
type BankProfile struct {
	// Currency of Amount (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// Code is the bank's 3-digit code (the payee's kx:BankAccount/@BankCode).
	Code string `yaml:"code"`
	// CallerCode is the bank code the tester credits as (the remitter's
	// @BankCode), one the bank accepts from the tester.
	CallerCode string `yaml:"caller_code"`
	// Account is an active account of the bank, credited by the module,
	// with its holder's name as the bank records it.
	Account BankAccountProfile `yaml:"account"`
	// ClosedAccount and ForeignAccount (a number of another bank's), when
	// given, must be refused as an unknown one is.
	ClosedAccount  string `yaml:"closed_account,omitempty"`
	ForeignAccount string `yaml:"foreign_account,omitempty"`
	// Amount of each credit (default 1000), below the bank's per-transfer
	// limit.
	Amount string `yaml:"amount,omitempty"`
	// UnknownAccount is a number the bank does not know (default: one the
	// suite makes up).
	UnknownAccount string `yaml:"unknown_account,omitempty"`
}

// BankAccountProfile is an account and its holder's name.
type BankAccountProfile struct {
	Number string `yaml:"number"`
	Holder string `yaml:"holder,omitempty"`
}

// PhoneProfile lists a telecom's holder checks (KECIS §15.10).
type PhoneProfile struct {
	Checks []PhoneCheck `yaml:"checks"`
}

// PhoneCheck is a number, a name to check and the outcome expected:
// match, close-match, no-match or not-possible.
type PhoneCheck struct {
	Number string `yaml:"number"`
	Name   string `yaml:"name"`
	Expect string `yaml:"expect"`
}

// TwoWayProfile is what the twoway module needs (KECIS §15.5): the
// remitter's login at the bank's page, the payee (an account whose holder
// the payee's phone number belongs to), the tester's HTTP-POST endpoint,
// and another phone number whose replies must not count. The sms and
// sms_reply hooks read the payee's texts and reply from a phone; the
// balance hook, when given, reads the payee's balance.
type TwoWayProfile struct {
	// Currency of Amount (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// Endpoint is the tester's HTTP-POST endpoint as its metadata at the
	// hub publishes it: the Destination of the bank's answers.
	Endpoint string `yaml:"endpoint"`
	// Login and Password are the remitter's at the bank's page (inputs
	// `login` and `password`); Password is scrubbed from every report.
	Login    string `yaml:"login"`
	Password string `yaml:"password"`
	// Payee is the payee's account and phone.
	Payee TwoWayPayee `yaml:"payee"`
	// OtherPhone is a number that is not the payee's.
	OtherPhone string `yaml:"other_phone"`
	// Amount of the first transfer (default 10000); the second is ten
	// times as much. The remitter's balance must cover both.
	Amount string `yaml:"amount,omitempty"`
	// PageTLSCerts pin the TLS server certificate of the bank's page
	// when its metadata does not publish it (PEM files).
	PageTLSCerts []string `yaml:"page_tls_certs,omitempty"`
}

// TwoWayPayee is the payee of the module's transfers.
type TwoWayPayee struct {
	BankCode string `yaml:"bank_code"`
	Account  string `yaml:"account"`
	Phone    string `yaml:"phone"`
	// Name, when given, is sent as the payee's expected name.
	Name string `yaml:"name,omitempty"`
}

// EscrowProfile is what the escrow module needs (KECIS §15.6, §15.8
// transfer:collect): the tester opens escrows as a merchant (test mode),
// pays them on the bank's buyer page as the profile's buyer, ships,
// confirms as the buyer and refunds. The buyer's balance must cover two
// escrows of Amount and one collect of CollectAmount.
type EscrowProfile struct {
	// Currency of the amounts (ISO 4217); default KRW.
	Currency string `yaml:"currency,omitempty"`
	// BankCode is the bank's 3-digit code (default bank.code): the
	// requests' routing, the buyer's account's bank.
	BankCode string `yaml:"bank_code,omitempty"`
	// Amount of each escrow (default 150000).
	Amount string `yaml:"amount,omitempty"`
	// CollectAmount of the transfer:collect payment (default 1000).
	CollectAmount string `yaml:"collect_amount,omitempty"`
	// Buyer is a customer of the bank who logs in on its buyer page
	// (inputs `login` and `password`) and pays from Account; Password is
	// scrubbed from every report.
	Buyer EscrowBuyer `yaml:"buyer"`
	// Settlement is the merchant's settlement account the escrow's money
	// is released to (kx:BankAccount Role="settlement"); its bank code
	// defaults to bank.code. With the balance hook the module checks it
	// moves only on the buyer's confirmation.
	Settlement EscrowAccount `yaml:"settlement"`
	// PageTLSCerts pin the TLS server certificate of the bank's buyer
	// page when its metadata does not publish it (PEM files).
	PageTLSCerts []string `yaml:"page_tls_certs,omitempty"`
}

// EscrowBuyer is the buyer of the escrow module's payments.
type EscrowBuyer struct {
	Login    string `yaml:"login"`
	Password string `yaml:"password"`
	// Account is the buyer's account at the bank the page pays from
	// (chosen on the page by its masked form, ****-1234).
	Account string `yaml:"account"`
}

// EscrowAccount is an account at a bank.
type EscrowAccount struct {
	BankCode string `yaml:"bank_code,omitempty"`
	Account  string `yaml:"account"`
}

// MaxAmountAuthTimeout bounds the profile's amountauth.timeout: the run
// waits it out within one check (ConditionTimeout).
const MaxAmountAuthTimeout = time.Minute

// TestCard is a card and the outcome expected for it.
type TestCard struct {
	Name   string `yaml:"name,omitempty"`
	Number string `yaml:"number"`
	// Expiry is MM/YYYY.
	Expiry string `yaml:"expiry"`
	Amount string `yaml:"amount"`
	// Expect is the second-level status code of a refusal ("LimitExceeded"
	// or the whole URI); empty for an approval.
	Expect string `yaml:"expect,omitempty"`
}

// Hooks are the participant's test hooks.
type Hooks struct {
	// Settle: POST settles every approval made so far (an end-of-day run).
	Settle *Hook `yaml:"settle,omitempty"`
	// Stall: POST {"service": URI, "seconds": N} makes the participant's
	// next call of that service take N seconds, so that the hub answers
	// Pending and the suite checks inquire tells the truth afterwards.
	Stall *Hook `yaml:"stall,omitempty"`
	// AmountAuth: POST {"session_id": ID} answers, as JSON, the
	// verification approval that session made at the card's issuer
	// (KECIS §15.2 approve-verification): {"state": "approved" |
	// "cancelled" | "refunded" | "none", "amount": ECML amount,
	// "currency": ISO 4217}. Test mode only: it reveals the challenge, a
	// one-time password, which the suite redacts from every report.
	AmountAuth *Hook `yaml:"amountauth,omitempty"`
	// SMS: POST {"phone": N} answers {"messages": [{"from": …, "text":
	// …}]}, the texts phone N received, oldest first (the twoway module
	// reads the payee's code there; test mode only, the codes are
	// redacted from every report).
	SMS *Hook `yaml:"sms,omitempty"`
	// SMSReply: POST {"from": N, "text": T} sends T from phone N as a
	// reply to the bank's texts.
	SMSReply *Hook `yaml:"sms_reply,omitempty"`
	// Balance: POST {"bank_code": C, "account": A} answers {"balance":
	// ECML amount, "currency": ISO 4217}, the account's balance.
	Balance *Hook `yaml:"balance,omitempty"`
}

// Hook is one test hook.
type Hook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers,omitempty"`
}

// Timeouts of a run.
type Timeouts struct {
	// Request bounds one exchange (default 20s).
	Request Duration `yaml:"request,omitempty"`
	// Settle bounds how long the module waits for the truth after a
	// timeout (default 30s).
	Settle Duration `yaml:"settle,omitempty"`
	// Stall is how long the stall hook makes a call take (default 3s);
	// it must exceed the hub's relay timeout.
	Stall Duration `yaml:"stall,omitempty"`
}

// Duration reads "20s", "1m30s".
type Duration time.Duration

// UnmarshalYAML implements yaml.BytesUnmarshaler.
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadProfile reads and checks a profile file.
func LoadProfile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.dir = filepath.Dir(path)
	return p, nil
}

// ParseProfile reads a profile from YAML; relative paths are taken
// relative to the working directory (LoadProfile sets the file's).
func ParseProfile(data []byte) (*Profile, error) {
	p := &Profile{}
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict(), yaml.DisallowUnknownField()).Decode(p); err != nil {
		return nil, fmt.Errorf("profile: %s", yaml.FormatError(err, false, true))
	}
	return p, p.check()
}

func (p *Profile) check() error {
	var errs []error
	if p.Participant == "" {
		errs = append(errs, errors.New("participant (the entityID under test) is required"))
	}
	if p.Tester.EntityID == "" {
		errs = append(errs, errors.New("tester.entity_id is required"))
	}
	if p.Tester.Signing.Cert == "" || p.Tester.Signing.Key == "" {
		errs = append(errs, errors.New("tester.signing {cert, key} is required"))
	}
	ids := map[string]string{p.Participant: "participant", p.Tester.EntityID: "tester"}
	for _, x := range []struct {
		name string
		ip   *IdentityProfile
	}{{"second", p.Second}, {"outsider", p.Outsider}} {
		if x.ip == nil {
			continue
		}
		switch {
		case x.ip.EntityID == "":
			errs = append(errs, fmt.Errorf("%s.entity_id is required", x.name))
		case ids[x.ip.EntityID] != "":
			errs = append(errs, fmt.Errorf("%s.entity_id is the %s's: another participant is needed", x.name, ids[x.ip.EntityID]))
		default:
			ids[x.ip.EntityID] = x.name
		}
		if x.ip.Signing.Cert == "" || x.ip.Signing.Key == "" {
			errs = append(errs, fmt.Errorf("%s.signing {cert, key} is required", x.name))
		}
		for _, r := range x.ip.Roles {
			if !slices.Contains(metadata.KnownRoles, metadata.Role(r)) {
				errs = append(errs, fmt.Errorf("%s.roles: unknown role %q", x.name, r))
			}
		}
	}
	if p.Hub != nil && (p.Hub.URL == "" || p.Hub.EntityID == "" || len(p.Hub.TLSCerts) == 0 || len(p.Hub.SigningCerts) == 0) {
		errs = append(errs, errors.New("hub needs url, entity_id, signing_certs and tls_certs"))
	}
	if c := p.Card; c != nil {
		if c.Currency == "" {
			c.Currency = "KRW"
		}
		if _, ok := ecml.MinorUnits(c.Currency); !ok {
			errs = append(errs, fmt.Errorf("card.currency %q is not an ISO 4217 code", c.Currency))
		}
		cards := append([]TestCard{c.Approve}, c.Declines...)
		for i, tc := range cards {
			where := "card.approve"
			if i > 0 {
				where = fmt.Sprintf("card.declines[%d]", i-1)
			}
			if err := tc.check(c.Currency, i > 0); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
	}
	if a := p.AmountAuth; a != nil {
		if a.Currency == "" {
			a.Currency = "KRW"
		}
		if _, ok := ecml.MinorUnits(a.Currency); !ok {
			errs = append(errs, fmt.Errorf("amountauth.currency %q is not an ISO 4217 code", a.Currency))
		} else if err := a.Card.check(a.Currency, false); err != nil {
			errs = append(errs, fmt.Errorf("amountauth.card: %w", err))
		} else if m, _ := ecml.ParseAmount(a.Card.Amount, a.Currency); m.Minor <= 0 {
			errs = append(errs, errors.New("amountauth.card.amount (the purchase amount) must be above zero"))
		}
		if a.Card.Expect != "" {
			errs = append(errs, errors.New("amountauth.card.expect: the card must be one the PG approves (no expected refusal)"))
		}
		if a.Attempts < 0 {
			errs = append(errs, errors.New("amountauth.attempts must be positive"))
		}
		if t := time.Duration(a.Timeout); t < 0 || t > MaxAmountAuthTimeout {
			errs = append(errs, fmt.Errorf("amountauth.timeout must be positive and at most %s: the run waits it out (give the tester a short timeout at the PG)", MaxAmountAuthTimeout))
		}
	}
	if a := p.CardAuth; a != nil {
		if a.Currency == "" {
			a.Currency = "KRW"
		}
		if a.Threshold == "" {
			a.Threshold = "100000"
		}
		if _, ok := ecml.MinorUnits(a.Currency); !ok {
			errs = append(errs, fmt.Errorf("cardauth.currency %q is not an ISO 4217 code", a.Currency))
		} else if err := a.Card.check(a.Currency, false); err != nil {
			errs = append(errs, fmt.Errorf("cardauth.card: %w", err))
		} else {
			m, _ := ecml.ParseAmount(a.Card.Amount, a.Currency)
			th, err := ecml.ParseAmount(a.Threshold, a.Currency)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("cardauth.threshold %q: %w", a.Threshold, err))
			case m.Minor <= 0 || m.Minor >= th.Minor:
				errs = append(errs, errors.New("cardauth.card.amount must be above zero and below cardauth.threshold (a one-factor purchase)"))
			}
		}
		if a.Password == "" {
			errs = append(errs, errors.New("cardauth.password (the card's authentication password) is required"))
		}
		if !strings.HasPrefix(a.Endpoint, "https://") {
			errs = append(errs, errors.New("cardauth.endpoint (the tester's HTTP-POST endpoint in its metadata) must be an https URL"))
		}
	}
	errs = append(errs, p.checkBanking()...)
	for name, h := range map[string]*Hook{"settle": p.Hooks.Settle, "stall": p.Hooks.Stall, "amountauth": p.Hooks.AmountAuth,
		"sms": p.Hooks.SMS, "sms_reply": p.Hooks.SMSReply, "balance": p.Hooks.Balance} {
		if h != nil && !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
			errs = append(errs, fmt.Errorf("hooks.%s.url must be an http(s) URL", name))
		}
	}
	return errors.Join(errs...)
}

func (tc TestCard) check(currency string, decline bool) error {
	if !ecml.LooksLikePAN(tc.Number) || !ecml.LuhnValid(tc.Number) {
		return errors.New("number is not a 13–19 digit card number with a valid check digit")
	}
	if _, _, err := tc.expiry(); err != nil {
		return err
	}
	if _, err := ecml.ParseAmount(tc.Amount, currency); err != nil {
		return fmt.Errorf("amount %q: %w", tc.Amount, err)
	}
	if decline && tc.Expect == "" {
		return errors.New("expect (the second-level status code of the refusal) is required")
	}
	return nil
}

func (tc TestCard) expiry() (month, year string, err error) {
	m, y, ok := strings.Cut(tc.Expiry, "/")
	if !ok || len(m) < 1 || len(m) > 2 || len(y) != 4 {
		return "", "", fmt.Errorf("expiry %q is not MM/YYYY", tc.Expiry)
	}
	return m, y, nil
}

// expectCode returns the expected second-level code as a URI.
func (tc TestCard) expectCode() string {
	if tc.Expect == "" || strings.Contains(tc.Expect, ":") {
		return tc.Expect
	}
	return saml.KECISStatusPrefix + tc.Expect
}

func (p *Profile) path(f string) string {
	if f == "" || filepath.IsAbs(f) || p.dir == "" {
		return f
	}
	return filepath.Join(p.dir, f)
}

// Tester is the suite's loaded identity.
type Tester struct {
	EntityID   string
	Signer     *saml.Signer
	Decryption []saml.DecryptionKey
	EncCert    *x509.Certificate
	TLS        tls.Certificate
}

// LoadTester reads the tester's keys; tlsCert and tlsKey, when given,
// replace the profile's TLS client certificate (--client-cert,
// --client-key).
func (p *Profile) LoadTester(tlsCert, tlsKey string) (*Tester, error) {
	t, err := p.loadIdentity("tester", p.Tester.EntityID, p.Tester.Signing, p.Tester.Encryption)
	if err != nil {
		return nil, err
	}
	cert, key := p.path(p.Tester.TLS.Cert), p.path(p.Tester.TLS.Key)
	if tlsCert != "" || tlsKey != "" {
		cert, key = tlsCert, tlsKey
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tester TLS client certificate: %w", err)
		}
		t.TLS = kp
	}
	return t, nil
}

// LoadIdentity reads the keys of another identity of the profile (name is
// "second" or "outsider"); nil when the profile gives none. It has no TLS
// client certificate: its requests travel over the tester's.
func (p *Profile) LoadIdentity(name string) (*Tester, error) {
	var ip *IdentityProfile
	switch name {
	case "second":
		ip = p.Second
	case "outsider":
		ip = p.Outsider
	default:
		return nil, fmt.Errorf("conformance: the profile has no identity %q", name)
	}
	if ip == nil {
		return nil, nil
	}
	return p.loadIdentity(name, ip.EntityID, ip.Signing, ip.Encryption)
}

// loadIdentity reads an identity's signing key and, when given, its
// decryption key.
func (p *Profile) loadIdentity(name, entityID string, signing, encryption KeyPair) (*Tester, error) {
	s, err := saml.LoadSigner(p.path(signing.Key), p.path(signing.Cert))
	if err != nil {
		return nil, fmt.Errorf("%s signing key: %w", name, err)
	}
	t := &Tester{EntityID: entityID, Signer: s}
	if encryption.Cert == "" {
		return t, nil
	}
	dk, err := saml.LoadDecryptionKey(p.path(encryption.Key), p.path(encryption.Cert))
	if err != nil {
		return nil, fmt.Errorf("%s encryption key: %w", name, err)
	}
	t.EncCert = dk.Cert
	t.Decryption = []saml.DecryptionKey{dk}
	return t, nil
}

// HubConfig is the loaded hub: where it is and what it signs and serves with.
type HubConfig struct {
	URL          string
	EntityID     string
	SigningCerts []*x509.Certificate
	TLSCerts     []*x509.Certificate
}

// LoadHub reads the hub's certificates; url, when given, replaces the
// profile's (--hub). It returns nil without a hub.
func (p *Profile) LoadHub(url string) (*HubConfig, error) {
	if p.Hub == nil {
		if url != "" {
			return nil, errors.New("--hub given, but the profile has no hub section (entity_id and certificates)")
		}
		return nil, nil
	}
	h := &HubConfig{URL: p.Hub.URL, EntityID: p.Hub.EntityID}
	if url != "" {
		h.URL = url
	}
	var err error
	if h.SigningCerts, err = loadCerts(p, p.Hub.SigningCerts); err != nil {
		return nil, fmt.Errorf("hub signing certificates: %w", err)
	}
	if h.TLSCerts, err = loadCerts(p, p.Hub.TLSCerts); err != nil {
		return nil, fmt.Errorf("hub TLS certificates: %w", err)
	}
	return h, nil
}

func loadCerts(p *Profile, files []string) ([]*x509.Certificate, error) {
	var paths []string
	for _, f := range files {
		paths = append(paths, p.path(f))
	}
	return saml.LoadCertificates(paths...)
}

// secrets returns the strings to scrub from reports.
func (p *Profile) secrets() []string {
	// Card numbers need no entry: every Luhn-valid number is masked.
	out := slices.Clone(p.Secrets)
	if a := p.TwoWay; a != nil && a.Password != "" {
		out = append(out, a.Password)
	}
	if a := p.Escrow; a != nil && a.Buyer.Password != "" {
		out = append(out, a.Buyer.Password)
	}
	if a := p.CardAuth; a != nil {
		for _, s := range []string{a.Password, a.TOTPSeed} {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// phoneOutcomes are the answers of a holder check (KECIS §15.10).
var phoneOutcomes = []string{"match", "close-match", "no-match", "not-possible"}

func threeDigits(s string) bool { return len(s) == 3 && ecml.AllDigits(s) }

// checkBanking checks the bank, phone and twoway sections, with their
// defaults.
func (p *Profile) checkBanking() []error {
	var errs []error
	if b := p.Bank; b != nil {
		if b.Currency == "" {
			b.Currency = "KRW"
		}
		if b.Amount == "" {
			b.Amount = "1000"
		}
		if !threeDigits(b.Code) || !threeDigits(b.CallerCode) {
			errs = append(errs, errors.New("bank.code and bank.caller_code must be 3-digit bank codes"))
		}
		if m, err := ecml.ParseAmount(b.Amount, b.Currency); err != nil || m.Minor <= 0 {
			errs = append(errs, fmt.Errorf("bank.amount %q must be a positive amount in %s", b.Amount, b.Currency))
		}
		for name, n := range map[string]string{"account.number": b.Account.Number, "closed_account": b.ClosedAccount, "foreign_account": b.ForeignAccount, "unknown_account": b.UnknownAccount} {
			if _, ok := ecml.AccountDigits(n); !ok && (n != "" || name == "account.number") {
				errs = append(errs, fmt.Errorf("bank.%s is not an account number", name))
			}
		}
	}
	if ph := p.Phone; ph != nil {
		if len(ph.Checks) == 0 {
			errs = append(errs, errors.New("phone.checks: at least one check is required"))
		}
		for i, c := range ph.Checks {
			if c.Number == "" || c.Name == "" || !slices.Contains(phoneOutcomes, c.Expect) {
				errs = append(errs, fmt.Errorf("phone.checks[%d] needs number, name and expect (one of %s)", i, strings.Join(phoneOutcomes, ", ")))
			}
		}
	}
	errs = append(errs, p.checkEscrow()...)
	if t := p.TwoWay; t != nil {
		if t.Currency == "" {
			t.Currency = "KRW"
		}
		if t.Amount == "" {
			t.Amount = "10000"
		}
		if m, err := ecml.ParseAmount(t.Amount, t.Currency); err != nil || m.Minor <= 0 {
			errs = append(errs, fmt.Errorf("twoway.amount %q must be a positive amount in %s", t.Amount, t.Currency))
		}
		if !strings.HasPrefix(t.Endpoint, "https://") {
			errs = append(errs, errors.New("twoway.endpoint (the tester's HTTP-POST endpoint in its metadata) must be an https URL"))
		}
		if t.Login == "" || t.Password == "" {
			errs = append(errs, errors.New("twoway.login and twoway.password (the remitter's at the bank's page) are required"))
		}
		if _, ok := ecml.AccountDigits(t.Payee.Account); !ok || !threeDigits(t.Payee.BankCode) || t.Payee.Phone == "" {
			errs = append(errs, errors.New("twoway.payee needs bank_code, account and phone"))
		}
		if t.OtherPhone == "" || t.OtherPhone == t.Payee.Phone {
			errs = append(errs, errors.New("twoway.other_phone (a number that is not the payee's) is required"))
		}
	}
	return errs
}

// checkEscrow checks the escrow section, with its defaults.
func (p *Profile) checkEscrow() []error {
	e := p.Escrow
	if e == nil {
		return nil
	}
	var errs []error
	if e.Currency == "" {
		e.Currency = "KRW"
	}
	if e.Amount == "" {
		e.Amount = "150000"
	}
	if e.CollectAmount == "" {
		e.CollectAmount = "1000"
	}
	for name, a := range map[string]string{"amount": e.Amount, "collect_amount": e.CollectAmount} {
		if m, err := ecml.ParseAmount(a, e.Currency); err != nil || m.Minor <= 0 {
			errs = append(errs, fmt.Errorf("escrow.%s %q must be a positive amount in %s", name, a, e.Currency))
		}
	}
	if e.BankCode == "" && p.Bank != nil {
		e.BankCode = p.Bank.Code
	}
	if e.Settlement.BankCode == "" {
		e.Settlement.BankCode = e.BankCode
	}
	if !threeDigits(e.BankCode) {
		errs = append(errs, errors.New("escrow.bank_code (default bank.code) must be the bank's 3-digit code"))
	}
	if _, ok := ecml.AccountDigits(e.Settlement.Account); !ok || !threeDigits(e.Settlement.BankCode) {
		errs = append(errs, errors.New("escrow.settlement needs account and a 3-digit bank_code (default the bank's)"))
	}
	if e.Buyer.Login == "" || e.Buyer.Password == "" {
		errs = append(errs, errors.New("escrow.buyer.login and escrow.buyer.password (the buyer's at the bank's page) are required"))
	}
	bd, ok := ecml.AccountDigits(e.Buyer.Account)
	if !ok {
		errs = append(errs, errors.New("escrow.buyer.account (the account the buyer pays from) is not an account number"))
	}
	if sd, _ := ecml.AccountDigits(e.Settlement.Account); ok && sd == bd && e.Settlement.BankCode == e.BankCode {
		errs = append(errs, errors.New("escrow.settlement must be another account than the buyer's: the module follows both balances"))
	}
	return errs
}
