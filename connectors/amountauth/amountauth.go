// Package amountauth is amount authentication (AA, KECIS §15.3): a random
// card approval used as a one-time password, as the PayGate MobileOK
// proposal describes. It runs inside a PG's KECIS adapter, on top of the
// PG's own approve and of the issuer's card service:
//
//  1. the merchant starts a purchase of amount A (amountauth:start) with
//     the card encrypted for the PG;
//  2. the engine draws a challenge uniformly from [lowest, min(A, highest))
//     with a cryptographic source and asks the card's issuer for a
//     verification approval of it (card:approve-verification, KECIS §15.2):
//     the amount travels encrypted for the issuer, under a public ceiling;
//  3. the issuer approves and texts the cardholder the amount and the
//     merchant's name;
//  4. the cardholder types the amount on the PG's page (Page) or the
//     merchant relays it (amountauth:confirm);
//  5. on a match the engine voids the verification approval and approves
//     A through the PG's own approve (Acquirer), with its signed
//     kecis:AuthenticationResult (KECIS §3); after the attempt limit or the
//     timeout the verification approval is voided and the session ends
//     failed or expired.
//
// Every verification approval is voided exactly once, whatever happens
// (KECIS §15.3.3): each step is a compare-and-set on the session's row,
// every call to the issuer carries an idempotency key derived from the
// session, and Recover finishes what a crash left. The challenge is kept
// only as an HMAC, the card sealed, user and card as keyed hashes.
package amountauth

import (
	"context"
	"errors"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Service URIs (KECIS §15.3.1).
const (
	ServiceStart   = saml.ServicePrefix + "amountauth:start"
	ServiceConfirm = saml.ServicePrefix + "amountauth:confirm"
	ServiceStatus  = saml.ServicePrefix + "amountauth:status"
)

// MethodURI is the authentication method of the result a verified session
// embeds (KECIS §3.1, §15.3.1).
const MethodURI = "urn:kecis:authn:amount-auth"

// ObjectSession is the object kind of a session (KECIS §13.3): created by
// start, owned by its merchant.
const ObjectSession = "amountauth:session"

// State is a session's state (KECIS §15.3.1).
type State string

// The states. Starting is internal: the verification approval has been
// asked for and its outcome is not recorded yet; answers show it as
// processing.
const (
	Starting       State = "starting"
	AwaitingAmount State = "awaiting-amount"
	Processing     State = "processing"
	Approved       State = "approved"
	Declined       State = "declined"
	Failed         State = "failed"
	Expired        State = "expired"
	Refused        State = "refused"
)

// Ended reports whether no further attempt is taken in s.
func (s State) Ended() bool {
	return s == Approved || s == Declined || s == Failed || s == Expired || s == Refused
}

// Method is what the cardholder types (KECIS §15.3.5).
type Method string

const (
	// ByAmount: the amount of the verification approval.
	ByAmount Method = "amount"
	// ByDescriptor: a 6-digit code the issuer's text shows after the
	// merchant's name.
	ByDescriptor Method = "descriptor"
)

// descriptorDigits is the length of a descriptor code.
const descriptorDigits = 6

// minChallenges is the number of possible challenges the default minimum
// purchase keeps (KECIS §15.3.4).
const minChallenges = 10000

// Options are a merchant's amount-authentication policy (KECIS §15.3.4),
// in minor units of the purchase's currency. Zero fields take the
// defaults of DefaultOptions.
type Options struct {
	Method Method
	// LowestChallenge and HighestChallenge bound the challenge: it is
	// drawn from [LowestChallenge, min(purchase, HighestChallenge)).
	LowestChallenge  int64
	HighestChallenge int64
	// MinPurchase: below it AA is not used and start approves at once.
	// Default LowestChallenge + 10,000, which leaves at least 10,000
	// possible challenges.
	MinPurchase int64
	// Timeout ends a session that was not matched in time.
	Timeout time.Duration
	// Attempts is the number of typed amounts a session takes.
	Attempts int
	// ProfilePeriod: the same user of the same merchant with the same card
	// skips AA for this long after a verification. Zero: no profile store.
	ProfilePeriod time.Duration
	// ReturnURL is where the page sends the browser back (KECIS §15.3.2).
	ReturnURL string
}

// DefaultOptions are the defaults: challenges from 100 to 50,000 (KRW),
// purchases from 10,100, five minutes, three attempts, no profile store.
var DefaultOptions = Options{
	Method:           ByAmount,
	LowestChallenge:  100,
	HighestChallenge: 50000,
	Timeout:          5 * time.Minute,
	Attempts:         3,
}

// withDefaults fills o's zero fields.
func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.Method == "" {
		o.Method = d.Method
	}
	if o.LowestChallenge <= 0 {
		o.LowestChallenge = d.LowestChallenge
	}
	if o.HighestChallenge <= 0 {
		o.HighestChallenge = d.HighestChallenge
	}
	if o.MinPurchase <= 0 {
		o.MinPurchase = o.LowestChallenge + minChallenges
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Attempts <= 0 {
		o.Attempts = d.Attempts
	}
	return o
}

func (o Options) check() error {
	switch {
	case o.Method != ByAmount && o.Method != ByDescriptor:
		return errors.New("amountauth: method must be amount or descriptor")
	case o.HighestChallenge <= o.LowestChallenge:
		return errors.New("amountauth: the highest challenge must be above the lowest")
	case o.MinPurchase <= o.LowestChallenge:
		return errors.New("amountauth: the minimum purchase must be above the lowest challenge")
	}
	return nil
}

// Issuer is what the engine asks of the card's issuer, through the hub
// (KECIS §15.2): *card.Client implements it.
type Issuer interface {
	ApproveVerification(ctx context.Context, recipient string, req *card.VerificationRequest) (*card.Outcome, error)
	Cancel(ctx context.Context, recipient string, req *card.CancelRequest) (*card.Outcome, error)
	Refund(ctx context.Context, recipient string, req *card.RefundRequest) (*card.Outcome, error)
	Inquire(ctx context.Context, recipient string, req *card.InquireRequest) (*card.Outcome, error)
}

var _ Issuer = (*card.Client)(nil)

// Purchase is the approval of the purchase itself, with the signed result
// that shows it was verified (nil when AA was not used).
type Purchase struct {
	card.ApproveRequest
	Result *etree.Element
}

// Acquirer approves a purchase through the PG's own approve. A business
// refusal is a *connectors.StatusError; any other error leaves the outcome
// unknown, and the engine asks again with the same idempotency key.
type Acquirer interface {
	ApprovePurchase(ctx context.Context, p *Purchase) (*card.Approval, error)
}

// AcquirerFunc adapts a function to Acquirer.
type AcquirerFunc func(ctx context.Context, p *Purchase) (*card.Approval, error)

// ApprovePurchase calls f.
func (f AcquirerFunc) ApprovePurchase(ctx context.Context, p *Purchase) (*card.Approval, error) {
	return f(ctx, p)
}

// StartRequest is a purchase to authenticate (amountauth:start).
type StartRequest struct {
	Merchant       string // the caller (KECIS §13.1)
	OrderID        string
	Amount         ecml.Money
	Card           card.Card
	UserID         string // the merchant's user, for the profile store; optional
	SubMerchant    string // the shop's name as the cardholder knows it; default the merchant's
	SubMerchantID  string
	IdempotencyKey string
}

// Typed is what the cardholder typed: an amount (ByAmount) or a code
// (ByDescriptor).
type Typed struct {
	Amount *ecml.Money
	Code   ecml.Secret
}
