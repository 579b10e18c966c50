package connectors

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kecis/kecis/saml/metadata"
)

// Resolver finds the recipient of a call from the federation metadata: the
// participant that offers the service for a card BIN (the issuer of the
// card) or a bank code. It reads the hub's aggregate through a
// metadata.Client — the one fetch-verify-cache path of the SDK (verified
// against the hub's pinned certificates, cached for its cacheDuration,
// served stale while its validUntil holds and the hub is down; KECIS
// §11.2).
type Resolver struct {
	// Metadata is the federation metadata: normally the *metadata.Client
	// the Handler and the Client use as their Directory, so that one cache
	// serves all three. When nil, the Resolver makes a Client of its own
	// from HubURL, HubCerts, HTTP and Now on first use.
	Metadata *metadata.Client
	HubURL   string
	HubCerts []*x509.Certificate
	HTTP     *http.Client
	// Now is the clock the recipient's certificates and offers are judged
	// by; nil: Metadata's clock, else time.Now.
	Now func() time.Time
	// Self is the caller's own entityID: when set, only providers whose
	// offer admits it as a caller are chosen (KECIS §13.2).
	Self string

	once sync.Once
	md   *metadata.Client
}

// ErrNoRecipient: no participant offers the service for that card or bank.
var ErrNoRecipient = errors.New("connectors: no participant offers the service for that card or bank")

func (r *Resolver) client() *metadata.Client {
	r.once.Do(func() {
		r.md = r.Metadata
		if r.md == nil {
			r.md = &metadata.Client{HubURL: r.HubURL, HubCerts: r.HubCerts, HTTP: r.HTTP, Now: r.Now}
		}
	})
	return r.md
}

func (r *Resolver) now() time.Time {
	switch {
	case r.Now != nil:
		return r.Now()
	case r.Metadata != nil && r.Metadata.Now != nil:
		return r.Metadata.Now()
	}
	return time.Now()
}

// RecipientFor returns the participant that answers for the card BIN (its
// issuer) or the bank code (its bank) for service, with the federation's
// one matcher (metadata.Choose, KECIS §13.4): only participants of the role
// that may answer for it, whose offer admits the caller (Self, when set)
// and that hold a valid encryption certificate; the most specific BIN range
// wins, and two equally specific are refused as ambiguous (wrapping
// ErrNoRecipient and a *metadata.AmbiguousError) instead of taking the
// first.
func (r *Resolver) RecipientFor(ctx context.Context, service, bin, bank string) (string, error) {
	a, err := r.client().Aggregate(ctx)
	if err != nil {
		return "", err
	}
	q := metadata.Query{Service: service, CardBIN: bin, BankCode: bank, At: r.now()}
	if q.Role = metadata.RecipientRole(q); q.Role == "" {
		return "", fmt.Errorf("%w: neither a card BIN nor a bank code names the recipient", ErrNoRecipient)
	}
	if r.Self != "" {
		var ok bool
		if q.Caller, ok = a.Entity(r.Self); !ok {
			return "", fmt.Errorf("%w: %s is not in the federation metadata", ErrNoRecipient, r.Self)
		}
	}
	ed, err := metadata.Choose(a.Entities, q)
	if err != nil {
		if errors.Is(err, metadata.ErrNoProvider) {
			return "", ErrNoRecipient
		}
		return "", fmt.Errorf("%w: %w", ErrNoRecipient, err)
	}
	return ed.EntityID, nil
}
