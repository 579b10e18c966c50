package connectors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The provider's side of the front channel (KECIS §10.2): a request a
// browser carries to the provider's HTTP-POST endpoint (the issuer's
// cardholder-authentication page, KECIS §15.7) runs the same receive
// pipeline as a back-channel one (KECIS §5) — only the page, not a
// ServiceFunc, answers it, and later, once the person in front of the
// browser has acted.

// FrontEndpoint names a provider's HTTP-POST endpoint: its URL (the only
// Destination accepted there) and the services it serves.
type FrontEndpoint struct {
	URL      string
	Services []string
}

// ReceiveFront runs a request carried by the browser (SAMLRequest, read
// with saml.ReadPost) through the receive pipeline of KECIS §5: size,
// shape, the signature against the issuer's metadata keys, time,
// Destination = ep.URL, embedded results, the service one of ep.Services
// and the caller admitted by this provider's metadata (KECIS §13.2),
// decryption and the ECML payload; its ID is recorded at once in the
// replay cache (KECIS §7.2), so that the same SAMLRequest posted again is
// refused; the objects a service with an object rule creates are claimed
// for the caller (KECIS §13.3). The front channel answers nothing to a refused request (KECIS
// §15.7.1): every error is for an error page, a *saml.Error whose
// category (saml.AsError) may be logged. The idempotency key is the
// caller's to keep (the page's transaction).
func (h *Handler) ReceiveFront(ctx context.Context, msg []byte, ep FrontEndpoint) (*Request, error) {
	if ep.URL == "" || len(ep.Services) == 0 {
		return nil, saml.ErrInternal.WithCausef("front endpoint without URL or services")
	}
	seen := &replayBatch{}
	rc := *h.rc
	rc.Replay = seen
	rc.Destinations = []string{ep.URL}
	rc.Authorize = func(ctx context.Context, req *saml.ServiceRequest) error {
		if !slices.Contains(ep.Services, req.Service) {
			return saml.ErrUnknownService.WithCausef("%s is not offered on %s", req.Service, ep.URL)
		}
		return h.authorizeCaller(ctx, req)
	}
	got, err := rc.ReceiveRequest(ctx, msg)
	if err != nil {
		return nil, err
	}
	if st, refused := h.remember(ctx, seen.entries); refused {
		if st.SubCode == saml.CodeReplay {
			return nil, saml.ErrReplay.WithCausef("request %s of %s posted again", got.Request.ID, got.Request.Issuer)
		}
		return nil, saml.ErrStore.WithCausef("replay cache: %s", st.Message)
	}
	sr := got.Request
	// Object level (KECIS §13.3), as Handle: what a front-channel service
	// creates (a twoway:request's order) is claimed for its caller, so that
	// its back-channel operations (twoway:status) admit the caller only.
	rule, ok := h.objects[sr.Service]
	if !ok {
		rule, ok = ObjectRuleOf(sr.Service)
	}
	if ok {
		if err := h.cfg.Store.Objects(ctx, rule.requestObjects(metadata.Caller(sr.Issuer, sr.OnBehalfOf), sr.Payload), h.cfg.Now()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, saml.ErrNotAuthorized.WithCausef("request %s of %s names another owner's object", sr.ID, sr.Issuer)
			}
			return nil, saml.ErrStore.WithCause(err)
		}
	}
	return &Request{ID: sr.ID, Service: sr.Service, Issuer: sr.Issuer, OnBehalfOf: sr.OnBehalfOf,
		IdempotencyKey: sr.IdempotencyKey, Routing: sr.Routing, Payload: sr.Payload, AuthResults: got.AuthResults}, nil
}

// ErrNoFrontEndpoint: the requester publishes no HTTP-POST endpoint for
// the service in its metadata; the front channel then posts nothing.
var ErrNoFrontEndpoint = errors.New("connectors: the requester publishes no HTTP-POST endpoint for the service")

// RequesterEndpoint is where a front-channel answer to req goes: the
// requester's (Request.Merchant) own endpoint for req.Service with the
// HTTP-POST binding in its metadata — never an address from the request
// (KECIS §15.7.1). An endpoint published for any service does not count.
func (h *Handler) RequesterEndpoint(ctx context.Context, req *Request) (string, error) {
	ed, err := h.cfg.Directory.Lookup(ctx, req.Merchant())
	if errors.Is(err, saml.ErrUnknownEntity) {
		return "", fmt.Errorf("%w: %s is not in the metadata", ErrNoFrontEndpoint, req.Merchant())
	}
	if err != nil {
		return "", err
	}
	eps := slices.Clone(ed.Endpoints)
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].Priority < eps[j].Priority })
	for _, e := range eps {
		if e.Service == req.Service && e.Binding == saml.BindingHTTPPOST && e.Location != "" {
			return e.Location, nil
		}
	}
	return "", fmt.Errorf("%w: %s, %s", ErrNoFrontEndpoint, req.Merchant(), req.Service)
}

// FrontAnswer options the answer of AnswerFront.
type FrontAnswer struct {
	// EncryptFor encrypts sensitive elements, by local name ("Card"), for
	// another participant (entityID) than the requester: the card number
	// of a cardholder authentication for the acquirer the merchant named,
	// which the merchant passes on unread (KECIS §15.7.1). Every other
	// sensitive element is encrypted for the requester.
	EncryptFor map[string]string
}

// AnswerFront signs the answer to a front-channel request: InResponseTo
// its ID, Destination the requester's endpoint (RequesterEndpoint), its
// sensitive elements encrypted (FrontAnswer, then for the requester). It
// returns the signed response, for saml.PostForm's SAMLResponse, and the
// destination to post it to.
func (h *Handler) AnswerFront(ctx context.Context, req *Request, resp *Response, opt FrontAnswer) (signed []byte, destination string, err error) {
	destination, err = h.RequesterEndpoint(ctx, req)
	if err != nil {
		return nil, "", err
	}
	if resp.Status.Code == "" {
		resp.Status.Code = saml.StatusSuccess
	}
	signed, err = h.answerTo(ctx, req.ID, req.Merchant(), destination, opt.EncryptFor, resp)
	if err != nil {
		return nil, "", err
	}
	return signed, destination, nil
}

// encryptFor encrypts the named sensitive elements of a response element
// for other participants (answerTo), in the order of their names.
func (h *Handler) encryptFor(ctx context.Context, el *etree.Element, others map[string]string) error {
	names := slices.Sorted(maps.Keys(others))
	for _, name := range names {
		recipient := others[name]
		cert, err := h.cfg.Directory.EncryptionCertificate(ctx, recipient)
		if err != nil {
			return fmt.Errorf("connectors: no encryption certificate for %s: %w", recipient, err)
		}
		if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: recipient, Cert: cert}, name); err != nil {
			return err
		}
	}
	return nil
}
