// Package microdeposit is micro-deposit verification (KECIS §15.8.1): a
// verifier — a merchant or a PG — learns that a person controls a bank
// account by sending it small deposits that only the account's holder can
// read, on the bank's statement, and type back.
//
// Two variants:
//
//   - Amounts (Alipay's, Stripe's classic): two deposits of random amounts
//     (1 to 99 KRW each by default, drawn with the engine's cryptographic
//     random source); the holder types both amounts, in either order;
//   - Code (Stripe's "SM" code, the Korean 1원 인증): one deposit of 1 KRW
//     whose memo — the remitter's name on the holder's statement — starts
//     with a short code (4 characters of 23456789ABCDEFGHJKLMNPQRSTUVWXYZ
//     by default); the holder types the code.
//
// The flow: Start records the session (the account sealed and found by a
// keyed hash, the amounts or the code as a keyed hash bound to the
// session, and — only until the deposits are credited — sealed for a
// resend) and sends the deposits through a Depositor, the verifier's bank
// (a merchant is not a bank and may not call transfer:credit itself, KECIS
// §15.8: its bank debits it and credits the holder's bank); the holder
// reads them on the bank's page and types them back (Confirm: the JSON API
// and the no-JS page of Handler, or the verifier's backend); after
// Options.Attempts wrong entries the session fails, after Options.Expiry it
// expires. On a match the account is verified.
//
// Every deposit carries an idempotency key and a reference derived from
// the session, so a crash or an unknown outcome never sends it twice: an
// unknown outcome is resolved with the depositor's inquire, and a deposit
// the bank never received is sent again under the same key. Recover
// resumes every session a crash left (Run on a schedule).
//
// The deposits are kept (Keep, the default: their cost is the price of the
// check) or their return is requested (Return): in Korea money credited to
// an account comes back only with its holder's consent, so the engine asks
// the holder's bank through a Returner, once, under its own idempotency
// key, and records the bank's answer (requested, returned or refused); the
// holder's consent is the bank's business.
//
// Guessing: with amounts from 1 to n and the order irrelevant, a guess of
// two different amounts matches with probability 2/n² (n = 99: 2/9801,
// about 1/4900); a code of k characters from 32, 1/32^k (4: about 1/10⁶).
// A session takes Options.Attempts entries (3), an account Limits.
// AccountPerDay sessions a day (3) across every verifier of the engine:
// about 9 × 2/9801 ≈ 1/544 a day for the amounts — which is why a verifier
// that can afford a slightly longer memo should prefer the code.
package microdeposit

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/ecml"
)

// Variant is what the holder types back.
type Variant string

const (
	// Amounts: two deposits of random amounts.
	Amounts Variant = "amounts"
	// Code: one deposit whose memo starts with a short code.
	Code Variant = "code"
)

// State is a session's state.
type State string

// The states. Sending: the deposits are being sent (an outcome may be
// unknown); Awaiting: all deposits credited, the holder's entry awaited;
// the others end the session.
const (
	Sending  State = "sending"
	Awaiting State = "awaiting"
	Verified State = "verified"
	Failed   State = "failed"  // the attempt limit was reached
	Expired  State = "expired" // the deadline passed
	Refused  State = "refused" // the holder's bank refused a deposit (e.g. "no such account")
)

// Ended reports whether the session takes no more entries.
func (s State) Ended() bool { return s == Verified || s == Failed || s == Expired || s == Refused }

// Policy says what becomes of the deposits when a session ends.
type Policy string

const (
	// Keep leaves the deposits with the holder.
	Keep Policy = "keep"
	// Return asks the holder's bank to return them (Returner).
	Return Policy = "return"
)

// ReturnState is where a return request stands ("" when none is owed).
type ReturnState string

const (
	ReturnOwed      ReturnState = "owed"      // to be requested (Recover retries)
	ReturnRequested ReturnState = "requested" // the bank took it and asks its holder
	ReturnReturned  ReturnState = "returned"  // the money is back
	ReturnRefused   ReturnState = "refused"   // the bank or its holder refused
)

// CodeAlphabet is the code's alphabet: digits and capitals without 0, 1,
// O and I, which a person confuses (32 characters, 5 bits each).
const CodeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// Options are a verifier's policy. Zero fields take DefaultOptions'.
type Options struct {
	Variant Variant
	// MinAmount and MaxAmount bound each amount of the Amounts variant
	// (minor units), drawn uniformly from [MinAmount, MaxAmount].
	MinAmount, MaxAmount int64
	// CodeLength is the code's length (3 to 8).
	CodeLength int
	// CodeAmount is the Code variant's deposit.
	CodeAmount int64
	Currency   string
	Attempts   int
	Expiry     time.Duration
	Policy     Policy
}

// DefaultOptions: two amounts of 1–99 KRW, codes of 4 characters on
// 1 KRW, three attempts, two days, deposits kept.
var DefaultOptions = Options{Variant: Amounts, MinAmount: 1, MaxAmount: 99, CodeLength: 4, CodeAmount: 1,
	Currency: "KRW", Attempts: 3, Expiry: 48 * time.Hour, Policy: Keep}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.Variant == "" {
		o.Variant = d.Variant
	}
	if o.MinAmount <= 0 {
		o.MinAmount = d.MinAmount
	}
	if o.MaxAmount <= 0 {
		o.MaxAmount = d.MaxAmount
	}
	if o.CodeLength <= 0 {
		o.CodeLength = d.CodeLength
	}
	if o.CodeAmount <= 0 {
		o.CodeAmount = d.CodeAmount
	}
	if o.Currency == "" {
		o.Currency = d.Currency
	}
	if o.Attempts <= 0 {
		o.Attempts = d.Attempts
	}
	if o.Expiry <= 0 {
		o.Expiry = d.Expiry
	}
	if o.Policy == "" {
		o.Policy = d.Policy
	}
	return o
}

func (o Options) check() error {
	switch {
	case o.Variant != Amounts && o.Variant != Code:
		return errors.New("microdeposit: the variant must be amounts or code")
	case o.MaxAmount < o.MinAmount+9 || o.MaxAmount > 999_999:
		return errors.New("microdeposit: MaxAmount must be at least MinAmount+9 and at most 999999")
	case o.CodeLength < 3 || o.CodeLength > 8:
		return errors.New("microdeposit: CodeLength must be 3 to 8")
	case o.Policy != Keep && o.Policy != Return:
		return errors.New("microdeposit: the policy must be keep or return")
	}
	return nil
}

// Deposit is one small credit to the holder's account. Amount and Memo
// are the session's secret (the Code variant's memo carries the code): an
// implementation must not log them, nor Account.
type Deposit struct {
	// Reference is the verifier's reference of the transfer, unique per
	// verifier (at its bank: Ecom/@ConsumerOrderID of transfer:credit).
	Reference      string
	IdempotencyKey string
	Bank           string      // the holder's bank code
	Account        ecml.Secret // the holder's account number
	Amount         ecml.Money
	// Memo is the remitter's name on the holder's statement (kx:Holder of
	// kx:BankAccount Role="remitter", KECIS §15.8).
	Memo ecml.Secret
}

// ErrNoSuchDeposit is Depositor.Inquire's answer for a reference its bank
// never credited (transfer:inquire's "no such transfer").
var ErrNoSuchDeposit = errors.New("microdeposit: no such deposit")

// Depositor sends deposits: the verifier's bank, which debits the
// verifier's account and credits the holder's bank with transfer:credit
// (KECIS §15.8), or that call itself when the verifier is a bank.
//
// Deposit answers the credit's reference at the holder's bank; a business
// refusal (no such account, LimitExceeded) is a *connectors.StatusError;
// any other error leaves the outcome unknown. A repeat with the same
// idempotency key and reference must answer the first outcome and move no
// money again. Inquire answers the credit of a reference at the holder's
// bank (its code), or
// ErrNoSuchDeposit when none was made; any other error is unknown.
type Depositor interface {
	Deposit(ctx context.Context, d *Deposit) (creditRef string, err error)
	Inquire(ctx context.Context, bank, reference string) (creditRef string, err error)
}

// Credited is one credited deposit, as a return request names it.
type Credited struct {
	Reference string // the verifier's
	CreditRef string // the holder's bank's
}

// ReturnRequest asks the holder's bank to return a session's deposits.
type ReturnRequest struct {
	Reference      string // the request's own, derived from the session
	IdempotencyKey string
	Bank           string
	Deposits       []Credited
}

// Returner requests the return of deposits from the holder's bank, which
// asks its holder's consent (a mistaken credit comes back only with it).
// It answers ReturnRequested, ReturnReturned or ReturnRefused; an error
// leaves the outcome unknown, and the same request is sent again.
type Returner interface {
	RequestReturn(ctx context.Context, r *ReturnRequest) (ReturnState, error)
}

// StartRequest starts a verification.
type StartRequest struct {
	Verifier string // the caller: the session's owner (KECIS §13.3)
	// IdempotencyKey: a repeat with the same key answers the same session.
	IdempotencyKey string
	UserID         string // the verifier's user who claims the account
	Bank           string // three-digit bank code
	Account        ecml.Secret
}

// Typed is what the holder typed: the two amounts, or the code.
type Typed struct {
	Amounts []int64
	Code    string
}
