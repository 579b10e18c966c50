// Package kecisadapter puts KECIS next to the example card issuer's own
// API: it implements the SDK's card service (connectors/card) over the
// issuer's Go API, mapping its native error codes to KECIS statuses. The
// issuer itself contains no KECIS code; this file is all it takes.
//
// A verification approval (KECIS §15.2 approve-verification) is the
// issuer's ApproveVerification; every answer about one — to
// approve-verification, cancel, refund and inquire — reports it without
// its amount, the cardholder's one-time password.
//
// It also implements connectors/cardauth.Cardholders over the issuer's
// cards and credentials (KECIS §15.7), for the issuer's authentication
// page, and passes an approval's authentication value (AAV) and merchant
// to the issuer, whose AUTHENTICATION_FAILED decline is
// Responder/AuthenticationRequired.
package kecisadapter

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
)

// Adapter serves the card service over an issuer. The request's Merchant
// (the caller, KECIS §13.1) is the issuer's MerchantID: the issuer keeps
// each merchant's orders and approvals apart, behind the SDK's own check of
// their owner (KECIS §13.3).
type Adapter struct {
	Issuer *issuer.Issuer
	// MerchantNames maps callers' entityIDs to the names the cardholder's
	// SMS shows when a request names no sub-merchant (a PG paying for one
	// of its shops names it: that name is shown instead).
	MerchantNames map[string]string
	// BeforeCall, when set, runs before each call (tests use it to stall
	// the issuer and provoke a relay timeout).
	BeforeCall func(ctx context.Context, service string)
	// Acquirers are the callers (PGs) whose sub-merchant ID
	// (card.ApproveRequest.SubMerchantID) names the merchant the
	// cardholder authenticated for and a virtual number may be locked to
	// (KECIS §15.7.3); a caller not listed is that merchant itself. Nil
	// trusts the sub-merchant ID of every caller that sends one.
	Acquirers map[string]bool
	// CardType is the ECML Card/@Type of the issuer's cards
	// (ecml.RegisteredCardTypes, e.g. "BC") that the authentication page
	// puts in its answer; "" for none.
	CardType string
}

var (
	_ card.Service  = (*Adapter)(nil)
	_ card.Canceler = (*Adapter)(nil)
	_ card.Refunder = (*Adapter)(nil)
	_ card.Inquirer = (*Adapter)(nil)
	_ card.Verifier = (*Adapter)(nil)

	_ cardauth.Cardholders = (*Adapter)(nil)
)

func (a *Adapter) before(ctx context.Context, s string) {
	if a.BeforeCall != nil {
		a.BeforeCall(ctx, s)
	}
}

// Approve implements card.Service.
func (a *Adapter) Approve(ctx context.Context, r *card.ApproveRequest) (*card.Approval, error) {
	a.before(ctx, card.ServiceApprove)
	cd := cardData(r.Card)
	if r.KeyIn != nil {
		cd.KeyIn = &issuer.KeyIn{PasswordPrefix: r.KeyIn.PasswordPrefix, BirthDate: r.KeyIn.BirthDate}
	}
	ap, err := a.Issuer.Approve(ctx, issuer.ApproveRequest{MerchantID: r.Merchant, MerchantName: a.merchantName(r.Merchant, r.SubMerchant),
		OrderID: r.OrderID, Amount: r.Amount, Card: cd, AuthValue: r.AuthValue,
		AuthMerchant: a.authMerchant(r.Merchant, r.SubMerchantID), AuthOrder: a.authOrder(r), IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, mapError(err)
	}
	return approval(ap), nil
}

// ApproveVerification implements card.Verifier: the issuer's verification
// approval of the challenge under the caller's ceiling, the descriptor
// code shown in the cardholder's text. The answer has no amount.
func (a *Adapter) ApproveVerification(ctx context.Context, r *card.VerificationRequest) (*card.Approval, error) {
	a.before(ctx, card.ServiceApproveVerification)
	ap, err := a.Issuer.ApproveVerification(ctx, issuer.VerificationRequest{MerchantID: r.Merchant,
		MerchantName: a.merchantName(r.Merchant, r.SubMerchant), OrderID: r.OrderID, Amount: r.Challenge,
		Ceiling: r.Ceiling, Card: cardData(r.Card), DescriptorCode: r.DescriptorCode, IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, mapError(err)
	}
	return approval(ap), nil
}

// cardData is the card as the issuer reads it (an expiry that is no
// number reads 0, which the issuer refuses).
func cardData(c card.Card) issuer.CardData {
	m, _ := strconv.Atoi(c.ExpMonth)
	y, _ := strconv.Atoi(c.ExpYear)
	return issuer.CardData{PAN: c.Number, ExpMonth: m, ExpYear: y}
}

// maxMerchantName is the longest merchant name the issuer keeps (runes).
const maxMerchantName = 64

// merchantName is the name the cardholder's text and the issuer's admin
// page show: the shop the cardholder bought from — the sub-merchant an
// acquirer pays for (card.ApproveRequest.SubMerchant, which the acquirer
// vouches for), else the caller's name from MerchantNames, else its
// entityID. A name the issuer could not keep (too long, control
// characters, digits like a card number) is cut or ignored rather than refusing the payment.
func (a *Adapter) merchantName(caller, subMerchant string) string {
	if n := strings.TrimSpace(subMerchant); n != "" && !strings.ContainsFunc(n, unicode.IsControl) && !ecml.ContainsPAN(n) {
		if rs := []rune(n); len(rs) > maxMerchantName {
			n = strings.TrimSpace(string(rs[:maxMerchantName]))
		}
		return n
	}
	return a.MerchantNames[caller]
}

// authMerchant is the merchant the cardholder paid (KECIS §15.7.3): the
// sub-merchant an acquirer names, else the caller.
func (a *Adapter) authMerchant(caller, subMerchantID string) string {
	if subMerchantID != "" && (a.Acquirers == nil || a.Acquirers[caller]) {
		return subMerchantID
	}
	return caller
}

// authOrder is the order the cardholder authenticated (KECIS §15.7.3)
// when an acquirer pays for a merchant under an order of its own (a PG's
// transaction ID): the order of the authentication result the merchant
// embedded and the acquirer passed on (verified by the SDK); "" — the
// request's order — otherwise. The AAV's MAC binds the order, so a
// result naming another cannot make a value match.
func (a *Adapter) authOrder(r *card.ApproveRequest) string {
	if r.AuthValue == "" || a.authMerchant(r.Merchant, r.SubMerchantID) == r.Merchant {
		return ""
	}
	for _, ar := range r.AuthResults {
		if ar != nil && ar.OrderID != "" {
			return ar.OrderID
		}
	}
	return ""
}

// Cancel implements card.Canceler.
func (a *Adapter) Cancel(ctx context.Context, r *card.CancelRequest) (*card.Approval, error) {
	a.before(ctx, card.ServiceCancel)
	no, err := a.number(ctx, r.Merchant, r.ApprovalNumber, r.OrderID)
	if err != nil {
		return nil, err
	}
	ap, err := a.Issuer.Cancel(ctx, issuer.CancelRequest{MerchantID: r.Merchant, ApprovalNumber: no, IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, mapError(err)
	}
	return approval(ap), nil
}

// Refund implements card.Refunder. A request naming no amount refunds a
// verification approval whole; of any other approval the issuer refuses
// it (InvalidPayload).
func (a *Adapter) Refund(ctx context.Context, r *card.RefundRequest) (*card.Approval, error) {
	a.before(ctx, card.ServiceRefund)
	no, err := a.number(ctx, r.Merchant, r.ApprovalNumber, r.OrderID)
	if err != nil {
		return nil, err
	}
	rf, err := a.Issuer.Refund(ctx, issuer.RefundRequest{MerchantID: r.Merchant, ApprovalNumber: no, Amount: r.Amount, IdempotencyKey: r.IdempotencyKey})
	if err != nil {
		return nil, mapError(err)
	}
	return approval(rf.Approval), nil
}

// Inquire implements card.Inquirer.
func (a *Adapter) Inquire(ctx context.Context, r *card.InquireRequest) (*card.Approval, error) {
	a.before(ctx, card.ServiceInquire)
	ap, err := a.Issuer.Inquire(ctx, issuer.InquireRequest{MerchantID: r.Merchant, ApprovalNumber: r.ApprovalNumber, OrderID: r.OrderID})
	if err != nil {
		return nil, mapError(err)
	}
	return approval(ap), nil
}

// number resolves an approval named by number or by the merchant's order.
func (a *Adapter) number(ctx context.Context, merchant, no, order string) (string, error) {
	if no != "" {
		return no, nil
	}
	ap, err := a.Issuer.Inquire(ctx, issuer.InquireRequest{MerchantID: merchant, OrderID: order})
	if err != nil {
		return "", mapError(err)
	}
	return ap.Number, nil
}

// approval is the issuer's approval as the card service reports it; a
// verification approval without its amount or what was refunded of it
// (KECIS §15.2): its state says the rest.
func approval(ap *issuer.Approval) *card.Approval {
	if ap == nil {
		return nil
	}
	out := &card.Approval{ApprovalNumber: ap.Number, OrderID: ap.OrderID,
		State: card.State(strings.ReplaceAll(string(ap.Status), "_", "-"))}
	if !ap.Verification {
		out.Amount, out.Refunded = ap.Amount, ecml.Money{Minor: ap.Refunded, Currency: ap.Amount.Currency}
	}
	return out
}

// mapError turns the issuer's native codes into KECIS statuses; the
// message is the issuer's public text (it never carries card data).
func mapError(err error) error {
	var ie *issuer.Error
	if !errors.As(err, &ie) {
		return err // an internal failure: ProviderUnavailable, retryable
	}
	msg := ie.Message
	switch ie.Code {
	case issuer.CodeDeclined, issuer.CodeDuplicateOrder, issuer.CodeAlreadyCancelled:
		return card.Declined(msg)
	case issuer.CodeInsufficientFunds:
		return card.InsufficientFunds(msg)
	case issuer.CodeInvalidCard:
		return card.InvalidCard(msg)
	case issuer.CodeExpired:
		return card.Expired(msg)
	case issuer.CodeLimitExceeded, issuer.CodeRefundExceeded:
		return card.LimitExceeded(msg)
	case issuer.CodeAlreadySettled, issuer.CodeNotSettled:
		return card.PolicyViolation(msg)
	case issuer.CodeNotFound:
		// One answer for every approval the caller does not have, the one
		// the SDK gives for an unknown or another caller's (KECIS §13.3).
		return card.NotFound(card.NoSuchApproval.Message)
	case issuer.CodeInvalidRequest, issuer.CodeIdempotencyConflict:
		return card.NotFound(msg)
	case issuer.CodeAmountRequired:
		return card.InvalidPayload("a refund needs Transaction/@Amount and @Currency")
	case issuer.CodeAuthenticationFailed:
		return &connectors.StatusError{Status: saml.Status{Code: saml.StatusResponder,
			SubCode: saml.CodeAuthenticationRequired, Message: msg}}
	}
	return err
}
