package kecisadapter

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/microdeposit"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/saml"
)

// MicroDeposits is the micro-deposit verifier's bank (KECIS §15.8.1,
// connectors/microdeposit): a verifier — a merchant or a PG, not a bank —
// holds an account at the example bank, and each deposit is a transfer out
// of that account:
//
//   - to an account of the same bank, an internal Transfer whose memo is
//     the engine's (the holder reads it next to the verifier's name);
//   - to another bank, SendOut from the verifier's account, then
//     transfer:credit at the holder's bank through the hub (banking.Client;
//     the engine's memo is the kx:Holder of Role="remitter", the name on
//     the holder's statement; the credit's Ecom/@ConsumerOrderID is the
//     SendOut's reference, KECIS §15.8), then ConfirmOut — or ReverseOut
//     when the holder's bank refuses (the refusal is answered as its
//     status: "no such account" ends the session).
//
// The bank's own requests (Transfer, SendOut) are keyed by the verifier's
// account and the deposit's reference, so that Inquire finds them by the
// reference alone (bank.Outcome); the credit at the holder's bank and the
// reversal take keys derived from the engine's idempotency key. The memo
// (the code of the Code variant) travels only to the holder's bank: bank
// A's own record of a transfer out says "계좌인증".
//
// No Returner: the example bank has no operation "request the return of a
// credit with the holder's consent" (KECIS 1.0 fixes none, §15.8.1), so a
// verifier over it keeps its deposits (microdeposit.Keep).
type MicroDeposits struct {
	Bank    *bank.Bank
	Banking *banking.Client // for holders at other banks
	// Account is the verifier's account number at Bank (the deposits are
	// debited from it).
	Account ecml.Secret
	Log     *slog.Logger
}

var _ microdeposit.Depositor = (*MicroDeposits)(nil)

// outMemo is bank A's memo of a deposit to another bank: the verifier's
// statement says what it was, not the code.
const outMemo = "계좌인증"

// bankKey is the key of the bank's own request for a deposit: the
// verifier's account and the reference, hashed to a bounded length.
func bankKey(accountID, reference, op string) string {
	h := sha256.Sum256([]byte(accountID + "\x00" + reference))
	return "md-" + base64.RawURLEncoding.EncodeToString(h[:18]) + "-" + op
}

func (m *MicroDeposits) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// verifier is the verifier's active account; its absence is an error (a
// configuration to fix), not a refusal of the holder's account.
func (m *MicroDeposits) verifier(ctx context.Context) (*bank.Account, error) {
	a, err := m.Bank.FindAccount(ctx, m.Account)
	if err != nil {
		return nil, fmt.Errorf("kecisadapter: the verifier's account: %w", err)
	}
	if a.Status != bank.AccountActive {
		return nil, errors.New("kecisadapter: the verifier's account is closed")
	}
	return a, nil
}

// Deposit implements microdeposit.Depositor: the deposit's credit
// reference (the journal of an internal transfer, the holder bank's credit
// reference otherwise); a refusal is a *connectors.StatusError.
func (m *MicroDeposits) Deposit(ctx context.Context, d *microdeposit.Deposit) (string, error) {
	from, err := m.verifier(ctx)
	if err != nil {
		return "", err
	}
	if d.Bank == m.Bank.Code() {
		mv, err := m.Bank.Transfer(ctx, bank.TransferRequest{FromAccountID: from.ID, ToNumber: d.Account, Amount: d.Amount,
			Memo: d.Memo.Reveal(), IdempotencyKey: bankKey(from.ID, d.Reference, "transfer")})
		if err != nil {
			return "", depositRefusal(err)
		}
		return mv.JournalID, nil
	}
	if m.Banking == nil {
		return "", errors.New("kecisadapter: no banking client for another bank's holder")
	}
	o, err := m.Bank.SendOut(ctx, bank.SendOutRequest{FromAccountID: from.ID, ToBank: d.Bank, ToNumber: d.Account,
		Amount: d.Amount, Memo: outMemo, IdempotencyKey: bankKey(from.ID, d.Reference, "out")})
	if err != nil {
		return "", depositRefusal(err)
	}
	if o.Status == bank.OutgoingCredited {
		return o.CreditRef, nil
	}
	// Sent, or reversed already: the holder's bank answers a repeat with
	// its first outcome (the refusal, for a reversed one).
	res, err := m.Banking.Credit(ctx, &banking.CreditRequest{Reference: o.Reference, Amount: d.Amount, PayeeBank: d.Bank,
		PayeeAccount: d.Account, RemitterBank: m.Bank.Code(), RemitterName: d.Memo.Reveal(),
		IdempotencyKey: d.IdempotencyKey + ".credit"})
	if err != nil {
		return "", err
	}
	out := creditOutcome(res, false)
	switch out.Status {
	case twoway.Credited:
		m.confirm(ctx, o.Reference, out.Reference)
		return out.Reference, nil
	case twoway.CreditRefused:
		if err := m.reverse(ctx, o.Reference, d.IdempotencyKey+".reverse", res.Result.Status); err != nil {
			return "", err
		}
		return "", &connectors.StatusError{Status: res.Result.Status}
	}
	return "", fmt.Errorf("kecisadapter: deposit %s at bank %s: outcome unknown (%s)", d.Reference, d.Bank, out.Code)
}

// confirm records the holder bank's credit on the transfer out; best
// effort (the deposit is made either way).
func (m *MicroDeposits) confirm(ctx context.Context, ref, creditRef string) {
	if _, err := m.Bank.ConfirmOut(ctx, ref, creditRef); err != nil {
		m.log().WarnContext(ctx, "microdeposit: confirm the transfer out", "transfer", ref, "error", err.Error())
	}
}

// reverse gives the verifier its debit back after the holder's bank
// refused the credit; a transfer reversed already is done.
func (m *MicroDeposits) reverse(ctx context.Context, ref, key string, st saml.Status) error {
	reason := "refused: " + st.SubCode
	if st.Message != "" {
		reason += " " + st.Message
	}
	if n := []rune(reason); len(n) > 200 {
		reason = string(n[:200])
	}
	_, err := m.Bank.ReverseOut(ctx, bank.ReverseOutRequest{Reference: ref, Reason: reason, IdempotencyKey: key})
	if err != nil && !errors.Is(err, bank.ErrAlreadyReversed) {
		return fmt.Errorf("kecisadapter: reverse the refused deposit %s: %w", ref, err)
	}
	return nil
}

// Inquire implements microdeposit.Depositor: the credit reference of the
// deposit of reference at bankCode, ErrNoSuchDeposit when none was made
// (never sent, refused, or sent and never credited: the engine sends it
// again under the same keys, and the bank replays its debit).
func (m *MicroDeposits) Inquire(ctx context.Context, bankCode, reference string) (string, error) {
	from, err := m.verifier(ctx)
	if err != nil {
		return "", err
	}
	op := "out"
	if bankCode == m.Bank.Code() {
		op = "transfer"
	}
	oc, err := m.Bank.Outcome(ctx, bankKey(from.ID, reference, op))
	switch {
	case errors.Is(err, bank.ErrNotFound):
		return "", microdeposit.ErrNoSuchDeposit
	case err != nil:
		return "", err
	case oc.Err != nil:
		return "", microdeposit.ErrNoSuchDeposit
	case op == "transfer":
		return oc.Reference, nil
	}
	o, err := m.Bank.OutgoingTransfer(ctx, oc.Reference)
	if err != nil {
		return "", err
	}
	switch o.Status {
	case bank.OutgoingCredited:
		return o.CreditRef, nil
	case bank.OutgoingReversed:
		return "", microdeposit.ErrNoSuchDeposit
	}
	if m.Banking == nil {
		return "", errors.New("kecisadapter: no banking client for another bank's holder")
	}
	res, err := m.Banking.Inquire(ctx, bankCode, o.Reference)
	if err != nil {
		return "", err
	}
	switch out := creditOutcome(res, true); out.Status {
	case twoway.Credited:
		m.confirm(ctx, o.Reference, out.Reference)
		return out.Reference, nil
	case twoway.CreditNotFound:
		return "", microdeposit.ErrNoSuchDeposit
	default:
		return "", fmt.Errorf("kecisadapter: inquire deposit %s at bank %s: %s", reference, bankCode, out.Code)
	}
}

// depositRefusal maps the bank's refusals of a deposit: an unknown or
// closed payee account at this bank is §15.8's "no such account" (as the
// holder's bank would answer); the verifier's own refusals (insufficient
// funds, limit) are statuses too, ending the session with their code.
func depositRefusal(err error) error {
	if bank.CodeOf(err) == bank.CodeNoSuchAccount {
		return banking.Refuse(banking.NoSuchAccount)
	}
	return bankRefusal(err)
}
