package metadata

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/saml"
)

// Client defaults.
const (
	DefaultMaxTTL        = time.Hour
	DefaultRetryInterval = 30 * time.Second
	DefaultNegativeTTL   = 30 * time.Second
)

// ErrHubUnavailable wraps every failure to obtain a verified descriptor
// (or aggregate) from the hub (network, HTTP status, signature, parse)
// when no cached one can stand in.
var ErrHubUnavailable = errors.New("metadata: no verified descriptor from the hub")

var _ saml.KeyResolver = (*Client)(nil)

// Client is the federation's metadata as a participant reads it (KECIS
// §11.2): one fetch-verify-cache path for the two documents the hub
// publishes — each participant's descriptor, looked up one entity at a
// time (the Metadata Query protocol, Lookup), and the aggregate of every
// active participant (Aggregate, for who serves a card BIN or a bank
// code). Both are verified against the hub's pinned certificates and
// cached alike:
//
//   - a verified document is used until min(cacheDuration, validUntil,
//     MaxTTL) from when it was fetched, then fetched again;
//   - when the hub cannot give a verified document (unreachable, 5xx, a
//     bad signature), a cached one is still used while its validUntil has
//     not passed (retrying after RetryInterval), never after;
//   - a 404 for an entity is the hub saying it is not an active
//     participant: the cache entry is dropped and saml.ErrUnknownEntity
//     returned (and remembered for NegativeTTL, so that unknown issuers
//     cannot make us hammer the hub).
//
// Client implements saml.KeyResolver, so a receive pipeline uses it
// directly. It is safe for concurrent use; concurrent requests for one
// document share one request to the hub.
type Client struct {
	// HubURL is the hub's base URL, e.g. https://hub.example.
	HubURL string
	// HubCerts are the hub's metadata signing certificates, pinned (two
	// during the hub's own key rollover).
	HubCerts []*x509.Certificate
	// HTTP is the client used for requests; nil: http.DefaultClient.
	HTTP *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// MaxTTL caps how long a document is used before it is fetched again;
	// 0: DefaultMaxTTL.
	MaxTTL time.Duration
	// RetryInterval spaces refresh attempts while a stale document is
	// served; 0: DefaultRetryInterval.
	RetryInterval time.Duration
	// NegativeTTL is how long a 404 is remembered; 0: DefaultNegativeTTL,
	// negative: not remembered.
	NegativeTTL time.Duration
	// Logger receives a warning when a stale document is served.
	Logger *slog.Logger

	mu       sync.Mutex
	cache    map[docKey]*cacheEntry
	inflight map[docKey]*call
}

// docKey names a cached document: one entity's descriptor, or the
// aggregate.
type docKey struct {
	aggregate bool
	entityID  string
}

var aggregateKey = docKey{aggregate: true}

func (k docKey) String() string {
	if k.aggregate {
		return "the aggregate"
	}
	return k.entityID
}

// doc is a verified document: a descriptor or an aggregate. The zero doc
// is a known unknown entity (404).
type doc struct {
	ed  *EntityDescriptor
	agg *Aggregate
}

func (d doc) none() bool { return d.ed == nil && d.agg == nil }

func (d doc) validUntil() time.Time {
	if d.agg != nil {
		return d.agg.ValidUntil
	}
	return d.ed.ValidUntil
}

func (d doc) cacheDuration() time.Duration {
	if d.agg != nil {
		return d.agg.CacheDuration
	}
	return d.ed.CacheDuration
}

type cacheEntry struct {
	doc       doc
	fetched   time.Time
	refreshAt time.Time
}

type call struct {
	done   chan struct{}
	doc    doc
	err    error
	ctxErr bool // the leader's context ended
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Lookup returns the verified descriptor of entityID, from the cache or
// the hub (see Client). The descriptor is shared: callers must not modify
// it.
func (c *Client) Lookup(ctx context.Context, entityID string) (*EntityDescriptor, error) {
	d, err := c.get(ctx, docKey{entityID: entityID})
	if err != nil {
		return nil, err
	}
	return d.ed, nil
}

// Aggregate returns the hub's verified aggregate of every active
// participant, from the cache or the hub, under the same policy as Lookup
// (see Client). It is shared: callers must not modify it.
func (c *Client) Aggregate(ctx context.Context) (*Aggregate, error) {
	d, err := c.get(ctx, aggregateKey)
	if err != nil {
		return nil, err
	}
	return d.agg, nil
}

// get returns the document k from the cache, or fetches it once for all
// concurrent callers.
func (c *Client) get(ctx context.Context, k docKey) (doc, error) {
	for {
		now := c.now()
		c.mu.Lock()
		e := c.cache[k]
		if e != nil && now.Before(e.refreshAt) {
			c.mu.Unlock()
			if e.doc.none() {
				return doc{}, saml.ErrUnknownEntity
			}
			return e.doc, nil
		}
		if cl := c.inflight[k]; cl != nil {
			c.mu.Unlock()
			select {
			case <-cl.done:
			case <-ctx.Done():
				return doc{}, ctx.Err()
			}
			if cl.err != nil && cl.ctxErr {
				continue // the leader gave up; this caller has not
			}
			return cl.doc, cl.err
		}
		cl := &call{done: make(chan struct{})}
		if c.inflight == nil {
			c.inflight = map[docKey]*call{}
		}
		c.inflight[k] = cl
		c.mu.Unlock()

		cl.doc, cl.err = c.refresh(ctx, k, e)
		cl.ctxErr = ctx.Err() != nil

		c.mu.Lock()
		delete(c.inflight, k)
		c.mu.Unlock()
		close(cl.done)
		return cl.doc, cl.err
	}
}

// refresh fetches k and updates the cache; old is the entry that was due
// for refresh (nil if none).
func (c *Client) refresh(ctx context.Context, k docKey, old *cacheEntry) (doc, error) {
	d, status, err := c.fetch(ctx, k)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[docKey]*cacheEntry{}
	}
	switch {
	case err == nil:
		c.cache[k] = &cacheEntry{doc: d, fetched: now, refreshAt: c.refreshTime(d, now)}
		return d, nil
	case status == http.StatusNotFound && !k.aggregate:
		if neg := durOr(c.NegativeTTL, DefaultNegativeTTL); c.NegativeTTL >= 0 {
			c.cache[k] = &cacheEntry{fetched: now, refreshAt: now.Add(neg)}
		} else {
			delete(c.cache, k)
		}
		return doc{}, saml.ErrUnknownEntity
	}
	if ctx.Err() != nil {
		return doc{}, err
	}
	if old != nil && !old.doc.none() && now.Before(old.doc.validUntil()) {
		retry := now.Add(durOr(c.RetryInterval, DefaultRetryInterval))
		if retry.After(old.doc.validUntil()) {
			retry = old.doc.validUntil()
		}
		c.cache[k] = &cacheEntry{doc: old.doc, fetched: old.fetched, refreshAt: retry}
		if c.Logger != nil {
			c.Logger.LogAttrs(ctx, slog.LevelWarn, "kecis metadata: serving a cached copy, the hub gave no verified one",
				slog.String("entity", k.String()), slog.Time("fetched", old.fetched), slog.Time("validUntil", old.doc.validUntil()), slog.String("error", err.Error()))
		}
		return old.doc, nil
	}
	// Never serve what is no longer valid.
	delete(c.cache, k)
	return doc{}, err
}

// refreshTime is when a document fetched at now is fetched again:
// min(cacheDuration, MaxTTL) from now, and never after validUntil.
func (c *Client) refreshTime(d doc, now time.Time) time.Time {
	ttl := durOr(c.MaxTTL, DefaultMaxTTL)
	if cd := d.cacheDuration(); cd > 0 && cd < ttl {
		ttl = cd
	}
	at := now.Add(ttl)
	if vu := d.validUntil(); vu.Before(at) {
		at = vu
	}
	return at
}

// fetch GETs and verifies one document. status is the HTTP status when
// there was a response.
func (c *Client) fetch(ctx context.Context, k docKey) (doc, int, error) {
	if len(c.HubCerts) == 0 {
		return doc{}, 0, fmt.Errorf("%w: no pinned hub certificate", ErrHubUnavailable)
	}
	base := strings.TrimRight(c.HubURL, "/")
	u, limit := base+EntitiesPath+EncodeMDQ(k.entityID), int64(MaxEntityBytes)
	if k.aggregate {
		u, limit = base+AggregatePath, MaxAggregateBytes
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return doc{}, 0, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	req.Header.Set("Accept", MediaType)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return doc{}, 0, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return doc{}, resp.StatusCode, fmt.Errorf("%w: %s: HTTP %d", ErrHubUnavailable, k, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return doc{}, resp.StatusCode, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	if k.aggregate {
		a, err := VerifyAggregate(body, c.HubCerts, c.now())
		if err != nil {
			return doc{}, resp.StatusCode, fmt.Errorf("%w: %s: %w", ErrHubUnavailable, k, err)
		}
		return doc{agg: a}, resp.StatusCode, nil
	}
	ed, err := VerifyEntity(body, c.HubCerts, c.now())
	if err != nil {
		return doc{}, resp.StatusCode, fmt.Errorf("%w: %s: %w", ErrHubUnavailable, k, err)
	}
	if ed.EntityID != k.entityID {
		return doc{}, resp.StatusCode, fmt.Errorf("%w: asked for %s, the hub answered with %s", ErrHubUnavailable, k.entityID, ed.EntityID)
	}
	return doc{ed: ed}, resp.StatusCode, nil
}

// Invalidate drops the cached descriptor of entityID, so that the next
// lookup asks the hub (after a participant announced a key rollover, or
// when a signature failed with a key that may have just been added).
func (c *Client) Invalidate(entityID string) {
	c.mu.Lock()
	delete(c.cache, docKey{entityID: entityID})
	c.mu.Unlock()
}

// SigningCertificates implements saml.KeyResolver: the certificates
// entityID signs with (several during a rollover).
func (c *Client) SigningCertificates(ctx context.Context, entityID string) ([]*x509.Certificate, error) {
	ed, err := c.Lookup(ctx, entityID)
	if err != nil {
		return nil, err
	}
	certs := ed.SigningCertificates()
	if len(certs) == 0 {
		return nil, saml.ErrUnknownEntity
	}
	return certs, nil
}

// EncryptionCertificate returns the certificate to encrypt for entityID
// now: among its encryption certificates valid now, the one that expires
// last.
func (c *Client) EncryptionCertificate(ctx context.Context, entityID string) (*x509.Certificate, error) {
	ed, err := c.Lookup(ctx, entityID)
	if err != nil {
		return nil, err
	}
	cert, ok := ed.EncryptionCertificate(c.now())
	if !ok {
		return nil, fmt.Errorf("metadata: %s publishes no encryption certificate valid now", entityID)
	}
	return cert, nil
}

// Endpoint returns entityID's best endpoint for service over binding
// (EntityDescriptor.Endpoint).
func (c *Client) Endpoint(ctx context.Context, entityID, service, binding string) (Endpoint, error) {
	ed, err := c.Lookup(ctx, entityID)
	if err != nil {
		return Endpoint{}, err
	}
	e, ok := ed.Endpoint(service, binding)
	if !ok {
		return Endpoint{}, fmt.Errorf("metadata: %s publishes no %s endpoint for %s", entityID, binding, service)
	}
	return e, nil
}
