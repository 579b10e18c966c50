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
// from the hub (network, HTTP status, signature, parse) when no cached one
// can stand in.
var ErrHubUnavailable = errors.New("metadata: no verified descriptor from the hub")

var _ saml.KeyResolver = (*Client)(nil)

// Client looks participants up at the hub one entity at a time (the
// Metadata Query protocol), verifies each descriptor against the hub's
// pinned certificates, and caches it:
//
//   - a verified descriptor is used until min(cacheDuration, validUntil,
//     MaxTTL) from when it was fetched, then fetched again;
//   - when the hub cannot give a verified descriptor (unreachable, 5xx, a
//     bad signature), a cached one is still used while its validUntil has
//     not passed (retrying after RetryInterval), never after;
//   - a 404 is the hub saying the entity is not an active participant:
//     the cache entry is dropped and saml.ErrUnknownEntity returned (and
//     remembered for NegativeTTL, so that unknown issuers cannot make us
//     hammer the hub).
//
// Client implements saml.KeyResolver, so a receive pipeline uses it
// directly. It is safe for concurrent use; concurrent lookups of one
// entity share one request.
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
	// MaxTTL caps how long a descriptor is used before it is fetched again;
	// 0: DefaultMaxTTL.
	MaxTTL time.Duration
	// RetryInterval spaces refresh attempts while a stale descriptor is
	// served; 0: DefaultRetryInterval.
	RetryInterval time.Duration
	// NegativeTTL is how long a 404 is remembered; 0: DefaultNegativeTTL,
	// negative: not remembered.
	NegativeTTL time.Duration
	// Logger receives a warning when a stale descriptor is served.
	Logger *slog.Logger

	mu       sync.Mutex
	cache    map[string]*cacheEntry
	inflight map[string]*call
}

type cacheEntry struct {
	ed        *EntityDescriptor // nil: known unknown (404)
	fetched   time.Time
	refreshAt time.Time
}

type call struct {
	done   chan struct{}
	ed     *EntityDescriptor
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
	for {
		now := c.now()
		c.mu.Lock()
		e := c.cache[entityID]
		if e != nil && now.Before(e.refreshAt) {
			c.mu.Unlock()
			if e.ed == nil {
				return nil, saml.ErrUnknownEntity
			}
			return e.ed, nil
		}
		if cl := c.inflight[entityID]; cl != nil {
			c.mu.Unlock()
			select {
			case <-cl.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if cl.err != nil && cl.ctxErr {
				continue // the leader gave up; this caller has not
			}
			return cl.ed, cl.err
		}
		cl := &call{done: make(chan struct{})}
		if c.inflight == nil {
			c.inflight = map[string]*call{}
		}
		c.inflight[entityID] = cl
		c.mu.Unlock()

		cl.ed, cl.err = c.refresh(ctx, entityID, e)
		cl.ctxErr = ctx.Err() != nil

		c.mu.Lock()
		delete(c.inflight, entityID)
		c.mu.Unlock()
		close(cl.done)
		return cl.ed, cl.err
	}
}

// refresh fetches entityID and updates the cache; old is the entry that
// was due for refresh (nil if none).
func (c *Client) refresh(ctx context.Context, entityID string, old *cacheEntry) (*EntityDescriptor, error) {
	ed, status, err := c.fetch(ctx, entityID)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[string]*cacheEntry{}
	}
	switch {
	case err == nil:
		c.cache[entityID] = &cacheEntry{ed: ed, fetched: now, refreshAt: c.refreshTime(ed, now)}
		return ed, nil
	case status == http.StatusNotFound:
		if neg := durOr(c.NegativeTTL, DefaultNegativeTTL); c.NegativeTTL >= 0 {
			c.cache[entityID] = &cacheEntry{fetched: now, refreshAt: now.Add(neg)}
		} else {
			delete(c.cache, entityID)
		}
		return nil, saml.ErrUnknownEntity
	}
	if ctx.Err() != nil {
		return nil, err
	}
	if old != nil && old.ed != nil && now.Before(old.ed.ValidUntil) {
		retry := now.Add(durOr(c.RetryInterval, DefaultRetryInterval))
		if retry.After(old.ed.ValidUntil) {
			retry = old.ed.ValidUntil
		}
		c.cache[entityID] = &cacheEntry{ed: old.ed, fetched: old.fetched, refreshAt: retry}
		if c.Logger != nil {
			c.Logger.LogAttrs(ctx, slog.LevelWarn, "kecis metadata: serving a cached descriptor, the hub gave no verified one",
				slog.String("entity", entityID), slog.Time("fetched", old.fetched), slog.Time("validUntil", old.ed.ValidUntil), slog.String("error", err.Error()))
		}
		return old.ed, nil
	}
	// Never serve what is no longer valid.
	delete(c.cache, entityID)
	return nil, err
}

// refreshTime is when a descriptor fetched at now is fetched again:
// min(cacheDuration, MaxTTL) from now, and never after validUntil.
func (c *Client) refreshTime(ed *EntityDescriptor, now time.Time) time.Time {
	ttl := durOr(c.MaxTTL, DefaultMaxTTL)
	if ed.CacheDuration > 0 && ed.CacheDuration < ttl {
		ttl = ed.CacheDuration
	}
	at := now.Add(ttl)
	if ed.ValidUntil.Before(at) {
		at = ed.ValidUntil
	}
	return at
}

// fetch GETs and verifies one descriptor. status is the HTTP status when
// there was a response.
func (c *Client) fetch(ctx context.Context, entityID string) (*EntityDescriptor, int, error) {
	if len(c.HubCerts) == 0 {
		return nil, 0, fmt.Errorf("%w: no pinned hub certificate", ErrHubUnavailable)
	}
	u := strings.TrimRight(c.HubURL, "/") + EntitiesPath + EncodeMDQ(entityID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	req.Header.Set("Accept", MediaType)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, resp.StatusCode, fmt.Errorf("%w: %s: HTTP %d", ErrHubUnavailable, entityID, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxEntityBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: %v", ErrHubUnavailable, err)
	}
	ed, err := VerifyEntity(body, c.HubCerts, c.now())
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: %s: %w", ErrHubUnavailable, entityID, err)
	}
	if ed.EntityID != entityID {
		return nil, resp.StatusCode, fmt.Errorf("%w: asked for %s, the hub answered with %s", ErrHubUnavailable, entityID, ed.EntityID)
	}
	return ed, resp.StatusCode, nil
}

// Invalidate drops the cached descriptor of entityID, so that the next
// lookup asks the hub (after a participant announced a key rollover, or
// when a signature failed with a key that may have just been added).
func (c *Client) Invalidate(entityID string) {
	c.mu.Lock()
	delete(c.cache, entityID)
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
