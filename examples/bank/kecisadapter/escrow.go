package kecisadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/saml"
)

// Escrow is the escrow holder's ledger (KECIS §15.6, connectors/escrow)
// at the example bank: the engine's Holder over the bank's escrow holding
// account.
//
//   - Fund is the bank's EscrowFund: the buyer's own account into the
//     holding account (the bank's refusals — not the customer's account,
//     insufficient balance, the per-transfer limit — answered as KECIS
//     statuses, so the order stays unpaid).
//   - Release is the bank's EscrowRelease: to a settlement account at this
//     bank, a transfer within the bank, done at once; to another bank, a
//     transfer out of the holding account, then transfer:credit at the
//     settlement account's bank through the hub (banking.Client; the
//     credit's Ecom/@ConsumerOrderID is the transfer's reference, KECIS
//     §15.8) and ConfirmOut — pending (Done false) while that bank's
//     answer is unknown, the sweep asking again with the same keys; a
//     refused credit is reversed into the holding account (ReverseOut) and
//     answered as the payee bank's status.
//   - Refund is the bank's EscrowRefund: back to the buyer's account.
//
// The bank's requests take the engine's idempotency keys; the credit at
// the other bank and the reversal take keys derived from the release's.
// While a release to another bank is pending, its money is in the
// clearing account for that bank (sent, not yet credited), not in the
// holding account.
//
// The buyer's pages (connectors/escrow/page) take the bank's login and
// accounts as twoway.PageCustomers, which TwoWay implements:
//
//	h := &kecisadapter.Escrow{Bank: bk, Banking: &banking.Client{...}}
//	e, err := escrow.New(ctx, escrow.Config{DB: bk.DB(), Holder: h, ...})
//	pages, err := page.New(page.Config{Engine: e, Customers: &kecisadapter.TwoWay{Bank: bk}, ...})
type Escrow struct {
	Bank    *bank.Bank
	Banking *banking.Client // for settlement accounts at other banks
	// Shop names the shop of an escrow on the buyer's statement and SMS
	// (optional; "" names none).
	Shop func(ctx context.Context, reference string) string
	Log  *slog.Logger
}

var _ escrow.Holder = (*Escrow)(nil)

func (x *Escrow) log() *slog.Logger {
	if x.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.Log
}

func (x *Escrow) shop(ctx context.Context, reference string) string {
	if x.Shop == nil {
		return ""
	}
	s := []rune(x.Shop(ctx, reference))
	if len(s) > 64 {
		s = s[:64]
	}
	return string(s)
}

// Fund implements escrow.Holder: the bank's EscrowFund; the ledger's
// reference is the journal.
func (x *Escrow) Fund(ctx context.Context, f *escrow.Funding) (string, error) {
	m, err := x.Bank.EscrowFund(ctx, bank.EscrowFundRequest{CustomerID: f.Customer, Account: f.Account, Amount: f.Amount,
		Payee: x.shop(ctx, f.Reference), Reference: f.Reference, IdempotencyKey: f.IdempotencyKey})
	if err != nil {
		return "", bankRefusal(err)
	}
	return m.JournalID, nil
}

// Refund implements escrow.Holder: the bank's EscrowRefund.
func (x *Escrow) Refund(ctx context.Context, r *escrow.Refund) (string, error) {
	m, err := x.Bank.EscrowRefund(ctx, bank.EscrowRefundRequest{CustomerID: r.Customer, Account: r.Account, Amount: r.Amount,
		Payee: x.shop(ctx, r.Reference), Reference: r.Reference, IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return "", bankRefusal(err)
	}
	return m.JournalID, nil
}

// Release implements escrow.Holder: within the bank done at once, to
// another bank done once that bank credited it.
func (x *Escrow) Release(ctx context.Context, r *escrow.Release) (*escrow.Outcome, error) {
	if r.SettlementBank != x.Bank.Code() && x.Banking == nil {
		return nil, errors.New("kecisadapter: no banking client for a settlement account at another bank")
	}
	holder := []rune(r.PayeeName)
	if len(holder) > 64 {
		holder = holder[:64]
	}
	rel, err := x.Bank.EscrowRelease(ctx, bank.EscrowReleaseRequest{ToBank: r.SettlementBank, ToNumber: r.SettlementAccount,
		ToHolder: string(holder), Amount: r.Amount, Payer: x.Bank.Name(), Reference: r.Reference, IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, bankRefusal(err)
	}
	if rel.Outgoing == nil {
		return &escrow.Outcome{Done: true, Ref: rel.JournalID}, nil
	}
	o := rel.Outgoing
	switch o.Status {
	case bank.OutgoingCredited:
		return &escrow.Outcome{Done: true, Ref: o.CreditRef}, nil
	case bank.OutgoingReversed:
		return nil, connectors.Refuse(saml.StatusResponder, saml.CodeDeclined, "the settlement account's bank refused the credit: "+o.Reason)
	}
	// Sent: the settlement account's bank answers a repeat with its first
	// outcome.
	res, err := x.Banking.Credit(ctx, &banking.CreditRequest{Reference: o.Reference, Amount: r.Amount, PayeeBank: r.SettlementBank,
		PayeeAccount: r.SettlementAccount, RemitterBank: x.Bank.Code(), RemitterName: x.Bank.Name(),
		IdempotencyKey: r.IdempotencyKey + ".credit"})
	if err != nil {
		x.log().WarnContext(ctx, "escrow release: credit at the settlement bank", "reference", r.Reference, "transfer", o.Reference,
			"bank", r.SettlementBank, "error", err.Error())
		return &escrow.Outcome{}, nil // unknown: pending, asked again
	}
	out := creditOutcome(res, false)
	switch out.Status {
	case twoway.Credited:
		if _, err := x.Bank.ConfirmOut(ctx, o.Reference, out.Reference); err != nil {
			return nil, fmt.Errorf("kecisadapter: confirm the release %s: %w", o.Reference, err)
		}
		return &escrow.Outcome{Done: true, Ref: out.Reference}, nil
	case twoway.CreditRefused:
		st := res.Result.Status
		reason := "refused: " + st.SubCode
		if st.Message != "" {
			reason += " " + st.Message
		}
		if n := []rune(reason); len(n) > 200 {
			reason = string(n[:200])
		}
		if _, err := x.Bank.ReverseOut(ctx, bank.ReverseOutRequest{Reference: o.Reference, Reason: reason,
			IdempotencyKey: r.IdempotencyKey + ".reverse"}); err != nil && !errors.Is(err, bank.ErrAlreadyReversed) {
			return nil, fmt.Errorf("kecisadapter: reverse the refused release %s: %w", o.Reference, err)
		}
		return nil, &connectors.StatusError{Status: st}
	}
	return &escrow.Outcome{}, nil
}
