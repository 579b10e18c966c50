package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/connectors/sidecar"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml/metadata"
)

// ManifestFile is the name of the manifest a running demo writes in its
// directory (docs/demo.md).
const ManifestFile = "demo.json"

// Manifest is demo.json: what a script, a load generator or the
// conformance runner needs to drive a running demo — the hub, the
// merchants with their credentials, the test cards, every participant's
// keys and the addresses actually bound. It is a stable interface: keys may
// be added, never renamed or removed (docs/demo.md). Paths are relative to
// the demo's directory; ReadManifest resolves them.
//
// It holds the secrets of a development demo (API keys, the paths of
// private keys), so it is written 0600; a demo's keys are never anyone's
// production keys.
type Manifest struct {
	// HubURL is the hub's base URL (its JSON facade is under /v1/, its
	// KECIS endpoint /kecis/soap, its metadata /kecis/metadata).
	HubURL      string `json:"hub_url"`
	HubEntityID string `json:"hub_entity_id"`
	// HubCA is the PEM file that verifies the hub's TLS certificate
	// (curl --cacert).
	HubCA string `json:"hub_ca"`
	// HubSigningCert is the PEM file that verifies the metadata the hub
	// signs.
	HubSigningCert string                `json:"hub_signing_cert"`
	Merchants      []ManifestMerchant    `json:"merchants"`
	Cards          []ManifestCard        `json:"cards"`
	Participants   []ManifestParticipant `json:"participants"`
	Addresses      ManifestAddresses     `json:"addresses"`
	// TestCards are every test card, one per outcome (cards[] has the
	// first two).
	TestCards []ManifestTestCard `json:"test_cards"`
	// SettleURL ends the issuer's business day when POSTed to (Demo.Settle):
	// every approval made so far is settled and can be refunded.
	SettleURL string `json:"settle_url"`
	// Conformance lists the test profiles the demo wrote for the
	// conformance suite, one per plan, and their hooks (test mode).
	Conformance ManifestConformance `json:"conformance"`
	// AmountAuth says how to make a purchase with amount authentication
	// (KECIS §15.3): in a browser at the demo shop, or as a script through
	// the hub's facade.
	AmountAuth ManifestAmountAuth `json:"amountauth"`
	// CardAuth says how to pay with the issuer's cardholder
	// authentication (KECIS §15.7) and lists the test cards' credentials.
	CardAuth ManifestCardAuth `json:"cardauth"`
	// Banks are the demo's banks (KECIS §15.8, §15.9), bank A first, with
	// their customers, logins, phones and accounts.
	Banks []ManifestBank `json:"banks"`
	// Escrow says how to make a cash purchase by account transfer at bank
	// A: the shop's cash checkout, bank A's buyer page, the shop's
	// settlement account (KECIS §15.6, §15.8 transfer:collect; docs/escrow.md
	// "In the demo"). The buyer logs in with a bank A customer's login of
	// banks[0].customers.
	Escrow ManifestEscrow `json:"escrow"`
}

// ManifestEscrow is demo.json's escrow section.
type ManifestEscrow struct {
	// CheckoutURL is the demo shop's checkout, whose "cash (account
	// transfer)" form (StartURL, field product: one of Products' id)
	// starts a purchase: transfer:collect, or escrow:open when the hub's
	// payment policy refuses the collect (PolicyViolation).
	CheckoutURL string            `json:"checkout_url"`
	StartURL    string            `json:"start_url"`
	Products    []ManifestProduct `json:"products"`
	// OrderURL + the order number is the shop's order page (escrow:status,
	// "mark shipped", refund); ReturnURL the shop's HTTP-POST endpoint of
	// escrow:pay, where bank A's page returns the buyer.
	OrderURL  string `json:"order_url"`
	ReturnURL string `json:"return_url"`
	// Bank is the holder bank's entityID, BankCode its code; PayURL its
	// buyer page's entry (the HTTP-POST endpoint of escrow:pay, field
	// reference), PagesURL its "my escrow payments" (confirm receipt,
	// dispute).
	Bank     string `json:"bank"`
	BankCode string `json:"bank_code"`
	PayURL   string `json:"pay_url"`
	PagesURL string `json:"pages_url"`
	// Merchant is the shop; SettlementBank its settlement account's bank
	// code, SettlementAccount that account masked, SettlementLogin the
	// login of its holder at that bank (banks[].customers), whose page
	// shows the released money.
	Merchant          string `json:"merchant"`
	SettlementBank    string `json:"settlement_bank"`
	SettlementAccount string `json:"settlement_account"`
	SettlementLogin   string `json:"settlement_login"`
	// Services are the services the holder bank offers merchants.
	Services []string `json:"services"`
}

// ManifestBank is a demo bank: its bank code, its pages and APIs, and its
// customers.
type ManifestBank struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	EntityID string `json:"entity_id"`
	// PageURL is the customers' pages (login, accounts, statements);
	// APIURL its native API (/api/v1/, Authorization: Bearer
	// <admin_token>), whose admin page is APIURL + /admin; KECISURL its
	// KECIS endpoint.
	PageURL    string `json:"page_url"`
	APIURL     string `json:"api_url"`
	KECISURL   string `json:"kecis_url"`
	AdminToken string `json:"admin_token"`
	// TwoWayURL is its 2-WAY transfer pages (KECIS §15.5): a customer logs
	// in, asks for a transfer confirmed by the payee, sees the name check
	// and the outcome ("" for a bank that runs none: bank B).
	TwoWayURL string `json:"twoway_url"`
	// Customers are its customers, each a subscriber of the telecom.
	Customers []ManifestBankCustomer `json:"customers"`
}

// ManifestBankCustomer is a demo bank's customer.
type ManifestBankCustomer struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	Name     string `json:"name"`
	// Phone is its registered phone: its texts are at PhoneURL (the
	// telecom's phone page, where it replies).
	Phone    string `json:"phone"`
	PhoneURL string `json:"phone_url"`
	// Payee is what the 2-WAY name check answers for a transfer to its
	// account and phone: match, close-match (the telecom holds the name
	// with family and given name swapped), no-match (the phone is someone
	// else's); "" for a remitter.
	Payee string `json:"payee"`
	// Merchant is the entityID of the merchant whose settlement account
	// the customer's is ("" for a person).
	Merchant string                `json:"merchant,omitempty"`
	Accounts []ManifestBankAccount `json:"accounts"`
}

// ManifestBankAccount is a demo account: its number (demo data) and the
// test deposit it was funded with, in won.
type ManifestBankAccount struct {
	Number   string `json:"number"`
	Deposit  int64  `json:"deposit"`
	Currency string `json:"currency"`
}

// ManifestCardAuth is demo.json's cardauth section: the issuer's
// cardholder authentication (docs/cardauth.md) and how to start one.
type ManifestCardAuth struct {
	// CheckoutURL is the demo shop's checkout, whose "card authentication"
	// form (StartURL) starts one in a browser.
	CheckoutURL string `json:"checkout_url"`
	// StartURL takes the checkout's form POST: issuer (a card company's
	// entityID), product (one of Products' id) and virtual ("true": a
	// virtual card number); it answers the auto-submitting form that
	// carries the shop's signed request to PageURL.
	StartURL string `json:"start_url"`
	// ReturnURL is the shop's HTTP-POST endpoint for the services in its
	// metadata, where the issuer's page posts the browser back.
	ReturnURL string `json:"return_url"`
	// Merchant is the shop (merchants[0]); Acquirer the PG its card numbers
	// are encrypted for (kx:CardAuth/@Acquirer); Issuer the card company.
	Merchant string `json:"merchant"`
	Acquirer string `json:"acquirer"`
	Issuer   string `json:"issuer"`
	// Service and VCNService are the front-channel services' URIs.
	Service    string `json:"service"`
	VCNService string `json:"vcn_service"`
	// PageURL is the issuer's page (HTTPS): the HTTP-POST endpoint of both
	// services in its metadata. CertURL is its mutual-TLS endpoint, where
	// the browser presents the client certificate.
	PageURL string `json:"page_url"`
	CertURL string `json:"cert_url"`
	// Threshold (minor units of Currency) is where the policy asks for a
	// second factor beside the password: a TOTP code or the client
	// certificate.
	Threshold int64  `json:"threshold"`
	Currency  string `json:"currency"`
	// CACert is the PEM file of the issuer's cardholder CA, which issued
	// the client certificates.
	CACert string `json:"ca_cert"`
	// Products are the checkout's products, one below Threshold and one
	// at or above it.
	Products []ManifestProduct `json:"products"`
	// TesterReturnURL is the conformance suite's HTTP-POST endpoint for
	// the services (test mode, else ""): the issuer's page posts there.
	TesterReturnURL string `json:"tester_return_url"`
	// Cards are the test cards' cardholder-authentication credentials, in
	// test_cards[]' order.
	Cards []ManifestCardAuthCard `json:"cards"`
}

// ManifestProduct is a product of the demo shop's checkout.
type ManifestProduct struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ManifestCardAuthCard is a test card's cardholder-authentication
// credentials at the issuer (KECIS §15.7).
type ManifestCardAuthCard struct {
	Number string `json:"number"`
	Holder string `json:"holder"`
	// Password is the authentication password on the issuer's page (not
	// the four-digit card password).
	Password string `json:"password"`
	// TOTPSeed is the RFC 6238 seed in base32 (30-second steps, six
	// digits, SHA-1); TOTPURI the otpauth:// URI an authenticator app
	// reads. The issuer checks codes on its business clock ("The demo's
	// clock").
	TOTPSeed string `json:"totp_seed"`
	TOTPURI  string `json:"totp_uri"`
	// PKCS12 is the client certificate and its key for a browser ("" for
	// a card that is not active); PKCS12Password its password.
	PKCS12         string `json:"pkcs12"`
	PKCS12Password string `json:"pkcs12_password"`
}

// ManifestAmountAuth is demo.json's amountauth section: the demo PG's
// amount authentication (docs/amountauth.md) and how to drive it.
type ManifestAmountAuth struct {
	// CheckoutURL is the demo shop's checkout page (a browser's): it
	// starts the purchase as Merchant and sends the browser to PageURL,
	// which returns it to ReturnURL.
	CheckoutURL string `json:"checkout_url"`
	// Merchant is the shop's entityID (merchants[0]); ReturnURL is its
	// return URL at the PG (KECIS §15.3.2), the shop's own.
	Merchant  string `json:"merchant"`
	ReturnURL string `json:"return_url"`
	// PageURL is the PG's cardholder page: a form POST of SessionID (and
	// RelayState, at most 80 bytes) shows the amount form. The PG's
	// metadata publishes it as the HTTP-POST endpoint of
	// urn:kecis:service:amountauth:confirm.
	PageURL string `json:"page_url"`
	// StartURL, ConfirmURL and StatusURL are the hub facade's operations
	// (POST, Authorization: Bearer <api_key>; start and confirm with an
	// Idempotency-Key): start takes the order, the amount, its currency
	// and the card, and answers the session (KECIS_AmountAuth_SessionID).
	StartURL   string `json:"start_url"`
	ConfirmURL string `json:"confirm_url"`
	StatusURL  string `json:"status_url"`
	// Method is what the cardholder types: amount, or descriptor (the
	// code after the shop's name in the text).
	Method string `json:"method"`
	// MinPurchase is the least purchase that is authenticated (minor
	// units of Currency): below it start approves at once.
	MinPurchase int64  `json:"min_purchase"`
	Currency    string `json:"currency"`
	// Attempts and TimeoutSeconds bound a session of the demo's shops.
	Attempts       int `json:"attempts"`
	TimeoutSeconds int `json:"timeout_seconds"`
}

// ManifestTestCard is a test card and the outcome a payment of Amount
// with it gives through the hub's facade (docs/merchant.md, "Test cards").
type ManifestTestCard struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	// Outcome is one of the Card* constants: approved, declined,
	// insufficient_funds, limit_exceeded, expired, lost_stolen,
	// issuer_timeout.
	Outcome string `json:"outcome"`
	// SubStatus is the facade's sub_status for that payment ("" when it is
	// approved, or refused by the hub itself); Problem the type of the
	// problem (last segment, "invalid-fields") when the hub refuses it
	// itself, else "". Amount (minor units of Currency) is one that gives
	// the outcome.
	SubStatus string `json:"sub_status"`
	Problem   string `json:"problem"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	// Type is credit or check; Limit the credit limit or the balance it was
	// issued with; Status active, blocked or lost at the issuer.
	Type   string `json:"type"`
	Limit  int64  `json:"limit"`
	Status string `json:"status"`
	// Holder and Phone: its texts are at addresses.telecom + /phones/<digits>.
	Holder      string `json:"holder"`
	Phone       string `json:"phone"`
	Description string `json:"description"`
}

// ManifestMerchant is a demo shop as a JSON-facade client: it
// authenticates with its API key (Authorization: Bearer) or its TLS client
// certificate.
type ManifestMerchant struct {
	EntityID string `json:"entity_id"`
	Name     string `json:"name"`
	APIKey   string `json:"api_key"`
	TLSCert  string `json:"tls_cert"`
	TLSKey   string `json:"tls_key"`
}

// Card outcomes (ManifestCard.Outcome, TestCard.Outcome).
const (
	// OutcomeApproved: the card approves payments up to its limit.
	OutcomeApproved = "approved"
	// OutcomeLimitExceeded: the card for declines — a payment above its
	// (small) limit gets the KECIS status LimitExceeded.
	OutcomeLimitExceeded = "LimitExceeded"
)

// ManifestCard is a test card the demo issuer issued.
type ManifestCard struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Holder   string `json:"holder"`
	// Phone is the holder's phone at the demo telecom: its texts are at
	// addresses.telecom + /phones/<digits>.
	Phone string `json:"phone"`
	// Outcome is what the card is for: OutcomeApproved or
	// OutcomeLimitExceeded (above Limit).
	Outcome string `json:"outcome"`
	// Limit is the card's credit limit in KRW (minor units = won).
	Limit       int64  `json:"limit"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

// ManifestParticipant is a registered participant of the demo federation
// and the files of its keys (PEM). A key it does not have is "".
type ManifestParticipant struct {
	EntityID       string          `json:"entity_id"`
	Name           string          `json:"name"`
	Roles          []metadata.Role `json:"roles"`
	SigningCert    string          `json:"signing_cert"`
	SigningKey     string          `json:"signing_key"`
	EncryptionCert string          `json:"encryption_cert"`
	EncryptionKey  string          `json:"encryption_key"`
	TLSCert        string          `json:"tls_cert"`
	TLSKey         string          `json:"tls_key"`
}

// ManifestAddresses are the base URLs of the demo's listeners, with the
// ports actually bound (a flag's port 0 becomes the port chosen).
type ManifestAddresses struct {
	Hub       string `json:"hub"`        // KECIS endpoint, metadata, JSON facade (HTTPS)
	HubOps    string `json:"hub_ops"`    // /healthz, /readyz, /metrics
	Issuer    string `json:"issuer"`     // the issuer's KECIS endpoint (HTTPS, /kecis/soap)
	IssuerAPI string `json:"issuer_api"` // the issuer's own API and admin page
	Telecom   string `json:"telecom"`    // the carrier's SMS gateway and phone pages
	PGAPI     string `json:"pg_api"`     // the PG's own API
	PGKECIS   string `json:"pg_kecis"`   // the PG sidecar's KECIS endpoint (HTTPS, /kecis/soap)
	PGCall    string `json:"pg_call"`    // the PG sidecar's local calling endpoint
	PGPage    string `json:"pg_page"`    // the PG's amount-authentication page (under /amountauth)
	Shop      string `json:"shop"`       // the demo shop's checkout
	// IssuerPage is the issuer's cardholder-authentication page (HTTPS,
	// under /cardauth); IssuerCert its mutual-TLS endpoint.
	IssuerPage string `json:"issuer_page"`
	IssuerCert string `json:"issuer_cert"`
	// TelecomKECIS is the telecom's KECIS endpoint (HTTPS, /kecis/soap);
	// BankA, BankB the banks' native APIs and pages, BankAKECIS,
	// BankBKECIS their KECIS endpoints (HTTPS, /kecis/soap).
	TelecomKECIS string `json:"telecom_kecis"`
	BankA        string `json:"bank_a"`
	BankAKECIS   string `json:"bank_a_kecis"`
	BankB        string `json:"bank_b"`
	BankBKECIS   string `json:"bank_b_kecis"`
}

// participant is a registered participant of the demo and the directory
// of its keys under Config.Dir (signing/, encryption/, tls/; a kind it
// lacks has no directory).
type participant struct {
	id, name string
	roles    []metadata.Role
	dir      string
}

// participants are the demo's registered participants, in a stable order.
func (d *Demo) participants(cfg Config) []participant {
	ps := []participant{
		{HubID, hubName, []metadata.Role{metadata.RoleHub}, "hub"},
		{IssuerID, issuerName, []metadata.Role{metadata.RoleIssuer}, "issuer"},
		{PGID, pgName, []metadata.Role{metadata.RolePG}, "pg"},
	}
	for i, m := range d.Merchants {
		ps = append(ps, participant{m.EntityID, m.Name, []metadata.Role{metadata.RoleMerchant}, merchants[i].dir})
	}
	if cfg.Tester {
		ps = append(ps, participant{TesterID, testerName, []metadata.Role{metadata.RoleTester}, "tester"},
			participant{SecondTesterID, secondTesterName, []metadata.Role{metadata.RoleTester}, "tester2"})
	}
	ps = append(ps, participant{TelecomID, telecomName, []metadata.Role{metadata.RoleTelecom}, "telecom"})
	for _, b := range d.Banks {
		ps = append(ps, participant{b.EntityID, b.Name, []metadata.Role{metadata.RoleBank}, bankDir(b)})
	}
	return ps
}

// manifest describes the running demo; paths are relative to cfg.Dir.
func (d *Demo) manifest(cfg Config) *Manifest {
	// rel names a key file under a participant's directory when it exists.
	rel := func(dir, kind, file string) string {
		r := filepath.Join(dir, kind, file)
		if _, err := os.Stat(filepath.Join(cfg.Dir, r)); err != nil {
			return ""
		}
		return r
	}
	m := &Manifest{
		HubURL: d.HubURL, HubEntityID: HubID,
		HubCA:          filepath.Join("hub", "tls", "cert.pem"),
		HubSigningCert: filepath.Join("hub", "signing", "cert.pem"),
		Addresses: ManifestAddresses{Hub: d.HubURL, HubOps: d.HubOps, Issuer: d.IssuerKECIS, IssuerAPI: d.IssuerNative,
			Telecom: d.TelecomURL, PGAPI: d.PGNative, PGKECIS: d.PGKECIS, PGCall: d.PGCall, PGPage: d.PGPage, Shop: d.ShopURL,
			IssuerPage: d.IssuerPage, IssuerCert: d.IssuerCert, TelecomKECIS: d.TelecomKECIS},
		Merchants: []ManifestMerchant{}, Cards: []ManifestCard{}, Participants: []ManifestParticipant{},
		TestCards: []ManifestTestCard{}, SettleURL: d.IssuerNative + SettlePath, Conformance: d.conformance,
		AmountAuth: d.amountAuth, CardAuth: d.manifestCardAuth(cfg), Banks: d.manifestBanks(), Escrow: d.manifestEscrow(),
	}
	if len(d.Banks) == 2 {
		m.Addresses.BankA, m.Addresses.BankAKECIS = d.Banks[0].URL, d.Banks[0].KECIS
		m.Addresses.BankB, m.Addresses.BankBKECIS = d.Banks[1].URL, d.Banks[1].KECIS
	}
	for i, s := range d.Merchants {
		m.Merchants = append(m.Merchants, ManifestMerchant{EntityID: s.EntityID, Name: s.Name, APIKey: s.APIKey,
			TLSCert: rel(merchants[i].dir, "tls", "cert.pem"), TLSKey: rel(merchants[i].dir, "tls", "key.pem")})
	}
	for _, c := range d.Cards {
		if c.Outcome != "" {
			m.Cards = append(m.Cards, ManifestCard{Number: c.PAN.Reveal(), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Holder: c.Holder,
				Phone: c.Phone, Outcome: c.Outcome, Limit: c.Limit, Currency: "KRW", Description: c.Description})
		}
		m.TestCards = append(m.TestCards, ManifestTestCard{Number: c.PAN.Reveal(), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear,
			Outcome: c.Result, SubStatus: c.SubStatus, Problem: c.Problem, Amount: c.Amount, Currency: "KRW", Type: string(c.Type), Limit: c.Limit,
			Status: string(c.Status), Holder: c.Holder, Phone: c.Phone, Description: c.Description})
	}
	for _, p := range d.participants(cfg) {
		m.Participants = append(m.Participants, ManifestParticipant{EntityID: p.id, Name: p.name, Roles: p.roles,
			SigningCert: rel(p.dir, "signing", "cert.pem"), SigningKey: rel(p.dir, "signing", "key.pem"),
			EncryptionCert: rel(p.dir, "encryption", "cert.pem"), EncryptionKey: rel(p.dir, "encryption", "key.pem"),
			TLSCert: rel(p.dir, "tls", "cert.pem"), TLSKey: rel(p.dir, "tls", "key.pem")})
	}
	return m
}

// manifestBanks is demo.json's banks section.
func (d *Demo) manifestBanks() []ManifestBank {
	out := []ManifestBank{}
	for _, b := range d.Banks {
		mb := ManifestBank{Code: b.Code, Name: b.Name, EntityID: b.EntityID, PageURL: b.URL + "/", APIURL: b.URL,
			KECISURL: b.KECIS, AdminToken: b.AdminToken, TwoWayURL: b.TwoWayURL, Customers: []ManifestBankCustomer{}}
		for _, c := range b.Customers {
			mc := ManifestBankCustomer{Login: c.Login, Password: c.Password, Name: c.Name, Phone: c.Phone,
				PhoneURL: d.TelecomURL + "/phones/" + strings.ReplaceAll(c.Phone, "-", ""), Payee: c.Payee, Merchant: c.Merchant, Accounts: []ManifestBankAccount{}}
			for _, a := range c.Accounts {
				mc.Accounts = append(mc.Accounts, ManifestBankAccount{Number: a.Number, Deposit: a.Deposit, Currency: "KRW"})
			}
			mb.Customers = append(mb.Customers, mc)
		}
		out = append(out, mb)
	}
	return out
}

// Escrow is demo.json's escrow section: how to make a cash purchase at the
// demo shop that the hub's policy steers into escrow at bank A.
func (d *Demo) Escrow() ManifestEscrow { return d.manifestEscrow() }

// manifestEscrow is demo.json's escrow section (empty when no bank holds
// escrows).
func (d *Demo) manifestEscrow() ManifestEscrow {
	holder, settle := d.escrowBank(), d.settlementCustomer()
	if holder == nil || settle == nil {
		return ManifestEscrow{Products: []ManifestProduct{}, Services: []string{}}
	}
	m := ManifestEscrow{CheckoutURL: d.ShopURL + "/", StartURL: d.ShopURL + shopCashPath, OrderURL: d.ShopURL + shopCashOrdersPath,
		ReturnURL: d.ShopURL + shopCashReturnPath, Bank: holder.EntityID, BankCode: holder.Code, PayURL: holder.EscrowPayURL,
		PagesURL: holder.EscrowURL, Merchant: MerchantID, SettlementBank: settle.bank.Code,
		SettlementAccount: ecml.MaskAccount(settle.c.Accounts[0].Number), SettlementLogin: settle.c.Login,
		Services: slices.Clone(escrowServiceNames)}
	for _, p := range cashProducts {
		m.Products = append(m.Products, ManifestProduct{ID: p.ID, Name: p.Name, Amount: p.Price, Currency: "KRW"})
	}
	return m
}

// CardAuth is demo.json's cardauth section: how to pay with the issuer's
// cardholder authentication in the running demo, and the test cards'
// credentials (paths relative to the demo's directory).
func (d *Demo) CardAuth() ManifestCardAuth { return d.manifestCardAuth(d.cfg) }

// manifestCardAuth is demo.json's cardauth section; paths relative to
// cfg.Dir.
func (d *Demo) manifestCardAuth(cfg Config) ManifestCardAuth {
	rel := func(p string) string {
		if p == "" {
			return ""
		}
		if r, err := filepath.Rel(cfg.Dir, p); err == nil {
			return r
		}
		return p
	}
	m := ManifestCardAuth{CheckoutURL: d.ShopURL + "/", StartURL: d.ShopURL + shopCardAuthPath, ReturnURL: d.ShopURL + shopCardAuthReturnPath,
		Merchant: MerchantID, Acquirer: PGID, Issuer: IssuerID, Service: cardauth.ServiceAuthenticate, VCNService: cardauth.ServiceVCNIssue,
		PageURL: d.IssuerPage + CardAuthPagePath, CertURL: d.IssuerCert + CardAuthCertPath, Threshold: cardauth.DefaultThreshold, Currency: "KRW",
		CACert: filepath.Join("issuer", cardholderDir, "ca.pem"), Products: []ManifestProduct{}, Cards: []ManifestCardAuthCard{}}
	for _, p := range cardAuthProducts {
		m.Products = append(m.Products, ManifestProduct{ID: p.ID, Name: p.NameEN, Amount: p.Price, Currency: "KRW"})
	}
	if cfg.Tester {
		m.TesterReturnURL = testerFrontEndpoint(TesterID)
	}
	for _, c := range d.Cards {
		m.Cards = append(m.Cards, ManifestCardAuthCard{Number: c.PAN.Reveal(), Holder: c.Holder, Password: c.AuthPassword,
			TOTPSeed: c.TOTPSeed, TOTPURI: c.TOTPURI, PKCS12: rel(c.P12), PKCS12Password: c.P12Password})
	}
	return m
}

// AmountAuth is demo.json's amountauth section: how to make a purchase
// with amount authentication in the running demo.
func (d *Demo) AmountAuth() ManifestAmountAuth { return d.amountAuth }

// manifestAmountAuth is demo.json's amountauth section, from the
// sidecar's configuration: the section's options for every merchant (the
// shop sets only its return URL and name), with the engine's defaults
// where it sets none (docs/amountauth.md, "Options": the minimum purchase
// leaves 10,000 possible challenges above the lowest).
func (d *Demo) manifestAmountAuth(sc *sidecar.Config) ManifestAmountAuth {
	o, def := sc.AmountAuth.Options, amountauth.DefaultOptions
	orDefault := func(p *int64, v int64) int64 {
		if p != nil {
			return *p
		}
		return v
	}
	m := ManifestAmountAuth{CheckoutURL: d.ShopURL + "/", Merchant: MerchantID, ReturnURL: d.ShopURL + shopReturnPath,
		PageURL: sc.AmountAuth.PageURL, StartURL: d.HubURL + "/v1/amountauth/start", ConfirmURL: d.HubURL + "/v1/amountauth/confirm",
		StatusURL: d.HubURL + "/v1/amountauth/status", Method: string(def.Method), Currency: "KRW", Attempts: def.Attempts,
		TimeoutSeconds: int(def.Timeout / time.Second)}
	if o.Method != "" {
		m.Method = o.Method
	}
	m.MinPurchase = orDefault(o.MinPurchase, orDefault(o.LowestChallenge, def.LowestChallenge)+10_000)
	if o.Attempts != nil {
		m.Attempts = *o.Attempts
	}
	if o.Timeout != nil {
		m.TimeoutSeconds = int(*o.Timeout / time.Second)
	}
	return m
}

// publish writes demo.json, the last step: once it exists, everything it
// names is up. Close removes it.
func (d *Demo) publish(context.Context) error {
	if err := writeManifest(d.cfg.Dir, d.manifest(d.cfg)); err != nil {
		return err
	}
	d.onClose(func() { os.Remove(d.Manifest) })
	return nil
}

// writeManifest writes m into dir as ManifestFile, 0600, replacing the
// previous one at once (a reader never sees half a file).
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".demo-*.json") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, ManifestFile))
}

// ReadManifest reads the demo.json of the demo whose directory is dir,
// with every path resolved against dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&m.HubCA)
	abs(&m.HubSigningCert)
	for i := range m.Merchants {
		abs(&m.Merchants[i].TLSCert)
		abs(&m.Merchants[i].TLSKey)
	}
	for i := range m.Participants {
		p := &m.Participants[i]
		for _, f := range []*string{&p.SigningCert, &p.SigningKey, &p.EncryptionCert, &p.EncryptionKey, &p.TLSCert, &p.TLSKey} {
			abs(f)
		}
	}
	m.Conformance.resolve(dir)
	abs(&m.CardAuth.CACert)
	for i := range m.CardAuth.Cards {
		abs(&m.CardAuth.Cards[i].PKCS12)
	}
	return &m, nil
}
