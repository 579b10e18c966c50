package conformance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// ErrTesterNotReady is returned by Run, before any check, when the hub does
// not know the tester as an active participant with the profile's keys:
// every exchange through the hub would then be refused for the tester's
// sake, and each check would wrongly blame the participant.
var ErrTesterNotReady = errors.New("conformance: the tester is not ready at the hub")

// checkTester asks the hub for the tester's metadata (the Metadata Query
// protocol, KECIS §11.2, through the one verified metadata client) and
// checks that it is active there and publishes the tester's signing
// certificate and, when the profile gives one, its TLS client certificate.
// It runs only when ordinary requests go through a hub.
func checkTester(ctx context.Context, hub *HubConfig, t *Tester, now func() time.Time) error {
	if hub == nil {
		return nil
	}
	mc := &metadata.Client{HubURL: hub.URL, HubCerts: hub.SigningCerts, HTTP: HubMetadataClient(hub), Now: now, NegativeTTL: -1}
	ed, err := mc.Lookup(ctx, t.EntityID)
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return fmt.Errorf("%w: %s is not registered or not active at the hub %s — ask the hub's operator to register and approve it "+
			"(docs/conformance.md), or run the suite with --own-hub", ErrTesterNotReady, t.EntityID, hub.URL)
	case err != nil:
		return fmt.Errorf("%w: could not read the tester's metadata from the hub %s: %w", ErrTesterNotReady, hub.URL, err)
	}
	if t.Signer != nil && !hasCert(ed.SigningCertificates(), t.Signer.Cert) {
		return fmt.Errorf("%w: the hub's metadata of %s does not publish the profile's tester signing certificate (SHA-256 %s): "+
			"the profile's keys are not the registered ones", ErrTesterNotReady, t.EntityID, saml.Fingerprint(t.Signer.Cert))
	}
	if len(t.TLS.Certificate) > 0 {
		leaf, err := x509.ParseCertificate(t.TLS.Certificate[0])
		if err != nil {
			return fmt.Errorf("%w: the tester's TLS client certificate: %w", ErrTesterNotReady, err)
		}
		if !hasCert(ed.TLSClientCertificates(), leaf) {
			return fmt.Errorf("%w: the hub's metadata of %s does not publish the tester's TLS client certificate (SHA-256 %s)",
				ErrTesterNotReady, t.EntityID, saml.Fingerprint(leaf))
		}
	}
	return nil
}

func hasCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(certs, func(x *x509.Certificate) bool { return x.Equal(c) })
}
