// Package card is the KECIS card service (KECIS §15.2, "card"): approve —
// including Korean key-in approval (card number, expiry, the two leading
// digits of the card password and the holder's birth date, all encrypted
// for the issuer) —, cancel (a void, allowed until the approval is settled),
// refund (partial allowed, never above what was approved and settled),
// inquire (the true state, what a caller uses after Pending) and
// approve-verification (an approval whose amount is a one-time password:
// amount authentication, KECIS §15.3).
//
// A provider implements Service and any of Canceler, Refunder, Inquirer
// and Verifier; Services turns it into the SDK's functions. Callers use
// Client.
//
// ECML mapping (on the wire in KECIS §2.8 and §2.9; the order and the
// approval are the objects whose owner the SDK checks, KECIS §13.3):
//
//	request  Ecom/@ConsumerOrderID        the merchant's order
//	         Ecom/@Merchant, Merchant/@id the shop an acquirer pays for (its name, its card acceptor ID)
//	         Payment/Card (encrypted)     number, expiry, name, type
//	         kx:KeyIn (encrypted)         password prefix, birth date
//	         Transaction/@Amount,@Currency,@Type="credit"  (none in approve-verification; a refund naming none refunds a verification approval whole)
//	         Transaction/Code/@Approval   the approval a cancel, refund or inquire names
//	         kx:AmountAuth [SessionID Ceiling Currency]    approve-verification: the session and the public ceiling
//	           kx:Challenge (encrypted)   the secret amount to approve
//	         kx:OneTimeCode (encrypted)   approve-verification: the descriptor code the cardholder's text shows (§15.3.5)
//	         Transaction/Data/AAV         approve: the cardholder authentication value (§15.7)
//	         kecis:AuthenticationResult   approve: embedded, the issuer's signed result (§3.2, §15.7)
//	response Transaction/Code/@Approval   the approval number
//	         Transaction/@Amount,@Currency  the approved amount (never of a verification approval, §15.2)
//	         Transaction/Data/Response    the state: approved, cancelled, settled, partially-refunded, refunded
//	         Transaction/Data/PrivateUse  "refunded=<amount>" (ECML amount form; never of a verification approval)
package card

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Service URIs.
const (
	ServiceApprove = saml.ServicePrefix + "card:approve"
	ServiceCancel  = saml.ServicePrefix + "card:cancel"
	ServiceRefund  = saml.ServicePrefix + "card:refund"
	ServiceInquire = saml.ServicePrefix + "card:inquire"
	// ServiceApproveVerification approves a secret amount on the card: a
	// verification approval (KECIS §15.2, §15.3).
	ServiceApproveVerification = saml.ServicePrefix + "card:approve-verification"
)

// Card is the card data of an approval; it travels encrypted for the issuer.
type Card struct {
	Number   ecml.PAN
	ExpMonth string
	ExpYear  string
	Name     string
	Type     string
}

// KeyIn is the Korean key-in data; it travels encrypted for the issuer.
type KeyIn struct {
	PasswordPrefix ecml.Secret // the two leading digits of the card password
	BirthDate      ecml.Secret // YYMMDD
}

// ApproveRequest asks for an approval.
type ApproveRequest struct {
	Merchant       string // the merchant's entityID (set by the SDK from the request)
	OrderID        string
	Amount         ecml.Money
	Card           Card
	KeyIn          *KeyIn
	IdempotencyKey string

	// SubMerchant is the shop the cardholder buys from when Merchant is an
	// acquirer (a PG) paying for one of its merchants: its name as the
	// cardholder knows it (Ecom/@Merchant) and the acquirer's ID for it
	// (Ecom/Merchant/@id, the card acceptor ID). The acquirer vouches for
	// them; empty when the caller sells itself.
	SubMerchant, SubMerchantID string

	// AuthValue is Transaction/Data/AAV: the authentication value an
	// issuer's cardholder authentication minted for this payment (KECIS
	// §15.7), which the issuer checks against the card, amount, merchant
	// and order; empty without one. It is public.
	AuthValue string
	// AuthResults are the request's embedded authentication results, each
	// verified on its own by the SDK (KECIS §3.2, connectors.Request): the
	// issuer's cardholder authentication the merchant passes on.
	AuthResults []*saml.AuthenticationResult

	// Caller's side only (Client.Approve). EncryptedCard is a card already
	// encrypted for the recipient by someone else — the issuer's
	// cardholder authentication encrypts it for the acquirer and the
	// merchant passes it on unread (KECIS §8.3, §15.7) —, sent unchanged
	// in place of Card, which is then left empty. SignedAuthResults are
	// signed kecis:AuthenticationResult elements to embed unchanged
	// (connectors.FrontResponse.SignedAuthResults).
	EncryptedCard     *etree.Element
	SignedAuthResults []*etree.Element
}

// CancelRequest voids an approval before settlement.
type CancelRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
	IdempotencyKey string
}

// RefundRequest refunds (part of) a settled approval.
type RefundRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
	// Amount is what to refund. Zero (no Transaction/@Amount) refunds what
	// remains, which only a verification approval allows (KECIS §15.2):
	// a provider refuses it for any other (InvalidPayload).
	Amount         ecml.Money
	IdempotencyKey string
}

// VerificationRequest asks for a verification approval (KECIS §15.2
// approve-verification, §15.3): an approval like any other on the card's
// limit and in the issuer's ledger, whose amount — Challenge — is a
// one-time password that the issuer texts the cardholder with the
// merchant's name. Challenge and DescriptorCode travel encrypted for the
// recipient and no answer carries them; the request prints and logs
// without them.
type VerificationRequest struct {
	Merchant  string // the caller's entityID (set by the SDK from the request)
	OrderID   string
	SessionID string     // the amount authentication session (kx:AmountAuth/@SessionID)
	Challenge ecml.Money // the secret amount to approve, above zero and at most Ceiling
	Ceiling   ecml.Money // public: the recipient refuses a challenge above it
	Card      Card
	// DescriptorCode, optional, is the code the cardholder's text shows
	// after the merchant's name (kx:OneTimeCode, 4 to 10 digits; 6 in
	// the descriptor variant, §15.3.5).
	DescriptorCode ecml.Secret
	// SubMerchant and SubMerchantID are the shop the cardholder's text
	// names, as in ApproveRequest.
	SubMerchant, SubMerchantID string
	IdempotencyKey             string
}

// String describes the request without its secrets (the challenge, the
// code) and with the card masked.
func (r VerificationRequest) String() string {
	return fmt.Sprintf("{Merchant:%s OrderID:%s SessionID:%s Challenge:%s Ceiling:%v Card:%v DescriptorCode:%v SubMerchant:%s SubMerchantID:%s IdempotencyKey:%s}",
		r.Merchant, r.OrderID, r.SessionID, hidden, r.Ceiling, r.Card, r.DescriptorCode, r.SubMerchant, r.SubMerchantID, r.IdempotencyKey)
}

// GoString is String: %#v hides the secrets too.
func (r VerificationRequest) GoString() string { return "card.VerificationRequest" + r.String() }

// LogValue logs the request without its secrets.
func (r VerificationRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("merchant", r.Merchant), slog.String("order", r.OrderID),
		slog.String("session", r.SessionID), slog.Any("ceiling", r.Ceiling), slog.String("last4", r.Card.Number.Last4()))
}

// hidden stands for a secret amount in what a request prints.
const hidden = "[hidden]"

// InquireRequest asks for the true state of an approval (by number, or by
// the merchant's order).
type InquireRequest struct {
	Merchant       string
	OrderID        string
	ApprovalNumber string
}

// State of an approval.
type State string

const (
	Approved          State = "approved"
	Cancelled         State = "cancelled"
	Settled           State = "settled"
	PartiallyRefunded State = "partially-refunded"
	Refunded          State = "refunded"
)

// Approval is an issuer's record of an approval as the service reports it.
type Approval struct {
	ApprovalNumber string
	OrderID        string
	Amount         ecml.Money
	Refunded       ecml.Money
	State          State
}

// Service approves card payments.
type Service interface {
	Approve(ctx context.Context, req *ApproveRequest) (*Approval, error)
}

// Canceler voids approvals before settlement.
type Canceler interface {
	Cancel(ctx context.Context, req *CancelRequest) (*Approval, error)
}

// Refunder refunds settled approvals.
type Refunder interface {
	Refund(ctx context.Context, req *RefundRequest) (*Approval, error)
}

// Inquirer reports the state of approvals.
type Inquirer interface {
	Inquire(ctx context.Context, req *InquireRequest) (*Approval, error)
}

// Verifier makes verification approvals (KECIS §15.2
// approve-verification). Its answers, and a Canceler's, Refunder's and
// Inquirer's about a verification approval, leave Approval.Amount and
// Refunded zero: the amount is the cardholder's one-time password. The SDK
// drops them from an approve-verification answer whatever the provider
// returns.
type Verifier interface {
	ApproveVerification(ctx context.Context, req *VerificationRequest) (*Approval, error)
}

// Business refusals, as second-level codes (KECIS spec §6.2).
func Declined(msg string) error { return refuse(saml.CodeDeclined, msg) }

// InsufficientFunds refuses for lack of limit or balance.
func InsufficientFunds(msg string) error { return refuse(saml.CodeInsufficientFunds, msg) }

// InvalidCard refuses a card (or key-in data) that does not check.
func InvalidCard(msg string) error { return refuse(saml.CodeInvalidCard, msg) }

// Expired refuses an expired card.
func Expired(msg string) error { return refuse(saml.CodeExpired, msg) }

// LimitExceeded refuses over a limit (e.g. a refund above what was approved).
func LimitExceeded(msg string) error { return refuse(saml.CodeLimitExceeded, msg) }

// PolicyViolation refuses what the rules forbid (e.g. a cancel after settlement).
func PolicyViolation(msg string) error { return refuse(saml.CodePolicyViolation, msg) }

// InvalidPayload refuses a request that lacks what its operation needs
// (Requester / InvalidPayload, KECIS §15.2): e.g. a refund naming no
// amount of an approval that is no verification approval.
func InvalidPayload(msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeInvalidPayload, Message: msg}}
}

// NotFound refuses a request that names no known approval.
func NotFound(msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: msg}}
}

// NoSuchApproval is the answer to an approval or order that is unknown —
// or another caller's, which reads the same (KECIS §13.3): the SDK gives it
// without asking the provider, and a provider's own NotFound should say the
// same.
var NoSuchApproval = NotFound("no such approval").(*connectors.StatusError).Status

// Object kinds of the card service (KECIS §13.3): an order number is the
// merchant's own (scoped per caller), an approval number the provider's.
const (
	ObjectOrder    = "card:order"
	ObjectApproval = "card:approval"
)

// Objects lists the objects a card payload names: the order
// (Ecom/@ConsumerOrderID) and the approval (Transaction/Code/@Approval).
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil || p.Ecom == nil {
		return nil
	}
	var refs []connectors.ObjectRef
	if p.Ecom.ConsumerOrderID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectOrder, ID: p.Ecom.ConsumerOrderID, PerOwner: true})
	}
	if t := p.Ecom.Transaction; t != nil && t.Code != nil && t.Code.Approval != "" {
		refs = append(refs, connectors.ObjectRef{Kind: ObjectApproval, ID: t.Code.Approval})
	}
	return refs
}

// The card service's object rules: an approve (and an
// approve-verification) creates an order and an approval for its caller;
// cancel, refund and inquire operate on the caller's own.
func init() {
	for _, s := range []string{ServiceApprove, ServiceApproveVerification} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchApproval})
	}
	for _, s := range []string{ServiceCancel, ServiceRefund, ServiceInquire} {
		connectors.RegisterObjectRule(s, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchApproval})
	}
}

func refuse(code, msg string) error {
	return &connectors.StatusError{Status: saml.Status{Code: saml.StatusResponder, SubCode: code, Message: msg}}
}

// Services returns the SDK functions of svc, detecting its optional
// interfaces (dex connector style).
func Services(svc Service) map[string]connectors.ServiceFunc {
	m := map[string]connectors.ServiceFunc{
		ServiceApprove: func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			req, err := approveFrom(r)
			if err != nil {
				return nil, err
			}
			return respond(svc.Approve(ctx, req))
		},
	}
	if c, ok := svc.(Canceler); ok {
		m[ServiceCancel] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(ServiceCancel, r)
			if err != nil {
				return nil, err
			}
			return respond(c.Cancel(ctx, &CancelRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval, IdempotencyKey: r.IdempotencyKey}))
		}
	}
	if f, ok := svc.(Refunder); ok {
		m[ServiceRefund] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(ServiceRefund, r)
			if err != nil {
				return nil, err
			}
			return respond(f.Refund(ctx, &RefundRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval, Amount: ref.amount, IdempotencyKey: r.IdempotencyKey}))
		}
	}
	if q, ok := svc.(Inquirer); ok {
		m[ServiceInquire] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			ref, err := refFrom(ServiceInquire, r)
			if err != nil {
				return nil, err
			}
			return respond(q.Inquire(ctx, &InquireRequest{Merchant: r.Merchant(), OrderID: ref.order, ApprovalNumber: ref.approval}))
		}
	}
	if v, ok := svc.(Verifier); ok {
		m[ServiceApproveVerification] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			req, err := verificationFrom(r)
			if err != nil {
				return nil, err
			}
			a, err := v.ApproveVerification(ctx, req)
			if a != nil {
				h := *a
				h.Amount, h.Refunded = ecml.Money{}, ecml.Money{}
				a = &h
			}
			return respond(a, err)
		}
	}
	return m
}

func invalid(msg string) error { return InvalidPayload(msg) }

// lacks refuses a request that lacks what its card service requires, by
// the declaration the hub's facade and the sidecar's caller check before
// the request travels (callapi.Missing).
func lacks(service string, p *ecml.Payload) error {
	if m := callapi.Missing(service, p); len(m) > 0 {
		return invalid("the request lacks " + strings.Join(m, ", "))
	}
	return nil
}

func approveFrom(r *connectors.Request) (*ApproveRequest, error) {
	if err := lacks(ServiceApprove, r.Payload); err != nil {
		return nil, err
	}
	p := r.Payload
	c, err := cardFrom(p.Ecom)
	if err != nil {
		return nil, err
	}
	money, err := p.Ecom.Transaction.Money()
	if err != nil {
		return nil, invalid("Transaction/@Amount is not a valid amount")
	}
	req := &ApproveRequest{Merchant: r.Merchant(), OrderID: p.Ecom.ConsumerOrderID, Amount: money, IdempotencyKey: r.IdempotencyKey, Card: c}
	req.SubMerchant, req.SubMerchantID = subMerchantFrom(p.Ecom)
	if d := p.Ecom.Transaction.Data; d != nil && d.AAV != nil {
		req.AuthValue = d.AAV.Value
	}
	req.AuthResults = r.AuthResults
	if k := p.KeyIn; k != nil {
		req.KeyIn = &KeyIn{PasswordPrefix: k.PasswordPrefix, BirthDate: k.BirthDate}
	}
	return req, nil
}

// verificationFrom reads an approve-verification request (KECIS §15.2):
// the secret amount is kx:AmountAuth/kx:Challenge, decrypted, and a
// Transaction/@Amount — the amount in clear — is refused.
func verificationFrom(r *connectors.Request) (*VerificationRequest, error) {
	if err := lacks(ServiceApproveVerification, r.Payload); err != nil {
		return nil, err
	}
	p := r.Payload
	if t := p.Ecom.Transaction; t != nil && (t.Amount != "" || t.Currency != "") {
		return nil, invalid("an approve-verification carries no Transaction/@Amount: the amount to approve is kx:AmountAuth/kx:Challenge")
	}
	c, err := cardFrom(p.Ecom)
	if err != nil {
		return nil, err
	}
	aa := p.AmountAuth
	if aa.Challenge == "" {
		return nil, invalid("an approve-verification needs kx:AmountAuth/kx:Challenge decrypted")
	}
	ceiling, err := aa.CeilingMoney()
	if err != nil {
		return nil, invalid("kx:AmountAuth/@Ceiling is not a valid amount")
	}
	challenge, err := aa.ChallengeMoney()
	if err != nil {
		return nil, invalid("kx:AmountAuth/kx:Challenge is not a valid amount")
	}
	if p.EncryptedOneTimeCode != nil && p.OneTimeCode == "" {
		return nil, invalid("kx:OneTimeCode must be decrypted")
	}
	req := &VerificationRequest{Merchant: r.Merchant(), OrderID: p.Ecom.ConsumerOrderID, SessionID: aa.SessionID,
		Challenge: challenge, Ceiling: ceiling, Card: c, DescriptorCode: p.OneTimeCode, IdempotencyKey: r.IdempotencyKey}
	req.SubMerchant, req.SubMerchantID = subMerchantFrom(p.Ecom)
	return req, nil
}

// cardFrom reads the decrypted Payment/Card of an approval.
func cardFrom(e *ecml.Ecom) (Card, error) {
	if e.Payment == nil || e.Payment.Card == nil {
		return Card{}, invalid("an approval needs Payment/Card decrypted")
	}
	c := e.Payment.Card
	out := Card{Number: c.Number, Name: c.Name, Type: c.Type}
	if c.ExpDate != nil {
		out.ExpMonth, out.ExpYear = c.ExpDate.Month, c.ExpDate.Year
	}
	return out, nil
}

// subMerchantFrom reads the shop an acquirer pays for: Ecom/@Merchant and
// Merchant/@id.
func subMerchantFrom(e *ecml.Ecom) (name, id string) {
	if m := e.MerchantInfo; m != nil {
		id = m.ID
	}
	return e.Merchant, id
}

type reference struct {
	order, approval string
	amount          ecml.Money
}

func refFrom(service string, r *connectors.Request) (*reference, error) {
	if err := lacks(service, r.Payload); err != nil {
		return nil, err
	}
	p := r.Payload
	if p == nil || p.Ecom == nil {
		return nil, invalid("the request needs an Ecom payload")
	}
	ref := &reference{order: p.Ecom.ConsumerOrderID}
	if t := p.Ecom.Transaction; t != nil {
		if t.Code != nil {
			ref.approval = t.Code.Approval
		}
		if t.Amount != "" {
			m, err := t.Money()
			if err != nil {
				return nil, invalid("Transaction/@Amount is not a valid amount")
			}
			ref.amount = m
		}
	}
	if ref.approval == "" && ref.order == "" {
		return nil, invalid("name the approval (Transaction/Code/@Approval) or the order (Ecom/@ConsumerOrderID)")
	}
	return ref, nil
}

func respond(a *Approval, err error) (*connectors.Response, error) {
	if err != nil {
		return nil, err
	}
	return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: ApprovalPayload(a)}, nil
}

// ApprovalPayload is the response payload of an approval. An approval
// without an amount (Amount.Currency "": a verification approval, KECIS
// §15.2) is written without Transaction/@Amount and @Currency, and without
// its refunded amount.
func ApprovalPayload(a *Approval) *ecml.Payload {
	t := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: a.ApprovalNumber},
		Data: &ecml.Data{Response: &ecml.Text{Value: string(a.State)}}}
	if a.Amount.Currency != "" {
		_ = t.SetMoney(a.Amount)
	}
	if a.Amount.Currency != "" && a.Refunded.Minor > 0 {
		if s, err := ecml.FormatAmount(a.Refunded); err == nil {
			t.Data.PrivateUse = &ecml.Text{Value: "refunded=" + s}
		}
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: a.OrderID, Transaction: t}}
}

// ApprovalFrom reads an approval from a response payload.
func ApprovalFrom(p *ecml.Payload) (*Approval, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil {
		return nil, fmt.Errorf("card: the answer has no Transaction")
	}
	t := p.Ecom.Transaction
	a := &Approval{OrderID: p.Ecom.ConsumerOrderID}
	if m, err := t.Money(); err == nil {
		a.Amount = m
	}
	if t.Code != nil {
		a.ApprovalNumber = t.Code.Approval
	}
	if t.Data != nil {
		if t.Data.Response != nil {
			a.State = State(t.Data.Response.Value)
		}
		if t.Data.PrivateUse != nil {
			if v, ok := strings.CutPrefix(t.Data.PrivateUse.Value, "refunded="); ok {
				if m, err := ecml.ParseAmount(v, a.Amount.Currency); err == nil {
					a.Refunded = m
				}
			}
		}
	}
	return a, nil
}
