package router

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Entry is one active participant as the hub sees it: the registry's
// record (status, version, timestamps) and its active metadata parsed into
// the federation's one participant model (saml/metadata), which answers
// every question about keys, endpoints, offered services and callers.
type Entry struct {
	P *store.Participant
	D *metadata.EntityDescriptor
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
	Log       *slog.Logger

	mu       sync.Mutex
	loadedAt time.Time
	parsed   map[string]*Entry // by entityID@version: a reload parses only what changed
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

func (d *Directory) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Directory) load(ctx context.Context) error {
	ps, err := d.Store.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
	if err != nil {
		return err
	}
	d.mu.Lock()
	prev := d.parsed
	d.mu.Unlock()
	parsed := make(map[string]*Entry, len(ps))
	byID := make(map[string]*Entry, len(ps))
	byURL := map[string]*Entry{}
	byTLS := map[string]*Entry{}
	clashes := map[string][]string{}
	for _, p := range ps {
		key := fmt.Sprintf("%s@%d", p.EntityID, p.Version)
		e := prev[key]
		if e == nil {
			ed, err := metadata.Parse(p.Metadata)
			if err != nil || ed.EntityID != p.EntityID {
				// The registry stores only metadata that parsed; a row that
				// no longer does is left out (fail closed) and said loudly.
				d.log().ErrorContext(ctx, "directory: an active participant's stored metadata does not parse; it is left out", "entity", p.EntityID, "err", err)
				continue
			}
			e = &Entry{P: p, D: ed}
		}
		parsed[key] = e
		byID[p.EntityID] = e
		for _, c := range e.D.TLSClientCertificates() {
			claim(byTLS, saml.Fingerprint(c), e, clashes)
		}
		for _, ep := range e.D.Endpoints {
			claim(byURL, ep.Location, e, clashes)
		}
	}
	// A TLS client certificate or endpoint URL that two participants
	// publish names neither (the registry refuses such metadata; this is
	// the second line): a connection or a Destination is never attributed
	// to whichever entry came last.
	for k, ids := range clashes {
		delete(byTLS, k)
		delete(byURL, k)
		d.log().ErrorContext(ctx, "directory: two active participants publish the same TLS client certificate or endpoint URL; it names neither", "value", k, "entities", ids)
	}
	d.mu.Lock()
	d.parsed, d.byID, d.byURL, d.byTLS, d.loadedAt = parsed, byID, byURL, byTLS, d.now()
	d.mu.Unlock()
	return nil
}

// claim maps k to e unless another participant holds it (recorded in
// clashes).
func claim(m map[string]*Entry, k string, e *Entry, clashes map[string][]string) {
	if o, ok := m[k]; ok && o != e {
		clashes[k] = append(clashes[k], o.P.EntityID, e.P.EntityID)
		return
	}
	m[k] = e
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
	certs := e.D.SigningCertificates()
	if len(certs) == 0 {
		return nil, saml.ErrUnknownEntity
	}
	return certs, nil
}

var _ saml.KeyResolver = (*Directory)(nil)

// replayBatch is the saml.ReplayCache of a Receiver whose message IDs the
// router commits with the rest of the step (store.Writes.Remember, KECIS
// §12.3): Remember only collects, and the commit refuses an ID already
// live (store.ErrAlreadySeen), so that of two replicas receiving one
// message exactly one goes on.
type replayBatch struct {
	entries []store.ReplayEntry
}

func (r *replayBatch) Remember(_ context.Context, issuer, id string, expires time.Time) error {
	r.entries = append(r.entries, store.ReplayEntry{Issuer: issuer, ID: id, Expires: expires})
	return nil
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

// Descriptors returns the active participants' metadata, in entityID
// order, for the matcher (metadata.Choose).
func Descriptors(es []*Entry) []*metadata.EntityDescriptor {
	out := make([]*metadata.EntityDescriptor, len(es))
	for i, e := range es {
		out[i] = e.D
	}
	return out
}
