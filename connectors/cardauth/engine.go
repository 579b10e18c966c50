package cardauth

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Config configures an Engine (KECIS §15.7).
type Config struct {
	// EntityID is the issuer; Signer signs its authentication results.
	EntityID string
	Signer   *saml.Signer
	// Directory is the federation's metadata: the requester's endpoint,
	// the acquirer's encryption certificate.
	Directory connectors.Directory
	// KECIS is the issuer's SDK handler, whose receive pipeline
	// (connectors.Handler.ReceiveFront: keys, replay store, caller
	// admission, KECIS §5, §13.2) the page runs and which signs the
	// answers.
	KECIS *connectors.Handler
	// Store is the issuer's database: the page's transactions
	// (migrations component "kecis-cardauth").
	Store       *sqlstore.DB
	Cardholders Cardholders
	AAV         *AAV
	// Certs checks client certificates; nil offers no certificate factor.
	Certs *CertVerifier
	// Policy decides the factors; no rules: DefaultPolicy().
	Policy Policy
	// PageURL is the page's HTTP-POST endpoint as published in the
	// issuer's metadata for both services: the requests' Destination.
	// Handler serves it at its path.
	PageURL string
	// CertURL is the mutual-TLS endpoint's URL (CertHandler); it must be
	// on the host of PageURL (the browser's transaction cookie goes to
	// both). "" offers no certificate factor.
	CertURL string
	// AcquirerRoles are the roles a request's kx:CardAuth/@Acquirer may
	// have (default: pg). A test federation adds the tester role, so that
	// a conformance suite, registered by an operator, can receive the card
	// it authenticated; production keeps the default.
	AcquirerRoles []metadata.Role
	// Key keys the hash of card numbers for the per-card limit (at least
	// 32 bytes, an issuer secret).
	Key []byte
	// Limits are the page's rate limits; zero fields take DefaultLimits.
	Limits Limits
	// Lifetime bounds a transaction (default 10 minutes); AAVValidity the
	// value and the result (default 10 minutes); VirtualLifetime a
	// virtual number's default validity (default 30 minutes).
	Lifetime, AAVValidity, VirtualLifetime time.Duration
	// Attempts bounds the wrong entries of one transaction (default 5),
	// on top of the issuer's own count per card.
	Attempts int
	// TrustedProxies are the reverse proxies in front of the page (the
	// client's address from X-Forwarded-For, as amountauth's page).
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	Rand           io.Reader
	Log            *slog.Logger
}

// Limits are the page's limits against card-testing (KECIS §15.7.2):
// card entries per card (by keyed hash), per client (the browser's
// address) and per merchant, each a rate and a burst.
type Limits struct {
	CardPerHour, ClientPerHour, MerchantPerMinute float64
	CardBurst, ClientBurst, MerchantBurst         int
}

// DefaultLimits: a card 10 entries an hour (burst 5), a client 30 an hour
// (10), a merchant 600 a minute (100).
var DefaultLimits = Limits{CardPerHour: 10, CardBurst: 5, ClientPerHour: 30, ClientBurst: 10, MerchantPerMinute: 600, MerchantBurst: 100}

// Engine is the issuer's cardholder-authentication page.
type Engine struct {
	cfg                    Config
	store                  *sqlStore
	card, client, merchant *ratelimit.Limiter
	pagePath               string
	certOrigin, pageOrigin string
	acquirerRoles          []metadata.Role
	now                    func() time.Time
	rand                   io.Reader
	log                    *slog.Logger
}

// New checks cfg, migrates the transactions' table and returns the
// engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	switch {
	case cfg.EntityID == "" || cfg.Signer == nil || cfg.Directory == nil || cfg.KECIS == nil || cfg.Store == nil ||
		cfg.Cardholders == nil || cfg.AAV == nil || cfg.PageURL == "":
		return nil, errors.New("cardauth: EntityID, Signer, Directory, KECIS, Store, Cardholders, AAV and PageURL are required")
	case len(cfg.Key) < 32:
		return nil, errors.New("cardauth: Key must be at least 32 bytes")
	}
	if err := cfg.AAV.CheckKeys(); err != nil {
		return nil, err
	}
	if len(cfg.Policy.Rules) == 0 {
		cfg.Policy = DefaultPolicy()
	}
	if err := cfg.Policy.Check(); err != nil {
		return nil, err
	}
	pu, err := url.Parse(cfg.PageURL)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return nil, errors.New("cardauth: PageURL must be an absolute http(s) URL")
	}
	e := &Engine{pagePath: pu.Path, pageOrigin: pu.Scheme + "://" + pu.Host}
	if cfg.CertURL != "" {
		cu, err := url.Parse(cfg.CertURL)
		if err != nil || cu.Scheme != "https" || cu.Host == "" || cu.Hostname() != pu.Hostname() {
			return nil, errors.New("cardauth: CertURL must be an https URL on PageURL's host")
		}
		e.certOrigin = cu.Scheme + "://" + cu.Host
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 10 * time.Minute
	}
	if cfg.AAVValidity <= 0 {
		cfg.AAVValidity = 10 * time.Minute
	}
	if cfg.VirtualLifetime <= 0 {
		cfg.VirtualLifetime = 30 * time.Minute
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	l, d := cfg.Limits, DefaultLimits
	if l.CardPerHour <= 0 {
		l.CardPerHour, l.CardBurst = d.CardPerHour, d.CardBurst
	}
	if l.ClientPerHour <= 0 {
		l.ClientPerHour, l.ClientBurst = d.ClientPerHour, d.ClientBurst
	}
	if l.MerchantPerMinute <= 0 {
		l.MerchantPerMinute, l.MerchantBurst = d.MerchantPerMinute, d.MerchantBurst
	}
	cfg.Limits = l
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AAV.Now == nil {
		cfg.AAV.Now = cfg.Now
	}
	st, err := newSQLStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	e.cfg, e.store, e.now, e.rand, e.log = cfg, st, cfg.Now, cfg.Rand, cfg.Log
	e.acquirerRoles = cfg.AcquirerRoles
	if len(e.acquirerRoles) == 0 {
		e.acquirerRoles = []metadata.Role{metadata.RolePG}
	}
	e.card = ratelimit.New(ratelimit.Config{PerSecond: l.CardPerHour / 3600, Burst: max(l.CardBurst, 1)}, cfg.Now)
	e.client = ratelimit.New(ratelimit.Config{PerSecond: l.ClientPerHour / 3600, Burst: max(l.ClientBurst, 1)}, cfg.Now)
	e.merchant = ratelimit.New(ratelimit.Config{PerSecond: l.MerchantPerMinute / 60, Burst: max(l.MerchantBurst, 1)}, cfg.Now)
	return e, nil
}

// Handler is the page (KECIS §15.7), served at PageURL's path P:
//
//   - POST P takes the merchant checkout's form (SAMLRequest, RelayState)
//     and shows the card form;
//   - POST P/card takes the card number and password;
//   - POST P/totp takes a TOTP code;
//   - POST P/cancel ends the transaction at the cardholder's wish.
//
// Every outcome posts the signed response to the requester's endpoint
// with an auto-submitting form (a button without JavaScript).
func (e *Engine) Handler() http.Handler { return http.HandlerFunc(e.servePage) }

// CertHandler is the mutual-TLS endpoint (CertURL): mount it on a listener
// with tls.Config{ClientAuth: tls.RequestClientCert} (the certificate is
// verified here, by CertVerifier, not by the handshake). POST CertURL
// takes the transaction (the page's form) with the browser's client
// certificate as the second factor.
func (e *Engine) CertHandler() http.Handler { return http.HandlerFunc(e.serveCert) }
