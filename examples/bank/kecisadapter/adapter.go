// Package kecisadapter puts KECIS next to the example bank's own API: it
// implements the bank group of the SDK (connectors/banking: transfer:credit
// and transfer:inquire, KECIS §15.8; account:holder-inquiry, KECIS §15.9)
// over the bank's Go API, mapping its native error codes to KECIS
// statuses. The bank itself contains no KECIS code.
//
// The caller (a bank, checked by connectors/banking in its metadata) is
// known to the bank by its bank code: a credit's remitting bank code,
// which the SDK checks is one the caller publishes, scopes the credit's
// idempotency and its reference, so two banks' references never meet.
package kecisadapter

import (
	"context"
	"errors"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/saml"
)

// Adapter serves the bank services over a bank.
type Adapter struct {
	Bank *bank.Bank
}

var (
	_ banking.Transfers = (*Adapter)(nil)
	_ banking.Holders   = (*Adapter)(nil)
)

// Services are the adapter's SDK functions; dir is the federation's
// metadata (the callers' roles and bank codes).
func (a *Adapter) Services(dir banking.Directory) map[string]connectors.ServiceFunc {
	return banking.Services(a, dir)
}

// Credit implements banking.Transfers: the bank's CreditIn. A payee bank
// code that is not this bank's reads as no such account.
func (a *Adapter) Credit(ctx context.Context, r *banking.CreditRequest) (*banking.Credit, error) {
	if r.PayeeBank != a.Bank.Code() {
		return nil, banking.Refuse(banking.NoSuchAccount)
	}
	purpose := ""
	if r.Transfer != nil {
		purpose = r.Transfer.Purpose
	}
	c, err := a.Bank.CreditIn(ctx, bank.CreditInRequest{FromBank: r.RemitterBank, Reference: r.Reference, ToNumber: r.PayeeAccount,
		Amount: r.Amount, RemitterName: r.RemitterName, RemitterNumber: r.RemitterAccount, Purpose: purpose,
		IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, mapError(err)
	}
	return credit(c), nil
}

// Inquire implements banking.Transfers: the caller's credit by its
// reference.
func (a *Adapter) Inquire(ctx context.Context, r *banking.InquireRequest) (*banking.Credit, error) {
	c, err := a.Bank.Inquire(ctx, r.RemitterBank, r.Reference)
	if err != nil {
		if errors.Is(err, bank.ErrNotFound) {
			return nil, banking.Refuse(banking.NoSuchTransfer)
		}
		return nil, mapError(err)
	}
	return credit(c), nil
}

// HolderInquiry implements banking.Holders (예금주 조회): the holder's name
// of an active account of this bank; anything else is no such account.
func (a *Adapter) HolderInquiry(ctx context.Context, r *banking.HolderRequest) (*banking.Holder, error) {
	if r.BankCode != a.Bank.Code() {
		return nil, banking.Refuse(banking.NoSuchAccount)
	}
	name, err := a.Bank.Holder(ctx, r.Account)
	if err != nil {
		return nil, mapError(err)
	}
	return &banking.Holder{BankCode: a.Bank.Code(), Name: name}, nil
}

func credit(c *bank.Credit) *banking.Credit {
	return &banking.Credit{Reference: c.TheirReference, CreditRef: c.Reference, Amount: c.Amount, State: c.State}
}

// mapError turns the bank's codes into KECIS statuses (KECIS §15.8,
// §15.9); the message is the bank's public text, which never carries an
// account number.
func mapError(err error) error {
	var be *bank.Error
	if !errors.As(err, &be) {
		return err // an internal failure: ProviderUnavailable, retryable
	}
	switch be.Code {
	case bank.CodeNoSuchAccount:
		return banking.Refuse(banking.NoSuchAccount)
	case bank.CodeLimitExceeded:
		return banking.LimitExceeded(be.Message)
	case bank.CodeDuplicate:
		return banking.Duplicate(be.Message)
	case bank.CodeInvalidRequest:
		return banking.InvalidPayload(be.Message)
	case bank.CodeIdempotencyConflict:
		return connectors.Refuse(saml.StatusRequester, saml.CodeIdempotencyConflict, be.Message)
	case bank.CodeNotFound:
		return banking.Refuse(banking.NoSuchTransfer)
	}
	return connectors.Refuse(saml.StatusResponder, saml.CodeDeclined, be.Message)
}
