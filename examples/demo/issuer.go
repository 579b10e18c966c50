package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/issuer/kecisadapter"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// smsSender is the issuer's sender account at the telecom.
var smsSender = telecom.SenderAccount{ID: "kecis-card", Name: "KECIS Card", Numbers: []string{"15880000"}}

// smsKey is the API key of the issuer's sender account at the telecom,
// kept in the telecom's directory.
func (d *Demo) smsKey() (string, error) {
	b, err := secret(d.path("telecom", "issuer-api-key"), 16)
	return hex.EncodeToString(b), err
}

// startTelecom starts the mobile carrier — no KECIS participant: its SMS
// gateway and the phone pages that show the texts — with the issuer's
// sender account.
func (d *Demo) startTelecom(ctx context.Context) error {
	l, err := d.listen("SMS gateway", d.cfg.Telecom, "http", &d.TelecomURL)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.path("telecom"), 0o700); err != nil {
		return err
	}
	tel, err := telecom.Open(ctx, telecom.Config{DSN: "sqlite:" + d.path("telecom", "telecom.db"), Logger: d.cfg.Log})
	if err != nil {
		return err
	}
	d.Telecom = tel
	d.onClose(func() { tel.Close() })
	d.serve(l, tel.Handler(), nil)
	sender := smsSender
	if sender.APIKey, err = d.smsKey(); err != nil {
		return err
	}
	if err := tel.AddSender(ctx, sender); err != nil && !alreadyThere(err) {
		return fmt.Errorf("sender account: %w", err)
	}
	return nil
}

// startIssuer starts the card issuer as a company of its own: its native
// API and admin page, texting cardholders through the telecom's gateway,
// with the demo's test cards issued. Its KECIS side is startIssuerAdapter.
func (d *Demo) startIssuer(ctx context.Context) error {
	l, err := d.listen("native API", d.cfg.IssuerNative, "http", &d.IssuerNative)
	if err != nil {
		return err
	}
	smsKey, err := d.smsKey()
	if err != nil {
		return err
	}
	gw, err := sms.NewHTTPGateway(sms.GatewayConfig{Logger: d.cfg.Log, URL: d.TelecomURL + "/api/sms", APIKey: smsKey,
		MessageIDField: "message_id", DefaultFrom: smsSender.Numbers[0]})
	if err != nil {
		return err
	}
	dataKey, err := secret(d.path("issuer", "data-key"), 32)
	if err != nil {
		return err
	}
	pepper, err := secret(d.path("issuer", "pepper"), 32)
	if err != nil {
		return err
	}
	if d.Clock, err = openClock(d.cfg.IssuerNow, d.path("issuer", "clock-offset")); err != nil {
		return err
	}
	// Cardholder authentication (KECIS §15.7): the AAV key the page mints
	// with and the issuer checks approvals with, and the cardholder CA.
	// The issuer authenticates on the wall clock (AuthNow: TOTP, client
	// certificates and the CRL, AAVs, virtual numbers), which Settle never
	// moves; only its business day runs on d.Clock.
	aavKey, err := secret(d.path("issuer", "aav-key"), 32)
	if err != nil {
		return err
	}
	d.aav = &cardauth.AAV{Keys: [][]byte{aavKey}, Now: d.wallNow}
	caCert, caKey, err := d.cardholderCA()
	if err != nil {
		return fmt.Errorf("cardholder CA: %w", err)
	}
	iss, err := issuer.Open(ctx, issuer.Config{DSN: "sqlite:" + d.path("issuer", "issuer.db"), Brand: "KECIS Card", DataKey: dataKey, Pepper: pepper,
		Notifier: issuer.NotifierFunc(func(ctx context.Context, phone, text string) error {
			_, err := gw.Send(ctx, sms.Message{To: phone, Text: text})
			return err
		}), Logger: d.cfg.Log.With("component", "issuer"), Now: d.Clock.Now,
		AuthNow: d.wallNow, CACert: caCert, CAKey: caKey, AuthValues: d.aav})
	if err != nil {
		return err
	}
	d.Issuer = iss
	d.onClose(func() { iss.Close() })
	d.serve(l, d.withAdmin(iss.Handler()), nil)
	return d.issueCards(ctx)
}

// startIssuerAdapter joins the issuer to the federation: the SDK's Handler
// over the issuer (kecisadapter) on its KECIS endpoint, and its
// registration at the hub.
func (d *Demo) startIssuerAdapter(ctx context.Context) error {
	k, err := d.keys("issuer", true, devpki.TLSServer)
	if err != nil {
		return err
	}
	l, err := d.listen("KECIS endpoint", d.cfg.IssuerKECIS, "https", &d.IssuerKECIS)
	if err != nil {
		return err
	}
	idemKey, err := secret(d.path("issuer", "idempotency-key"), 32)
	if err != nil {
		return err
	}
	atRest, err := secret(d.path("issuer", "at-rest-key"), 32)
	if err != nil {
		return err
	}
	// The adapter store lives in the issuer's own database and joins its
	// group commit: a request's claim, the issuer's approval and the
	// outcome of concurrent requests share fsyncs. It is closed before the
	// issuer (closers run newest first), which closes the group and the
	// database. (A directory of an older demo may still hold
	// issuer/kecis.db, the store's file then: it is no longer read.)
	astore, err := storesql.New(ctx, d.Issuer.DB(), atRest, storesql.Shared(d.Issuer.Group()))
	if err != nil {
		return err
	}
	d.onClose(func() { astore.Close() })
	signer, err := k.signing.signer()
	if err != nil {
		return err
	}
	// The hub calls the issuer; so does the tester's attack module, in
	// test mode.
	backChannel := []string{saml.Fingerprint(d.hubTLS)}
	if d.testerTLS != nil {
		backChannel = append(backChannel, saml.Fingerprint(d.testerTLS))
	}
	// The cardholder's text names whom the issuer approved for: its
	// acquirer, the PG (merchants do not call the issuer).
	// The PG is the acquirer whose sub-merchant ID names the merchant a
	// cardholder authenticated for (KECIS §15.7.3).
	d.Adapter = &kecisadapter.Adapter{Issuer: d.Issuer, MerchantNames: map[string]string{PGID: "KECIS Pay"},
		Acquirers: map[string]bool{PGID: true}}
	endpoint := d.IssuerKECIS + "/kecis/soap"
	h, err := connectors.NewHandler(connectors.HandlerConfig{
		EntityID: IssuerID, Signer: signer, Endpoints: []string{endpoint}, Directory: d.directory(), HubEntityID: HubID,
		Decryption: k.encryption.decryption(), BackChannel: backChannel, Services: card.Services(d.Adapter),
		Store: astore, IdemKey: idemKey, Log: d.cfg.Log.With("component", "issuer"),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", h)
	d.serve(l, mux, &tls.Config{Certificates: []tls.Certificate{k.tls.tls}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	// The cardholder-authentication page: its HTTP-POST endpoints and
	// services beside the card services.
	pageEndpoints, pageServices, err := d.startCardAuth(ctx, h, signer, k.tls.tls)
	if err != nil {
		return err
	}
	return d.register(ctx, &metadata.EntityDescriptor{EntityID: IssuerID, DisplayName: issuerName, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: k.signing.cert}, {Use: metadata.UseEncryption, Certificate: k.encryption.cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: k.tls.cert}},
		Endpoints: append([]metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: endpoint}}, pageEndpoints...),
		Services:  append(issuerServices(d.cfg, d.Issuer.VirtualBINs()), pageServices...),
	})
}

// directory is a participant's view of the federation's metadata: the
// hub's, verified with its signing certificate, fetched over TLS pinned to
// the hub's certificate.
func (d *Demo) directory() *metadata.Client {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, []*x509.Certificate{d.hubTLS})}}
	return &metadata.Client{HubURL: d.HubURL, HubCerts: []*x509.Certificate{d.hubSigning}, HTTP: hc}
}

// issuerServices are the issuer's card services, for its own cards' BINs
// and its virtual BINs (KECIS §15.4: the hub routes an approval with a
// virtual number to the issuer, which de-tokenises it).
// The issuer takes card:* from its acquirer, the demo PG, never from a
// merchant (KECIS §13.2), and from the conformance suite; the verification
// approval of amount authentication (card:approve-verification, KECIS
// §15.2, §15.3) from the PG alone: a PG's engine asks for it, never a
// merchant or the suite, which tests the PG's amount authentication, not
// the issuer's.
func issuerServices(cfg Config, virtualBINs map[string]string) []metadata.OfferedService {
	var bins metadata.BINList
	for _, b := range []string{issuer.DefaultBINs[issuer.Credit], issuer.DefaultBINs[issuer.Check], issuer.DefaultBINs[issuer.Prepaid]} {
		bins = append(bins, metadata.BINRange{From: b, To: b})
	}
	for _, b := range slices.Sorted(maps.Values(virtualBINs)) {
		bins = append(bins, metadata.BINRange{From: b, To: b})
	}
	roles, ids := callers(cfg, metadata.RolePG, PGID)
	var out []metadata.OfferedService
	for _, s := range cardServices {
		out = append(out, metadata.OfferedService{Service: s, BINs: bins, Callers: roles, CallerEntities: ids})
	}
	return append(out, metadata.OfferedService{Service: card.ServiceApproveVerification, BINs: bins,
		Callers: []metadata.Role{metadata.RolePG}, CallerEntities: []string{PGID}})
}
