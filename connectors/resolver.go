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

// RecipientFor returns the participant offering service for the card BIN
// (the most specific range wins) or the bank code.
func (r *Resolver) RecipientFor(ctx context.Context, service, bin, bank string) (string, error) {
	a, err := r.aggregate(ctx)
	if err != nil {
		return "", err
	}
	best, bestLen := "", -1
	for _, ed := range a.Entities {
		for _, s := range ed.Services {
			if s.Service != service {
				continue
			}
			switch {
			case bin != "" && len(s.BINs) > 0:
				for _, rg := range s.BINs {
					// Specificity: a longer prefix, then a narrower range.
					if rg.Contains(bin) {
						l := len(rg.From)*10 - rangeWidth(rg)
						if l > bestLen {
							best, bestLen = ed.EntityID, l
						}
					}
				}
			case bank != "" && len(s.BankCodes) > 0:
				for _, c := range s.BankCodes {
					if c == bank && bestLen < 100 {
						best, bestLen = ed.EntityID, 100
					}
				}
			}
		}
	}
	if best == "" {
		return "", ErrNoRecipient
	}
	return best, nil
}

// rangeWidth is 0 for one prefix, up to 9 for the widest range of its length.
func rangeWidth(r metadata.BINRange) int {
	if r.From == r.To {
		return 0
	}
	w := 0
	for i := range r.From {
		if r.From[i] != r.To[i] {
			w = len(r.From) - i
			break
		}
	}
	if w > 9 {
		w = 9
	}
	return w
}
