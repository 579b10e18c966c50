// Package demo starts a whole KECIS federation on loopback: the hub, a
// simulated card issuer behind its KECIS adapter, a simulated mobile
// carrier delivering the issuer's texts to simulated phones, a payment
// gateway behind the KECIS sidecar and two merchants (SDK clients and
// JSON-facade API keys), with a development PKI generated on first run,
// every participant registered and approved, on SQLite (the hub on
// PostgreSQL with Config.Postgres). `kecis-demo`
// (make run), the end-to-end tests and the conformance suite's reference
// runs use it. It is wiring, not plumbing: it lives beside the simulated
// companies it wires, and the production `kecis` links none of them
// (docs/demo.md).
package demo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/issuer/kecisadapter"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
)

// Entity IDs of the demo federation.
const (
	HubID      = "https://hub.kecis.test/kecis"
	IssuerID   = "https://issuer.kecis.test/kecis"
	MerchantID = "https://shop.kecis.test/kecis"
	// Merchant2ID is the second shop: two merchants of the same PG, each
	// with its own keys and API key, must never see each other's payments.
	Merchant2ID = "https://shop2.kecis.test/kecis"
	PGID        = "https://pg.kecis.test/kecis"
	// TesterID is the conformance suite's participant (Config.Tester).
	TesterID = "https://tester.kecis.test/kecis"
	// SecondTesterID is the suite's second identity (Config.Tester): a
	// participant of the tester's standing, with keys of its own, that must
	// not reach the tester's payments (KECIS §13.3).
	SecondTesterID = "https://tester2.kecis.test/kecis"
)

// Display names of the demo's participants (the merchants' are in
// merchants).
const (
	hubName    = "KECIS hub (demo)"
	issuerName = "KECIS Card (demo issuer)"
	pgName     = "KECIS Pay (demo PG)"
	testerName = "KECIS conformance suite"
	// secondTesterName is the suite's second identity's.
	secondTesterName = "KECIS conformance suite (second identity)"
)

// merchants are the demo's shops: entityID, display name and the
// directory of their keys under Config.Dir.
var merchants = []struct{ id, name, dir string }{
	{MerchantID, "Demo shop", "merchant"},
	{Merchant2ID, "Demo shop 2", "merchant2"},
}

// Merchant is one of the demo's shops, registered and active at the hub.
type Merchant struct {
	EntityID string
	Name     string // its display name
	// Dir holds its keys: signing/, encryption/, tls/ (cert.pem, key.pem).
	Dir string
	// APIKey authenticates it on the hub's JSON facade (Bearer).
	APIKey string
	// Client is its SDK client for the card service.
	Client *card.Client
}

// Config of a demo.
type Config struct {
	// Dir keeps the state: keys, databases (created on first run).
	Dir string
	// Addresses; "127.0.0.1:0" picks free ports (tests).
	HubListen, HubOps, IssuerKECIS, IssuerNative, Telecom string
	// The PG: its own API, its sidecar's KECIS endpoint and calling endpoint.
	PGNative, PGKECIS, PGCall string
	// PGPage is the listener of the PG's amount-authentication page (the
	// sidecar serves it, KECIS §15.3.2); Shop the demo shop's checkout's.
	PGPage, Shop string
	// IssuerPage is the listener of the issuer's cardholder-authentication
	// page (HTTPS, KECIS §15.7), IssuerCert its mutual-TLS endpoint's (the
	// client-certificate factor): same host, another port.
	IssuerPage, IssuerCert string
	// TelecomKECIS is the listener of the telecom's KECIS endpoint (HTTPS,
	// phone:holder-check, KECIS §15.10); BankA, BankB the banks' native
	// APIs and pages (http), BankAKECIS, BankBKECIS their KECIS endpoints
	// (HTTPS, KECIS §15.8, §15.9).
	TelecomKECIS, BankA, BankAKECIS, BankB, BankBKECIS string
	// AmountAuthMethod is what the cardholder types on the PG's page:
	// "amount" (the default) or "descriptor", the code after the shop's
	// name in the text (KECIS §15.3.5).
	AmountAuthMethod string
	// RelayTimeout of the hub (default 10s).
	RelayTimeout time.Duration
	// AllowClearCard enables the facade's clear-card development mode.
	AllowClearCard bool
	// IssuerNow is the wall clock under the issuer's business clock
	// (settlement cut-offs), time.Now if nil. The demo runs the issuer on
	// Demo.Clock: this clock plus the time Settle skipped.
	IssuerNow func() time.Time
	Log       *slog.Logger
	// Postgres, when set, is a postgres:// DSN: the hub's database is
	// there instead of SQLite's hub/hub.db — in the schema the DSN's
	// search_path names, else in this directory's own schema
	// (PostgresSchema), created on first run so that demos in different
	// directories never share a registry. The simulated companies keep
	// their SQLite databases.
	Postgres string
	// Tester registers the conformance suite as a participant with the
	// `tester` role (keys under Dir/tester), and its second identity
	// (SecondTesterID, keys under Dir/tester2), and lets the issuer's back
	// channel admit the tester's TLS client certificate beside the hub's
	// (test mode).
	Tester bool
}

// TestCard is a card the demo issuer issued: real issuer state (a card
// record with its limit or balance, its status, its expiry) that produces
// one outcome (docs/merchant.md, "Test cards").
type TestCard struct {
	PAN           ecml.PAN
	Holder, Phone string
	// Type is the card's product: issuer.Credit (a credit limit) or
	// issuer.Check (a balance).
	Type        issuer.CardType
	Limit       int64
	Password    string // four digits; key-in payments send the first two
	BirthDate   string // YYMMDD
	ExpMonth    int
	ExpYear     int
	Description string
	// Outcome is what the card is for in demo.json's cards[] (the first two
	// cards): OutcomeApproved, or OutcomeLimitExceeded for a payment above
	// its small Limit; "" for the others.
	Outcome string
	// Result is what a payment of Amount with the card gives (one of the
	// Card* outcomes): the facade's sub_status then ("" for an approval),
	// or the type of the problem the hub answers when it refuses the
	// payment itself.
	Result             string
	SubStatus, Problem string
	Amount             int64
	// Status is the card's status at the issuer (active, blocked, lost);
	// Delay how long the issuer's host takes to decide on it.
	Status issuer.CardStatus
	Delay  time.Duration
	// Cardholder authentication (KECIS §15.7): AuthPassword is the card's
	// authentication password on the issuer's page; TOTPSeed (base32) and
	// TOTPURI (otpauth://) its TOTP enrolment; P12 the PKCS#12 file of its
	// TLS client certificate (absolute path; "" for a card that is not
	// active) and P12Password its password.
	AuthPassword      string
	TOTPSeed, TOTPURI string
	P12, P12Password  string
}

// Demo is a running federation.
type Demo struct {
	HubURL, HubOps, IssuerKECIS, IssuerNative, TelecomURL string
	PGNative, PGKECIS, PGCall                             string
	// PGPage is the base URL of the PG's amount-authentication page (the
	// page itself is PGPage + AmountAuthPagePath); ShopURL the demo shop's
	// checkout (KECIS §15.3.2).
	PGPage, ShopURL string
	// IssuerPage and IssuerCert are the base URLs of the issuer's
	// cardholder-authentication page (CardAuthPagePath under it) and of
	// its mutual-TLS endpoint (CardAuthCertPath), KECIS §15.7.
	IssuerPage, IssuerCert string
	// TelecomKECIS is the base URL of the telecom's KECIS endpoint.
	TelecomKECIS string
	// Banks are the demo's banks, bank A (the remitters') first.
	Banks      []*Bank
	HubTLSCert string // PEM file of the hub's TLS certificate (curl --cacert)
	Cards      []TestCard
	// Merchants are the demo's shops, in a stable order (MerchantID first).
	Merchants []*Merchant
	// Manifest is the path of demo.json (ManifestFile), written once the
	// demo is up and removed by Close.
	Manifest string

	// HubSigningCert is the PEM file of the hub's signing certificate (it
	// verifies the metadata the hub serves); TesterDir holds the tester's
	// keys (signing/, encryption/, tls/: cert.pem, key.pem) when
	// Config.Tester is set.
	HubSigningCert, TesterDir string

	Hub      *server.Server
	HubStore store.Store
	Issuer   *issuer.Issuer
	Adapter  *kecisadapter.Adapter
	Telecom  *telecom.Telecom
	PG       *pg.PG
	// Clock is the issuer's business clock: Config.IssuerNow plus the time
	// Settle skipped (docs/demo.md, "The demo's clock").
	Clock *Clock
	// PGMerchants are the PG merchant accounts (MIDs) the federation's
	// merchants pay through, one each, by entityID (the tester's too in
	// test mode).
	PGMerchants map[string]string

	// cfg is the Config, its defaults filled in and its Dir absolute.
	cfg Config
	// hubSigning and hubTLS are the hub's certificates an SDK client
	// trusts; clientTimeout bounds its calls. testerTLS is the tester's TLS
	// client certificate (test mode), which the issuer's back channel and
	// the PG's sidecar admit.
	hubSigning, hubTLS, testerTLS *x509.Certificate
	clientTimeout                 time.Duration
	// closers undo, newest first, everything started so far (Close).
	closers []func()
	// settleMu runs one Settle at a time.
	settleMu sync.Mutex
	// hubDSN is the hub's database (hubDatabase).
	hubDSN string
	// conformance is demo.json's conformance section (startConformance);
	// amountAuth its amountauth section (startPG).
	conformance ManifestConformance
	amountAuth  ManifestAmountAuth
	// aav mints (the page) and checks (the issuer) authentication values
	// with the key kept in the issuer's directory (KECIS §15.7.3).
	aav *cardauth.AAV
	// shopListener is the checkout's, bound before the merchants register
	// (listenShop).
	shopListener net.Listener
}

// step is one participant's start: its keys, listeners, state, servers and
// registration at the hub. Whatever it opens it hands to onClose at once,
// so that Close undoes it however far the step got.
type step struct {
	name  string
	start func(context.Context) error
}

// steps are the participants in the order they start, each after those
// it needs: the hub first (everyone registers with it), the tester before
// the providers that admit it, the telecom before the issuer that texts
// through it, the issuer before the PG that calls it, the shop's checkout
// before the PG that returns the cardholder's browser to it.
func (d *Demo) steps() []step {
	return []step{
		{"hub", d.startHub},
		{"tester", d.startTester},
		{"telecom", d.startTelecom},
		{"issuer", d.startIssuer},
		{"issuer adapter", d.startIssuerAdapter},
		{"telecom adapter", d.startTelecomAdapter},
		{"banks", d.startBanks},
		{"merchants", d.startMerchants},
		{"shop", d.startShop},
		{"PG", d.startPG},
		{"conformance", d.startConformance},
		{ManifestFile, d.publish},
	}
}

// Start brings the federation up, one participant after another. When a
// step fails, everything started so far — listeners, servers, stores,
// background loops — is closed, and the error names the participant.
func Start(ctx context.Context, cfg Config) (*Demo, error) {
	d, err := newDemo(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.run(ctx, d.steps()); err != nil {
		return nil, err
	}
	return d, nil
}

// run runs steps in order; the first that fails closes the demo (the
// single cleanup path).
func (d *Demo) run(ctx context.Context, steps []step) error {
	for _, s := range steps {
		if err := s.start(ctx); err != nil {
			d.Close()
			return fmt.Errorf("demo: %s: %w", s.name, err)
		}
	}
	return nil
}

// newDemo is a demo not yet started: cfg's defaults, its directory made
// absolute (the paths written into the hub's and the sidecar's
// configurations resolve against their own directories) and locked
// (LockFile: one demo per directory), a stale demo.json removed (it exists
// while a demo runs).
func newDemo(cfg Config) (*Demo, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RelayTimeout == 0 {
		cfg.RelayTimeout = 10 * time.Second
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	d := &Demo{cfg: cfg, Manifest: filepath.Join(dir, ManifestFile), clientTimeout: cfg.RelayTimeout + 10*time.Second,
		HubTLSCert: filepath.Join(dir, "hub", "tls", "cert.pem"), HubSigningCert: filepath.Join(dir, "hub", "signing", "cert.pem")}
	d.Banks = demoBanks(cfg)
	for _, m := range merchants {
		d.Merchants = append(d.Merchants, &Merchant{EntityID: m.id, Name: m.name, Dir: d.path(m.dir)})
	}
	// The directory's lock first: a second demo in the same directory
	// must stop here, before it removes the running one's demo.json.
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	d.onClose(unlock) // the first closer: released last
	if err := os.Remove(d.Manifest); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close stops everything, newest first; a second Close does nothing.
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
