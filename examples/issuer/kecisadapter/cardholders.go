package kecisadapter

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
)

// The issuer's side of its authentication page (connectors/cardauth
// Cardholders, KECIS §15.7): the issuer's cards, their authentication
// password and TOTP seed, its cardholder CA's certificates and its
// virtual numbers, found by the issuer's card ID (the page's card
// reference, never a number).

// FindCard implements cardauth.Cardholders: an active card of the issuer
// that has an authentication password (a card without one cannot be
// authenticated on the page); cardauth.ErrUnknownCard otherwise.
func (a *Adapter) FindCard(ctx context.Context, pan ecml.PAN) (*cardauth.Card, error) {
	c, err := a.Issuer.FindCard(ctx, pan)
	if err != nil {
		return nil, unknownCard(err)
	}
	if c.Status != issuer.CardActive || !c.AuthPassword {
		return nil, cardauth.ErrUnknownCard
	}
	return &cardauth.Card{Ref: c.ID, Type: a.CardType, Masked: pan.Masked(), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear,
		TOTP: c.TOTP}, nil
}

// CardNumber implements cardauth.Cardholders.
func (a *Adapter) CardNumber(ctx context.Context, ref string) (ecml.PAN, error) {
	pan, err := a.Issuer.CardNumber(ctx, ref)
	if err != nil {
		return "", unknownCard(err)
	}
	return pan, nil
}

// CheckPassword implements cardauth.Cardholders.
func (a *Adapter) CheckPassword(ctx context.Context, ref string, pw ecml.Secret) error {
	r, err := a.Issuer.CheckAuthPassword(ctx, ref, pw)
	return a.factor(ctx, ref, r, err)
}

// CheckTOTP implements cardauth.Cardholders. A code that is not six
// digits is wrong without counting.
func (a *Adapter) CheckTOTP(ctx context.Context, ref string, code ecml.Secret) error {
	r, err := a.Issuer.CheckTOTP(ctx, ref, code)
	return a.factor(ctx, ref, r, err)
}

// factor maps a credential check to cardauth's contract.
func (a *Adapter) factor(ctx context.Context, ref string, r *issuer.AuthCheck, err error) error {
	switch {
	case issuer.CodeOf(err) == issuer.CodeInvalidRequest:
		c, cerr := a.Issuer.Card(ctx, ref)
		if cerr != nil {
			return unknownCard(cerr)
		}
		if c.AuthLocked {
			return cardauth.ErrLocked
		}
		return &cardauth.FactorError{Left: max(a.Issuer.MaxAuthFailures()-c.AuthFailures, 0)}
	case err != nil:
		return unknownCard(err)
	case r.OK:
		return nil
	case r.Locked:
		return cardauth.ErrLocked
	}
	return &cardauth.FactorError{Left: r.Left}
}

// CertificateCard implements cardauth.Cardholders.
func (a *Adapter) CertificateCard(ctx context.Context, cert *x509.Certificate) (string, error) {
	ref, err := a.Issuer.CertificateCard(ctx, cert)
	if err != nil {
		return "", unknownCard(err)
	}
	return ref, nil
}

// IssueVirtual implements cardauth.Cardholders.
func (a *Adapter) IssueVirtual(ctx context.Context, ref string, c cardauth.VirtualControls) (*cardauth.VirtualNumber, error) {
	v, err := a.Issuer.IssueVirtual(ctx, ref, vcn.Controls(c))
	if err != nil {
		switch issuer.CodeOf(err) {
		case issuer.CodeNotFound, issuer.CodeDeclined, issuer.CodeExpired:
			return nil, cardauth.ErrUnknownCard
		}
		return nil, err
	}
	return &cardauth.VirtualNumber{Number: v.Number, Type: v.Type, ExpMonth: v.ExpMonth, ExpYear: v.ExpYear,
		Controls: cardauth.VirtualControls(v.Controls)}, nil
}

// unknownCard is cardauth.ErrUnknownCard for the issuer's answers that
// name no usable card (unknown, not active, not enrolled, no CA), else err.
func unknownCard(err error) error {
	var ie *issuer.Error
	if !errors.As(err, &ie) {
		return err
	}
	switch ie.Code {
	case issuer.CodeNotFound, issuer.CodeDeclined, issuer.CodeNotEnrolled, issuer.CodeNoCA, issuer.CodeExpired:
		return cardauth.ErrUnknownCard
	}
	return err
}
