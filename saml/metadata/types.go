// Package metadata is KECIS federation metadata (KECIS §2, metadata row):
// one md:EntityDescriptor per participant with one KECIS role descriptor
// (md:RoleDescriptor xsi:type="kecis:ParticipantDescriptorType") that
// publishes the participant's roles, its signing and encryption keys
// (several at once during a rollover), the TLS client and server
// certificates the hub pins, its endpoints per service and binding, and
// the services it offers with their limits (currencies and amounts, BIN
// ranges, bank codes).
//
// The types are KECIS's own, read from and written to etree: crewjam/saml's
// EntityDescriptor has no md:Extensions and no typed role descriptors. Only
// md:Organization uses crewjam/saml's type, because it round-trips through
// encoding/xml without loss (organization_test.go proves it; its
// ContactPerson does not, so ContactPerson is KECIS's own).
//
// Parsing is strict: everything this package does not model — an unknown
// element or attribute in any namespace, a second role descriptor, an
// SPSSODescriptor, a DOCTYPE, comments — is refused with the path of the
// offending node, so that what a participant publishes is exactly what
// every reader sees. Marshalling is deterministic.
//
// The hub signs each descriptor on its own (SignEntity, served by the
// Metadata Query protocol, see EncodeMDQ) and an md:EntitiesDescriptor
// aggregate (BuildAggregate). Client looks participants up per entity,
// verifies against the hub's pinned certificate and caches; it implements
// saml.KeyResolver, so a receive pipeline uses it directly.
//
// It is also the federation's one participant model (KECIS §13): what a
// participant is trusted with (roles, offered services with their BIN
// ranges, bank codes, limits and callers), the one matcher that decides who
// serves a request (EntityDescriptor.Serves, Choose), the caller check
// (AuthorizeCall) and the choice of an encryption certificate
// (EncryptionCertificate). The hub's directory, its facade routing, its
// router and the SDK's resolver and handler all read participants through
// it; none keeps a second copy of these rules.
//
// Layering: SAML metadata is a SAML specification (saml-metadata-2.0-os),
// so the package lives beside the envelope layer. It imports only saml and
// ecml. The SDK (connectors), the examples and the conformance suite import
// it without importing anything of the hub (federation/...); the hub's
// registry, store and router import it too, never the other way round.
package metadata

import (
	"crypto/x509"
	"slices"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Namespaces of KECIS metadata.
const (
	NSMD    = "urn:oasis:names:tc:SAML:2.0:metadata"
	NSKECIS = saml.NSKECIS
	NSDSig  = saml.NSDSig
	NSXSI   = "http://www.w3.org/2001/XMLSchema-instance"
	nsXML   = "http://www.w3.org/XML/1998/namespace"
)

// ProtocolKECIS is the role descriptor's protocolSupportEnumeration.
const ProtocolKECIS = "urn:kecis:protocol:1.0"

// ParticipantDescriptorType is the local name of the xsi:type of the KECIS
// role descriptor, in NSKECIS.
const ParticipantDescriptorType = "ParticipantDescriptorType"

// AnyService is the Service of an endpoint that receives every service the
// participant offers (for which no more specific endpoint exists).
const AnyService = "*"

// Role is what a participant is in the federation.
type Role string

// Roles (KECIS §1.3, §11.1).
const (
	RoleMerchant Role = "merchant"
	RolePG       Role = "pg"
	RoleIssuer   Role = "issuer"
	RoleBank     Role = "bank"
	RoleTelecom  Role = "telecom"
	RoleTester   Role = "tester"
	// RoleHub is the federation hub's own descriptor: its signing key (for
	// the statuses it originates), its TLS certificates (providers accept
	// back-channel calls from its client certificate) and its router endpoint.
	RoleHub Role = "hub"
)

// KnownRoles lists every role, in the order the descriptor writes them.
var KnownRoles = []Role{RoleMerchant, RolePG, RoleIssuer, RoleBank, RoleTelecom, RoleTester, RoleHub}

func knownRole(r Role) bool { return slices.Contains(KnownRoles, r) }

// KeyUse is the use attribute of md:KeyDescriptor and kecis:TLSKeyDescriptor.
type KeyUse string

// Key uses. Signing and encryption keys are md:KeyDescriptors; TLS client
// and server certificates are kecis:TLSKeyDescriptors.
const (
	UseSigning    KeyUse = "signing"
	UseEncryption KeyUse = "encryption"
	UseTLSClient  KeyUse = "client"
	UseTLSServer  KeyUse = "server"
)

// KeyDescriptor is one certificate with its use. Several of one use are
// published at once during a rollover.
type KeyDescriptor struct {
	Use         KeyUse
	Certificate *x509.Certificate
}

// Endpoint is where the participant receives a service over a binding.
// Failover moves a request only between endpoints of the same participant,
// lowest Priority first.
type Endpoint struct {
	Service  string // service URI, or AnyService
	Binding  string // SAML binding URI (saml.BindingSOAP, saml.BindingHTTPPOST)
	Location string // absolute http(s) URL
	Priority int    // lower first; 0 when the attribute is absent
}

// Limit is the amount range a service accepts in one currency, in minor
// units (written as ECML amounts: KRW "100", USD "12.34").
type Limit struct {
	Currency string // ISO 4217
	Min, Max int64  // minor units, Min <= Max
}

// MinMoney returns the minimum as ecml.Money.
func (l Limit) MinMoney() ecml.Money { return ecml.Money{Minor: l.Min, Currency: l.Currency} }

// MaxMoney returns the maximum as ecml.Money.
func (l Limit) MaxMoney() ecml.Money { return ecml.Money{Minor: l.Max, Currency: l.Currency} }

// OfferedService is a service the participant provides, with its limits
// and the callers it admits (KECIS §11.1, §13.2). Empty Limits, BINs and
// BankCodes mean "no restriction of that kind"; empty Callers means that
// nobody may call the service (fail closed: who may call is declared, never
// assumed).
type OfferedService struct {
	Service   string // service URI, urn:kecis:service:<group>:<operation>
	Limits    []Limit
	BINs      BINList  // card BIN prefixes and ranges (issuers, PGs)
	BankCodes []string // Korean bank codes, 3 digits (banks)
	// Callers are the roles whose participants may call the service.
	Callers []Role
	// CallerEntities, when not empty, narrows Callers to these participants
	// (the provider's contracts): a caller must have one of Callers and be
	// listed here.
	CallerEntities []string
}

// AdmitsCaller reports whether a participant with these roles and this
// entityID may call the service (KECIS §13.2, function level): one of its
// roles is among Callers and, when CallerEntities is not empty, it is
// listed there.
func (s *OfferedService) AdmitsCaller(entityID string, roles []Role) bool {
	if !slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(s.Callers, r) }) {
		return false
	}
	return len(s.CallerEntities) == 0 || slices.Contains(s.CallerEntities, entityID)
}

// Admits reports whether the service accepts amount m: true when no limit
// is published, else when a limit in m's currency contains it.
func (s *OfferedService) Admits(m ecml.Money) bool {
	if len(s.Limits) == 0 {
		return true
	}
	for _, l := range s.Limits {
		if l.Currency == m.Currency {
			return m.Minor >= l.Min && m.Minor <= l.Max
		}
	}
	return false
}

// AdmitsBank reports whether the service accepts this bank code: true when
// no bank codes are published.
func (s *OfferedService) AdmitsBank(code string) bool {
	return len(s.BankCodes) == 0 || slices.Contains(s.BankCodes, code)
}

// ContactPerson is md:ContactPerson (SAML metadata §2.3.2.2). It is not
// crewjam/saml's type, which writes absent names as empty elements and
// drops md:Extensions (organization_test.go shows the loss).
type ContactPerson struct {
	Type             string // technical, support, administrative, billing, other
	Company          string
	GivenName        string
	SurName          string
	EmailAddresses   []string // mailto: URIs
	TelephoneNumbers []string
}

// EntityDescriptor is one participant's metadata.
type EntityDescriptor struct {
	EntityID      string
	ID            string        // xs:ID; set by SignEntity when empty
	ValidUntil    time.Time     // zero: absent
	CacheDuration time.Duration // 0: absent
	// DisplayName is published as kecis:ParticipantInfo/@DisplayName in
	// md:Extensions.
	DisplayName string

	// The KECIS role descriptor.
	Roles     []Role
	Keys      []KeyDescriptor // md:KeyDescriptor: UseSigning, UseEncryption
	TLSKeys   []KeyDescriptor // kecis:TLSKeyDescriptor: UseTLSClient, UseTLSServer
	Endpoints []Endpoint
	Services  []OfferedService

	// Organization is crewjam/saml's md:Organization (lossless, see the
	// package documentation).
	Organization   *crewjam.Organization
	ContactPersons []ContactPerson
}

// HasRole reports whether the participant has role r.
func (ed *EntityDescriptor) HasRole(r Role) bool { return slices.Contains(ed.Roles, r) }

func certsOf(keys []KeyDescriptor, use KeyUse) []*x509.Certificate {
	var out []*x509.Certificate
	for _, k := range keys {
		if k.Use == use {
			out = append(out, k.Certificate)
		}
	}
	return out
}

// SigningCertificates returns the certificates the participant signs with
// (several during a rollover; a signature's KeyInfo selects among them).
func (ed *EntityDescriptor) SigningCertificates() []*x509.Certificate {
	return certsOf(ed.Keys, UseSigning)
}

// EncryptionCertificates returns the certificates senders encrypt for.
func (ed *EntityDescriptor) EncryptionCertificates() []*x509.Certificate {
	return certsOf(ed.Keys, UseEncryption)
}

// TLSClientCertificates returns the TLS client certificates the participant
// connects with.
func (ed *EntityDescriptor) TLSClientCertificates() []*x509.Certificate {
	return certsOf(ed.TLSKeys, UseTLSClient)
}

// TLSServerCertificates returns the TLS server certificates the hub pins
// when it connects to the participant.
func (ed *EntityDescriptor) TLSServerCertificates() []*x509.Certificate {
	return certsOf(ed.TLSKeys, UseTLSServer)
}

// EncryptionCertificate returns the encryption certificate a sender should
// use at now: among those valid at now, the one that expires last (during
// a rollover, the new key). ok is false when none is valid.
func (ed *EntityDescriptor) EncryptionCertificate(now time.Time) (*x509.Certificate, bool) {
	var best *x509.Certificate
	for _, c := range ed.EncryptionCertificates() {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		if best == nil || c.NotAfter.After(best.NotAfter) {
			best = c
		}
	}
	return best, best != nil
}

// EndpointsFor returns the endpoints for service over binding, best first:
// those published for the service itself by ascending Priority, then the
// AnyService ones by ascending Priority (document order among equals).
// Whether the participant offers the service is a separate question
// (Offers).
func (ed *EntityDescriptor) EndpointsFor(service, binding string) []Endpoint {
	var exact, wild []Endpoint
	for _, e := range ed.Endpoints {
		if e.Binding != binding {
			continue
		}
		switch e.Service {
		case service:
			exact = append(exact, e)
		case AnyService:
			wild = append(wild, e)
		}
	}
	byPriority := func(a, b Endpoint) int { return a.Priority - b.Priority }
	slices.SortStableFunc(exact, byPriority)
	slices.SortStableFunc(wild, byPriority)
	return append(exact, wild...)
}

// Endpoint returns the best endpoint for service over binding (see
// EndpointsFor).
func (ed *EntityDescriptor) Endpoint(service, binding string) (Endpoint, bool) {
	eps := ed.EndpointsFor(service, binding)
	if len(eps) == 0 {
		return Endpoint{}, false
	}
	return eps[0], true
}

// HasLocation reports whether url is one of the participant's published
// endpoint URLs: a recipient accepts any of them as a message's
// Destination, so that failover between its endpoints does not break the
// check (KECIS §2, recipient row).
func (ed *EntityDescriptor) HasLocation(url string) bool {
	for _, e := range ed.Endpoints {
		if e.Location == url {
			return true
		}
	}
	return false
}

// Offers returns the offered service with that URI.
func (ed *EntityDescriptor) Offers(service string) (*OfferedService, bool) {
	for i := range ed.Services {
		if ed.Services[i].Service == service {
			return &ed.Services[i], true
		}
	}
	return nil, false
}
