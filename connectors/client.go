package connectors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// ClientConfig configures the calling side.
type ClientConfig struct {
	// EntityID, Signer and Decryption are the caller's own.
	EntityID   string
	Signer     *saml.Signer
	Decryption []saml.DecryptionKey
	Directory  Directory
	// HubEntityID and HubURL (the hub's base URL; requests go to
	// HubURL/kecis/soap) name the hub the caller sends through.
	HubEntityID string
	HubURL      string
	// TLSClient is the caller's TLS client certificate (one its metadata
	// publishes); HubTLS pins the hub's TLS server certificates.
	TLSClient tls.Certificate
	HubTLS    []*x509.Certificate
	// HTTP replaces the client built from TLSClient and HubTLS (tests).
	HTTP *http.Client
	// Attempts is how many messages one Call may send with the same
	// idempotency key when the outcome is unknown (default 3); Backoff
	// the pause between them.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
	Now      func() time.Time
}

// MaxIdleConnsPerHost is how many idle connections the SDK's HTTP clients
// keep to one host (the hub, a provider's native API) for the next call:
// as many as the calls a busy caller has in flight, so that concurrent
// calls reuse their connections rather than dial and handshake anew
// (net/http's default keeps 2).
const MaxIdleConnsPerHost = 32

// Client sends requests through the hub and returns verified, decrypted
// answers.
type Client struct {
	cfg  ClientConfig
	soap *saml.SOAPClient
	rc   *saml.Receiver
	pend *pendingSet
}

// NewClient builds a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.EntityID == "" || cfg.Signer == nil || cfg.Directory == nil || cfg.HubURL == "" || cfg.HubEntityID == "" {
		return nil, errors.New("connectors: EntityID, Signer, Directory, HubEntityID and HubURL are required")
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTP
	if hc == nil {
		// MaxIdleConnsPerHost: every request goes to the one hub, and
		// net/http keeps 2 idle connections per host by default — under
		// concurrent calls the rest were closed after each answer and
		// the next call paid a new TLS handshake.
		hc = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(cfg.TLSClient, cfg.HubTLS),
			MaxIdleConnsPerHost: MaxIdleConnsPerHost, IdleConnTimeout: 90 * time.Second}}
	}
	c := &Client{cfg: cfg, soap: &saml.SOAPClient{HTTP: hc}, pend: &pendingSet{m: map[string]pendingEntry{}, hub: cfg.HubEntityID, now: cfg.Now}}
	c.rc = &saml.Receiver{
		Keys:            cfg.Directory,
		Replay:          saml.NewMemoryReplayCache(cfg.Now),
		Pending:         c.pend,
		Decrypter:       &saml.Decryptor{EntityID: cfg.EntityID, Keys: cfg.Decryption},
		ValidatePayload: true,
		Now:             cfg.Now,
	}
	return c, nil
}

// Call is one service call.
type Call struct {
	Recipient      string
	Service        string
	IdempotencyKey string
	Routing        *saml.Routing
	Payload        *ecml.Payload
	AuthResults    []*etree.Element
}

// Result is a verified, decrypted answer. From is who signed it: the
// recipient, or the hub for its own statuses (Pending,
// ProviderUnavailable, refusals).
type Result struct {
	Status   saml.Status
	Payload  *ecml.Payload
	From     string
	Response *saml.ServiceResponse
	Attempts int
}

// Pending reports whether the outcome is still unknown.
//
// InFlight counts: the last attempt found an earlier one under the same
// key still being processed, so the outcome is not known yet either.
func (r *Result) Pending() bool {
	return r.Status.SubCode == saml.CodePending || r.Status.SubCode == saml.CodeInFlight
}

// Do sends the call through the hub: the request encrypted for the
// recipient and signed; when the outcome is unknown (a transport failure, a
// hub-signed Pending, ProviderUnavailable or HubUnavailable) it retries — a new message with
// the same idempotency key — up to Attempts times. The last answer is
// returned; a Pending result means: ask with the service's inquire later.
func (c *Client) Do(ctx context.Context, call Call) (*Result, error) {
	if saml.IsMutation(call.Service) && call.IdempotencyKey == "" {
		return nil, fmt.Errorf("connectors: %s changes state: an idempotency key is required", call.Service)
	}
	var last *Result
	var lastErr error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		res, err := c.once(ctx, call)
		if err == nil {
			res.Attempts = attempt
			last, lastErr = res, nil
			unknown := res.From == c.cfg.HubEntityID && (res.Status.SubCode == saml.CodePending || res.Status.SubCode == saml.CodeProviderUnavailable ||
				res.Status.SubCode == saml.CodeHubUnavailable || res.Status.SubCode == saml.CodeInFlight)
			if !unknown || call.IdempotencyKey == "" {
				return res, nil
			}
		} else {
			lastErr = err
			var te *saml.TransportError
			if !errors.As(err, &te) || call.IdempotencyKey == "" {
				return nil, err
			}
		}
		if attempt < c.cfg.Attempts {
			select {
			case <-ctx.Done():
				return last, ctx.Err()
			case <-time.After(c.cfg.Backoff * time.Duration(attempt)):
			}
		}
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

func (c *Client) once(ctx context.Context, call Call) (*Result, error) {
	ep, err := c.cfg.Directory.Endpoint(ctx, call.Recipient, call.Service, saml.BindingSOAP)
	if err != nil {
		return nil, fmt.Errorf("connectors: %s's endpoint for %s: %w", call.Recipient, call.Service, err)
	}
	b := &saml.Builder{Issuer: c.cfg.EntityID, Now: c.cfg.Now}
	req, err := b.NewRequest(ep.Location, call.Service)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey, req.Routing, req.Payload, req.AuthResults = call.IdempotencyKey, call.Routing, call.Payload, call.AuthResults
	el, err := req.Element()
	if err != nil {
		return nil, err
	}
	if err := sealFor(ctx, c.cfg.Directory, call.Recipient, el); err != nil {
		return nil, err
	}
	msg, err := c.cfg.Signer.SignToBytes(el)
	if err != nil {
		return nil, err
	}
	c.pend.add(req.ID, call.Recipient, c.cfg.Now().Add(c.cfg.Timeout+time.Minute))
	answer, err := c.soap.Send(ctx, strings.TrimRight(c.cfg.HubURL, "/")+"/kecis/soap", msg)
	if err != nil {
		c.pend.drop(req.ID)
		var f *saml.Fault
		if errors.As(err, &f) {
			return nil, fmt.Errorf("connectors: the hub refused the request before verifying it: %s", f.String)
		}
		return nil, err
	}
	got, err := c.rc.ReceiveResponse(ctx, answer)
	if err != nil {
		c.pend.drop(req.ID)
		return nil, fmt.Errorf("connectors: the answer does not verify: %w", err)
	}
	return &Result{Status: got.Response.Status, Payload: got.Response.Payload, From: got.Response.Issuer, Response: got.Response}, nil
}

// sealFor encrypts the sensitive elements left in clear in a request's
// payload for its recipient (KECIS §8.1). An xenc:EncryptedData already in
// the payload — a card encrypted by its issuer for the acquirer, which the
// caller passes on (KECIS §15.7) — is not a clear element and stays as it
// is: nothing is encrypted twice.
func sealFor(ctx context.Context, dir Directory, recipient string, el *etree.Element) error {
	p := findChild(el, "Payload")
	if p == nil || len(ecml.SensitiveElements(p)) == 0 {
		return nil
	}
	cert, err := dir.EncryptionCertificate(ctx, recipient)
	if err != nil {
		return fmt.Errorf("connectors: %s's encryption certificate: %w", recipient, err)
	}
	_, err = saml.EncryptDocument(el, &saml.Encryptor{Recipient: recipient, Cert: cert})
	return err
}

// pendingSet matches answers to requests: from the recipient, or from the
// hub for the statuses it originates.
type pendingSet struct {
	mu  sync.Mutex
	m   map[string]pendingEntry
	hub string
	now func() time.Time
}

type pendingEntry struct {
	recipient string
	expires   time.Time
}

func (p *pendingSet) add(id, recipient string, exp time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[id] = pendingEntry{recipient, exp}
}

func (p *pendingSet) drop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, id)
}

// Add implements saml.PendingRequests.
func (p *pendingSet) Add(_ context.Context, id, responder string, exp time.Time) error {
	p.add(id, responder, exp)
	return nil
}

// Complete implements saml.PendingRequests.
func (p *pendingSet) Complete(_ context.Context, id, responder string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[id]
	if !ok || !p.now().Before(e.expires) || (responder != e.recipient && responder != p.hub) {
		return saml.ErrNotPending
	}
	delete(p.m, id)
	return nil
}
