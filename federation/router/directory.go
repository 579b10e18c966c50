package router

import (
	"context"
	"crypto/x509"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// Entry is one active participant as the router needs it: parsed
// certificates by use, endpoints, offered services.
type Entry struct {
	P          *store.Participant
	Signing    []*x509.Certificate
	Encryption []*x509.Certificate
	TLSClient  []*x509.Certificate
	TLSServer  []*x509.Certificate
}

// Offers reports whether the participant offers the service.
func (e *Entry) Offers(service string) bool {
	for _, s := range e.P.Services {
		if s.Service == service {
			return true
		}
	}
	return false
}

// Endpoints returns the participant's endpoints for a service and binding,
// lowest priority first; "*" endpoints come after service-specific ones.
func (e *Entry) Endpoints(service, binding string) []store.Endpoint {
	var exact, any []store.Endpoint
	for _, ep := range e.P.Endpoints {
		if ep.Binding != binding {
			continue
		}
		switch ep.Service {
		case service:
			exact = append(exact, ep)
		case "*":
			any = append(any, ep)
		}
	}
	sortEndpoints(exact)
	sortEndpoints(any)
	return append(exact, any...)
}

func sortEndpoints(eps []store.Endpoint) {
	for i := 1; i < len(eps); i++ {
		for j := i; j > 0 && eps[j].Priority < eps[j-1].Priority; j-- {
			eps[j], eps[j-1] = eps[j-1], eps[j]
		}
	}
}

// Directory is a snapshot of the active participants, reloaded from the
// store after TTL (other replicas change the registry) and at once when a
// lookup misses (a participant approved a moment ago), at most every
// MinReload.
type Directory struct {
	Store     store.Store
	TTL       time.Duration
	MinReload time.Duration
	Now       func() time.Time

	mu       sync.Mutex
	loadedAt time.Time
	byID     map[string]*Entry
	byURL    map[string]*Entry
	byTLS    map[string]*Entry // TLS client certificate fingerprint
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Directory) load(ctx context.Context) error {
	ps, err := d.Store.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
	if err != nil {
		return err
	}
	byID := make(map[string]*Entry, len(ps))
	byURL := map[string]*Entry{}
	byTLS := map[string]*Entry{}
	for _, p := range ps {
		e := &Entry{P: p}
		for _, k := range p.Keys {
			c, err := x509.ParseCertificate(k.CertDER)
			if err != nil {
				continue
			}
			switch k.Use {
			case store.KeySigning:
				e.Signing = append(e.Signing, c)
			case store.KeyEncryption:
				e.Encryption = append(e.Encryption, c)
			case store.KeyTLSClient:
				e.TLSClient = append(e.TLSClient, c)
				byTLS[k.Fingerprint] = e
			case store.KeyTLSServer:
				e.TLSServer = append(e.TLSServer, c)
			}
		}
		byID[p.EntityID] = e
		for _, ep := range p.Endpoints {
			byURL[ep.URL] = e
		}
	}
	d.mu.Lock()
	d.byID, d.byURL, d.byTLS, d.loadedAt = byID, byURL, byTLS, d.now()
	d.mu.Unlock()
	return nil
}

func (d *Directory) lookup(ctx context.Context, f func() *Entry) (*Entry, error) {
	d.mu.Lock()
	fresh := d.byID != nil && d.now().Sub(d.loadedAt) < d.ttl()
	recent := d.byID != nil && d.now().Sub(d.loadedAt) < d.minReload()
	var e *Entry
	if fresh {
		e = f()
	}
	d.mu.Unlock()
	if e != nil {
		return e, nil
	}
	if fresh && recent {
		return nil, saml.ErrUnknownEntity
	}
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e = f(); e == nil {
		return nil, saml.ErrUnknownEntity
	}
	return e, nil
}

func (d *Directory) ttl() time.Duration {
	if d.TTL > 0 {
		return d.TTL
	}
	return 10 * time.Second
}

func (d *Directory) minReload() time.Duration {
	if d.MinReload > 0 {
		return d.MinReload
	}
	return time.Second
}

// ByID returns an active participant.
func (d *Directory) ByID(ctx context.Context, id string) (*Entry, error) {
	return d.lookup(ctx, func() *Entry { return d.byID[id] })
}

// ByEndpoint returns the active participant that publishes an endpoint URL.
func (d *Directory) ByEndpoint(ctx context.Context, url string) (*Entry, error) {
	return d.lookup(ctx, func() *Entry { return d.byURL[url] })
}

// ByTLSClient returns the active participant that publishes a TLS client
// certificate (by SHA-256 fingerprint).
func (d *Directory) ByTLSClient(ctx context.Context, fingerprint string) (*Entry, error) {
	if fingerprint == "" {
		return nil, saml.ErrUnknownEntity
	}
	return d.lookup(ctx, func() *Entry { return d.byTLS[fingerprint] })
}

// Invalidate drops the snapshot (after a registry change on this replica).
func (d *Directory) Invalidate() {
	d.mu.Lock()
	d.byID = nil
	d.mu.Unlock()
}

// SigningCertificates implements saml.KeyResolver over the active
// participants.
func (d *Directory) SigningCertificates(ctx context.Context, entityID string) ([]*x509.Certificate, error) {
	e, err := d.ByID(ctx, entityID)
	if err != nil {
		return nil, err
	}
	if len(e.Signing) == 0 {
		return nil, saml.ErrUnknownEntity
	}
	return e.Signing, nil
}

var _ saml.KeyResolver = (*Directory)(nil)

// replayStore adapts the store's replay cache to saml.ReplayCache.
type replayStore struct {
	st  store.Store
	now func() time.Time
}

func (r replayStore) Remember(ctx context.Context, issuer, id string, expires time.Time) error {
	err := r.st.RememberMessage(ctx, issuer, id, expires, r.now())
	if errors.Is(err, store.ErrAlreadySeen) {
		return saml.ErrAlreadySeen
	}
	return err
}

// All returns every active participant (a fresh snapshot when stale).
func (d *Directory) All(ctx context.Context) ([]*Entry, error) {
	d.mu.Lock()
	fresh := d.byID != nil && d.now().Sub(d.loadedAt) < d.ttl()
	d.mu.Unlock()
	if !fresh {
		if err := d.load(ctx); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Entry, 0, len(d.byID))
	for _, e := range d.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].P.EntityID < out[j].P.EntityID })
	return out, nil
}
