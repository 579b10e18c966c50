package demo

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The issuer's cardholder authentication in the demo (KECIS §15.7,
// docs/demo.md "Cardholder authentication"): the issuer's cardholder CA
// and each test card's credentials — an authentication password, a TOTP
// seed and a TLS client certificate as a PKCS#12 file for a browser — and
// the authentication page (connectors/cardauth) in the issuer adapter's
// process, on an HTTPS listener of its own, with its mutual-TLS endpoint
// on another.

// Paths of the issuer's authentication page under its listeners.
const (
	CardAuthPagePath = "/cardauth"
	CardAuthCertPath = "/cardauth/certificate"
)

// cardAuthCA is the cardholder CA's directory under the issuer's
// (cert.pem, key.pem: made on first run, kept after); cardholderDir holds
// the cardholders' PKCS#12 files (card-N.p12), their password
// (p12-password) and the CA's certificate beside them (ca.pem).
const (
	cardAuthCA    = "cardholder-ca"
	cardholderDir = "cardholders"
)

// cardAuthLimits are the page's limits in the demo: people, the tests and
// the conformance suite share a few test cards from one loopback address,
// so a card may try 60 times an hour (burst 20) and the address 600 times
// (burst 100) — the engine's defaults are 10 and 30 (cardauth.DefaultLimits).
var cardAuthLimits = cardauth.Limits{CardPerHour: 60, CardBurst: 20, ClientPerHour: 600, ClientBurst: 100,
	MerchantPerMinute: 600, MerchantBurst: 100}

// cardholderCA returns the issuer's cardholder CA (PEM), made on first run
// and kept in the issuer's directory.
func (d *Demo) cardholderCA() (certPEM, keyPEM []byte, err error) {
	dir := d.path("issuer", cardAuthCA)
	cp, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, err1 := os.ReadFile(cp)
	keyPEM, err2 := os.ReadFile(kp)
	if err1 == nil && err2 == nil {
		if _, _, err := issuer.ParseCA(certPEM, keyPEM); err == nil {
			return certPEM, keyPEM, nil
		}
	}
	if certPEM, keyPEM, err = issuer.GenerateCA("KECIS Card cardholder CA (demo)", d.wallNow(), 10*365*24*time.Hour, rand.Reader); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(kp, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, os.WriteFile(cp, certPEM, 0o644)
}

// wallNow is the wall clock under the issuer's business clock
// (Config.IssuerNow in tests): the clock of the authentication page, of
// the AAVs it mints and of the issuer's authentication clock
// (issuer.Config.AuthNow), which Settle never moves.
func (d *Demo) wallNow() time.Time {
	if d.cfg.IssuerNow != nil {
		return d.cfg.IssuerNow()
	}
	return time.Now()
}

// cardAuthCredentials gives a test card its cardholder-authentication
// credentials beyond the password and TOTP seed IssueCard enrolled: a TLS
// client certificate of the issuer's CA as DIR/issuer/cardholders/card-N.p12
// (N from 1, as the cards' idempotency keys), kept across runs while the
// issuer still knows it and it is valid for another day. Only an active,
// unexpired card gets one (the CA issues none for others).
func (d *Demo) cardAuthCredentials(ctx context.Context, n int, cardID string, c *TestCard) error {
	dir := d.path("issuer", cardholderDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.Issuer.CACertificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o644); err != nil {
		return err
	}
	pw, err := secret(filepath.Join(dir, "p12-password"), 8)
	if err != nil {
		return err
	}
	c.P12Password = hex.EncodeToString(pw)
	if c.Status != issuer.CardActive || c.Result == CardExpired {
		return nil
	}
	file := filepath.Join(dir, fmt.Sprintf("card-%d.p12", n))
	if b, err := os.ReadFile(file); err == nil {
		if _, cert, _, err := pkcs12.DecodeChain(b, c.P12Password); err == nil && d.wallNow().Add(24*time.Hour).Before(cert.NotAfter) {
			if id, err := d.Issuer.CertificateCard(ctx, cert); err == nil && id == cardID {
				c.P12 = file
				return nil
			}
		}
	}
	cc, err := d.Issuer.IssueClientCertificate(ctx, cardID, c.Holder)
	if err != nil {
		return fmt.Errorf("client certificate of a test card: %w", err)
	}
	p12, err := cc.PKCS12(c.P12Password, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, p12, 0o600); err != nil {
		return err
	}
	c.P12 = file
	return nil
}

// startCardAuth serves the issuer's authentication page (KECIS §15.7) in
// the adapter's process, over h (the issuer's SDK handler: its receive
// pipeline and keys): the page on its HTTPS listener, the certificate
// factor on a mutual-TLS listener of its own (tls.RequestClientCert: the
// engine verifies the certificate against the cardholder CA and its CRL).
// It returns the endpoints and services the issuer's metadata adds.
func (d *Demo) startCardAuth(ctx context.Context, h *connectors.Handler, signer *saml.Signer, tlsCert tls.Certificate) ([]metadata.Endpoint, []metadata.OfferedService, error) {
	page, err := d.listen("authentication page", d.cfg.IssuerPage, "https", &d.IssuerPage)
	if err != nil {
		return nil, nil, err
	}
	certL, err := d.listen("authentication page's mutual-TLS endpoint", d.cfg.IssuerCert, "https", &d.IssuerCert)
	if err != nil {
		return nil, nil, err
	}
	key, err := secret(d.path("issuer", "cardauth-key"), 32)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(d.Issuer.CACertificate())
	pageURL := d.IssuerPage + CardAuthPagePath
	e, err := cardauth.New(ctx, cardauth.Config{EntityID: IssuerID, Signer: signer, Directory: d.directory(), KECIS: h,
		Store: d.Issuer.DB(), Cardholders: d.Adapter, AAV: d.aav,
		Certs:   &cardauth.CertVerifier{Roots: roots, CRL: d.Issuer.CRL},
		PageURL: pageURL, CertURL: d.IssuerCert + CardAuthCertPath, Key: key, Limits: cardAuthLimits,
		AcquirerRoles: cardAuthAcquirers(d.cfg), Now: d.wallNow, Log: d.cfg.Log.With("component", "cardauth")})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(CardAuthPagePath, e.Handler())
	mux.Handle(CardAuthPagePath+"/", e.Handler())
	d.serve(page, mux, &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12})
	cmux := http.NewServeMux()
	cmux.Handle(CardAuthCertPath, e.CertHandler())
	d.serve(certL, cmux, &tls.Config{Certificates: []tls.Certificate{tlsCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	d.background(func(ctx context.Context) error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if _, err := e.Purge(ctx); err != nil && !errors.Is(err, context.Canceled) {
					d.cfg.Log.WarnContext(ctx, "demo: cardauth purge", "error", err)
				}
			}
		}
	})
	eps := []metadata.Endpoint{
		{Service: cardauth.ServiceAuthenticate, Binding: saml.BindingHTTPPOST, Location: pageURL},
		{Service: cardauth.ServiceVCNIssue, Binding: saml.BindingHTTPPOST, Location: pageURL},
	}
	return eps, cardAuthServices(d.cfg), nil
}

// cardAuthServices are the issuer's front-channel services (KECIS §15.7,
// §15.4): Demo shop calls them — the merchant with a web site, whose
// metadata names where the page posts the browser back — and the
// conformance suite in test mode. Demo shop 2 stays a participant none of
// the issuer's services admits (the authorization module's outsider).
func cardAuthServices(cfg Config) []metadata.OfferedService {
	roles, ids := callers(cfg, metadata.RoleMerchant, MerchantID)
	var out []metadata.OfferedService
	for _, s := range []string{cardauth.ServiceAuthenticate, cardauth.ServiceVCNIssue} {
		out = append(out, metadata.OfferedService{Service: s, Callers: roles, CallerEntities: ids})
	}
	return out
}

// cardAuthAcquirers are the roles the page admits as the acquirer a
// request names: the PG, and in test mode the conformance suite, which
// names itself to receive the card it authenticated (docs/conformance.md,
// the cardauth module).
func cardAuthAcquirers(cfg Config) []metadata.Role {
	if cfg.Tester {
		return []metadata.Role{metadata.RolePG, metadata.RoleTester}
	}
	return []metadata.Role{metadata.RolePG}
}

// frontEndpoints are a requester's HTTP-POST endpoints for the issuer's
// front-channel services, where the issuer's page posts the browser back
// with its signed response (KECIS §15.7.1).
func frontEndpoints(location string) []metadata.Endpoint {
	return []metadata.Endpoint{
		{Service: cardauth.ServiceAuthenticate, Binding: saml.BindingHTTPPOST, Location: location},
		{Service: cardauth.ServiceVCNIssue, Binding: saml.BindingHTTPPOST, Location: location},
	}
}
