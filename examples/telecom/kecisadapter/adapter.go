// Package kecisadapter puts KECIS next to the example telecom's own API:
// it implements the SDK's phone service (connectors/phone, KECIS §15.10)
// over the telecom's holder check. The telecom itself contains no KECIS
// code.
//
// The holder check is for banks only. The service's metadata admits the
// role bank alone (Offered), and the SDK's Handler refuses any other
// caller before the adapter runs (KECIS §13.2); the adapter looks the
// caller up again in the federation metadata and refuses one that is not
// a bank (Requester / RequestDenied) — defence in depth, should the
// metadata ever admit more. The telecom never answers a name, and the
// number is logged masked.
package kecisadapter

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/phone"
	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Participants looks participants up in the active federation metadata:
// connectors.Directory and metadata.Client implement it.
type Participants interface {
	Lookup(ctx context.Context, entityID string) (*metadata.EntityDescriptor, error)
}

// Adapter serves the phone service over a telecom.
type Adapter struct {
	Telecom *telecom.Telecom
	// Participants is where the adapter checks the caller's role (the
	// Handler's Directory). Required: without it every call fails.
	Participants Participants
	// Log (slog.Default() by default) records refused callers.
	Log *slog.Logger
}

var _ phone.HolderChecker = (*Adapter)(nil)

// Callers are the roles the holder check admits.
var Callers = []metadata.Role{metadata.RoleBank}

// Offered is the service as the telecom's metadata declares it: banks
// only.
func Offered() metadata.OfferedService {
	return metadata.OfferedService{Service: phone.ServiceHolderCheck, Callers: Callers}
}

// Services returns the SDK functions of the adapter, for
// connectors.HandlerConfig.Services.
func (a *Adapter) Services() map[string]connectors.ServiceFunc { return phone.Services(a) }

func (a *Adapter) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// CheckHolder implements phone.HolderChecker: the caller must be a bank;
// then the telecom's HolderCheck. A number the telecom cannot read as a
// mobile number is not-possible, as an unknown one.
func (a *Adapter) CheckHolder(ctx context.Context, r *phone.HolderCheckRequest) (phone.Outcome, error) {
	if err := a.admit(ctx, r.Caller); err != nil {
		return "", err
	}
	out, err := a.Telecom.HolderCheck(ctx, r.Phone, r.Name)
	switch {
	case errors.Is(err, telecom.ErrInvalid):
		return phone.NotPossible, nil
	case err != nil:
		return "", err // ProviderUnavailable: the key stays retryable
	}
	switch out {
	case telecom.HolderMatch:
		return phone.Match, nil
	case telecom.HolderCloseMatch:
		return phone.CloseMatch, nil
	case telecom.HolderNoMatch:
		return phone.NoMatch, nil
	case telecom.HolderNotPossible:
		return phone.NotPossible, nil
	}
	a.log().ErrorContext(ctx, "telecom adapter: unknown holder-check outcome", "outcome", out, "phone", sms.MaskPhone(r.Phone))
	return "", errors.New("telecom adapter: unknown holder-check outcome")
}

// admit is the provider's own check that the caller is a bank.
func (a *Adapter) admit(ctx context.Context, caller string) error {
	if a.Participants == nil {
		return errors.New("telecom adapter: Participants is not configured")
	}
	ed, err := a.Participants.Lookup(ctx, caller)
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		ed = nil
	case err != nil:
		return err // the metadata cannot be read: ProviderUnavailable, retryable
	}
	// A conformance tester stands in for a bank while the telecom is
	// certified (KECIS §13.2): it gets here only when the telecom's own
	// metadata lists it among the callers (the Handler checked that).
	if ed == nil || !(ed.HasRole(metadata.RoleBank) || ed.HasRole(metadata.RoleTester)) {
		var roles []metadata.Role
		if ed != nil {
			roles = ed.Roles
		}
		a.log().WarnContext(ctx, "telecom adapter: holder check refused: the caller is not a bank", "caller", caller, "roles", roles)
		return phone.RequestDenied("the holder check is for banks only")
	}
	return nil
}
