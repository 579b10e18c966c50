// Package registry is the federation's participant registry: who takes
// part, in which roles, with which keys, endpoints and services, and the
// lifecycle pending → active → suspended → removed with an operator's
// approval. Every change is written to the audit log in the same step.
//
// Metadata changes are governed (KECIS §13.6, §12.6): a participant
// changes on its own only what does not widen what it is trusted with
// (keys, endpoints, its name, organization and contacts); a change of its
// roles, offered services or their terms becomes a pending version that an
// operator approves or rejects, while the active version stays in force.
// Approvals refuse overlapping claims on a card BIN or a bank code (KECIS
// §13.5) unless the operator overrides them by name.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Errors of the registry, for its callers to map to HTTP statuses.
var (
	ErrInvalidMetadata = errors.New("registry: invalid metadata")
	ErrTransition      = errors.New("registry: transition not allowed")
	ErrNotOwner        = errors.New("registry: the client certificate is not one the participant published")
	// ErrOverlap: the approval would give a card BIN or a bank code two
	// answering participants (KECIS §13.5); the error names the other.
	ErrOverlap = errors.New("registry: overlapping claim")
	// ErrStaleChange: the pending change is not the one the operator
	// reviewed (the participant replaced it meanwhile).
	ErrStaleChange = errors.New("registry: the pending change is not the one reviewed")
	// ErrDecision: an operator's decision lacks what it needs (a reason).
	ErrDecision = errors.New("registry: incomplete decision")
)

// Audit kinds of metadata changes (the other actions are
// "participant.<action>").
const (
	KindRegister = "participant.register"
	// KindUpdate: a change applied at once — self-service, or a pending
	// registration replaced.
	KindUpdate = "participant.update"
	// KindChangeRequest: a trust change stored as the pending version.
	KindChangeRequest  = "participant.change.request"
	KindChangeApprove  = "participant.change.approve"
	KindChangeReject   = "participant.change.reject"
	KindChangeWithdraw = "participant.change.withdraw"
)

// Describer parses a participant's metadata into the registry's record
// (entityID, display name, roles, keys, endpoints, services):
// DescribeMetadata, or a test's own.
type Describer func(metadata []byte) (*store.Participant, error)

// DescribeMetadata turns submitted metadata into the registry's record:
// the descriptor's entityID, name, roles, keys, endpoints and services. The
// stored metadata bytes stay the source of truth; the rows are for queries
// (a service's limits are kept per row only when it has one currency).
func DescribeMetadata(md []byte) (*store.Participant, error) {
	ed, err := metadata.Parse(md)
	if err != nil {
		return nil, err
	}
	return Record(ed), nil
}

// Record is the registry's record of a parsed descriptor (see
// DescribeMetadata); status, metadata bytes and times are the caller's.
func Record(ed *metadata.EntityDescriptor) *store.Participant {
	p := &store.Participant{EntityID: ed.EntityID, DisplayName: ed.DisplayName}
	for _, r := range ed.Roles {
		p.Roles = append(p.Roles, store.Role(r))
	}
	add := func(use store.KeyUse, kd metadata.KeyDescriptor) {
		p.Keys = append(p.Keys, store.Key{Use: use, CertDER: kd.Certificate.Raw, Fingerprint: saml.Fingerprint(kd.Certificate), NotAfter: kd.Certificate.NotAfter})
	}
	for _, k := range ed.Keys {
		switch k.Use {
		case metadata.UseSigning:
			add(store.KeySigning, k)
		case metadata.UseEncryption:
			add(store.KeyEncryption, k)
		}
	}
	for _, k := range ed.TLSKeys {
		switch k.Use {
		case metadata.UseTLSClient:
			add(store.KeyTLSClient, k)
		case metadata.UseTLSServer:
			add(store.KeyTLSServer, k)
		}
	}
	for _, e := range ed.Endpoints {
		p.Endpoints = append(p.Endpoints, store.Endpoint{Service: e.Service, Binding: e.Binding, URL: e.Location, Priority: e.Priority})
	}
	for _, s := range ed.Services {
		sv := store.Service{Service: s.Service, BankCodes: s.BankCodes}
		for _, l := range s.Limits {
			sv.Currencies = append(sv.Currencies, l.Currency)
		}
		if len(s.Limits) == 1 {
			sv.MinAmount, sv.MaxAmount = s.Limits[0].Min, s.Limits[0].Max
		}
		for _, r := range s.BINs {
			sv.BINRanges = append(sv.BINRanges, r.String())
		}
		p.Services = append(p.Services, sv)
	}
	return p
}

// Registry manages participants over a store.
type Registry struct {
	Store store.Store
	// Describe derives the record from metadata; nil: DescribeMetadata.
	Describe Describer
	Now      func() time.Time
	Log      *slog.Logger
	// OnEvent, when set, is told each completed action by its audit kind
	// (metrics).
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

// describe parses submitted metadata into the registry's record and the
// participant model the diff compares.
func (r *Registry) describe(md []byte) (*store.Participant, *metadata.EntityDescriptor, error) {
	ed, err := metadata.Parse(md)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if r.Describe == nil {
		return Record(ed), ed, nil
	}
	p, err := r.Describe(md)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	return p, ed, nil
}

// Register records a new participant from its metadata, as pending.
// presented is the SHA-256 fingerprint of the TLS client certificate the
// request came with; it must be one of the tls-client certificates the
// metadata publishes (proof of possession).
func (r *Registry) Register(ctx context.Context, md []byte, presented string) (*store.Participant, error) {
	p, _, err := r.describe(md)
	if err != nil {
		return nil, err
	}
	if !hasKey(p, store.KeyTLSClient, presented) {
		return nil, ErrNotOwner
	}
	if err := r.checkUnique(ctx, p); err != nil {
		return nil, err
	}
	now := r.now()
	p.Status = store.StatusPending
	p.Metadata = md
	p.CreatedAt, p.UpdatedAt = now, now
	if err := r.Store.CreateParticipant(ctx, p); err != nil {
		return nil, err
	}
	r.audit(ctx, KindRegister, p.EntityID, p.EntityID, map[string]any{"roles": p.Roles, "keys": fingerprints(p)})
	return p, nil
}

// UpdateResult is what a participant's metadata update did.
type UpdateResult struct {
	// Participant is the record as stored: its active version, and the
	// pending one if any.
	Participant *store.Participant
	// Diff is the submitted metadata against the active version.
	Diff *metadata.Diff
	// Pending: the update holds a trust change and awaits an operator's
	// approval; nothing of it is in force.
	Pending bool
	// ChangeID identifies the pending version (ChangeID) when Pending.
	ChangeID string
	// Replaced is the ID of an earlier pending change this update replaced
	// (a newer trust change) or withdrew (a self-service update); "" when
	// none was pending.
	Replaced string
}

// UpdateMetadata replaces a participant's metadata, authenticated by one
// of the TLS client certificates of its active version (KECIS §13.6,
// §12.6). The submitted document is compared with the active version:
//   - a participant still pending approval is simply replaced (the
//     operator approves what is there when it approves);
//   - a change that is self-service only (keys, endpoints, display name,
//     organization, contacts) applies at once, status kept;
//   - a change that holds any trust change (roles, offered services, BIN
//     ranges, bank codes, currencies, amount limits, callers, anything
//     unclassified) becomes the pending version, as a whole; the active
//     version stays in force until an operator decides.
//
// The newest document is the participant's whole intent: it replaces any
// earlier pending change, and a self-service update withdraws one (an
// approval must never bring back what a later rollover retired), as does
// submitting the active version unchanged. Submitting the pending document
// again changes nothing (a retry).
func (r *Registry) UpdateMetadata(ctx context.Context, entityID string, md []byte, presented string) (*UpdateResult, error) {
	var (
		next   *store.Participant
		nextED *metadata.EntityDescriptor
	)
	for attempt := 0; attempt < 3; attempt++ {
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
		if next, nextED, err = r.describe(md); err != nil { // each attempt stores a fresh record
			return nil, err
		}
		if next.EntityID != entityID {
			return nil, fmt.Errorf("%w: the metadata names %q", ErrInvalidMetadata, next.EntityID)
		}
		if err := r.checkUnique(ctx, next); err != nil {
			return nil, err
		}
		curED, err := metadata.Parse(cur.Metadata)
		if err != nil {
			return nil, fmt.Errorf("registry: the stored metadata of %s does not parse: %w", entityID, err)
		}
		now := r.now()
		res := &UpdateResult{Diff: metadata.Compare(curED, nextED)}
		if cur.Pending != nil && bytes.Equal(cur.Pending.Metadata, md) && cur.Status != store.StatusPending {
			// The pending change again (a retry): nothing changes, and a
			// conformance report recorded since still counts.
			res.Participant, res.Pending, res.ChangeID = cur, true, ChangeID(cur.Pending)
			return res, nil
		}
		if cur.Pending != nil {
			res.Replaced = ChangeID(cur.Pending)
		}
		var upd *store.Participant
		switch {
		case cur.Status == store.StatusPending:
			upd = next
			upd.Status = cur.Status
		case res.Diff.TrustChange():
			c := *cur
			upd = &c
			upd.Pending = &store.PendingVersion{Metadata: md, RequestedAt: now}
			res.Pending, res.ChangeID = true, ChangeID(upd.Pending)
		default:
			upd = next
			upd.Status = cur.Status
		}
		if !res.Pending {
			upd.Metadata, upd.Pending = md, nil
		}
		upd.Version, upd.CreatedAt, upd.UpdatedAt = cur.Version, cur.CreatedAt, now
		err = r.Store.UpdateParticipant(ctx, upd)
		if errors.Is(err, store.ErrConflict) {
			continue // a concurrent change (another replica); read again
		}
		if err != nil {
			return nil, err
		}
		res.Participant = upd
		diff := res.Diff.Lines()
		if res.Pending {
			r.audit(ctx, KindChangeRequest, entityID, entityID, map[string]any{
				"change": res.ChangeID, "replaces": res.Replaced, "diff": diff, "trust": len(res.Diff.Trust()),
				"added_roles": res.Diff.AddedRoles, "added_services": res.Diff.AddedServices})
			return res, nil
		}
		r.audit(ctx, KindUpdate, entityID, entityID, map[string]any{"diff": diff, "keys": fingerprints(upd), "status": upd.Status})
		if res.Replaced != "" {
			r.audit(ctx, KindChangeWithdraw, entityID, entityID, map[string]any{"change": res.Replaced,
				"reason": "superseded: the participant submitted metadata without the change"})
		}
		return res, nil
	}
	return nil, store.ErrConflict
}

// ChangeID identifies a pending version: the SHA-256 of its metadata, in
// hex. An operator may name it when deciding, so that a change replaced
// after review is not approved unseen.
func ChangeID(v *store.PendingVersion) string {
	sum := sha256.Sum256(v.Metadata)
	return hex.EncodeToString(sum[:])
}

// PendingDiff is a participant's pending version against its active one
// (nil when nothing is pending).
func (r *Registry) PendingDiff(p *store.Participant) (*metadata.Diff, error) {
	if p.Pending == nil {
		return nil, nil
	}
	cur, err := metadata.Parse(p.Metadata)
	if err != nil {
		return nil, fmt.Errorf("registry: the stored metadata of %s does not parse: %w", p.EntityID, err)
	}
	next, err := metadata.Parse(p.Pending.Metadata)
	if err != nil {
		return nil, fmt.Errorf("registry: the pending metadata of %s does not parse: %w", p.EntityID, err)
	}
	return metadata.Compare(cur, next), nil
}

// Operator actions.
const (
	ActionApprove       = "approve"
	ActionSuspend       = "suspend"
	ActionReinstate     = "reinstate"
	ActionRemove        = "remove"
	ActionApproveChange = "approve-change"
	ActionRejectChange  = "reject-change"
)

// transitions lists, per action, the states it may start from and the
// state it leads to ("" keeps the state).
var transitions = map[string]struct {
	from []store.Status
	to   store.Status
	kind string
}{
	ActionApprove:       {[]store.Status{store.StatusPending}, store.StatusActive, "participant.approve"},
	ActionSuspend:       {[]store.Status{store.StatusActive}, store.StatusSuspended, "participant.suspend"},
	ActionReinstate:     {[]store.Status{store.StatusSuspended}, store.StatusActive, "participant.reinstate"},
	ActionRemove:        {[]store.Status{store.StatusPending, store.StatusActive, store.StatusSuspended}, store.StatusRemoved, "participant.remove"},
	ActionApproveChange: {[]store.Status{store.StatusActive, store.StatusSuspended}, "", KindChangeApprove},
	ActionRejectChange:  {[]store.Status{store.StatusActive, store.StatusSuspended}, "", KindChangeReject},
}

// Actions are the operator actions, in the order the CLI lists them.
var Actions = []string{ActionApprove, ActionSuspend, ActionReinstate, ActionRemove, ActionApproveChange, ActionRejectChange}

// Decision is an operator's action on a participant.
type Decision struct {
	EntityID string
	Action   string // one of Actions
	Operator string
	Reason   string
	// AllowOverlap names the participants whose overlapping BIN or bank
	// code claims the operator accepts (approve, reinstate,
	// approve-change); it needs a Reason. KECIS §13.5.
	AllowOverlap []string
	// Change, for approve-change and reject-change, is the ChangeID the
	// operator reviewed; "" decides whatever is pending.
	Change string
}

// Transition applies an operator action (approve, suspend, reinstate,
// remove, approve-change, reject-change) and audits it with the operator
// and the reason.
func (r *Registry) Transition(ctx context.Context, entityID, action, operator, reason string) (*store.Participant, error) {
	return r.Decide(ctx, Decision{EntityID: entityID, Action: action, Operator: operator, Reason: reason})
}

// Decide applies an operator's decision (KECIS §12.6). Approving a
// registration waits for the registration gate; approving a registration,
// a reinstatement or a pending change refuses claims that overlap an
// active participant's (KECIS §13.5) unless AllowOverlap names it;
// approving a pending change makes it the active version — with the
// registration gate applied to the roles and services it adds, on a
// report recorded after the change was requested —, rejecting it
// (a reason is required) drops it.
func (r *Registry) Decide(ctx context.Context, d Decision) (*store.Participant, error) {
	t, ok := transitions[d.Action]
	if !ok {
		return nil, fmt.Errorf("%w: unknown action %q", ErrTransition, d.Action)
	}
	reason := strings.TrimSpace(d.Reason)
	switch {
	case len(d.AllowOverlap) > 0 && reason == "":
		return nil, fmt.Errorf("%w: an overlap is allowed only with a reason", ErrDecision)
	case d.Action == ActionRejectChange && reason == "":
		return nil, fmt.Errorf("%w: a change is rejected with a reason (the participant learns it)", ErrDecision)
	case len(d.AllowOverlap) > 0 && !slices.Contains([]string{ActionApprove, ActionReinstate, ActionApproveChange}, d.Action):
		return nil, fmt.Errorf("%w: %s decides no claim; an overlap is allowed on approve, reinstate or approve-change", ErrDecision, d.Action)
	}
	for attempt := 0; attempt < 3; attempt++ {
		p, err := r.Store.GetParticipant(ctx, d.EntityID)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(t.from, p.Status) {
			return nil, fmt.Errorf("%w: %s a participant that is %s", ErrTransition, d.Action, p.Status)
		}
		detail := map[string]any{"from": p.Status, "to": p.Status, "reason": d.Reason}
		upd := p
		switch d.Action {
		case ActionApprove, ActionReinstate:
			if d.Action == ActionApprove {
				if err := r.checkGate(ctx, p); err != nil {
					return nil, err
				}
			}
			if err := r.checkUnique(ctx, p); err != nil {
				return nil, err
			}
			accepted, err := r.checkOverlap(ctx, p, d.AllowOverlap)
			if err != nil {
				return nil, err
			}
			if len(accepted) > 0 {
				detail["allowed_overlaps"] = accepted
			}
		case ActionApproveChange, ActionRejectChange:
			if p.Pending == nil {
				return nil, fmt.Errorf("%w: %s: no change of %s is pending", ErrTransition, d.Action, p.EntityID)
			}
			id := ChangeID(p.Pending)
			if d.Change != "" && !strings.EqualFold(d.Change, id) {
				return nil, fmt.Errorf("%w: change %s is pending now, not %s: review it again", ErrStaleChange, id, d.Change)
			}
			diff, err := r.PendingDiff(p)
			if err != nil {
				if d.Action == ActionApproveChange {
					return nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
				}
				diff = &metadata.Diff{} // a rejection need not read it
			}
			detail["change"], detail["diff"], detail["requested_at"] = id, diff.Lines(), p.Pending.RequestedAt
			if d.Action == ActionRejectChange {
				c := *p
				upd = &c
				upd.Pending = nil
				break
			}
			next, _, err := r.describe(p.Pending.Metadata)
			if err != nil {
				return nil, err
			}
			if next.EntityID != p.EntityID {
				return nil, fmt.Errorf("%w: the pending metadata names %q", ErrInvalidMetadata, next.EntityID)
			}
			if err := r.checkChangeGate(ctx, next, diff, p.Pending.RequestedAt); err != nil {
				return nil, err
			}
			if err := r.checkUnique(ctx, next); err != nil {
				return nil, err
			}
			accepted, err := r.checkOverlap(ctx, next, d.AllowOverlap)
			if err != nil {
				return nil, err
			}
			if len(accepted) > 0 {
				detail["allowed_overlaps"] = accepted
			}
			next.Status, next.Metadata, next.Pending = p.Status, p.Pending.Metadata, nil
			next.Version, next.CreatedAt = p.Version, p.CreatedAt
			upd = next
		}
		if t.to != "" {
			upd.Status = t.to
		}
		detail["to"] = upd.Status
		upd.UpdatedAt = r.now()
		err = r.Store.UpdateParticipant(ctx, upd)
		if errors.Is(err, store.ErrConflict) {
			continue // a concurrent change (another replica); read again
		}
		if err != nil {
			return nil, err
		}
		r.audit(ctx, t.kind, d.Operator, d.EntityID, detail)
		return upd, nil
	}
	return nil, store.ErrConflict
}

// checkUnique refuses metadata that publishes a TLS client certificate or
// an endpoint URL another participant (not removed) publishes: the hub
// identifies a connection by the first and a message's recipient by the
// second, so a participant that published another's would be taken for
// it. Both are self-service changes; this keeps them from being a way to
// shadow someone else.
func (r *Registry) checkUnique(ctx context.Context, p *store.Participant) error {
	for _, k := range p.Keys {
		if k.Use != store.KeyTLSClient {
			continue
		}
		o, err := r.Store.ParticipantByCertificate(ctx, k.Use, k.Fingerprint)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("registry: look up the TLS client certificate %s: %w", k.Fingerprint, err)
		case o.EntityID != p.EntityID && o.Status != store.StatusRemoved:
			return fmt.Errorf("%w: the TLS client certificate sha256 %s is another participant's", ErrInvalidMetadata, k.Fingerprint)
		}
	}
	if len(p.Endpoints) == 0 {
		return nil
	}
	others, err := r.Store.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusPending, store.StatusActive, store.StatusSuspended}})
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.EntityID == p.EntityID {
			continue
		}
		for _, e := range o.Endpoints {
			if slices.ContainsFunc(p.Endpoints, func(m store.Endpoint) bool { return m.URL == e.URL }) {
				return fmt.Errorf("%w: the endpoint %s is another participant's", ErrInvalidMetadata, e.URL)
			}
		}
	}
	return nil
}

// claimRoles are the roles whose claims must not overlap (KECIS §13.5):
// the issuer answers for a card BIN, the bank for a bank code.
var claimRoles = []metadata.Role{metadata.RoleIssuer, metadata.RoleBank}

// checkOverlap refuses p's claims that overlap an active participant's
// claim for the same service (KECIS §13.5), naming the other participant,
// unless allow names it; it returns the overlaps the operator accepted,
// for the audit record.
func (r *Registry) checkOverlap(ctx context.Context, p *store.Participant, allow []string) ([]string, error) {
	var roles []metadata.Role
	for _, role := range claimRoles {
		if slices.Contains(p.Roles, store.Role(role)) {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		return nil, nil
	}
	active, err := r.Store.ListParticipants(ctx, store.ParticipantFilter{Status: []store.Status{store.StatusActive}})
	if err != nil {
		return nil, err
	}
	mine, err := offers(p)
	if err != nil {
		return nil, err
	}
	var accepted, refused []string
	for _, o := range active {
		if o.EntityID == p.EntityID {
			continue
		}
		theirs, err := offers(o)
		if err != nil {
			return nil, err
		}
		for _, role := range roles {
			if !slices.Contains(o.Roles, store.Role(role)) {
				continue
			}
			for i := range mine {
				for j := range theirs {
					what, ok := metadata.ClaimOverlap(role, &mine[i], &theirs[j])
					if !ok {
						continue
					}
					line := fmt.Sprintf("%s: the active %s %s (%s)", mine[i].Service, role, o.EntityID, what)
					if slices.Contains(allow, o.EntityID) {
						accepted = append(accepted, line)
					} else {
						refused = append(refused, line)
					}
				}
			}
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%w with %s; approve with --allow-overlap and a reason to accept it", ErrOverlap, strings.Join(refused, "; "))
	}
	return accepted, nil
}

// offers turns the registry's service rows back into the participant
// model's offers (the rows are derived from the metadata by Describe).
func offers(p *store.Participant) ([]metadata.OfferedService, error) {
	out := make([]metadata.OfferedService, len(p.Services))
	for i, s := range p.Services {
		out[i] = metadata.OfferedService{Service: s.Service, BankCodes: s.BankCodes}
		if len(s.BINRanges) > 0 {
			l, err := metadata.ParseBINList(strings.Join(s.BINRanges, " "))
			if err != nil {
				return nil, fmt.Errorf("registry: the BIN ranges of %s for %s: %w", p.EntityID, s.Service, err)
			}
			out[i].BINs = l
		}
	}
	return out, nil
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
