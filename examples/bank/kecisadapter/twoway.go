package kecisadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/phone"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/saml"
)

// TwoWay runs the 2-WAY transfer (KECIS §15.5, connectors/twoway) at the
// example bank as the remitter's bank: one value is the engine's Bank (the
// bank's native API), HolderInquirer and Crediter (other banks through
// the hub with banking.Client; a payee account at this bank is answered
// locally), PhoneChecker (the carrier's holder check through phone.Client)
// and the pages' PageCustomers (the bank's login and accounts):
//
//	tw := &kecisadapter.TwoWay{Bank: bk, Banking: &banking.Client{...}, Phone: &phone.Client{...}, Telecom: carrierID}
//	twoway.New(twoway.Config{Bank: tw, Holders: tw, Credits: tw, Phones: tw, ...})
//	twoway.NewPage(twoway.PageConfig{Engine: e, Customers: tw, ...})
type TwoWay struct {
	Bank    *bank.Bank
	Banking *banking.Client
	Phone   *phone.Client
	// Telecom is the carrier's entityID (the phone holder check's
	// recipient).
	Telecom string
}

var (
	_ twoway.Bank           = (*TwoWay)(nil)
	_ twoway.OutConfirmer   = (*TwoWay)(nil)
	_ twoway.HolderInquirer = (*TwoWay)(nil)
	_ twoway.Crediter       = (*TwoWay)(nil)
	_ twoway.PhoneChecker   = (*TwoWay)(nil)
	_ twoway.PageCustomers  = (*TwoWay)(nil)
)

// notYours is the one refusal of a withdrawal account that is not the
// customer's (unknown, another's, closed).
var notYours = connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, "no such account of the customer")

// account finds a customer account by number; a refusal when the bank has
// none.
func (t *TwoWay) account(ctx context.Context, number ecml.Secret) (*bank.Account, error) {
	a, err := t.Bank.FindAccount(ctx, number)
	if err != nil {
		return nil, bankRefusal(err)
	}
	return a, nil
}

// Remitter implements twoway.Bank: the holder of the customer's active
// account.
func (t *TwoWay) Remitter(ctx context.Context, customer string, number ecml.Secret) (*twoway.Remitter, error) {
	a, err := t.Bank.FindAccount(ctx, number)
	if errors.Is(err, bank.ErrNoSuchAccount) || err == nil && (a.CustomerID != customer || a.Status != bank.AccountActive) {
		return nil, notYours
	}
	if err != nil {
		return nil, err
	}
	c, err := t.Bank.Customer(ctx, customer)
	if err != nil {
		return nil, err
	}
	return &twoway.Remitter{Name: c.Name, Phone: c.Phone}, nil
}

// SendOut implements twoway.Bank: the bank's SendOut, idempotent by key.
func (t *TwoWay) SendOut(ctx context.Context, d *twoway.Debit) (string, error) {
	a, err := t.account(ctx, d.Account)
	if err != nil {
		return "", err
	}
	o, err := t.Bank.SendOut(ctx, bank.SendOutRequest{FromAccountID: a.ID, ToBank: d.PayeeBank, ToNumber: d.PayeeAccount,
		ToHolder: d.PayeeHolder, Amount: d.Amount, Memo: d.Memo, IdempotencyKey: d.IdempotencyKey})
	if err != nil {
		return "", bankRefusal(err)
	}
	return o.Reference, nil
}

// ReverseOut implements twoway.Bank: the bank's ReverseOut of the debit;
// a debit reversed already is done.
func (t *TwoWay) ReverseOut(ctx context.Context, r *twoway.Reversal) error {
	reason := r.Reason
	if n := []rune(reason); len(n) > 200 {
		reason = string(n[:200])
	}
	_, err := t.Bank.ReverseOut(ctx, bank.ReverseOutRequest{Reference: r.DebitRef, Reason: reason, IdempotencyKey: r.IdempotencyKey})
	if errors.Is(err, bank.ErrAlreadyReversed) {
		return nil
	}
	return err
}

// ConfirmOut implements twoway.OutConfirmer: the bank records the payee
// bank's credit reference of its transfer out.
func (t *TwoWay) ConfirmOut(ctx context.Context, debitRef, creditRef string) error {
	_, err := t.Bank.ConfirmOut(ctx, debitRef, creditRef)
	return err
}

// Transfer implements twoway.Bank: a transfer within the bank.
func (t *TwoWay) Transfer(ctx context.Context, in *twoway.Internal) (string, error) {
	a, err := t.account(ctx, in.From)
	if err != nil {
		return "", err
	}
	memo := in.Memo
	if n := []rune(memo); len(n) > 40 {
		memo = string(n[:40])
	}
	m, err := t.Bank.Transfer(ctx, bank.TransferRequest{FromAccountID: a.ID, ToNumber: in.To, Amount: in.Amount, Memo: memo,
		IdempotencyKey: in.IdempotencyKey})
	if err != nil {
		return "", bankRefusal(err)
	}
	return m.JournalID, nil
}

// bankRefusal turns the bank's business refusals into KECIS statuses
// (the engine ends the request on them); any other error stays an
// unknown outcome.
func bankRefusal(err error) error {
	var be *bank.Error
	if !errors.As(err, &be) {
		return err
	}
	switch be.Code {
	case bank.CodeInsufficientFunds:
		return connectors.Refuse(saml.StatusResponder, saml.CodeInsufficientFunds, be.Message)
	case bank.CodeLimitExceeded:
		return connectors.Refuse(saml.StatusResponder, saml.CodeLimitExceeded, be.Message)
	case bank.CodeInternal:
		return err
	}
	return connectors.Refuse(saml.StatusRequester, saml.CodeDeclined, be.Message)
}

// Holder implements twoway.HolderInquirer: the bank's own account holder
// for its own code, else account:holder-inquiry at the account's bank.
func (t *TwoWay) Holder(ctx context.Context, bankCode string, number ecml.Secret) (string, error) {
	if bankCode == t.Bank.Code() {
		name, err := t.Bank.Holder(ctx, number)
		if errors.Is(err, bank.ErrNoSuchAccount) {
			return "", twoway.ErrNoSuchAccount
		}
		return name, err
	}
	if t.Banking == nil {
		return "", errors.New("kecisadapter: no banking client for another bank's holder")
	}
	res, err := t.Banking.Holder(ctx, bankCode, number)
	switch {
	case err != nil:
		return "", err
	case res.OK():
		return res.Holder.Name, nil
	case res.Result.Status.SubCode == saml.CodeDeclined:
		return "", fmt.Errorf("bank %s: %w", bankCode, twoway.ErrNoSuchAccount)
	}
	return "", fmt.Errorf("kecisadapter: holder inquiry at bank %s: %s", bankCode, res.Result.Status.SubCode)
}

// Credit implements twoway.Crediter: transfer:credit at the payee's bank.
func (t *TwoWay) Credit(ctx context.Context, c *twoway.Credit) (*twoway.CreditOutcome, error) {
	if c.PayeeBank == t.Bank.Code() || t.Banking == nil {
		return nil, errors.New("kecisadapter: a credit at this bank is a Transfer")
	}
	res, err := t.Banking.Credit(ctx, &banking.CreditRequest{Reference: c.Reference, Amount: c.Amount, PayeeBank: c.PayeeBank,
		PayeeAccount: c.PayeeAccount, RemitterBank: c.RemitterBank, RemitterName: c.RemitterName,
		RemitterAccount: c.RemitterAccount, Transfer: c.Transfer, IdempotencyKey: c.IdempotencyKey})
	if err != nil {
		return nil, err
	}
	return creditOutcome(res, false), nil
}

// Inquire implements twoway.Crediter: transfer:inquire at the payee's bank.
func (t *TwoWay) Inquire(ctx context.Context, payeeBank, reference string) (*twoway.CreditOutcome, error) {
	if payeeBank == t.Bank.Code() || t.Banking == nil {
		return nil, errors.New("kecisadapter: no inquiry at this bank")
	}
	res, err := t.Banking.Inquire(ctx, payeeBank, reference)
	if err != nil {
		return nil, err
	}
	return creditOutcome(res, true), nil
}

// creditOutcome reads the payee bank's answer: credited; an unknown
// outcome for Pending and the hub's and provider's unavailability;
// not-found for an inquiry's "no such transfer"; refused otherwise.
func creditOutcome(res *banking.CreditResult, inquiry bool) *twoway.CreditOutcome {
	st := res.Result.Status
	switch {
	case res.OK() && res.Credit.State == banking.StateCredited:
		return &twoway.CreditOutcome{Status: twoway.Credited, Reference: res.Credit.CreditRef}
	case res.OK():
		return &twoway.CreditOutcome{Status: twoway.CreditUnknown, Message: "state " + res.Credit.State}
	case res.Result.Pending() || st.SubCode == saml.CodeProviderUnavailable || st.SubCode == saml.CodeHubUnavailable:
		return &twoway.CreditOutcome{Status: twoway.CreditUnknown, Code: st.SubCode, Message: st.Message}
	case inquiry && st.Code == saml.StatusRequester && st.SubCode == saml.CodeDeclined:
		return &twoway.CreditOutcome{Status: twoway.CreditNotFound, Code: st.SubCode, Message: st.Message}
	}
	return &twoway.CreditOutcome{Status: twoway.CreditRefused, Code: st.SubCode, Message: st.Message}
}

// HolderCheck implements twoway.PhoneChecker: the carrier's
// phone:holder-check (KECIS §15.10); a refusal is an error (asked again).
func (t *TwoWay) HolderCheck(ctx context.Context, number, name string) (twoway.NameCheck, error) {
	if t.Phone == nil || t.Telecom == "" {
		return "", errors.New("kecisadapter: no phone client or carrier")
	}
	res, err := t.Phone.CheckHolder(ctx, t.Telecom, number, name)
	if err != nil {
		return "", err
	}
	if !res.OK() {
		return "", fmt.Errorf("kecisadapter: phone holder check: %s", res.Result.Status.SubCode)
	}
	return twoway.NameCheck(res.Outcome), nil
}

// Authenticate implements twoway.PageCustomers: the bank's login, which
// counts and locks failures.
func (t *TwoWay) Authenticate(ctx context.Context, login string, password ecml.Secret) (string, string, error) {
	c, err := t.Bank.Authenticate(ctx, login, password)
	switch bank.CodeOf(err) {
	case "":
	case bank.CodeLoginFailed:
		return "", "", twoway.ErrLoginFailed
	case bank.CodeLocked:
		return "", "", twoway.ErrLoginLocked
	default:
		return "", "", err
	}
	return c.ID, c.Name, nil
}

// Accounts implements twoway.PageCustomers: the customer's active
// accounts.
func (t *TwoWay) Accounts(ctx context.Context, customer string) ([]twoway.PageAccount, error) {
	if customer == "" {
		return nil, nil // never every customer's
	}
	as, err := t.Bank.Accounts(ctx, customer)
	if err != nil {
		return nil, err
	}
	var out []twoway.PageAccount
	for _, a := range as {
		if a.Status != bank.AccountActive {
			continue
		}
		n, err := t.Bank.AccountNumber(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, twoway.PageAccount{ID: a.ID, Masked: a.Masked(), Balance: ecml.Money{Minor: a.Balance, Currency: a.Currency}, Number: n})
	}
	return out, nil
}
