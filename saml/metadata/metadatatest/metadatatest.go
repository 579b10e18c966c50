// Package metadatatest provides test helpers for KECIS metadata: realistic
// generated participants (GenerateParticipants) and an in-process hub that
// serves Metadata Query and the aggregate, signed (Hub).
package metadatatest

import (
	"crypto/x509"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// poolPEM holds 8 self-signed certificates (RSA 2048 at even indices,
// ECDSA P-256 at odd ones), valid 2026-01-01 to 2036-01-01, generated once
// so that generating a thousand participants costs no key generation.
//
//go:embed pool.cert.pem
var poolPEM []byte

var pool = sync.OnceValue(func() []*x509.Certificate {
	certs, err := saml.ParseCertificatesPEM(poolPEM)
	if err != nil || len(certs) != 8 {
		panic(fmt.Sprintf("metadatatest: certificate pool: %v (%d)", err, len(certs)))
	}
	return certs
})

// Pool returns the pre-generated certificates: RSA at even indices, ECDSA
// P-256 at odd ones. Only the certificates: no test can sign with them.
func Pool() []*x509.Certificate { return slices.Clone(pool()) }

// Service URIs the generated participants offer, by role.
var servicesByRole = map[metadata.Role][]string{
	metadata.RoleIssuer:   {"card:approve", "card:cancel", "card:refund", "card:inquire", "cardauth:authenticate", "vcn:issue"},
	metadata.RolePG:       {"card:approve", "card:cancel", "card:refund", "card:inquire", "amountauth:start", "amountauth:confirm"},
	metadata.RoleBank:     {"transfer:execute", "transfer:inquire", "twoway:request", "twoway:confirm", "escrow:fund", "escrow:release", "card:inquire"},
	metadata.RoleTelecom:  {"phone:holder", "sms:send", "card:approve", "card:inquire"},
	metadata.RoleMerchant: {"order:notify", "escrow:confirm"},
}

var roleMix = [][]metadata.Role{
	{metadata.RoleMerchant},
	{metadata.RolePG},
	{metadata.RoleIssuer},
	{metadata.RoleBank},
	{metadata.RoleMerchant},
	{metadata.RoleTelecom},
	{metadata.RolePG, metadata.RoleIssuer},
	{metadata.RoleMerchant},
	{metadata.RoleIssuer, metadata.RoleBank},
	{metadata.RoleMerchant, metadata.RoleTester},
}

var bankCodes = []string{"002", "003", "004", "007", "011", "020", "023", "027", "031", "032", "034", "035", "037", "039", "045", "048", "071", "081", "088", "089", "090", "092"}

// GenerateParticipants returns n realistic, valid participants, the same
// for the same seed: each with 4 or 5 certificates (one or two signing
// keys — every fifth participant is in a rollover —, an RSA encryption key,
// a TLS client and a TLS server certificate), exactly ten endpoints (SOAP
// and HTTP-POST, primary and disaster-recovery sites, and per-service
// endpoints) and offered services with KRW/USD limits, a BIN list on the
// card services (issuers and banks: 10 to 40 prefixes and ranges of their
// own; others: the broad ranges they accept) and bank codes on a bank's
// transfer services; every tenth has md:Organization and md:ContactPerson. EntityIDs are
// https://p0042.<role>.example/kecis.
func GenerateParticipants(n int, seed uint64) []*metadata.EntityDescriptor {
	certs := pool()
	out := make([]*metadata.EntityDescriptor, n)
	for i := range n {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		roles := roleMix[i%len(roleMix)]
		host := fmt.Sprintf("p%04d.%s.example", i, roles[0])
		base := "https://" + host + "/kecis"
		ed := &metadata.EntityDescriptor{
			EntityID:    base,
			DisplayName: fmt.Sprintf("참여기관 %04d (%s)", i, roles[0]),
			Roles:       slices.Clone(roles),
		}
		sig := r.IntN(8)
		ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: certs[sig]})
		if i%5 == 0 {
			ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: certs[(sig+3)%8]})
		}
		enc := 2 * r.IntN(4)
		if enc == sig {
			enc = (enc + 2) % 8
		}
		ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseEncryption, Certificate: certs[enc]})
		ed.TLSKeys = []metadata.KeyDescriptor{
			{Use: metadata.UseTLSClient, Certificate: certs[r.IntN(8)]},
			{Use: metadata.UseTLSServer, Certificate: certs[r.IntN(8)]},
		}

		var svcs []string
		for _, role := range roles {
			for _, s := range servicesByRole[role] {
				if u := saml.ServicePrefix + s; !slices.Contains(svcs, u) {
					svcs = append(svcs, u)
				}
			}
		}
		bins := generateBINs(r, roles)
		for _, s := range svcs {
			os := metadata.OfferedService{Service: s, Callers: callersFor(roles)}
			if g, _, _ := saml.SplitService(s); slices.Contains([]string{"card", "cardauth", "vcn", "amountauth", "order"}, g) {
				os.BINs = bins
			}
			if strings.Contains(s, ":card:") || strings.Contains(s, ":transfer:") || strings.Contains(s, ":escrow:") {
				os.Limits = []metadata.Limit{{Currency: "KRW", Min: 100, Max: 10_000_000 + int64(r.IntN(90))*1_000_000}}
				if r.IntN(3) == 0 {
					os.Limits = append(os.Limits, metadata.Limit{Currency: "USD", Min: 50, Max: 500_000})
				}
			}
			if slices.Contains(roles, metadata.RoleBank) && (strings.Contains(s, ":transfer:") || strings.Contains(s, ":twoway:") || strings.Contains(s, ":escrow:")) {
				k := 1 + r.IntN(3)
				start := r.IntN(len(bankCodes) - k)
				os.BankCodes = slices.Clone(bankCodes[start : start+k])
			}
			ed.Services = append(ed.Services, os)
		}

		dr := "https://dr." + host + "/kecis"
		ed.Endpoints = []metadata.Endpoint{
			{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: base + "/soap", Priority: 0},
			{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: dr + "/soap", Priority: 10},
			{Service: metadata.AnyService, Binding: saml.BindingHTTPPOST, Location: base + "/post", Priority: 0},
			{Service: metadata.AnyService, Binding: saml.BindingHTTPPOST, Location: dr + "/post", Priority: 10},
		}
		for j := 0; len(ed.Endpoints) < 10; j++ {
			s := svcs[j%len(svcs)]
			site := j / len(svcs)
			g, op, _ := saml.SplitService(s)
			ed.Endpoints = append(ed.Endpoints, metadata.Endpoint{
				Service: s, Binding: saml.BindingSOAP,
				Location: fmt.Sprintf("https://site%d.%s/kecis/soap/%s/%s", site+1, host, g, op),
				Priority: 5 + 10*site,
			})
		}
		if i%10 == 3 {
			ed.Organization = &crewjam.Organization{
				OrganizationNames:        []crewjam.LocalizedName{{Lang: "ko", Value: fmt.Sprintf("주식회사 참여기관%04d", i)}, {Lang: "en", Value: fmt.Sprintf("Participant %04d Co., Ltd.", i)}},
				OrganizationDisplayNames: []crewjam.LocalizedName{{Lang: "ko", Value: fmt.Sprintf("참여기관 %04d", i)}},
				OrganizationURLs:         []crewjam.LocalizedURI{{Lang: "ko", Value: "https://" + host + "/"}},
			}
			ed.ContactPersons = []metadata.ContactPerson{{Type: "technical", GivenName: "길동", SurName: "홍", EmailAddresses: []string{"mailto:kecis@" + host}, TelephoneNumbers: []string{"+82-2-1234-5678"}}}
		}
		out[i] = ed
	}
	return out
}

// generateBINs returns a BIN list: an issuer's own BINs and ranges (10 to
// 40), or the broad ranges a PG or merchant accepts.
func generateBINs(r *rand.Rand, roles []metadata.Role) metadata.BINList {
	if !slices.Contains(roles, metadata.RoleIssuer) && !slices.Contains(roles, metadata.RoleBank) {
		return metadata.BINList{{From: "4", To: "4"}, {From: "51", To: "55"}, {From: "2221", To: "2720"}, {From: "35", To: "35"}, {From: "9", To: "9"}}
	}
	n := 10 + r.IntN(31)
	var l metadata.BINList
	first := []string{"4", "5", "9"}
	for range n {
		p := first[r.IntN(len(first))]
		if r.IntN(3) == 0 {
			from := 100000 + r.IntN(800000)
			from = from - from%100
			to := from + 99
			l = append(l, metadata.BINRange{From: p + fmt.Sprint(from)[1:], To: p + fmt.Sprint(to)[1:]})
			continue
		}
		b := p + fmt.Sprintf("%05d", r.IntN(100000))
		if r.IntN(4) == 0 {
			b += fmt.Sprintf("%02d", r.IntN(100)) // an 8-digit BIN
		}
		l = append(l, metadata.BINRange{From: b, To: b})
	}
	return l
}

// callersFor is who may call a generated participant's services: an
// issuer's card services its acquirers (PGs), a bank's other banks and
// PGs, everyone else's merchants and PGs.
func callersFor(roles []metadata.Role) []metadata.Role {
	switch {
	case slices.Contains(roles, metadata.RoleIssuer):
		return []metadata.Role{metadata.RolePG}
	case slices.Contains(roles, metadata.RoleBank):
		return []metadata.Role{metadata.RolePG, metadata.RoleBank}
	}
	return []metadata.Role{metadata.RoleMerchant, metadata.RolePG}
}

// Simple returns a small valid descriptor: the given signing certificates,
// an RSA encryption certificate, TLS certificates from the pool, a SOAP
// endpoint for every service and the card services.
func Simple(entityID string, signing ...*x509.Certificate) *metadata.EntityDescriptor {
	certs := pool()
	ed := &metadata.EntityDescriptor{
		EntityID:    entityID,
		DisplayName: "Test participant " + entityID,
		Roles:       []metadata.Role{metadata.RolePG},
		Keys:        []metadata.KeyDescriptor{{Use: metadata.UseEncryption, Certificate: certs[0]}},
		TLSKeys: []metadata.KeyDescriptor{
			{Use: metadata.UseTLSClient, Certificate: certs[1]},
			{Use: metadata.UseTLSServer, Certificate: certs[3]},
		},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: strings.TrimSuffix(entityID, "/") + "/soap"}},
		Services: []metadata.OfferedService{
			{Service: saml.ServiceURI("card", "approve"), Limits: []metadata.Limit{{Currency: "KRW", Min: 100, Max: 10_000_000}}, BINs: metadata.BINList{{From: "404143", To: "404143"}, {From: "411111", To: "411199"}},
				Callers: []metadata.Role{metadata.RoleMerchant, metadata.RolePG, metadata.RoleTester}},
			{Service: saml.ServiceURI("card", "cancel")}, // no callers: nobody may call it
		},
	}
	for _, c := range signing {
		ed.Keys = append(ed.Keys, metadata.KeyDescriptor{Use: metadata.UseSigning, Certificate: c})
	}
	return ed
}

// Hub is an in-process hub serving KECIS metadata from a map, signed on
// every request with its signer: GET /kecis/metadata/entities/{id} (MDQ, both
// identifier forms) and GET /kecis/metadata (the aggregate).
type Hub struct {
	*httptest.Server

	mu            sync.Mutex
	signer        *saml.Signer
	now           func() time.Time
	validFor      time.Duration
	cacheDuration time.Duration
	entities      map[string]*metadata.EntityDescriptor
	down          bool
	tamper        func([]byte) []byte
	requests      map[string]int
}

// NewHub starts a hub that signs with signer; the server is closed when
// the test ends. Descriptors are served with validUntil = now + 24h and
// cacheDuration 1h unless SetValidity changes them.
func NewHub(t testing.TB, signer *saml.Signer, now func() time.Time, entities ...*metadata.EntityDescriptor) *Hub {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	h := &Hub{
		signer: signer, now: now, validFor: 24 * time.Hour, cacheDuration: time.Hour,
		entities: map[string]*metadata.EntityDescriptor{}, requests: map[string]int{},
	}
	for _, ed := range entities {
		h.entities[ed.EntityID] = ed
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Server.Close)
	return h
}

// Put adds or replaces a participant's descriptor.
func (h *Hub) Put(ed *metadata.EntityDescriptor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entities[ed.EntityID] = ed
}

// Remove removes a participant (its lookups then get 404).
func (h *Hub) Remove(entityID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.entities, entityID)
}

// SetSigner changes the key the hub signs with (the hub's own rollover, or
// an impostor).
func (h *Hub) SetSigner(s *saml.Signer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.signer = s
}

// SetValidity sets the validUntil offset and cacheDuration of what is served.
func (h *Hub) SetValidity(validFor, cacheDuration time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.validFor, h.cacheDuration = validFor, cacheDuration
}

// SetDown makes every request fail with 503 (a hub that is unreachable).
func (h *Hub) SetDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

// SetTamper rewrites every signed response body (nil: none), to test that
// clients refuse what the hub did not sign.
func (h *Hub) SetTamper(f func([]byte) []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tamper = f
}

// Requests returns how many requests reached the hub for entityID (the
// aggregate counts under AggregatePath).
func (h *Hub) Requests(entityID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests[entityID]
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.Lock()
	down, tamper, signer := h.down, h.tamper, h.signer
	now := h.now()
	validUntil, cacheDuration := now.Add(h.validFor), h.cacheDuration
	path := r.URL.EscapedPath()
	var ed *metadata.EntityDescriptor
	var all []*metadata.EntityDescriptor
	key := ""
	status := http.StatusOK
	switch {
	case path == metadata.AggregatePath:
		key = metadata.AggregatePath
		for _, e := range h.entities {
			all = append(all, e)
		}
	case strings.HasPrefix(path, metadata.EntitiesPath):
		id, _, err := metadata.DecodeMDQ(strings.TrimPrefix(path, metadata.EntitiesPath))
		if err != nil {
			status = http.StatusBadRequest
			break
		}
		for eid, e := range h.entities {
			if metadata.MatchesMDQ(id, eid) {
				ed, key = e, eid
			}
		}
		if ed == nil {
			key, status = id, http.StatusNotFound
		}
	default:
		status = http.StatusNotFound
	}
	h.requests[key]++
	h.mu.Unlock()

	if down {
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	var body []byte
	var err error
	if ed != nil {
		c := *ed
		c.ID, c.ValidUntil, c.CacheDuration = "", validUntil, cacheDuration
		body, err = metadata.SignEntity(&c, signer)
	} else {
		slices.SortFunc(all, func(a, b *metadata.EntityDescriptor) int { return strings.Compare(a.EntityID, b.EntityID) })
		body, err = metadata.BuildAggregate(all, "urn:kecis:federation:test", "", validUntil, cacheDuration, signer)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if tamper != nil {
		body = tamper(body)
	}
	w.Header().Set("Content-Type", metadata.MediaType)
	_, _ = w.Write(body)
}
