package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// expiryWarning: a certificate that expires sooner gets a warning.
const expiryWarning = 30 * 24 * time.Hour

func metadataModule() *Module {
	return &Module{
		Name:        "metadata",
		Title:       "Metadata and keys",
		Description: "The participant's KECIS metadata is well-formed, signed by the hub, names it with the plan's role, and publishes usable keys and endpoints.",
		Conditions: []*Condition{
			{ID: "metadata.well-formed", Title: "The descriptor parses strictly (one KECIS role descriptor, nothing unmodelled)",
				Clauses: []string{"KECIS §11.1", "SAML metadata §2.3.2"}, Run: func(c *C) error {
					c.Attach("metadata", "xml", c.Target.Raw)
					if c.Target.ParseErr != nil {
						return fmt.Errorf("the metadata from %s cannot be read: %v", c.Target.Source, c.Target.ParseErr)
					}
					return nil
				}},
			schemaCondition("metadata.schema", "The descriptor is valid against the KECIS schemas: an md:EntityDescriptor whose role descriptor is of kecis:ParticipantDescriptorType",
				"kecis-metadata.xsd", "kecis:ParticipantDescriptorType", metadata.NSMD, "EntityDescriptor", []string{"metadata.well-formed"}, func(c *C) ([]byte, string) {
					return c.Target.Raw, "no metadata was read"
				}),
			{ID: "metadata.hub-signed", Title: "The descriptor is the hub's: signed, with validUntil in the future",
				Clauses: []string{"KECIS §11.2", "SAML metadata §3"}, Severity: SeverityWarning, Needs: []string{"metadata.well-formed"},
				Run: func(c *C) error {
					if !c.Target.Signed {
						return fmt.Errorf("the keys are taken on trust from %s: %v (point --target-metadata at the hub's Metadata Query URL)", c.Target.Source, c.Target.SignErr)
					}
					c.Note("signed by the hub; validUntil %s", c.Descriptor().ValidUntil.Format(time.RFC3339))
					return nil
				}},
			{ID: "metadata.participant", Title: "The descriptor is the participant the profile names, in the plan's role",
				Clauses: []string{"KECIS §11.1"}, Needs: []string{"metadata.well-formed"}, Run: func(c *C) error {
					ed := c.Descriptor()
					if ed.EntityID != c.Profile.Participant {
						return fmt.Errorf("the metadata describes %s, the profile names %s", ed.EntityID, c.Profile.Participant)
					}
					for _, r := range c.plan.Roles {
						if ed.HasRole(metadata.Role(r)) {
							return nil
						}
					}
					return fmt.Errorf("plan %s certifies the role %s; the participant's roles are %v", c.plan.Name, strings.Join(c.plan.Roles, ", "), ed.Roles)
				}},
			{ID: "metadata.signing-keys", Title: "Signing certificates: at least one, of an allowed algorithm, valid now",
				Clauses: []string{"KECIS §4.2", "KECIS §4.3"}, Needs: []string{"metadata.well-formed"}, Run: func(c *C) error {
					certs := c.Descriptor().SigningCertificates()
					if len(certs) == 0 {
						return errors.New("no md:KeyDescriptor use=\"signing\"")
					}
					return checkCerts(c, certs, signingKeyOK, "signing")
				}},
			{ID: "metadata.encryption-keys", Title: "A provider publishes an RSA ≥ 2048 encryption certificate valid now",
				Clauses: []string{"KECIS §8.1", "KECIS §8.3"}, Needs: []string{"metadata.well-formed"}, Run: func(c *C) error {
					ed := c.Descriptor()
					certs := ed.EncryptionCertificates()
					if len(certs) == 0 {
						if len(ed.Services) == 0 {
							return Skip("the participant offers no service, so nothing need be encrypted for it")
						}
						return errors.New("the participant offers services but publishes no md:KeyDescriptor use=\"encryption\": card data cannot be encrypted for it")
					}
					if _, ok := ed.EncryptionCertificate(c.Now()); !ok {
						return errors.New("no encryption certificate is valid now")
					}
					return checkCerts(c, certs, encryptionKeyOK, "encryption")
				}},
			{ID: "metadata.endpoints", Title: "Every declared service has a SOAP endpoint over HTTPS",
				Clauses: []string{"KECIS §10.1", "KECIS §11.1"}, Needs: []string{"metadata.well-formed"}, Run: func(c *C) error {
					ed := c.Descriptor()
					var errs []error
					for _, s := range ed.Services {
						ep, ok := ed.Endpoint(s.Service, saml.BindingSOAP)
						switch {
						case !ok:
							errs = append(errs, fmt.Errorf("%s is declared but has no SOAP endpoint", s.Service))
						case !strings.HasPrefix(ep.Location, "https://"):
							errs = append(errs, fmt.Errorf("%s is served at %s, not over HTTPS", s.Service, ep.Location))
						default:
							c.Note("%s → %s", s.Service, ep.Location)
						}
					}
					return errors.Join(errs...)
				}},
			{ID: "metadata.tls-server", Title: "Each endpoint presents a TLS server certificate the metadata publishes",
				Clauses: []string{"KECIS §11.1", "KECIS §12.1"}, Needs: []string{"metadata.well-formed"}, Run: checkTLSServer},
		},
	}
}

func signingKeyOK(cert *x509.Certificate) error {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("RSA key of %d bits (rsa-sha256 needs 2048–8192)", n)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s (ecdsa-sha256 needs P-256)", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("%s keys cannot sign KECIS messages", cert.PublicKeyAlgorithm)
}

func encryptionKeyOK(cert *x509.Certificate) error {
	if k, ok := cert.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() >= 2048 {
		return nil
	}
	return fmt.Errorf("%s key: RSA-OAEP key transport needs RSA of at least 2048 bits", cert.PublicKeyAlgorithm)
}

func checkCerts(c *C, certs []*x509.Certificate, keyOK func(*x509.Certificate) error, use string) error {
	var errs []error
	var warn []string
	now := c.Now()
	valid := 0
	for _, cert := range certs {
		fp := saml.Fingerprint(cert)[:16]
		c.Note("%s certificate %s…: %s, %s, valid %s – %s", use, fp, cert.Subject, cert.PublicKeyAlgorithm, cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
		if err := keyOK(cert); err != nil {
			errs = append(errs, fmt.Errorf("%s certificate %s…: %w", use, fp, err))
			continue
		}
		switch {
		case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
			warn = append(warn, fmt.Sprintf("%s certificate %s… is not valid now (a rollover leftover?)", use, fp))
		case cert.NotAfter.Sub(now) < expiryWarning:
			warn = append(warn, fmt.Sprintf("%s certificate %s… expires on %s", use, fp, cert.NotAfter.Format(time.DateOnly)))
			valid++
		default:
			valid++
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if valid == 0 {
		return fmt.Errorf("no %s certificate is valid now", use)
	}
	if len(warn) > 0 {
		return Warn("%s", strings.Join(warn, "; "))
	}
	return nil
}

func checkTLSServer(c *C) error {
	ed := c.Descriptor()
	var hosts []string
	for _, ep := range ed.Endpoints {
		u, err := url.Parse(ep.Location)
		if err != nil || u.Scheme != "https" {
			continue
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		if !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	if len(hosts) == 0 {
		return Skip("the participant publishes no HTTPS endpoint")
	}
	pins := ed.TLSServerCertificates()
	if len(pins) == 0 {
		return errors.New("no kecis:TLSKeyDescriptor use=\"server\": the hub cannot pin the participant's TLS certificate")
	}
	var errs []error
	for _, h := range hosts {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: c.timeout}, Config: saml.PinnedTLS(c.Tester.TLS, pins)}
		conn, err := d.DialContext(c.Context(), "tcp", h)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", h, err))
			continue
		}
		st := conn.(*tls.Conn).ConnectionState()
		conn.Close()
		c.Note("%s presents %s (pinned), TLS %s", h, saml.Fingerprint(st.PeerCertificates[0])[:16]+"…", tls.VersionName(st.Version))
	}
	return errors.Join(errs...)
}
