package saml

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"time"
)

// Errors the stores return; the pipeline maps them to refusals.
var (
	// ErrUnknownEntity: the entity is not an (active) participant.
	ErrUnknownEntity = errors.New("kecis: unknown entity")
	// ErrAlreadySeen: the (issuer, ID) pair was recorded before — a replay.
	ErrAlreadySeen = errors.New("kecis: message ID already seen")
	// ErrNotPending: no request with that ID is awaiting that responder's answer.
	ErrNotPending = errors.New("kecis: no such pending request")
)

// KeyResolver returns the certificates an entity signs with, from the
// federation metadata. During a key rollover there are several; the
// signature's KeyInfo selects among them (KECIS §4.3).
type KeyResolver interface {
	SigningCertificates(ctx context.Context, entityID string) ([]*x509.Certificate, error)
}

// ReplayCache remembers message IDs per issuer for the acceptance window
// (KECIS §7.2). Remember must be atomic: of two concurrent calls with the
// same pair exactly one succeeds, the other gets ErrAlreadySeen — the
// database backends enforce it with a unique constraint.
type ReplayCache interface {
	Remember(ctx context.Context, issuer, id string, expires time.Time) error
}

// PendingRequests tracks the requests a participant sent and awaits answers
// to, so that a response's InResponseTo can be matched (SAML core §3.2.2).
type PendingRequests interface {
	// Add records that request id was sent to responder.
	Add(ctx context.Context, id, responder string, expires time.Time) error
	// Complete consumes the pending request; ErrNotPending when there is none
	// for that responder (never sent, already answered, or expired).
	Complete(ctx context.Context, id, responder string) error
}

// StaticKeys is a KeyResolver over a fixed map, for tools and tests.
type StaticKeys map[string][]*x509.Certificate

// SigningCertificates implements KeyResolver.
func (s StaticKeys) SigningCertificates(_ context.Context, entityID string) ([]*x509.Certificate, error) {
	c, ok := s[entityID]
	if !ok || len(c) == 0 {
		return nil, ErrUnknownEntity
	}
	return c, nil
}

// AnyIssuerKeys trusts the same certificates for every issuer; it is what
// `kecis envelope verify --trust` uses, where the operator names the keys.
type AnyIssuerKeys []*x509.Certificate

// SigningCertificates implements KeyResolver.
func (a AnyIssuerKeys) SigningCertificates(context.Context, string) ([]*x509.Certificate, error) {
	if len(a) == 0 {
		return nil, ErrUnknownEntity
	}
	return a, nil
}

type replayKey struct{ issuer, id string }

// MemoryReplayCache is an in-process ReplayCache. Entries expire; Now is
// injected so that tests control expiry.
type MemoryReplayCache struct {
	Now func() time.Time
	mu  sync.Mutex
	m   map[replayKey]time.Time
}

// NewMemoryReplayCache returns an empty cache on the given clock (nil: time.Now).
func NewMemoryReplayCache(now func() time.Time) *MemoryReplayCache {
	return &MemoryReplayCache{Now: now, m: map[replayKey]time.Time{}}
}

func (c *MemoryReplayCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Remember implements ReplayCache.
func (c *MemoryReplayCache) Remember(_ context.Context, issuer, id string, expires time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[replayKey]time.Time{}
	}
	now := c.now()
	k := replayKey{issuer, id}
	if exp, ok := c.m[k]; ok && now.Before(exp) {
		return ErrAlreadySeen
	}
	c.m[k] = expires
	if len(c.m)%1024 == 0 {
		for key, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, key)
			}
		}
	}
	return nil
}

// MemoryPending is an in-process PendingRequests.
type MemoryPending struct {
	Now func() time.Time
	mu  sync.Mutex
	m   map[string]pendingEntry
}

type pendingEntry struct {
	responder string
	expires   time.Time
}

// NewMemoryPending returns an empty pending-request store on the given clock.
func NewMemoryPending(now func() time.Time) *MemoryPending {
	return &MemoryPending{Now: now, m: map[string]pendingEntry{}}
}

func (p *MemoryPending) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Add implements PendingRequests.
func (p *MemoryPending) Add(_ context.Context, id, responder string, expires time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pendingEntry{}
	}
	p.m[id] = pendingEntry{responder: responder, expires: expires}
	return nil
}

// Complete implements PendingRequests.
func (p *MemoryPending) Complete(_ context.Context, id, responder string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[id]
	if !ok || e.responder != responder || !p.now().Before(e.expires) {
		return ErrNotPending
	}
	delete(p.m, id)
	return nil
}
