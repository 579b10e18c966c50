package sidecar

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// PageService is the service whose HTTP-POST endpoint in the PG's metadata
// is the cardholder's page (KECIS §10.2, §15.3.2): a merchant's checkout
// finds where to send the browser with
// Endpoint(pg, PageService, saml.BindingHTTPPOST). The page takes the
// amount as amountauth:confirm does.
const PageService = amountauth.ServiceConfirm

// amountAuth is the sidecar's amount authentication (KECIS §15.3): the
// engine, its store in the adapter's database, the cardholder's page and
// the period of the recovery run.
type amountAuth struct {
	engine *amountauth.Engine
	store  *amountauth.SQLStore
	page   http.Handler
	every  time.Duration
}

// aaDeps is what the sidecar gives the engine: its signer, the adapter's
// database and at-rest key, the issuer's card service through the hub, the
// route to a card's issuer and the native approve.
type aaDeps struct {
	signer   *saml.Signer
	db       *sqlstore.DB
	atRest   []byte
	issuer   amountauth.Issuer
	route    func(ctx context.Context, bin string) (string, error)
	acquirer amountauth.Acquirer
	now      func() time.Time
	log      *slog.Logger
}

// newAmountAuth builds the engine of the amountauth: section (enabled):
// the HMAC key from key_file (made on first run), the sessions in the
// adapter's own database (one pool: on SQLite a second one would compete
// for the one writer) with the card sealed under the at-rest key, the
// options per merchant, the page served under page_url's path.
func newAmountAuth(ctx context.Context, cfg *Config, d aaDeps) (*amountAuth, error) {
	a := cfg.AmountAuth
	key, err := secretFile(cfg.Path(a.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("amountauth.key_file: %w", err)
	}
	sealer, err := store.NewSealer(d.atRest, nil)
	if err != nil {
		return nil, fmt.Errorf("state.at_rest_key_file: %w", err)
	}
	st, err := amountauth.NewSQLStore(ctx, d.db, sealer)
	if err != nil {
		return nil, fmt.Errorf("amountauth: the store in state.dsn: %w", err)
	}
	merchants, names := map[string]amountauth.Options{}, map[string]string{}
	for id, m := range cfg.Native.Merchants {
		if m == nil || m.AmountAuth == nil {
			continue
		}
		merchants[id] = a.engineOptions(m.AmountAuth)
		if m.AmountAuth.Name != "" {
			names[id] = m.AmountAuth.Name
		}
	}
	e, err := amountauth.New(amountauth.Config{EntityID: cfg.EntityID, Signer: d.signer, Store: st, Issuer: d.issuer,
		Acquirer: d.acquirer, Route: d.route, Key: key, Options: a.engineOptions(nil), Merchants: merchants,
		MerchantNames: names, Limits: a.engineLimits(), Now: d.now, Log: d.log})
	if err != nil {
		return nil, err
	}
	page, err := amountauth.NewPage(e, amountauth.PageConfig{Prefix: a.pagePrefix(), TrustedProxies: a.trusted()})
	if err != nil {
		return nil, fmt.Errorf("amountauth.page_url: %w", err)
	}
	every := a.RecoverEvery
	if every == 0 {
		every = DefaultRecoverEvery
	}
	return &amountAuth{engine: e, store: st, page: page, every: every}, nil
}

// issuerRoute finds a card's issuer for a verification approval: the
// participant the federation metadata names for card:approve-verification
// and the card's BIN (KECIS §13.4), that admits this PG as a caller.
func issuerRoute(r *connectors.Resolver) func(ctx context.Context, bin string) (string, error) {
	return func(ctx context.Context, bin string) (string, error) {
		return r.RecipientFor(ctx, card.ServiceApproveVerification, bin, "")
	}
}

// services are the engine's service functions, each refusing a caller
// without a native account before anything else (as the mapped services
// do, KECIS §13.3): its verified purchase could not be approved.
func (a *amountAuth) services(eng *Engine) map[string]connectors.ServiceFunc {
	out := map[string]connectors.ServiceFunc{}
	for uri, fn := range a.engine.Services() {
		out[uri] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			if _, err := eng.account(ctx, uri, r); err != nil {
				return nil, err
			}
			return fn(ctx, r)
		}
	}
	return out
}

// run is the recovery run (KECIS §15.3.3): at once, then every a.every,
// until ctx ends.
func (a *amountAuth) run(ctx context.Context) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	a.engine.Run(ctx, t.C)
}

// ready checks that the amountauth store answers (a readiness check): a
// lookup of a session that does not exist.
func (a *amountAuth) ready(ctx context.Context) error {
	if _, err := a.store.Get(ctx, "readiness-probe"); err != nil && !errors.Is(err, amountauth.ErrNotFound) {
		return fmt.Errorf("the amountauth store does not answer: %w", err)
	}
	return nil
}

// objectClaimer records the owners of the provider's objects (KECIS
// §13.3): the adapter store.
type objectClaimer interface {
	Objects(ctx context.Context, o store.Objects, now time.Time) error
}

// nativeApprove is the engine's Acquirer for a native PG (KECIS §15.3): the
// verified purchase is approved by the card:approve mapping, run for the
// merchant as a card:approve from the hub is — its native account, its
// idempotency key (the session's, so that a repeat is the same native
// request) — with the signed authentication result as the
// {kecis: authentication_results} source. The order and the approval are
// recorded as the merchant's, as the Handler records those of a
// card:approve, so that the merchant may inquire, cancel and refund the
// purchase through the hub.
type nativeApprove struct {
	engine  *Engine
	service *Service
	objects objectClaimer
	now     func() time.Time
}

var _ amountauth.Acquirer = (*nativeApprove)(nil)

// ApprovePurchase implements amountauth.Acquirer: a refusal the mapping
// decided is a *connectors.StatusError (Pending and ProviderUnavailable
// among them, which the engine asks again); an answer that cannot be read
// is a plain error (the outcome unknown: asked again with the same key).
func (a *nativeApprove) ApprovePurchase(ctx context.Context, p *amountauth.Purchase) (*card.Approval, error) {
	payload, err := purchasePayload(p)
	if err != nil {
		return nil, err
	}
	var results []string
	if p.Result != nil {
		doc := etree.NewDocument()
		doc.SetRoot(p.Result.Copy())
		b, err := doc.WriteToBytes()
		if err != nil {
			return nil, fmt.Errorf("sidecar: the authentication result: %w", err)
		}
		results = []string{base64.StdEncoding.EncodeToString(b)}
	}
	claim := func(refs []connectors.ObjectRef, perOwner bool) error {
		o := store.Objects{Owner: p.Merchant}
		for _, r := range refs {
			if r.ID != "" && r.PerOwner == perOwner {
				o.Claim = append(o.Claim, r)
			}
		}
		if o.IsZero() {
			return nil
		}
		return a.objects.Objects(ctx, o, a.now())
	}
	if err := claim(card.Objects(payload), true); err != nil {
		return nil, fmt.Errorf("sidecar: the purchase's order: %w", err)
	}
	r := &connectors.Request{Service: card.ServiceApprove, Issuer: p.Merchant, IdempotencyKey: p.IdempotencyKey, Payload: payload}
	resp, err := a.engine.run(ctx, card.ServiceApprove, a.service, r, results)
	if err != nil {
		if _, ok := connectors.AsStatus(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("sidecar: the native approve: %w", err)
	}
	if resp.Status.Code != "" && !resp.Status.OK() {
		return nil, &connectors.StatusError{Status: resp.Status}
	}
	ap, err := card.ApprovalFrom(resp.Payload)
	if err != nil {
		return nil, fmt.Errorf("sidecar: the native approve's answer: %w", err)
	}
	if ap.ApprovalNumber == "" {
		return nil, errors.New("sidecar: the native approve's answer names no approval number")
	}
	if err := claim(card.Objects(resp.Payload), false); err != nil {
		return nil, fmt.Errorf("sidecar: the purchase's approval: %w", err)
	}
	return ap, nil
}

// purchasePayload is the card:approve request of a purchase.
func purchasePayload(p *amountauth.Purchase) (*ecml.Payload, error) {
	c := p.Card
	e := &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: p.OrderID, Merchant: p.SubMerchant,
		Payment:     &ecml.Payment{Card: &ecml.Card{Number: c.Number, Name: c.Name, Type: c.Type, ExpDate: &ecml.Date{Month: c.ExpMonth, Year: c.ExpYear}}},
		Transaction: &ecml.Transaction{Type: "credit"}}
	if p.SubMerchantID != "" {
		e.MerchantInfo = &ecml.Merchant{ID: p.SubMerchantID}
	}
	if err := e.Transaction.SetMoney(p.Amount); err != nil {
		return nil, fmt.Errorf("sidecar: the purchase's amount: %w", err)
	}
	return &ecml.Payload{Ecom: e}, nil
}

// Endpoints are the endpoints the adapter's metadata publishes (KECIS
// §11): the SOAP endpoint for every service, and, when amountauth is
// enabled, the cardholder's page at page_url with the HTTP-POST binding
// (PageService; KECIS §15.3.2). The sidecar does not publish them itself:
// whoever registers the provider's metadata does.
func (c *Config) Endpoints() []metadata.Endpoint {
	out := []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: strings.TrimRight(c.PublicURL, "/") + "/kecis/soap"}}
	if c.AmountAuthEnabled() {
		out = append(out, metadata.Endpoint{Service: PageService, Binding: saml.BindingHTTPPOST, Location: c.AmountAuth.PageURL})
	}
	return out
}
