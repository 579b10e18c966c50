// Package twoway is the 2-WAY transfer (KECIS §15.5): a transfer that the
// payee confirms by SMS before money moves, run by the remitter's bank. It
// follows the twelve steps of the 2-WAY paper:
//
//  1. the remitter, logged in at its own bank, asks for a transfer with the
//     2-WAY option (Start): withdrawal account, amount, destination bank
//     and account, the payee's phone number, the purpose — voice-phishing
//     prevention, or a mutual agreement with its terms (principal,
//     repayment date, interest rate, the terms in words);
//  2. the bank asks the payee's bank for the account holder's name
//     (account:holder-inquiry, KECIS §15.9, HolderInquirer) and the telecom
//     whether the payee's phone belongs to that name (phone:holder-check,
//     KECIS §15.10, PhoneChecker); the remitter sees the outcome as
//     Confirmation of Payee shows it — match, close match with the actual
//     holder's name, no match, not possible — and confirms (Confirm) or
//     abandons (Cancel);
//  3. to 5. the bank draws a one-time code bound to the request and texts
//     it to the payee with the terms (for phishing prevention, with a
//     warning that receiving fraudulent money is a crime);
//  6. to 8. the payee replies with the code by SMS (HandleReply, behind
//     sms.WebhookHandler); the reply's sender number must be the payee's
//     phone; the bank checks the code;
//  9. the transfer executes exactly once (Bank.SendOut, then
//     Crediter.Credit at the payee's bank, or Bank.Transfer within the
//     bank), and the bank keeps the evidence: the request, the texts sent,
//     the reply with its sender number and time, the verification;
//  10. to 12. the remitter is texted the result.
//
// Refusal by the payee, expiry and wrong codes end a request without moving
// money; the remitter may cancel until the payee confirms.
//
// # The code
//
// The code is six digits: HMAC-SHA256 under the bank's key over a random
// nonce, the request's id, the remitter's bank and account, the payee's
// bank, account and phone, the amount, the purpose and the terms, reduced
// modulo 10⁶. Any change of those invalidates it, and two identical
// requests get different codes. The bank keeps the nonce and a keyed hash
// of the code, never the code: the reply is accepted only when it matches
// both the stored hash and the code recomputed from the request as stored
// now. It is single use (a compare-and-set moves the request on), expires
// (default 10 minutes) and takes a limited number of wrong replies
// (default 3).
//
// # Reliability
//
// A request is a row whose every step is a compare-and-set on its version;
// every call that moves money carries an idempotency key derived from the
// request's id, and every text a reference the gateway deduplicates.
// Recover, at start-up and on a schedule, carries every request that owes
// work as far as it can go: a crash at any step neither loses a confirmed
// transfer nor executes one twice. Account numbers and phone numbers are
// sealed at rest, found by keyed hashes; no log line, error or row holds an
// account number or a code in clear.
//
// # Evidence
//
// Evidence exports the agreement as a KECIS record signed by the bank
// (kecis:TransferAgreement, enveloped signature of KECIS §4): the terms,
// the amount, the name check, both parties' confirmations, the texts with
// the code masked, and the execution; account numbers appear masked only.
// It verifies with xmlsec1 alone, or with saml.VerifyElement.
package twoway

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/ecml"
)

// State is a request's state (KECIS §15.5).
type State string

// The states. Checking, Texting and the execution states are steps in
// flight that Recover finishes.
const (
	// Checking: the holder inquiry and the phone check are under way.
	Checking State = "checking"
	// AwaitingConfirmation: the remitter sees the name check and decides.
	AwaitingConfirmation State = "awaiting-confirmation"
	// Texting: the code is drawn; its text to the payee is being sent.
	Texting State = "texting"
	// AwaitingReply: the payee has the code.
	AwaitingReply State = "awaiting-reply"
	// Confirmed: the payee's reply matched; the debit is next.
	Confirmed State = "confirmed"
	// Debited: the remitter's account is debited; the credit is next.
	Debited State = "debited"
	// Reversing: the payee's bank refused the credit; the debit is being
	// reversed.
	Reversing State = "reversing"

	// Completed: the payee's account is credited.
	Completed State = "completed"
	// Reversed: the payee's bank refused; the debit was reversed.
	Reversed State = "reversed"
	// Failed: the remitter's bank refused the debit (insufficient funds, a
	// limit), or the payee's account is unknown; no money moved.
	Failed State = "failed"
	// Refused: the payee replied that it refuses the transfer.
	Refused State = "refused"
	// WrongCode: the payee's wrong replies reached the limit.
	WrongCode State = "wrong-code"
	// Expired: no decision of the remitter, or no reply of the payee, in
	// time.
	Expired State = "expired"
	// Abandoned: the remitter declined after the name check.
	Abandoned State = "abandoned"
	// Cancelled: the remitter cancelled after the code was sent.
	Cancelled State = "cancelled"
)

// Ended reports whether s is final.
func (s State) Ended() bool {
	switch s {
	case Completed, Reversed, Failed, Refused, WrongCode, Expired, Abandoned, Cancelled:
		return true
	}
	return false
}

// MovedMoney reports whether a request in s executed (or is executing)
// the transfer.
func (s State) MovedMoney() bool {
	return s == Confirmed || s == Debited || s == Reversing || s == Completed || s == Reversed
}

// NameCheck is the outcome of the name check shown to the remitter, as
// Confirmation of Payee shows it (KECIS §15.5, §15.10).
type NameCheck string

// The outcomes: the values of phone:holder-check (KECIS §15.10).
const (
	// Match: the payee's phone belongs to the account's holder.
	Match NameCheck = "match"
	// CloseMatch: nearly (one character, or family and given name
	// swapped); the remitter is shown the account holder's actual name.
	CloseMatch NameCheck = "close-match"
	// NoMatch: the phone belongs to someone else.
	NoMatch NameCheck = "no-match"
	// NotPossible: the telecom cannot tell (unknown or suspended number).
	NotPossible NameCheck = "not-possible"
)

// Valid reports whether n is one of the four outcomes.
func (n NameCheck) Valid() bool {
	return n == Match || n == CloseMatch || n == NoMatch || n == NotPossible
}

// Purposes of a 2-WAY transfer (kx:Transfer/@Purpose, KECIS §15.5).
const (
	PhishingPrevention = ecml.PurposePhishingPrevention
	MutualAgreement    = ecml.PurposeMutualAgreement
)

// Remitter is what the remitter's bank knows of the customer's account.
type Remitter struct {
	Name  string // the account holder's name
	Phone string // the customer's registered mobile number
}

// Debit is a SendOut: the remitter's account debited into the bank's
// clearing account for the payee's bank (KECIS §15.8).
type Debit struct {
	Account   ecml.Secret // the remitter's account number
	Amount    ecml.Money
	PayeeBank string // the payee's bank code
	// PayeeAccount and PayeeHolder are the payee's account number at its
	// bank and its holder's name as that bank answered (for the bank's
	// record of the transfer out and the statement).
	PayeeAccount   ecml.Secret
	PayeeHolder    string
	Reference      string // the transfer's reference (the request id)
	Memo           string
	IdempotencyKey string
}

// OutConfirmer is optionally implemented by a Bank that records that the
// payee's bank credited a SendOut (debitRef, the SendOut's reference)
// under its credit reference. The engine calls it once the credit is
// known, best effort: its failure is logged, the transfer is complete.
type OutConfirmer interface {
	ConfirmOut(ctx context.Context, debitRef, creditRef string) error
}

// Reversal reverses a SendOut that the payee's bank refused.
type Reversal struct {
	Account        ecml.Secret
	Amount         ecml.Money
	Reference      string
	DebitRef       string // the SendOut's reference at the bank
	Reason         string
	IdempotencyKey string
}

// Internal is a transfer between two accounts of the remitter's bank.
type Internal struct {
	From, To       ecml.Secret
	Amount         ecml.Money
	Reference      string
	Memo           string
	IdempotencyKey string
}

// Bank is the remitter's own bank, through its native API. Every mutation
// is idempotent by its key: the same key answers the first outcome.
//
// A business refusal (insufficient funds, a limit, a closed account) is a
// *connectors.StatusError (connectors.Refuse); any other error leaves the
// outcome unknown, and the engine asks again with the same key.
type Bank interface {
	// Remitter returns the holder of the customer's account; a refusal
	// when the account is not the customer's.
	Remitter(ctx context.Context, customer string, account ecml.Secret) (*Remitter, error)
	// SendOut debits the remitter into the clearing account for the
	// payee's bank and returns the bank's reference of the debit.
	SendOut(ctx context.Context, d *Debit) (string, error)
	// ReverseOut credits back a SendOut the payee's bank refused.
	ReverseOut(ctx context.Context, r *Reversal) error
	// Transfer moves money within the bank (the payee's account is the
	// bank's own) and returns its reference.
	Transfer(ctx context.Context, t *Internal) (string, error)
}

// ErrNoSuchAccount is what a HolderInquirer answers for an account that
// is unknown, closed or not at the bank (KECIS §15.9: "no such account").
var ErrNoSuchAccount = errors.New("twoway: no such account")

// HolderInquirer asks an account's bank for its holder's name
// (account:holder-inquiry, KECIS §15.9, over KECIS; for the bank's own
// accounts the wiring answers natively). ErrNoSuchAccount (wrapped) for an
// unknown account; any other error is a failure to ask.
type HolderInquirer interface {
	Holder(ctx context.Context, bankCode string, account ecml.Secret) (name string, err error)
}

// PhoneChecker asks the telecom whether a phone number belongs to a name
// (phone:holder-check, KECIS §15.10).
type PhoneChecker interface {
	HolderCheck(ctx context.Context, phone, name string) (NameCheck, error)
}

// Credit asks the payee's bank to credit the payee (transfer:credit, KECIS
// §15.8).
type Credit struct {
	Reference       string // Ecom/@ConsumerOrderID: the remitting bank's reference
	Amount          ecml.Money
	PayeeBank       string
	PayeeAccount    ecml.Secret
	RemitterBank    string
	RemitterName    string
	RemitterAccount ecml.Secret
	Transfer        *ecml.Transfer // purpose and terms, for the record
	IdempotencyKey  string
}

// CreditStatus is the outcome of a credit or an inquiry.
type CreditStatus string

const (
	// Credited: the payee's account is credited.
	Credited CreditStatus = "credited"
	// CreditRefused: the payee's bank refused (no such account, a limit):
	// nothing was credited.
	CreditRefused CreditStatus = "refused"
	// CreditUnknown: the outcome is not known (a timeout, Pending); the
	// engine inquires.
	CreditUnknown CreditStatus = "unknown"
	// CreditNotFound: (inquire only) the payee's bank has no such
	// transfer.
	CreditNotFound CreditStatus = "not-found"
)

// CreditOutcome is what the payee's bank answered.
type CreditOutcome struct {
	Status    CreditStatus
	Reference string // the payee bank's credit reference (Credited)
	Code      string // the KECIS status code of a refusal
	Message   string
}

// Crediter is transfer:credit and transfer:inquire at the payee's bank
// (KECIS §15.8). An error is an unknown outcome.
type Crediter interface {
	Credit(ctx context.Context, c *Credit) (*CreditOutcome, error)
	Inquire(ctx context.Context, payeeBank, reference string) (*CreditOutcome, error)
}

// TransferRequest is step 1: what the remitter asks for on its bank's page.
type TransferRequest struct {
	// Customer is the remitter's customer id at the bank (the logged-in
	// user); the request is its object.
	Customer string
	// Account is the withdrawal account, one of the customer's.
	Account      ecml.Secret
	Amount       ecml.Money
	PayeeBank    string // three-digit bank code
	PayeeAccount ecml.Secret
	PayeePhone   string
	// Purpose is PhishingPrevention or MutualAgreement; Terms are required
	// for MutualAgreement (Principal defaults to the amount, Currency to
	// its currency).
	Purpose string
	Terms   *ecml.Terms
	// IdempotencyKey makes a repeated submission answer the same request
	// (per customer); optional.
	IdempotencyKey string
}

// Request is one 2-WAY transfer. Account numbers and phones are held in
// clear only in memory; the store seals them.
type Request struct {
	ID       string
	Customer string
	// Version counts the row's writes: Store.Update succeeds only on the
	// version it read (compare-and-set).
	Version int
	State   State

	RemitterBank    string
	RemitterAccount ecml.Secret
	RemitterName    string
	RemitterPhone   string
	Amount          ecml.Money
	PayeeBank       string
	PayeeAccount    ecml.Secret
	PayeePhone      string // E.164
	Purpose         string
	Terms           *ecml.Terms

	// HolderName is the payee account's holder as its bank answered;
	// NameCheck the telecom's outcome for it and the payee's phone.
	HolderName string
	NameCheck  NameCheck

	// Nonce and CodeMAC are the code's random nonce and keyed hash.
	Nonce    []byte
	CodeMAC  []byte
	Attempts int
	// MaxAttempts is the limit of wrong replies.
	MaxAttempts int
	// CodeMessage is the gateway's id of the code's text.
	CodeMessage string

	// Deadline ends the current wait (the remitter's decision, or the
	// payee's reply).
	Deadline    time.Time
	ConfirmedAt time.Time // the remitter's confirmation
	RepliedAt   time.Time // the payee's accepted reply, as the carrier received it
	ReplyID     string    // the gateway's id of that reply

	DebitRef  string
	CreditRef string
	// ReversalDone is set once a refused credit's debit is reversed.
	ReversalDone bool
	// Reason is why a request ended without completing (public words).
	Reason string
	// Notified is set once the remitter was texted the result.
	Notified       bool
	IdempotencyKey string
	Created        time.Time
	Updated        time.Time
}

// ShownHolder is the holder's name the remitter's page shows: for a match
// or a close match, the name the payee's bank gave; for no match or not
// possible, nothing, as in Confirmation of Payee.
func (r *Request) ShownHolder() string {
	if r.NameCheck == Match || r.NameCheck == CloseMatch {
		return r.HolderName
	}
	return ""
}

// SameBank reports whether the payee's account is at the remitter's bank.
func (r *Request) SameBank() bool { return r.PayeeBank == r.RemitterBank }

// Transfer is the request's purpose and terms as kx:Transfer.
func (r *Request) Transfer() *ecml.Transfer {
	t := &ecml.Transfer{Purpose: r.Purpose}
	if r.Terms != nil {
		c := *r.Terms
		t.Terms = &c
	}
	return t
}

// Event kinds of the evidence log.
const (
	EventRequested     = "requested"
	EventNameCheck     = "name-check"
	EventConfirmed     = "remitter-confirmed"
	EventCodeSent      = "code-sent"
	EventReply         = "reply"
	EventVerified      = "verified"
	EventDebited       = "debited"
	EventCredit        = "credit"
	EventReversed      = "reversed"
	EventEnded         = "ended"
	EventResultTexted  = "result-texted"
	EventReplyAnswered = "reply-answered"
)

// Event is one entry of a request's evidence log: what happened, when, and
// its public details (masked numbers, texts with the code masked).
type Event struct {
	Seq    int
	Kind   string
	At     time.Time
	Detail map[string]string
	// ReplyID is the gateway's id of a reply the event records; the store
	// keeps each reply id once (ErrReplySeen), so that a redelivered reply
	// is judged once.
	ReplyID string
}
