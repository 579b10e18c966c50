// Package escrow is the escrow service (KECIS §15.6) and the non-escrow
// cash payment transfer:collect (KECIS §15.8), run by the buyer's bank as
// an SDK package next to its native API: a cash payment by account
// transfer at the buyer's own bank (에스크로이체 / 계좌이체).
//
//  1. The merchant opens an order (escrow:open, or transfer:collect for a
//     payment without escrow) over SOAP: the bank creates it in state
//     awaiting-payment, owned by the merchant, and answers its reference.
//  2. The merchant sends the buyer's browser to the bank's buyer page (the
//     HTTP-POST endpoint of escrow:pay, form field `reference`); the buyer
//     logs in, picks one of its accounts and pays (Pay): the bank debits it
//     into its escrow holding account (Holder.Fund) → funded (collect: on
//     to the merchant's settlement account, Holder.Release → paid).
//  3. The merchant ships (escrow:ship, carrier and tracking number) →
//     shipped; the confirm-by deadline is the shipping time plus
//     Config.AutoConfirmAfter (default 7 days).
//  4. The buyer, on the bank's page, confirms receipt (Confirm) →
//     confirmed, and the money is released to the settlement account
//     (Holder.Release: within the bank, or a transfer:credit to another
//     bank, which may be pending until credited); or disputes (Dispute,
//     with a reason, from funded or shipped, before the deadline) →
//     disputed.
//  5. The merchant refunds (escrow:refund) → refunded, the money back to
//     the buyer's account (Holder.Refund); an order not yet paid is
//     cancelled instead. A dispute ends by the merchant's refund, the
//     buyer's confirmation (withdrawing it) or the bank's operator
//     (Resolve: release or refund).
//  6. Sweep, on a schedule: a shipped escrow past its deadline without a
//     dispute is confirmed (Auto) and released; an order unpaid after
//     Config.PayBy (default 3 days) expires; pending releases and any
//     ledger call a crash interrupted are carried on with the same
//     idempotency key.
//  7. escrow:status answers the state and the last changes.
//
// # States
//
//	awaiting-payment ─pay─▶ funded ─ship─▶ shipped ─confirm / auto─▶ confirmed
//	   │ refund: cancelled     │ │             │ dispute
//	   │ sweep:  expired       │ └─dispute─▶ disputed ─confirm / resolve─▶ confirmed
//	   │                       └─refund──────────┴───────refund / resolve─▶ refunded
//	   └─pay (collect)─▶ paid
//
// Every state change is a compare-and-set on the escrow's version and
// appends one row to the append-only event table, carrying a record
// signed by the bank (kecis:EscrowRecord, enveloped signature of KECIS §4,
// verifiable with xmlsec1 alone; see RecordRoot). Settlement and buyer
// account numbers are sealed at rest and appear masked only.
//
// # Money
//
// The money is in the bank's ledger (Holder); the engine keeps, besides
// the state, which ledger call it owes (Escrow.Owed): it records the
// intent before the call and clears it after, so that a crash in between
// is finished by Sweep with the same idempotency key (derived from the
// reference: "escrow:<reference>:fund:<n>" for the n-th payment tried,
// "escrow:<reference>:release", "escrow:<reference>:refund"). The
// holding account's balance equals the sum of the amounts of the escrows
// in funded, shipped or disputed, plus those whose release or refund is
// still owed (a Holder that books a release to another bank out of the
// holding account when it sends the credit, as examples/bank does, holds
// those pending releases in its clearing account instead).
//
// # ECML mapping (KECIS §14.1, §15.6)
//
//	open, collect request  Ecom/@ConsumerOrderID            the merchant's order (unique per merchant)
//	                       Transaction/@Amount, @Currency    the amount
//	                       Ecom/ShipTo                       present: shipped goods
//	                       kx:BankAccount Role="settlement"  @BankCode, kx:Holder (optional), kx:AccountNumber (encrypted): where the money goes
//	                       kecis:IdempotencyKey
//	ship request           Transaction/Code/@Approval (the reference) or Ecom/@ConsumerOrderID;
//	                       kx:Escrow State="shipped" @Carrier @Tracking; kecis:IdempotencyKey
//	refund request         the reference or the order; kecis:IdempotencyKey
//	status request         the reference or the order
//	answers                Ecom/@ConsumerOrderID, Transaction/@Amount @Currency,
//	                       Transaction/Code/@Approval  the bank's reference,
//	                       Transaction/Data/Response   the state,
//	                       kx:Escrow @State @Carrier @Tracking @ConfirmBy @Reason @Auto (escrow only)
//	status answer adds     Transaction/Date/@Value     the last change's time,
//	                       Transaction/Data/PrivateUse the last changes as "kind@time" words
//
// No answer holds an account number.
package escrow

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The services (KECIS §15.6, §15.8), offered by a bank (or a PG holding
// escrow) to merchants.
const (
	ServiceOpen   = saml.ServicePrefix + "escrow:open"
	ServiceShip   = saml.ServicePrefix + "escrow:ship"
	ServiceRefund = saml.ServicePrefix + "escrow:refund"
	ServiceStatus = saml.ServicePrefix + "escrow:status"
	// ServicePay is the buyer page: an HTTP-POST endpoint only, form field
	// FieldReference.
	ServicePay = saml.ServicePrefix + "escrow:pay"
	// ServiceCollect is the non-escrow cash payment: the same engine, the
	// money goes straight on to the merchant (Escrow.Hold false).
	ServiceCollect = saml.ServicePrefix + "transfer:collect"
)

// FieldReference is the buyer page's form field naming the escrow.
const FieldReference = "reference"

// RoleSettlement is kx:BankAccount/@Role of the merchant's settlement
// account in an open or collect request.
const RoleSettlement = "settlement"

// State is an escrow's state (kx:Escrow/@State, Transaction/Data/Response).
type State string

// The states (KECIS §15.6).
const (
	AwaitingPayment State = ecml.EscrowAwaitingPayment
	Funded          State = ecml.EscrowFunded
	Shipped         State = ecml.EscrowShipped
	Confirmed       State = ecml.EscrowConfirmed
	Disputed        State = ecml.EscrowDisputed
	Refunded        State = ecml.EscrowRefunded
	Cancelled       State = ecml.EscrowCancelled
	Expired         State = ecml.EscrowExpired
	// Paid is a collect's final state: the money went to the merchant.
	Paid State = ecml.EscrowPaid
)

// Ended reports whether s is final.
func (s State) Ended() bool {
	switch s {
	case Confirmed, Refunded, Cancelled, Expired, Paid:
		return true
	}
	return false
}

// Holding reports whether an escrow in s has its money in the holding
// account (besides the ledger calls still owed, Escrow.Holds).
func (s State) Holding() bool { return s == Funded || s == Shipped || s == Disputed }

// Owed is the ledger call an escrow owes (recorded before the call,
// cleared after it).
type Owed string

// The calls.
const (
	OwesNothing Owed = ""
	OwesFund    Owed = "fund"
	OwesRelease Owed = "release"
	OwesRefund  Owed = "refund"
)

// Escrow is one order: an escrow (Hold) or a collect. Account numbers are
// in clear only in memory; the store seals them.
type Escrow struct {
	// Reference is the bank's reference (Transaction/Code/@Approval): 12
	// characters, "E" and 55 random bits (ValidReference).
	Reference string
	// Merchant is the caller that opened it (its owner, KECIS §13.3);
	// Order its Ecom/@ConsumerOrderID, unique per merchant.
	Merchant string
	Order    string
	// Hold: an escrow; false: a collect (transfer:collect).
	Hold   bool
	Amount ecml.Money
	// Goods: the order is shipped goods (Ecom/ShipTo present).
	Goods bool
	State State
	// Version counts the row's writes (compare-and-set).
	Version int

	SettlementBank    string
	SettlementAccount ecml.Secret
	PayeeName         string // kx:Holder of the settlement account, optional

	// Buyer is the paying customer at the bank; BuyerAccount the account
	// it paid from.
	Buyer        string
	BuyerAccount ecml.Secret

	Carrier, Tracking string
	PayBy             time.Time // an unpaid order expires then
	ShippedAt         time.Time
	ConfirmBy         time.Time // shipped + AutoConfirmAfter
	Reason            string    // the dispute's reason
	Auto              bool      // confirmed by the sweep
	Resolver          string    // the operator who resolved a dispute

	Owed Owed
	// Payments counts the payments tried (a refused one leaves the order
	// unpaid for another): the funding's key names it.
	Payments                       int
	FundRef, ReleaseRef, RefundRef string // the ledger's references
	// Attempts counts the owed call's failed attempts (the sweep's
	// backoff); Retry is when the sweep tries it next.
	Attempts int
	Retry    time.Time

	OpenKey string // the merchant's idempotency key of the open
	Created time.Time
	Updated time.Time
}

// Holds reports whether the escrow's money is in the holding account now:
// held in the escrow, or a release or refund still owed.
func (x *Escrow) Holds() bool {
	return x.State.Holding() || x.Owed == OwesRelease || x.Owed == OwesRefund
}

// Event is one row of the append-only event table: a state change (or a
// ledger call's completion) and the signed record of it.
type Event struct {
	Seq   int
	Kind  string
	From  State
	To    State
	At    time.Time
	Actor string // "merchant:<entityID>", "buyer:<customer>", "operator:<id>", "sweep"
	// Detail holds public details (masked numbers, references, reason).
	Detail map[string]string
	// Record is the signed kecis:EscrowRecord.
	Record []byte
}

// Event kinds.
const (
	EventOpened    = "opened"
	EventFunded    = "funded"
	EventPaid      = "paid"
	EventShipped   = "shipped"
	EventConfirmed = "confirmed"
	EventDisputed  = "disputed"
	EventRefunded  = "refunded"
	EventCancelled = "cancelled"
	EventExpired   = "expired"
	EventReleased  = "released" // the release reached the settlement account
	EventReturned  = "returned" // the refund reached the buyer's account
)

// Funding debits the buyer's account into the holding account.
type Funding struct {
	Customer       string      // the buyer, logged in at the bank
	Account        ecml.Secret // one of the customer's accounts
	Amount         ecml.Money
	Reference      string // the escrow's reference
	IdempotencyKey string
}

// Release moves held money to the merchant's settlement account.
type Release struct {
	Amount            ecml.Money
	SettlementBank    string
	SettlementAccount ecml.Secret
	PayeeName         string
	Reference         string
	IdempotencyKey    string
}

// Refund moves held money back to the buyer's account.
type Refund struct {
	Customer       string
	Account        ecml.Secret
	Amount         ecml.Money
	Reference      string
	IdempotencyKey string
}

// Outcome is a release's outcome: Done once credited (Ref the ledger's or
// the payee bank's reference); Done false: pending, the sweep asks again
// with the same key.
type Outcome struct {
	Done bool
	Ref  string
}

// Holder is the escrow holder's ledger: the bank's native API. Every
// method is idempotent by its key: the same key answers the first outcome.
// A business refusal (insufficient funds, not the customer's account, a
// closed account) is a *connectors.StatusError (connectors.Refuse); any
// other error leaves the outcome unknown, and the engine asks again with
// the same key.
type Holder interface {
	// Fund debits the buyer's account (one of the customer's) into the
	// escrow holding account and returns the ledger's reference.
	Fund(ctx context.Context, f *Funding) (ref string, err error)
	// Release moves held money to the settlement account: within the
	// bank, an internal transfer; at another bank, the bank's outgoing
	// credit (transfer:credit through the hub), which may stay pending.
	Release(ctx context.Context, r *Release) (*Outcome, error)
	// Refund moves held money back to the buyer's account.
	Refund(ctx context.Context, r *Refund) (ref string, err error)
}

// OpenRequest is an escrow:open or a transfer:collect.
type OpenRequest struct {
	Merchant          string // the caller (connectors.Request.Merchant)
	Order             string
	Amount            ecml.Money
	Goods             bool
	SettlementBank    string
	SettlementAccount ecml.Secret
	PayeeName         string
	IdempotencyKey    string
}

// Ref names a merchant's escrow: by the bank's reference, or by the
// merchant's order.
type Ref struct {
	Reference string
	Order     string
}

// Decision is an operator's resolution of a dispute.
type Decision string

// The decisions.
const (
	DecideRelease Decision = "release"
	DecideRefund  Decision = "refund"
)

// SweepReport counts what a Sweep did.
type SweepReport struct {
	AutoConfirmed int
	Expired       int
	Released      int // owed releases completed
	Pending       int // releases still pending
	Finished      int // other owed ledger calls completed (fund, refund)
	Failed        int // owed calls that failed (retried later)
}

// Refusals (KECIS §6.2, §15.6).
var (
	// NoSuchEscrow answers an unknown escrow and another's alike (KECIS
	// §13.3).
	NoSuchEscrow = saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "no such escrow"}
)

// errNotFound is NoSuchEscrow as an error.
func errNotFound() error { return &connectors.StatusError{Status: NoSuchEscrow} }

// IsNotFound reports whether err is the NoSuchEscrow refusal.
func IsNotFound(err error) bool {
	s, ok := connectors.AsStatus(err)
	return ok && s == NoSuchEscrow
}

// wrongState refuses an operation the escrow's state does not allow.
func wrongState(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodePolicyViolation, msg)
}

// invalid refuses a request that lacks what its operation needs.
func invalid(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, msg)
}

// ErrConflict: the escrow changed since it was read (a lost
// compare-and-set; the engine reads it again).
var ErrConflict = errors.New("escrow: the escrow changed")
