// Package registry is the federation's participant registry: who takes
// part, in which roles, with which keys, endpoints and services, and the
// lifecycle pending → active → suspended → removed with an operator's
// approval. Every change is written to the audit log in the same step.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kecis/kecis/federation/store"
)

// Errors of the registry, for its callers to map to HTTP statuses.
var (
	ErrInvalidMetadata = errors.New("registry: invalid metadata")
	ErrTransition      = errors.New("registry: transition not allowed")
	ErrNotOwner        = errors.New("registry: the client certificate is not one the participant published")
)

// Describer parses a participant's metadata into the registry's record
// (entityID, display name, roles, keys, endpoints, services). It is
// saml/metadata's parser, injected so that the registry does not
// depend on the XML.
type Describer func(metadata []byte) (*store.Participant, error)

// Registry manages participants over a store.
type Registry struct {
	Store    store.Store
	Describe Describer
	Now      func() time.Time
	Log      *slog.Logger
	// OnEvent, when set, is told each completed action (metrics).
	OnEvent func(action string)
	// Gate is the registration gate: approval after a passing
	// conformance report (RecordConformance).
	Gate ConformanceGate
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Registry) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Register records a new participant from its metadata, as pending.
// presented is the SHA-256 fingerprint of the TLS client certificate the
// request came with; it must be one of the tls-client certificates the
// metadata publishes (proof of possession).
func (r *Registry) Register(ctx context.Context, metadata []byte, presented string) (*store.Participant, error) {
	p, err := r.Describe(metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if !hasKey(p, store.KeyTLSClient, presented) {
		return nil, ErrNotOwner
	}
	now := r.now()
	p.Status = store.StatusPending
	p.Metadata = metadata
	p.CreatedAt, p.UpdatedAt = now, now
	if err := r.Store.CreateParticipant(ctx, p); err != nil {
		return nil, err
	}
	r.audit(ctx, "participant.register", p.EntityID, p.EntityID, map[string]any{"roles": p.Roles, "keys": fingerprints(p)})
	return p, nil
}

// UpdateMetadata replaces a participant's metadata (a key rollover, new
// endpoints), keeping its status. The request must come with one of the
// TLS client certificates currently registered for it.
func (r *Registry) UpdateMetadata(ctx context.Context, entityID string, metadata []byte, presented string) (*store.Participant, error) {
	cur, err := r.Store.GetParticipant(ctx, entityID)
	if err != nil {
		return nil, err
	}
	if cur.Status == store.StatusRemoved {
		return nil, ErrTransition
	}
	if !hasKey(cur, store.KeyTLSClient, presented) {
		return nil, ErrNotOwner
	}
	next, err := r.Describe(metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if next.EntityID != entityID {
		return nil, fmt.Errorf("%w: the metadata names %q", ErrInvalidMetadata, next.EntityID)
	}
	next.Status, next.Version, next.CreatedAt = cur.Status, cur.Version, cur.CreatedAt
	next.Metadata, next.UpdatedAt = metadata, r.now()
	if err := r.Store.UpdateParticipant(ctx, next); err != nil {
		return nil, err
	}
	r.audit(ctx, "participant.update", entityID, entityID, map[string]any{"keys": fingerprints(next)})
	return next, nil
}

// transitions lists, per action, the states it may start from and the
// state it leads to.
var transitions = map[string]struct {
	from []store.Status
	to   store.Status
}{
	"approve":   {[]store.Status{store.StatusPending}, store.StatusActive},
	"suspend":   {[]store.Status{store.StatusActive}, store.StatusSuspended},
	"reinstate": {[]store.Status{store.StatusSuspended}, store.StatusActive},
	"remove":    {[]store.Status{store.StatusPending, store.StatusActive, store.StatusSuspended}, store.StatusRemoved},
}

// Actions are the operator actions, in the order the CLI lists them.
var Actions = []string{"approve", "suspend", "reinstate", "remove"}

// Transition applies an operator action (approve, suspend, reinstate,
// remove) and audits it with the operator and the reason.
func (r *Registry) Transition(ctx context.Context, entityID, action, operator, reason string) (*store.Participant, error) {
	t, ok := transitions[action]
	if !ok {
		return nil, fmt.Errorf("%w: unknown action %q", ErrTransition, action)
	}
	for attempt := 0; attempt < 3; attempt++ {
		p, err := r.Store.GetParticipant(ctx, entityID)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(t.from, p.Status) {
			return nil, fmt.Errorf("%w: %s a participant that is %s", ErrTransition, action, p.Status)
		}
		if action == "approve" {
			if err := r.checkGate(ctx, p); err != nil {
				return nil, err
			}
		}
		from := p.Status
		p.Status, p.UpdatedAt = t.to, r.now()
		err = r.Store.UpdateParticipant(ctx, p)
		if errors.Is(err, store.ErrConflict) {
			continue // a concurrent change (another replica); read again
		}
		if err != nil {
			return nil, err
		}
		r.audit(ctx, "participant."+action, operator, entityID, map[string]any{"from": from, "to": t.to, "reason": reason})
		return p, nil
	}
	return nil, store.ErrConflict
}

func (r *Registry) audit(ctx context.Context, kind, actor, entityID string, detail map[string]any) {
	d, _ := json.Marshal(detail)
	rec := &store.AuditRecord{Time: r.now(), Kind: kind, Actor: actor, EntityID: entityID, Detail: string(d)}
	if err := r.Store.AppendAudit(ctx, rec); err != nil {
		// The change is made; losing its audit record must be loud.
		r.log().ErrorContext(ctx, "audit record not written", "kind", kind, "entity", entityID, "err", err)
	}
	r.log().InfoContext(ctx, "registry", "action", kind, "actor", actor, "entity", entityID)
	if r.OnEvent != nil {
		r.OnEvent(kind)
	}
}

func hasKey(p *store.Participant, use store.KeyUse, fingerprint string) bool {
	if fingerprint == "" {
		return false
	}
	for _, k := range p.Keys {
		if k.Use == use && k.Fingerprint == fingerprint {
			return true
		}
	}
	return false
}

func fingerprints(p *store.Participant) map[string][]string {
	out := map[string][]string{}
	for _, k := range p.Keys {
		out[string(k.Use)] = append(out[string(k.Use)], k.Fingerprint)
	}
	return out
}
