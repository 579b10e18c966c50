package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The requester's side of the front channel (KECIS §10.2, §15.7): a
// merchant sends the cardholder's browser to a provider's HTTP-POST
// endpoint (the issuer's cardholder-authentication page) with a signed
// request, and later reads the signed response the browser posts back to
// the merchant's own HTTP-POST endpoint. Both directions run the SDK's
// pipeline: the request is built, encrypted and signed as Client builds a
// back-channel one; the response goes through saml.Receiver (KECIS §5.1).

// DefaultFrontLifetime is how long a front-channel request waits for its
// response: the cardholder types a password and perhaps a second factor.
const DefaultFrontLifetime = 20 * time.Minute

// FrontConfig configures a requester's front channel.
type FrontConfig struct {
	// EntityID, Signer and Decryption are the requester's own, as in
	// ClientConfig; Directory is the federation metadata.
	EntityID   string
	Signer     *saml.Signer
	Decryption []saml.DecryptionKey
	Directory  Directory
	// Replay records the IDs of the responses received (KECIS §7.2); nil
	// keeps them in memory, which is right for one process only — several
	// replicas share a store's (connectors/store.Store.Replay).
	Replay saml.ReplayCache
	// Lifetime bounds the wait for a response (default
	// DefaultFrontLifetime).
	Lifetime time.Duration
	Limits   saml.Limits
	Now      func() time.Time
	// Rand makes message IDs; nil is crypto/rand.
	Rand io.Reader
	Log  *slog.Logger
}

// FrontChannel is a requester's (a merchant's) side of the front channel.
// It keeps no state of its own between Request and ReadResponse: the
// caller keeps the FrontRequest (with its order), so that any replica can
// read the response.
type FrontChannel struct {
	cfg FrontConfig
}

// NewFrontChannel builds a requester's front channel.
func NewFrontChannel(cfg FrontConfig) (*FrontChannel, error) {
	if cfg.EntityID == "" || cfg.Signer == nil || cfg.Directory == nil {
		return nil, errors.New("connectors: EntityID, Signer and Directory are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Replay == nil {
		cfg.Replay = saml.NewMemoryReplayCache(cfg.Now)
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultFrontLifetime
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &FrontChannel{cfg: cfg}, nil
}

// FrontCall is what a front-channel request carries: the payload (KECIS
// §15.7: order, amount, currency, kx:CardAuth), the idempotency key the
// service requires when it changes state, and embedded results.
type FrontCall struct {
	IdempotencyKey string
	Payload        *ecml.Payload
	AuthResults    []*etree.Element
	// Nonce is the CSP nonce of the form's script (saml.PostForm); empty
	// for none.
	Nonce string
}

// FrontRequest is what the requester keeps of a request it sent through
// the browser until the response comes back: ReadResponse accepts only a
// response of Provider to ID, for Service, before Expires. Keep it with
// the order and use it once.
type FrontRequest struct {
	ID       string
	Provider string
	Service  string
	Expires  time.Time
}

// FrontResponse is a verified response read from the browser's post.
type FrontResponse struct {
	Status saml.Status
	// Payload is decrypted where it was encrypted for the requester; an
	// element encrypted for a third party stays an xenc:EncryptedData in
	// its slot (the card for the acquirer: Payment.EncryptedCard, KECIS
	// §8.3, §15.7), to be passed on unchanged.
	Payload *ecml.Payload
	// AuthResults are the embedded results, each verified on its own
	// (KECIS §3.2); SignedAuthResults the same results as signed elements,
	// standalone, in the same order, to embed unchanged in a later call
	// (Call.AuthResults).
	AuthResults       []*saml.AuthenticationResult
	SignedAuthResults []*etree.Element
	Response          *saml.ServiceResponse
	// Raw is the signed response as posted, for the requester's records.
	Raw []byte
}

// PostEndpoint returns entityID's HTTP-POST endpoint published for service
// itself in metadata (KECIS §10.2): an endpoint published for any service
// does not count, since a browser is sent there.
func PostEndpoint(ctx context.Context, dir Directory, entityID, service string) (string, error) {
	ed, err := dir.Lookup(ctx, entityID)
	if err != nil {
		return "", fmt.Errorf("connectors: %s: %w", entityID, err)
	}
	for _, e := range ed.EndpointsFor(service, saml.BindingHTTPPOST) {
		if e.Service == service && e.Location != "" {
			return e.Location, nil
		}
	}
	return "", fmt.Errorf("connectors: %s publishes no HTTP-POST endpoint for %s", entityID, service)
}

// Request builds the signed request for provider's service — Destination
// its HTTP-POST endpoint for the service from metadata, sensitive elements
// encrypted for it — and renders the auto-submitting form (saml.PostForm,
// SAMLRequest + relayState of at most 80 bytes) to send the browser there.
func (f *FrontChannel) Request(ctx context.Context, provider, service string, call FrontCall, relayState string) (form []byte, sent FrontRequest, err error) {
	if saml.IsMutation(service) && call.IdempotencyKey == "" {
		return nil, FrontRequest{}, fmt.Errorf("connectors: %s changes state: an idempotency key is required", service)
	}
	if len(relayState) > saml.MaxRelayState {
		return nil, FrontRequest{}, fmt.Errorf("connectors: RelayState of %d bytes; at most %d", len(relayState), saml.MaxRelayState)
	}
	dest, err := PostEndpoint(ctx, f.cfg.Directory, provider, service)
	if err != nil {
		return nil, FrontRequest{}, err
	}
	b := &saml.Builder{Issuer: f.cfg.EntityID, Now: f.cfg.Now, IDs: saml.IDSource{Rand: f.cfg.Rand}}
	req, err := b.NewRequest(dest, service)
	if err != nil {
		return nil, FrontRequest{}, err
	}
	req.IdempotencyKey, req.Payload, req.AuthResults = call.IdempotencyKey, call.Payload, call.AuthResults
	el, err := req.Element()
	if err != nil {
		return nil, FrontRequest{}, err
	}
	if err := sealFor(ctx, f.cfg.Directory, provider, el); err != nil {
		return nil, FrontRequest{}, err
	}
	msg, err := f.cfg.Signer.SignToBytes(el)
	if err != nil {
		return nil, FrontRequest{}, err
	}
	form, err = saml.PostForm(dest, "SAMLRequest", msg, relayState, call.Nonce)
	if err != nil {
		return nil, FrontRequest{}, err
	}
	return form, FrontRequest{ID: req.ID, Provider: provider, Service: service, Expires: f.cfg.Now().Add(f.cfg.Lifetime)}, nil
}

// ReadResponse reads the response the browser posts (SAMLResponse and
// RelayState, saml.ReadPost) and runs the receive pipeline of KECIS §5.1:
// the provider's signature from metadata, time, Destination = our own
// HTTP-POST endpoint for the service, InResponseTo = sent.ID from
// sent.Provider before sent.Expires, embedded results verified, the ID not
// seen before, decryption of what is ours (a third party's elements kept,
// KECIS §8.3) and ECML validation. A refusal is a *saml.Error
// (saml.AsError) for an error page; a signed non-success status is a
// FrontResponse with that Status.
func (f *FrontChannel) ReadResponse(ctx context.Context, r *http.Request, sent FrontRequest) (*FrontResponse, string, error) {
	msg, relayState, err := saml.ReadPost(r, "SAMLResponse", f.cfg.Limits)
	if err != nil {
		return nil, "", err
	}
	own, err := PostEndpoint(ctx, f.cfg.Directory, f.cfg.EntityID, sent.Service)
	if err != nil {
		return nil, relayState, saml.ErrInternal.WithCause(err)
	}
	// IDs are recorded only once every check has passed, so that a
	// response read against the wrong expectation does not burn the ID of
	// the right one; the store's Remember is the atomic step (KECIS §7.2).
	seen := &deferredReplay{}
	rc := &saml.Receiver{
		Keys:            f.cfg.Directory,
		Replay:          seen,
		Pending:         expected{sent: sent, now: f.cfg.Now},
		Destinations:    []string{own},
		Decrypter:       &saml.Decryptor{EntityID: f.cfg.EntityID, Keys: f.cfg.Decryption, Limits: f.cfg.Limits, KeepForOthers: true},
		ValidatePayload: true,
		Limits:          f.cfg.Limits,
		Now:             f.cfg.Now,
		Logger:          f.cfg.Log,
	}
	got, err := rc.ReceiveResponse(ctx, msg)
	if err != nil {
		return nil, relayState, err
	}
	resp := got.Response
	if resp.Destination != own {
		// A signed front-channel message names its Destination (SAML
		// bindings §3.5.5.2); the pipeline checked it when present.
		return nil, relayState, saml.ErrDestination.WithCausef("response %s without Destination", resp.ID)
	}
	for _, e := range seen.entries {
		if err := f.cfg.Replay.Remember(ctx, e.issuer, e.id, e.expires); err != nil {
			if errors.Is(err, saml.ErrAlreadySeen) {
				return nil, relayState, saml.ErrReplay.WithCausef("ID %q from %q posted again", e.id, e.issuer)
			}
			return nil, relayState, saml.ErrStore.WithCause(err)
		}
	}
	out := &FrontResponse{Status: resp.Status, Payload: resp.Payload, AuthResults: got.AuthResults, Response: resp, Raw: msg}
	for _, ar := range resp.AuthResults {
		out.SignedAuthResults = append(out.SignedAuthResults, saml.DetachAuthResult(ar))
	}
	return out, relayState, nil
}

// expected is the saml.PendingRequests of one ReadResponse: the one
// request the caller remembers.
type expected struct {
	sent FrontRequest
	now  func() time.Time
}

func (e expected) Add(context.Context, string, string, time.Time) error {
	return errors.New("connectors: front channel: no request is added while reading a response")
}

func (e expected) Complete(_ context.Context, id, responder string) error {
	if e.sent.ID == "" || id != e.sent.ID || responder != e.sent.Provider || !e.now().Before(e.sent.Expires) {
		return saml.ErrNotPending
	}
	return nil
}

// deferredReplay collects the IDs one ReadResponse would record.
type deferredReplay struct {
	entries []struct {
		issuer, id string
		expires    time.Time
	}
}

func (d *deferredReplay) Remember(_ context.Context, issuer, id string, expires time.Time) error {
	d.entries = append(d.entries, struct {
		issuer, id string
		expires    time.Time
	}{issuer, id, expires})
	return nil
}
