package issuer

import (
	"time"

	"github.com/kecis/kecis/ecml"
)

// CardType is the product a card belongs to.
type CardType string

const (
	// Credit cards spend against a credit limit (LIMIT_EXCEEDED above it).
	Credit CardType = "credit"
	// Check cards (체크카드) spend a linked account balance
	// (INSUFFICIENT_FUNDS above it).
	Check CardType = "check"
	// Prepaid cards spend a loaded balance (INSUFFICIENT_FUNDS above it).
	Prepaid CardType = "prepaid"
)

func (t CardType) valid() bool { return t == Credit || t == Check || t == Prepaid }

// CardStatus is a card's life-cycle state.
type CardStatus string

const (
	CardActive  CardStatus = "active"
	CardBlocked CardStatus = "blocked" // by the issuer, or after too many wrong key-in attempts
	CardLost    CardStatus = "lost"    // reported lost or stolen
)

func (s CardStatus) valid() bool { return s == CardActive || s == CardBlocked || s == CardLost }

// Status is the state of an approval.
type Status string

const (
	StatusApproved          Status = "approved"           // authorised, cancellable until the cut-off
	StatusCancelled         Status = "cancelled"          // voided before the cut-off
	StatusSettled           Status = "settled"            // past the cut-off; refundable
	StatusPartiallyRefunded Status = "partially_refunded" // settled, part of it refunded
	StatusRefunded          Status = "refunded"           // settled, all of it refunded
)

// CardholderAuth says how the cardholder was verified at approval.
type CardholderAuth string

const (
	AuthNone  CardholderAuth = "none"  // card number and expiry only
	AuthKeyIn CardholderAuth = "keyin" // Korean key-in: password digits and/or birth date checked
	// AuthValue: the issuer's own cardholder authentication (KECIS §15.7),
	// its authentication value checked at approval.
	AuthValue CardholderAuth = "aav"
)

// AuthValues checks the authentication value (AAV) an approval carries
// (KECIS §15.7.3): that it is bound to the card number as the approval
// sends it (the virtual number when virtual), the amount in minor units,
// the currency, the merchant and the order, and unexpired at now. It
// returns the value's id, which the issuer records to accept it once, and
// its expiry. An error with a non-zero expiry not after now is an expired
// value; any other error a value that does not match the payment.
// connectors/cardauth.AAV implements it.
type AuthValues interface {
	CheckAuthValue(aav string, pan ecml.PAN, amount int64, currency, merchant, orderID string, now time.Time) (id string, expires time.Time, err error)
}

// Card is a card as the issuer shows it: never the full number.
type Card struct {
	ID             string
	Type           CardType
	Status         CardStatus
	BIN            string // the first six digits, for routing
	Last4          string
	ExpMonth       int
	ExpYear        int // four digits
	HolderName     string
	HolderPhone    string // digits only, e.g. 01012345678
	Currency       string
	Limit          int64 // credit limit, or the initial balance of check and prepaid cards
	Available      int64 // available limit or balance, minor units
	FailedAttempts int   // consecutive wrong key-in attempts
	CreatedAt      time.Time
	// ResponseDelay is how long the host takes to decide an approval on
	// the card (SetCardResponseDelay); 0 for every card but a test one.
	ResponseDelay time.Duration
	// Cardholder authentication (KECIS §15.7): whether the card has an
	// authentication password and a TOTP seed, the failures of both that
	// count towards the lock, and the lock (UnlockAuth clears it).
	AuthPassword bool
	TOTP         bool
	AuthFailures int
	AuthLocked   bool
}

// Masked is the card number as it may be displayed: BIN, stars, last four.
func (c *Card) Masked() string { return c.BIN + "******" + c.Last4 }

// IssuedCard is the result of IssueCard: the card and, this once, its
// number and its TOTP seed. PAN prints masked; use PAN.Reveal to read it.
type IssuedCard struct {
	Card
	PAN ecml.PAN
	// TOTPEnrolment is the TOTP seed enrolled with
	// IssueCardRequest.EnrolTOTP, nil without.
	TOTPEnrolment *TOTPEnrolment
	Replayed      bool // an idempotent repeat of an earlier IssueCard
}

// Approval is an entry of the approvals ledger.
type Approval struct {
	Number         string // eight digits
	Status         Status
	MerchantID     string
	MerchantName   string
	OrderID        string
	Amount         ecml.Money
	Refunded       int64 // sum of the refunds, minor units of Amount.Currency
	Installments   int   // 0 for a lump sum (일시불)
	CardholderAuth CardholderAuth
	CardID         string
	CardBIN        string
	CardLast4      string
	CardType       CardType
	// VirtualCard is the virtual number the approval was made with
	// (KECIS §15.4), masked; "" for the card's own number.
	VirtualCard string
	ApprovedAt  time.Time
	CutOffAt    time.Time // the settlement cut-off it belongs to; cancellable before it
	CancelledAt time.Time // zero unless cancelled
	SettledAt   time.Time // zero until settled (the cut-off instant)
	BatchID     string    // the settlement batch, once Settle ran
	// Verification marks a verification approval (ApproveVerification):
	// its amount is the cardholder's one-time password, and a refund
	// naming no amount refunds it whole.
	Verification bool
	Refunds      []Refund
	Replayed     bool // this result answers an idempotent repeat
}

// Refundable is what may still be refunded.
func (a *Approval) Refundable() int64 {
	if a.Status == StatusCancelled {
		return 0
	}
	return a.Amount.Minor - a.Refunded
}

// Refund is a (partial) refund of a settled approval.
type Refund struct {
	ID             string
	ApprovalNumber string
	Amount         ecml.Money
	Reason         string
	CreatedAt      time.Time
	// Approval is the approval after this refund (set by Refund; nil in
	// Approval.Refunds).
	Approval *Approval
	Replayed bool
}

// KeyIn is the data a Korean key-in payment sends besides the card number
// and expiry (KECIS §15.2, card approve). At least one field is given;
// each given field is checked.
type KeyIn struct {
	PasswordPrefix ecml.Secret // the two leading digits of the card password
	BirthDate      ecml.Secret // the holder's birth date, YYMMDD
}

// CardData is the card as a payment presents it.
type CardData struct {
	PAN      ecml.PAN
	ExpMonth int
	ExpYear  int    // four digits (two are read as 20YY)
	KeyIn    *KeyIn // nil: no cardholder data
}

// ApproveRequest asks for an approval (승인).
type ApproveRequest struct {
	MerchantID   string
	MerchantName string // shown in the cardholder's SMS; MerchantID if empty
	OrderID      string // unique per merchant: one approval per order
	Amount       ecml.Money
	Installments int // 0 (or 1) for a lump sum, 2–36 months
	Card         CardData
	// AuthValue is the authentication value (AAV, KECIS §15.7.3) of the
	// issuer's cardholder authentication for this payment, "" for none:
	// Config.AuthValues checks it against the number as sent, the amount,
	// the currency, AuthMerchant and the order, and it is accepted once
	// (AUTHENTICATION_FAILED otherwise).
	AuthValue string
	// AuthMerchant is the merchant the cardholder paid (the shop an
	// acquirer pays for, else the caller): the AAV's and a virtual number's
	// merchant. MerchantID when empty.
	AuthMerchant string
	// AuthOrder is the order the cardholder authenticated (the AAV's
	// order): the merchant's own when an acquirer pays for it under an
	// order of its own (a PG's transaction ID). OrderID when empty. The
	// AAV's MAC binds it, so a caller cannot pick another.
	AuthOrder      string
	IdempotencyKey string
}

// VerificationRequest asks for a verification approval (KECIS §15.3,
// amount authentication): an approval of Amount — a secret the
// cardholder reads in the approval SMS and types back to the PG that asked
// — checked and charged as ApproveRequest's, at most Ceiling (the PG's
// public bound) and Config.MaxVerificationAmount.
type VerificationRequest struct {
	MerchantID   string
	MerchantName string // shown in the cardholder's SMS; MerchantID if empty
	OrderID      string // unique per merchant, as ApproveRequest's
	Amount       ecml.Money
	Ceiling      ecml.Money
	Card         CardData
	// DescriptorCode, optional, is shown after the merchant name in the
	// SMS: 4 to 10 digits the cardholder types instead of the amount
	// (KECIS §15.3.5). Prints masked; it is never stored but in the SMS.
	DescriptorCode ecml.Secret
	IdempotencyKey string
}

// CancelRequest voids an approval before its cut-off (승인취소).
type CancelRequest struct {
	MerchantID     string
	ApprovalNumber string
	Reason         string
	IdempotencyKey string
}

// RefundRequest refunds part or all of a settled approval (매출취소).
type RefundRequest struct {
	MerchantID     string
	ApprovalNumber string
	// Amount is what to refund. Zero refunds what remains of a
	// verification approval; of any other approval it is AMOUNT_REQUIRED.
	Amount         ecml.Money
	Reason         string
	IdempotencyKey string
}

// InquireRequest finds an approval of a merchant by its number or by the
// merchant's order ID (exactly one of them).
type InquireRequest struct {
	MerchantID     string
	ApprovalNumber string
	OrderID        string
}

// IssueCardRequest issues a test card (an administrative operation).
type IssueCardRequest struct {
	Type        CardType
	HolderName  string
	HolderPhone string      // Korean mobile number; hyphens allowed
	BirthDate   ecml.Secret // YYMMDD
	Password    ecml.Secret // the four-digit card password; only its two leading digits are kept (hashed)
	Limit       int64       // credit limit, or the balance of check and prepaid cards
	Currency    string      // KRW if empty
	// ExpMonth and ExpYear default to the issue month plus
	// Config.CardValidityYears.
	ExpMonth int
	ExpYear  int
	// AuthPassword, optional, is the card's authentication password for
	// the issuer's cardholder authentication (안심클릭, KECIS §15.7), 6 to
	// 64 characters; kept as an argon2id hash.
	AuthPassword ecml.Secret
	// EnrolTOTP enrols a TOTP seed (RFC 6238), returned once in
	// IssuedCard.TOTP.
	EnrolTOTP      bool
	IdempotencyKey string
}

// Settlement reports one run of Settle.
type Settlement struct {
	BatchID string // empty when nothing was due
	RunAt   time.Time
	Count   int
	Totals  map[string]int64 // approved amounts of the batch: currency → minor units
}
