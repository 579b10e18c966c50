// Package broken holds small, deliberately broken KECIS card providers
// that prove the conformance suite catches what it claims to: one skips
// signature verification, one accepts CBC (and rsa-1_5), one echoes the
// card number in its answer, one ignores replays, one refunds more than
// was approved, one answers with the wrong InResponseTo, one finds a
// payment whoever asks for it, one admits a caller of any role. Without a
// flaw the same provider is a correct one, and the suite passes it.
//
// With Config.AmountAuth the provider is a PG that also offers amount
// authentication (KECIS §15.3, NewPGKit), its verification approvals kept
// in its own card ledger; its flaws (PGFlaws) are one that never voids a
// verification approval and one that names the amounts in its answers.
//
// With Config.Bank the provider is a bank (NewBankKit: credits, holder
// inquiries, a 2-WAY page, escrow and transfer:collect with a buyer's
// page, texts behind test hooks; KECIS §15.5, §15.6, §15.8, §15.9), and
// with Config.Telecom a telecom (NewTelecomKit, §15.10); the bank's flaws
// (BankFlaws) are one that executes a 2-WAY transfer before the payee
// replies, one whose 2-WAY code is not bound to the amount, one that
// names account holders to any caller, and one that releases an escrow's
// money to the merchant when it ships, without the buyer's confirmation.
//
// A Provider is a whole participant on loopback: an in-memory card ledger
// behind the receive pipeline of package saml (not the SDK's Handler, which
// cannot be broken this way), served over the SOAP binding with TLS and a
// back-channel check of the caller's TLS client certificate, with its
// (unsigned) metadata and plain-HTTP test hooks (settle, stall). It exists
// for the suite's tests and for `kecis conformance` demonstrations; it is
// not a reference implementation.
package broken

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Flaw is what a broken provider gets wrong.
type Flaw string

// The flaws.
const (
	// None: a correct provider.
	None Flaw = "none"
	// SkipsSignatureVerification consumes requests without checking who
	// signed them (it verifies a signature of its own making instead).
	SkipsSignatureVerification Flaw = "skips-signature-verification"
	// AcceptsCBC decrypts legacy ciphertexts: AES-CBC and 3DES-CBC
	// content, rsa-1_5 key transport (as crewjam/saml's xmlenc does).
	AcceptsCBC Flaw = "accepts-cbc"
	// EchoesPAN names the card number in clear in its approvals' status
	// message.
	EchoesPAN Flaw = "echoes-pan"
	// IgnoresReplays remembers no message IDs.
	IgnoresReplays Flaw = "ignores-replays"
	// RefundsMoreThanApproved refunds whatever it is asked.
	RefundsMoreThanApproved Flaw = "refunds-more-than-approved"
	// WrongInResponseTo answers with an InResponseTo of its own making.
	WrongInResponseTo Flaw = "wrong-in-response-to"
	// FindsWithoutOwner finds an approval by its order or approval number
	// whoever asks (KECIS §13.3): any caller inquires, cancels and refunds
	// any merchant's payment.
	FindsWithoutOwner Flaw = "finds-without-owner"
	// AdmitsAnyRole serves every caller it can verify, whatever its role
	// (KECIS §13.2): the Callers its metadata declares are not enforced.
	AdmitsAnyRole Flaw = "admits-any-role"

	// NeverVoids (a PG's amount authentication) leaves every verification
	// approval standing at the issuer, whatever becomes of its session
	// (KECIS §15.3.3): a stray charge on the cardholder's card.
	NeverVoids Flaw = "never-voids"
	// EchoesChallenge (a PG's amount authentication) names the amount
	// typed and the challenge in the status message of a wrong amount.
	EchoesChallenge Flaw = "echoes-challenge"
)

// Flaws lists the flaws of the card provider (without None): NewKit runs
// the issuer plan against each.
var Flaws = []Flaw{SkipsSignatureVerification, AcceptsCBC, EchoesPAN, IgnoresReplays, RefundsMoreThanApproved, WrongInResponseTo, FindsWithoutOwner, AdmitsAnyRole}

// PGFlaws lists the flaws of a PG's amount authentication: NewPGKit runs
// the PG plan's amountauth module against each.
var PGFlaws = []Flaw{NeverVoids, EchoesChallenge}

// Card service URIs.
var (
	svcApprove = saml.ServiceURI("card", "approve")
	svcCancel  = saml.ServiceURI("card", "cancel")
	svcRefund  = saml.ServiceURI("card", "refund")
	svcInquire = saml.ServiceURI("card", "inquire")
)

// Peer is a participant the provider knows: its roles, its signing and
// encryption certificates and, when it may call the provider's back
// channel, its TLS client certificate (the tester's).
type Peer struct {
	EntityID   string
	Roles      []metadata.Role
	Signing    []*x509.Certificate
	Encryption *x509.Certificate
	TLSClient  *x509.Certificate
	// PostEndpoint is its HTTP-POST endpoint for cardholder
	// authentication (KECIS §15.7.1): where the page posts its answers.
	PostEndpoint string
}

// Card is a card the provider issued.
type Card struct {
	PAN      string
	ExpMonth string
	ExpYear  string
	Limit    int64 // KRW
}

// Config of a provider.
type Config struct {
	Flaw  Flaw
	Peers []Peer
	Cards []Card
	// AmountAuth, when set, makes the provider a PG that offers amount
	// authentication (KECIS §15.3) beside the card service.
	AmountAuth *AmountAuthConfig
	// CardAuth, when set, makes the provider an issuer with a cardholder
	// authentication page and virtual card numbers (KECIS §15.7, §15.4).
	CardAuth *CardAuthConfig
	// Bank, when set, makes the provider a bank (KECIS §15.8, §15.9,
	// §15.5) instead of a card provider; Telecom a telecom (KECIS §15.10).
	Bank    *BankConfig
	Telecom *TelecomConfig
	Now     func() time.Time
	// Rand draws challenges and session IDs (default crypto/rand).
	Rand io.Reader
}

// Provider is a running broken (or correct) card provider.
type Provider struct {
	Flaw       Flaw
	EntityID   string
	Endpoint   string
	Descriptor *metadata.EntityDescriptor
	// Metadata is the provider's descriptor, unsigned.
	Metadata []byte
	// HooksURL serves POST /settle and POST /stall, and for a PG with
	// amount authentication POST /amountauth.
	HooksURL string

	cfg      Config
	signer   *saml.Signer
	rc       *saml.Receiver
	idemKey  []byte
	rubber   *saml.Signer
	srv, hsv *http.Server

	mu        sync.Mutex
	approvals map[string]*approval // by number
	cards     map[string]*cardState
	idem      map[string]*idemRecord
	stall     map[string]time.Duration
	sessions  map[string]*aaSession // by session ID
	ca        *caState
	bank      *bankState
}

type cardState struct {
	Card
	available int64
}

type approval struct {
	number, order, merchant, pan string
	amount, refunded             int64
	state                        string
	// verification marks a verification approval (KECIS §15.2
	// approve-verification): its amount is a one-time password.
	verification bool
}

type idemRecord struct {
	fp      []byte
	status  saml.Status
	payload *ecml.Payload
	results []*etree.Element
}

// keys are made once per process: RSA generation is slow.
type keySet struct {
	signing    *saml.Signer
	encKey     *rsa.PrivateKey
	encCert    *x509.Certificate
	tlsCert    tls.Certificate
	tlsLeaf    *x509.Certificate
	rubber     *saml.Signer
	generateAt time.Time
}

var (
	keysOnce sync.Once
	keysVal  *keySet
	keysErr  error
)

func providerKeys() (*keySet, error) {
	keysOnce.Do(func() {
		now := time.Now()
		ks := &keySet{generateAt: now}
		mkSigner := func(cn string) (*saml.Signer, error) {
			k, err := saml.GenerateKey(saml.KeyECDSA, nil)
			if err != nil {
				return nil, err
			}
			c, err := saml.SelfSignedCertificate(k, cn, now, 365*24*time.Hour, nil)
			if err != nil {
				return nil, err
			}
			return saml.NewSigner(k, c)
		}
		if ks.signing, keysErr = mkSigner("KECIS broken provider signing"); keysErr != nil {
			return
		}
		if ks.rubber, keysErr = mkSigner("KECIS broken provider rubber stamp"); keysErr != nil {
			return
		}
		if ks.encKey, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if ks.encCert, keysErr = saml.SelfSignedCertificate(ks.encKey, "KECIS broken provider encryption", now, 365*24*time.Hour, nil); keysErr != nil {
			return
		}
		ks.tlsCert, ks.tlsLeaf, keysErr = serverCert(now)
		keysVal = ks
	})
	return keysVal, keysErr
}

// Start runs a provider with cfg's flaw on loopback.
func Start(cfg Config) (*Provider, error) {
	if cfg.Flaw == "" {
		cfg.Flaw = None
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	ks, err := providerKeys()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &Provider{Flaw: cfg.Flaw, cfg: cfg, signer: ks.signing, rubber: ks.rubber,
		EntityID: "https://" + string(cfg.Flaw) + ".broken.kecis.test/kecis",
		Endpoint: "https://" + l.Addr().String() + "/kecis/soap", HooksURL: "http://" + hl.Addr().String(),
		approvals: map[string]*approval{}, cards: map[string]*cardState{}, idem: map[string]*idemRecord{}, stall: map[string]time.Duration{}, sessions: map[string]*aaSession{}}
	p.idemKey = make([]byte, 32)
	_, _ = rand.Read(p.idemKey)
	for _, c := range cfg.Cards {
		p.cards[c.PAN] = &cardState{Card: c, available: c.Limit}
	}
	p.Descriptor = &metadata.EntityDescriptor{EntityID: p.EntityID, DisplayName: "Broken provider: " + string(cfg.Flaw), Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: ks.signing.Cert}, {Use: metadata.UseEncryption, Certificate: ks.encCert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: ks.tlsLeaf}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: p.Endpoint}},
		Services:  offered(svcApprove, svcCancel, svcRefund, svcInquire),
	}
	if cfg.AmountAuth != nil {
		cfg.AmountAuth.defaults()
		p.cfg.AmountAuth = cfg.AmountAuth
		p.Descriptor.Roles = []metadata.Role{metadata.RolePG}
		p.Descriptor.DisplayName = "Broken PG: " + string(cfg.Flaw)
		p.Descriptor.Services = append(p.Descriptor.Services, offeredToMerchants(svcAAStart, svcAAConfirm, svcAAStatus)...)
	}
	if p.Metadata, err = metadata.Marshal(p.Descriptor); err != nil {
		l.Close()
		hl.Close()
		return nil, err
	}
	keys := saml.StaticKeys{}
	for _, peer := range cfg.Peers {
		keys[peer.EntityID] = peer.Signing
	}
	var resolver saml.KeyResolver = keys
	if cfg.Flaw == SkipsSignatureVerification {
		resolver = saml.AnyIssuerKeys{ks.rubber.Cert}
	}
	var replay saml.ReplayCache = saml.NewMemoryReplayCache(cfg.Now)
	if cfg.Flaw == IgnoresReplays {
		replay = forgetful{}
	}
	var dec saml.Decrypter = &saml.Decryptor{EntityID: p.EntityID, Keys: []saml.DecryptionKey{{Cert: ks.encCert, Key: ks.encKey}}}
	if cfg.Flaw == AcceptsCBC {
		dec = &lenientDecrypter{key: ks.encKey}
	}
	if cfg.CardAuth != nil {
		// Approvals embed the results the provider signed itself.
		keys[p.EntityID] = []*x509.Certificate{ks.signing.Cert}
	}
	p.rc = &saml.Receiver{Keys: resolver, Replay: replay, Destinations: []string{p.Endpoint}, Decrypter: dec, ValidatePayload: true, Now: cfg.Now,
		Authorize: p.authorize}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kecis/soap", p.serveSOAP)
	hooks := http.NewServeMux()
	if cfg.CardAuth != nil {
		p.startCardAuth(mux, keys, replay, dec)
	}
	if cfg.Bank != nil {
		p.startBank(mux, hooks, keys, replay, dec)
	} else if cfg.Telecom != nil {
		p.startTelecom()
	}
	if cfg.CardAuth != nil || cfg.Bank != nil || cfg.Telecom != nil {
		if p.Metadata, err = metadata.Marshal(p.Descriptor); err != nil {
			l.Close()
			hl.Close()
			return nil, err
		}
	}
	p.srv = httpserver.New(mux, httpserver.Limits{MaxBodyBytes: httpserver.SOAPMaxBodyBytes}, nil)
	p.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ks.tlsCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	go func() { _ = p.srv.ServeTLS(l, "", "") }()
	hooks.HandleFunc("POST /settle", func(w http.ResponseWriter, _ *http.Request) { p.Settle(); w.WriteHeader(http.StatusNoContent) })
	hooks.HandleFunc("POST /stall", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Service string  `json:"service"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.stall[v.Service] = time.Duration(v.Seconds * float64(time.Second))
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	if cfg.AmountAuth != nil {
		hooks.HandleFunc("POST /amountauth", p.serveAAHook)
	}
	p.hsv = httpserver.New(hooks, httpserver.Limits{}, nil)
	go func() { _ = p.hsv.Serve(hl) }()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	_ = p.hsv.Shutdown(ctx)
}

// TLSServerCertificate is the certificate the provider's endpoint presents.
func (p *Provider) TLSServerCertificate() *x509.Certificate {
	return p.Descriptor.TLSServerCertificates()[0]
}

// Settle settles every approval, verification approvals too (the
// end-of-day run).
func (p *Provider) Settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.approvals {
		if a.state == "approved" {
			a.state = "settled"
		}
	}
}

// authorize is the function-level check (KECIS §13.2): the service is
// offered, and its callers admit the caller's roles — unless the flaw is
// AdmitsAnyRole.
func (p *Provider) authorize(_ context.Context, req *saml.ServiceRequest) error {
	if _, ok := p.Descriptor.Offers(req.Service); !ok {
		return saml.ErrUnknownService.WithCausef("%s", req.Service)
	}
	if p.Flaw == AdmitsAnyRole || (p.Flaw == RevealsHolderToNonBank && req.Service == svcHolderInquiry) {
		return nil
	}
	id := metadata.Caller(req.Issuer, req.OnBehalfOf)
	var caller *metadata.EntityDescriptor
	for _, peer := range p.cfg.Peers {
		if peer.EntityID == id {
			caller = &metadata.EntityDescriptor{EntityID: id, Roles: peer.Roles}
		}
	}
	return metadata.AuthorizeCall(p.Descriptor, caller, req.Service)
}

type forgetful struct{}

func (forgetful) Remember(context.Context, string, string, time.Time) error { return nil }

func (p *Provider) allowed(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	for _, peer := range p.cfg.Peers {
		if peer.TLSClient != nil && bytes.Equal(peer.TLSClient.Raw, r.TLS.PeerCertificates[0].Raw) {
			return true
		}
	}
	return false
}

func (p *Provider) serveSOAP(w http.ResponseWriter, r *http.Request) {
	if !p.allowed(r) {
		saml.WriteFault(w, &saml.Fault{Code: "soap:Client", String: "back-channel requests are accepted from the hub only"})
		return
	}
	msg, err := saml.ReadSOAPRequest(r, saml.Limits{})
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	out, err := p.handle(r.Context(), msg)
	if err != nil {
		saml.WriteFault(w, saml.FaultFor(err))
		return
	}
	saml.WriteSOAP(w, out)
}

// rubberStamp is the SkipsSignatureVerification flaw: it throws the
// sender's signatures away and signs the message itself, so that the
// pipeline "verifies" whatever arrived.
func (p *Provider) rubberStamp(msg []byte) ([]byte, error) {
	root, err := saml.ParseDocument(msg, saml.Limits{})
	if err != nil {
		return nil, err
	}
	var sigs []*etree.Element
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.Tag == "Signature" {
				sigs = append(sigs, c)
				continue
			}
			walk(c)
		}
	}
	walk(root)
	for _, s := range sigs {
		s.Parent().RemoveChild(s)
	}
	return p.rubber.SignToBytes(root)
}

func (p *Provider) handle(ctx context.Context, msg []byte) ([]byte, error) {
	if p.Flaw == SkipsSignatureVerification {
		var err error
		if msg, err = p.rubberStamp(msg); err != nil {
			return nil, err
		}
	}
	got, err := p.rc.ReceiveRequest(ctx, msg)
	if err != nil {
		e := saml.AsError(err)
		if e.Stage == saml.BeforeVerification {
			return nil, e
		}
		return p.answer(e.ID, e.Issuer, e.StatusValue(), nil)
	}
	req := got.Request
	p.mu.Lock()
	d := p.stall[req.Service]
	delete(p.stall, req.Service)
	p.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	var rec *idemRecord
	scope := req.Issuer + "|" + req.IdempotencyKey
	if req.IdempotencyKey != "" {
		fp := p.fingerprint(got.Verified, req)
		p.mu.Lock()
		prev := p.idem[scope]
		p.mu.Unlock()
		if prev != nil {
			if !hmac.Equal(prev.fp, fp) {
				st, _ := saml.IdemMismatch.Refusal()
				return p.answer(req.ID, req.Issuer, st, nil)
			}
			return p.answer(req.ID, req.Issuer, prev.status, prev.payload, prev.results...)
		}
		rec = &idemRecord{fp: fp}
	}
	var (
		st      saml.Status
		payload *ecml.Payload
		results []*etree.Element
	)
	switch {
	case isAmountAuth(req.Service):
		st, payload, results = p.serveAA(req)
	case isBanking(req.Service):
		st, payload = p.serveBanking(req)
	default:
		st, payload = p.serve(req)
	}
	if rec != nil {
		rec.status, rec.payload, rec.results = st, payload, results
		p.mu.Lock()
		p.idem[scope] = rec
		p.mu.Unlock()
	}
	return p.answer(req.ID, req.Issuer, st, payload, results...)
}

func (p *Provider) fingerprint(verified *etree.Element, req *saml.ServiceRequest) []byte {
	m := hmac.New(sha256.New, p.idemKey)
	fmt.Fprintf(m, "%d:%s;", len(req.Service), req.Service)
	for _, c := range verified.ChildElements() {
		if c.Tag == "Payload" {
			m.Write(saml.CanonicalizeExclusive(c, nil))
		}
	}
	return m.Sum(nil)
}

// answer signs the answer to request irt of requester, its payload's
// sensitive elements encrypted for the requester, with the
// authentication results it embeds (KECIS §3).
func (p *Provider) answer(irt, requester string, st saml.Status, payload *ecml.Payload, results ...*etree.Element) ([]byte, error) {
	if irt == "" {
		return nil, saml.ErrInternal
	}
	if p.Flaw == WrongInResponseTo {
		id, _ := saml.IDSource{}.NewID()
		irt = id
	}
	b := &saml.Builder{Issuer: p.EntityID, Now: p.cfg.Now}
	resp, err := b.NewResponse(irt, "", st)
	if err != nil {
		return nil, err
	}
	resp.Payload = payload
	for _, r := range results {
		resp.AuthResults = append(resp.AuthResults, r.Copy())
	}
	el, err := resp.Element()
	if err != nil {
		return nil, err
	}
	if payload != nil {
		for _, c := range el.ChildElements() {
			if c.Tag == "Payload" && len(ecml.SensitiveElements(c)) > 0 {
				var cert *x509.Certificate
				for _, peer := range p.cfg.Peers {
					if peer.EntityID == requester {
						cert = peer.Encryption
					}
				}
				if cert == nil {
					return nil, errors.New("broken: no encryption certificate for the requester")
				}
				if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: requester, Cert: cert}); err != nil {
					return nil, err
				}
			}
		}
	}
	return p.signer.SignToBytes(el)
}

func refusal(top, sub, msg string) (saml.Status, *ecml.Payload) {
	return saml.Status{Code: top, SubCode: sub, Message: msg}, nil
}

func (p *Provider) serve(req *saml.ServiceRequest) (saml.Status, *ecml.Payload) {
	pl := req.Payload
	if pl == nil || pl.Ecom == nil {
		return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "an Ecom payload is required")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := pl.Ecom
	switch req.Service {
	case svcApprove:
		if e.Payment == nil || e.Payment.Card == nil || e.Transaction == nil {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "an approval needs Payment/Card and Transaction")
		}
		m, err := e.Transaction.Money()
		if err != nil || m.Currency != "KRW" {
			return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "KRW amounts only")
		}
		pan := e.Payment.Card.Number.Reveal()
		var spend func()
		if p.ca != nil {
			real, commit, st := p.caCheck(req.Issuer, e, m, pan)
			if st != nil {
				return *st, nil
			}
			pan, spend = real, commit
		}
		c := p.cards[pan]
		switch {
		case c == nil:
			return refusal(saml.StatusResponder, saml.CodeInvalidCard, "unknown card")
		case e.Payment.Card.ExpDate == nil || e.Payment.Card.ExpDate.Month != c.ExpMonth || e.Payment.Card.ExpDate.Year != c.ExpYear:
			return refusal(saml.StatusResponder, saml.CodeInvalidCard, "the expiry does not match")
		case m.Minor > c.available:
			return refusal(saml.StatusResponder, saml.CodeLimitExceeded, "over the card's limit")
		}
		for _, a := range p.approvals {
			if a.merchant == req.Issuer && a.order == e.ConsumerOrderID {
				return refusal(saml.StatusResponder, saml.CodeDeclined, "the order was already approved")
			}
		}
		n, _ := rand.Int(rand.Reader, big.NewInt(1e8))
		a := &approval{number: fmt.Sprintf("%08d", n), order: e.ConsumerOrderID, merchant: req.Issuer, pan: pan, amount: m.Minor, state: "approved"}
		p.approvals[a.number] = a
		c.available -= m.Minor
		if spend != nil {
			spend()
		}
		st := saml.Status{Code: saml.StatusSuccess}
		if p.Flaw == EchoesPAN {
			st.Message = "approved for card " + pan
		}
		return st, a.payload()
	case svcCancel, svcRefund, svcInquire:
		a := p.find(req.Issuer, e)
		if a == nil {
			return refusal(saml.StatusRequester, saml.CodeDeclined, "no such approval")
		}
		switch req.Service {
		case svcCancel:
			switch a.state {
			case "approved":
				a.state = "cancelled"
				p.cards[a.pan].available += a.amount
			case "cancelled":
				return refusal(saml.StatusResponder, saml.CodeDuplicate, "already cancelled")
			default:
				return refusal(saml.StatusResponder, saml.CodePolicyViolation, "settled: refund it instead")
			}
		case svcRefund:
			if e.Transaction == nil {
				return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "a refund needs an amount")
			}
			m, err := e.Transaction.Money()
			if err != nil {
				return refusal(saml.StatusRequester, saml.CodeInvalidPayload, "a refund needs an amount")
			}
			switch {
			case a.state == "approved":
				return refusal(saml.StatusResponder, saml.CodePolicyViolation, "not settled yet: void it instead")
			case a.state == "cancelled":
				return refusal(saml.StatusResponder, saml.CodePolicyViolation, "cancelled")
			case a.refunded+m.Minor > a.amount && p.Flaw != RefundsMoreThanApproved:
				return refusal(saml.StatusResponder, saml.CodeLimitExceeded, "more than what is left to refund")
			}
			a.refunded += m.Minor
			a.state = "partially-refunded"
			if a.refunded >= a.amount {
				a.state = "refunded"
			}
		}
		return saml.Status{Code: saml.StatusSuccess}, a.payload()
	}
	return refusal(saml.StatusRequester, saml.StatusRequestUnsupported, "not offered")
}

// find returns the merchant's approval the request names: another
// merchant's reads as unknown (KECIS §13.3) — unless the flaw is
// FindsWithoutOwner.
func (p *Provider) find(merchant string, e *ecml.Ecom) *approval {
	mine := func(a *approval) bool { return a.merchant == merchant || p.Flaw == FindsWithoutOwner }
	if e.Transaction != nil && e.Transaction.Code != nil && e.Transaction.Code.Approval != "" {
		if a := p.approvals[e.Transaction.Code.Approval]; a != nil && mine(a) {
			return a
		}
		return nil
	}
	for _, a := range p.approvals {
		if mine(a) && e.ConsumerOrderID != "" && a.order == e.ConsumerOrderID {
			return a
		}
	}
	return nil
}

func (a *approval) payload() *ecml.Payload {
	t := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: a.number}, Data: &ecml.Data{Response: &ecml.Text{Value: a.state}}}
	_ = t.SetMoney(ecml.Money{Minor: a.amount, Currency: "KRW"})
	if a.refunded > 0 {
		if s, err := ecml.FormatAmount(ecml.Money{Minor: a.refunded, Currency: "KRW"}); err == nil {
			t.Data.PrivateUse = &ecml.Text{Value: "refunded=" + s}
		}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: a.order, Transaction: t}}
}

var _ crypto.Decrypter = (*rsa.PrivateKey)(nil)

// offered declares the services of a broken issuer as an honest issuer
// would: callable by its acquirers (PGs) and the conformance tester
// (KECIS §13.2).
func offered(services ...string) []metadata.OfferedService {
	out := make([]metadata.OfferedService, len(services))
	for i, s := range services {
		out[i] = metadata.OfferedService{Service: s, Callers: []metadata.Role{metadata.RolePG, metadata.RoleTester}}
	}
	return out
}
