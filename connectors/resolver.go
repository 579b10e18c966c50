package connectors

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/saml/metadata"
)

// Resolver finds the recipient of a call from the federation metadata: the
// participant that offers the service for a card BIN (the issuer of the
// card) or a bank code. It reads the hub's signed aggregate, verified
// against the hub's pinned certificate, and caches it for its
// cacheDuration (at most MaxAge).
type Resolver struct {
	HubURL   string
	HubCerts []*x509.Certificate
	HTTP     *http.Client
	Now      func() time.Time
	MaxAge   time.Duration
	// Self is the caller's own entityID: when set, only providers whose
	// offer admits it as a caller are chosen (KECIS §13.2).
	Self string

	mu      sync.Mutex
	agg     *metadata.Aggregate
	fetched time.Time
}

// ErrNoRecipient: no participant offers the service for that card or bank.
var ErrNoRecipient = errors.New("connectors: no participant offers the service for that card or bank")

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) aggregate(ctx context.Context) (*metadata.Aggregate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	maxAge := r.MaxAge
	if maxAge == 0 {
		maxAge = 5 * time.Minute
	}
	if r.agg != nil && r.now().Sub(r.fetched) < maxAge && (r.agg.CacheDuration == 0 || r.now().Sub(r.fetched) < r.agg.CacheDuration) {
		return r.agg, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(r.HubURL, "/")+metadata.AggregatePath, nil)
	if err != nil {
		return nil, err
	}
	hc := r.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if r.agg != nil && r.now().Before(r.agg.ValidUntil) {
			return r.agg, nil // stale but still valid
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, metadata.MaxAggregateBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("connectors: the hub answered %d for its metadata", resp.StatusCode)
	}
	a, err := metadata.VerifyAggregate(data, r.HubCerts, r.now())
	if err != nil {
		return nil, err
	}
	r.agg, r.fetched = a, r.now()
	return a, nil
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
	a, err := r.aggregate(ctx)
	if err != nil {
		return "", err
	}
	q := metadata.Query{Service: service, CardBIN: bin, BankCode: bank, At: r.now()}
	if q.Role = metadata.RecipientRole(q); q.Role == "" {
		return "", fmt.Errorf("%w: neither a card BIN nor a bank code names the recipient", ErrNoRecipient)
	}
	if r.Self != "" {
		for _, ed := range a.Entities {
			if ed.EntityID == r.Self {
				q.Caller = ed
			}
		}
		if q.Caller == nil {
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
