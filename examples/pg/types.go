package pg

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Currency is the one currency the PG settles: Korean won, which has no
// minor unit, so every amount is an int64 number of won.
const Currency = "KRW"

// CardNumber is a card number (PAN) in a request. It prints, logs and
// marshals masked (first six and last four digits), so that a request
// struct can be logged safely; Reveal gives the digits to the code that
// forwards them to the issuer gateway.
type CardNumber string

// Reveal returns the full card number.
func (c CardNumber) Reveal() string { return string(c) }

// Masked returns the number as the PG stores and shows it.
func (c CardNumber) Masked() string { return MaskCardNo(string(c)) }

// String implements fmt.Stringer, masked.
func (c CardNumber) String() string { return c.Masked() }

// GoString implements fmt.GoStringer, masked.
func (c CardNumber) GoString() string { return "pg.CardNumber(" + strconv.Quote(c.Masked()) + ")" }

// Format prints the number masked whatever the verb.
func (c CardNumber) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.Masked())
}

// LogValue implements slog.LogValuer, masked.
func (c CardNumber) LogValue() slog.Value { return slog.StringValue(c.Masked()) }

// MarshalText implements encoding.TextMarshaler, masked.
func (c CardNumber) MarshalText() ([]byte, error) { return []byte(c.Masked()), nil }

// MaskCardNo returns the first six and last four digits of a 13–19 digit
// card number with '*' between them ("9490101234565583" →
// "949010******5583"); anything else is masked entirely.
func MaskCardNo(s string) string {
	if s == "" {
		return ""
	}
	if len(s) < 13 || len(s) > 19 || !allDigits(s) {
		return "****"
	}
	return s[:6] + strings.Repeat("*", len(s)-10) + s[len(s)-4:]
}

// MerchantStatus is the state of a merchant account.
type MerchantStatus string

// Merchant states: only an ACTIVE merchant may pay; a SUSPENDED one may
// still cancel, refund and inquire; a TERMINATED one may only inquire.
const (
	MerchantActive     MerchantStatus = "ACTIVE"
	MerchantSuspended  MerchantStatus = "SUSPENDED"
	MerchantTerminated MerchantStatus = "TERMINATED"
)

// Contract is a merchant's agreement with the PG.
type Contract struct {
	// BINPrefixes are the card number prefixes (1–8 digits) the merchant
	// may accept; empty allows every card.
	BINPrefixes []string `json:"binPrefixes"`
	// FeeBPS is the PG's fee in basis points of the net amount (250 =
	// 2.5 %).
	FeeBPS int `json:"feeBps"`
	// MaxAmount is the largest single payment in won; 0 means no maximum.
	MaxAmount int64 `json:"maxAmount"`
	// DailyLimit bounds the sum of a business day's live payments (their
	// amount less what was cancelled); 0 means no limit.
	DailyLimit int64 `json:"dailyLimit"`
}

// Allows reports whether the contract accepts a card number.
func (c Contract) Allows(cardNo string) bool {
	if len(c.BINPrefixes) == 0 {
		return true
	}
	for _, p := range c.BINPrefixes {
		if strings.HasPrefix(cardNo, p) {
			return true
		}
	}
	return false
}

// Merchant is a merchant account (가맹점) with its contract.
type Merchant struct {
	MID        string
	Name       string
	Status     MerchantStatus
	APIKeyHint string // the API key's last four characters
	Contract   Contract
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// NewMerchant is what CreateMerchant needs.
type NewMerchant struct {
	// MID is the merchant ID to use; empty assigns the next "M000001".
	MID      string
	Name     string
	Contract Contract
}

// CreatedMerchant is a new merchant and its API key. The key is shown
// this once: the PG keeps only its hash.
type CreatedMerchant struct {
	Merchant
	APIKey string
}

// Status is the state of a transaction.
type Status string

// Transaction states.
const (
	// StatusPending: the approval awaits the issuer's answer.
	StatusPending Status = "PENDING"
	// StatusApproved: approved, nothing cancelled.
	StatusApproved Status = "APPROVED"
	// StatusDeclined: the issuer refused the approval.
	StatusDeclined Status = "DECLINED"
	// StatusFailed: never processed by an issuer (see CodeNotProcessed).
	StatusFailed Status = "FAILED"
	// StatusCancelled: voided before settlement (전체취소).
	StatusCancelled Status = "CANCELLED"
	// StatusPartRefunded: part of the amount refunded (부분취소).
	StatusPartRefunded Status = "PART_REFUNDED"
	// StatusRefunded: the whole amount refunded.
	StatusRefunded Status = "REFUNDED"
)

// OpKind is what a call to the issuer gateway did.
type OpKind string

// Operation kinds.
const (
	OpApprove OpKind = "approve"
	OpCancel  OpKind = "cancel"
	OpRefund  OpKind = "refund"
)

// OpStatus is the state of one call to the issuer gateway.
type OpStatus string

// Operation states.
const (
	OpPending OpStatus = "PENDING" // no answer yet; resolved by inquiry
	OpDone    OpStatus = "DONE"    // the issuer carried it out
	OpRefused OpStatus = "REFUSED" // the issuer refused it
	OpFailed  OpStatus = "FAILED"  // never processed (CodeNotProcessed and the like)
)

// Operation is one approval, cancel or refund sent to the issuer.
type Operation struct {
	ID           string
	Kind         OpKind
	Amount       int64
	Reason       string
	Status       OpStatus
	ResultCode   ResultCode
	ResultDetail string
	Attempts     int
	CreatedAt    time.Time
	DoneAt       time.Time
}

// Buyer is the optional buyer data of a payment, encrypted at rest.
type Buyer struct {
	Name  string `json:"name,omitempty"`
	Tel   string `json:"tel,omitempty"`
	Email string `json:"email,omitempty"`
}

func (b Buyer) empty() bool { return b == Buyer{} }

// Payment is a transaction (거래) as the PG records it.
type Payment struct {
	TID             string
	MID             string
	OrderNo         string
	ProductName     string
	Status          Status
	Amount          int64
	CancelledAmount int64 // voided or refunded so far
	Currency        string
	ApprovalNo      string // the issuer's approval number
	MaskedCardNo    string // 949010******5583: the PG keeps nothing more
	FeeBPS          int
	Buyer           Buyer
	// IssuerState is the approval's state as the issuer last reported it
	// (approved, settled, cancelled, partially-refunded, refunded).
	IssuerState string
	// ApprovalCode and ApprovalDetail are the outcome of the approval.
	ApprovalCode   ResultCode
	ApprovalDetail string
	// PendingOperation is the kind of the call awaiting the issuer's
	// answer, "" when none does.
	PendingOperation OpKind
	Operations       []Operation
	CreatedAt        time.Time
	ApprovedAt       time.Time
	CancelledAt      time.Time
	UpdatedAt        time.Time

	// ResultCode and ResultDetail are the outcome of the call that
	// returned this Payment: for Pay, Cancel and Refund, what the issuer
	// answered ("0000", a decline such as "3011", "2001" pending); for Get,
	// Lookup and Find, "0000", or "2001" while the approval awaits the
	// issuer.
	ResultCode   ResultCode
	ResultDetail string
	// Replayed is true when the call repeated an earlier one with the same
	// Idempotency-Key and had no effect of its own.
	Replayed bool
}

// Balance is the amount not cancelled or refunded.
func (p *Payment) Balance() int64 { return p.Amount - p.CancelledAmount }

// RefundedAmount is what refunds (not a cancel) gave back so far.
func (p *Payment) RefundedAmount() int64 {
	var n int64
	for _, o := range p.Operations {
		if o.Kind == OpRefund && o.Status == OpDone {
			n += o.Amount
		}
	}
	return n
}

// FeeAmount is the PG's fee on the balance, rounded half up.
func (p *Payment) FeeAmount() int64 { return fee(p.Balance(), p.FeeBPS) }

func fee(amount int64, bps int) int64 {
	if amount <= 0 || bps <= 0 {
		return 0
	}
	return (amount*int64(bps) + 5000) / 10000
}

// PayRequest asks for a card payment (승인). The PG checks the merchant's
// contract, then forwards it to the card issuer through the issuer
// gateway.
type PayRequest struct {
	MID         string
	OrderNo     string
	Amount      int64
	CardNo      CardNumber
	ExpMonth    int // 1–12
	ExpYear     int // 2031, or 31
	ProductName string
	Buyer       Buyer
	// IdempotencyKey (1–255 printable ASCII characters, scoped to the
	// merchant) makes a retry safe: the same key and request give the
	// same transaction, another request under it is refused.
	IdempotencyKey string
	// Authentication is opaque evidence that the cardholder was
	// authenticated for this payment (at most MaxAuthentication items of
	// at most MaxAuthenticationLen printable characters), which the PG
	// forwards with the approval to the issuer gateway as
	// authentication_results and stores nowhere: the KECIS sidecar puts
	// its signed amount-authentication result there. It is not part of
	// the request an Idempotency-Key stands for (a retry may carry a
	// freshly made one); only the first call forwards it.
	Authentication []string
	// AuthValue is the cardholder authentication value the issuer's
	// authentication page minted for this payment (ECML
	// Transaction/Data/AAV, KECIS §15.7): a public token of at most
	// MaxAuthValueLen printable characters without spaces, which the PG
	// forwards with the approval and stores nowhere. Like Authentication it
	// is not part of what the Idempotency-Key stands for.
	AuthValue string
	// MerchantRef is the name the issuer knows the shop by when the
	// payment came through the KECIS federation: the merchant's entityID
	// (the sidecar sends it), to which the issuer bound AuthValue. The PG
	// names the shop by it to the issuer (Ecom/Merchant/@id, the card
	// acceptor ID) instead of the MID; empty: the MID.
	MerchantRef string
}

// Bounds of PayRequest.Authentication, AuthValue and MerchantRef.
const (
	MaxAuthentication    = 4
	MaxAuthenticationLen = 12 << 10
	MaxAuthValueLen      = 64
	MaxMerchantRefLen    = 1024
)

// CancelRequest voids a whole approval (전체취소) before the issuer
// settles it.
type CancelRequest struct {
	MID            string
	TID            string
	Reason         string
	IdempotencyKey string
}

// RefundRequest refunds part or all of the balance (부분취소/환불).
type RefundRequest struct {
	MID            string
	TID            string
	Amount         int64
	Reason         string
	IdempotencyKey string
}

// TransactionFilter selects transactions for the admin listing.
type TransactionFilter struct {
	MID    string
	Status Status
	// Limit is at most 500; 0 means 100.
	Limit int
}

// ResolveReport counts what ResolvePending did.
type ResolveReport struct {
	Checked      int // pending operations looked at
	Resolved     int // now DONE, REFUSED or FAILED
	StillPending int // the issuer's answer is still unknown
}
