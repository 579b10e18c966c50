// Package banking is the KECIS service group of banks (KECIS §15.8
// "transfer": credit, inquire; §15.9 "account": holder inquiry): the
// service URIs, the decoding of their requests from ECML, the encoding of
// their answers, and the SDK functions over a bank's provider interfaces
// (as connectors/card is for the card group).
//
// A bank implements Transfers (credit and inquire) and/or Holders (holder
// inquiry); Services turns it into connectors.ServiceFuncs. Every caller is
// a bank (role bank, KECIS §13.2): the service's metadata admits no other
// role, and Services checks the caller's role again in the caller's
// metadata before the provider runs — defence in depth — and that the
// remitting bank code of a credit is one the caller publishes. While a bank
// is certified its metadata also lists the conformance tester (KECIS
// §13.2), which the role check then takes for a bank.
//
// ECML mapping (KECIS §14.1 rows 4–5, §15.8, §15.9):
//
//	credit   request  Ecom/@ConsumerOrderID            the remitting bank's transfer reference
//	                  Transaction/@Amount, @Currency    the amount
//	                  kx:BankAccount Role="payee" @BankCode (the provider's), kx:AccountNumber (encrypted)
//	                  kx:BankAccount Role="remitter" @BankCode (the caller's), kx:Holder, kx:AccountNumber (optional)
//	                  kx:Transfer                       optional, for the record
//	         answer   Transaction/Code/@Approval        the payee bank's credit reference
//	                  Transaction/Data/Response         "credited"
//	                  Ecom/@ConsumerOrderID, Transaction/@Amount, @Currency  as requested
//	inquire  request  Ecom/@ConsumerOrderID             (kx:BankAccount Role="remitter" @BankCode optional)
//	         answer   as credit's; Requester/Declined "no such transfer"
//	holder-inquiry request kx:BankAccount Role="payee" @BankCode, kx:AccountNumber (encrypted)
//	         answer   kx:BankAccount Role="payee" @BankCode, kx:Holder — never the number
package banking

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Service URIs.
const (
	ServiceCredit         = saml.ServicePrefix + "transfer:credit"
	ServiceInquire        = saml.ServicePrefix + "transfer:inquire"
	ServiceHolderInquiry  = saml.ServicePrefix + "account:holder-inquiry"
	StateCredited         = "credited"
	RolePayee             = "payee"
	RoleRemitter          = "remitter"
	objectTransfer        = "transfer:reference"
	objectCreditReference = "transfer:credit"
)

// CreditRequest is another bank's transfer to credit (KECIS §15.8).
type CreditRequest struct {
	Caller string // the remitting bank's entityID (set from the request)
	// RemitterBank is the remitter's @BankCode: one of the caller's
	// published bank codes (checked before the provider runs).
	RemitterBank    string
	Reference       string // Ecom/@ConsumerOrderID, unique per caller
	Amount          ecml.Money
	PayeeBank       string      // the payee's @BankCode: the provider's
	PayeeAccount    ecml.Secret // decrypted kx:AccountNumber
	RemitterName    string      // kx:Holder of the remitter
	RemitterAccount ecml.Secret // optional
	Transfer        *ecml.Transfer
	IdempotencyKey  string
}

// InquireRequest asks for the caller's transfer by its reference.
type InquireRequest struct {
	Caller string
	// CallerBanks are the caller's published bank codes; RemitterBank the
	// one the request names (optional: the only one when it names none).
	CallerBanks  []string
	RemitterBank string
	Reference    string
}

// Credit is a credited transfer as the service reports it.
type Credit struct {
	Reference string     // the remitting bank's (Ecom/@ConsumerOrderID)
	CreditRef string     // the payee bank's (Transaction/Code/@Approval)
	Amount    ecml.Money // as credited
	State     string     // StateCredited
}

// HolderRequest asks for the holder's name of an account (예금주 조회,
// KECIS §15.9).
type HolderRequest struct {
	Caller   string
	BankCode string      // the account's bank: the provider's
	Account  ecml.Secret // decrypted kx:AccountNumber
}

// Holder is the answer: the bank code and the holder's name.
type Holder struct {
	BankCode string
	Name     string
}

// Transfers credits other banks' transfers and reports them.
type Transfers interface {
	Credit(ctx context.Context, req *CreditRequest) (*Credit, error)
	Inquire(ctx context.Context, req *InquireRequest) (*Credit, error)
}

// Holders tells banks the holder's name of an account.
type Holders interface {
	HolderInquiry(ctx context.Context, req *HolderRequest) (*Holder, error)
}

// Directory is what the role check reads: the callers' metadata
// (connectors.Directory, saml/metadata.Client).
type Directory interface {
	Lookup(ctx context.Context, entityID string) (*metadata.EntityDescriptor, error)
}

// Refusals (KECIS §6.2, §15.8, §15.9).
var (
	// NoSuchAccount is the one answer for an account unknown, closed or
	// not at the provider.
	NoSuchAccount = saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeDeclined, Message: "no such account"}
	// NoSuchTransfer answers an inquiry of a transfer the caller does not
	// have (unknown, or another caller's: the same).
	NoSuchTransfer = saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "no such transfer"}
)

// Refuse returns a status as an error for a provider to return.
func Refuse(s saml.Status) error { return &connectors.StatusError{Status: s} }

// LimitExceeded refuses an amount above the bank's per-transfer limit.
func LimitExceeded(msg string) error {
	return connectors.Refuse(saml.StatusResponder, saml.CodeLimitExceeded, msg)
}

// Duplicate refuses a reference credited already with other content.
func Duplicate(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeDuplicate, msg)
}

// InvalidPayload refuses a request that lacks what its operation needs.
func InvalidPayload(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.CodeInvalidPayload, msg)
}

// denied refuses a caller that is no bank (the role check repeated).
func denied(msg string) error {
	return connectors.Refuse(saml.StatusRequester, saml.StatusRequestDenied, msg)
}

// Objects lists the objects a transfer payload names (KECIS §13.3): the
// caller's transfer reference (per owner) and the payee bank's credit
// reference.
func Objects(p *ecml.Payload) []connectors.ObjectRef {
	if p == nil || p.Ecom == nil {
		return nil
	}
	var refs []connectors.ObjectRef
	if p.Ecom.ConsumerOrderID != "" {
		refs = append(refs, connectors.ObjectRef{Kind: objectTransfer, ID: p.Ecom.ConsumerOrderID, PerOwner: true})
	}
	if t := p.Ecom.Transaction; t != nil && t.Code != nil && t.Code.Approval != "" {
		refs = append(refs, connectors.ObjectRef{Kind: objectCreditReference, ID: t.Code.Approval})
	}
	return refs
}

// A credit creates the caller's transfer; an inquiry reads its own.
func init() {
	connectors.RegisterObjectRule(ServiceCredit, connectors.ObjectRule{Creates: true, Refs: Objects, NotFound: NoSuchTransfer})
	connectors.RegisterObjectRule(ServiceInquire, connectors.ObjectRule{Refs: Objects, NotFound: NoSuchTransfer})
}

// Services returns the SDK functions of p, a Transfers, a Holders or
// both; dir is the federation's metadata, in which each call's caller must
// have role bank. It panics if p is neither.
func Services(p any, dir Directory) map[string]connectors.ServiceFunc {
	m := map[string]connectors.ServiceFunc{}
	if t, ok := p.(Transfers); ok {
		m[ServiceCredit] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			banks, err := callerBanks(ctx, dir, r)
			if err != nil {
				return nil, err
			}
			req, err := CreditFrom(r)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(banks, req.RemitterBank) {
				return nil, denied("the remitter's bank code is not one the caller publishes")
			}
			return respond(t.Credit(ctx, req))
		}
		m[ServiceInquire] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			banks, err := callerBanks(ctx, dir, r)
			if err != nil {
				return nil, err
			}
			req, err := InquireFrom(r)
			if err != nil {
				return nil, err
			}
			req.CallerBanks = banks
			if req.RemitterBank == "" && len(banks) == 1 {
				req.RemitterBank = banks[0]
			}
			if !slices.Contains(banks, req.RemitterBank) {
				return nil, denied("name the caller's bank code: kx:BankAccount Role=\"remitter\" @BankCode")
			}
			return respond(t.Inquire(ctx, req))
		}
	}
	if h, ok := p.(Holders); ok {
		m[ServiceHolderInquiry] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			if _, err := callerBanks(ctx, dir, r); err != nil {
				return nil, err
			}
			req, err := HolderFrom(r)
			if err != nil {
				return nil, err
			}
			ans, err := h.HolderInquiry(ctx, req)
			if err != nil {
				return nil, err
			}
			return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: HolderPayload(ans)}, nil
		}
	}
	if len(m) == 0 {
		panic(fmt.Sprintf("banking: %T implements neither Transfers nor Holders", p))
	}
	return m
}

// callerBanks checks, in the caller's active metadata, that it has role
// bank (KECIS §13.2: besides the service's Callers, the provider checks
// again), and returns the bank codes it publishes (the BankCodes of the
// services it offers). A conformance tester stands in for a bank (KECIS
// §13.2: a provider certified lists `tester` among its callers while the
// suite runs): it reaches the function only when the provider's own
// metadata admits it — the SDK's Handler checked that — and credits from
// the bank codes it publishes, as a bank does.
func callerBanks(ctx context.Context, dir Directory, r *connectors.Request) ([]string, error) {
	ed, err := dir.Lookup(ctx, r.Merchant())
	switch {
	case errors.Is(err, saml.ErrUnknownEntity):
		return nil, denied("the caller is not a participant")
	case err != nil:
		return nil, fmt.Errorf("banking: the caller's metadata: %w", err) // ProviderUnavailable, retryable
	case !ed.HasRole(metadata.RoleBank) && !ed.HasRole(metadata.RoleTester):
		return nil, denied("only banks may call this service")
	}
	var codes []string
	for _, s := range ed.Services {
		for _, c := range s.BankCodes {
			if !slices.Contains(codes, c) {
				codes = append(codes, c)
			}
		}
	}
	return codes, nil
}

// account returns the payload's kx:BankAccount of role.
func account(p *ecml.Payload, role string) *ecml.BankAccount {
	for _, a := range p.BankAccounts {
		if a != nil && a.Role == role {
			return a
		}
	}
	return nil
}

// CreditFrom decodes a transfer:credit request.
func CreditFrom(r *connectors.Request) (*CreditRequest, error) {
	p := r.Payload
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" {
		return nil, InvalidPayload("a credit needs Ecom/@ConsumerOrderID, the transfer reference")
	}
	if p.Ecom.Transaction == nil {
		return nil, InvalidPayload("a credit needs Transaction/@Amount and @Currency")
	}
	m, err := p.Ecom.Transaction.Money()
	if err != nil || m.Minor <= 0 {
		return nil, InvalidPayload("a credit needs a positive Transaction/@Amount with @Currency")
	}
	payee, remitter := account(p, RolePayee), account(p, RoleRemitter)
	if payee == nil || payee.BankCode == "" {
		return nil, InvalidPayload(`a credit needs kx:BankAccount Role="payee" with @BankCode`)
	}
	if payee.AccountNumber == "" {
		return nil, InvalidPayload(`a credit needs the payee's kx:AccountNumber, decrypted`)
	}
	if remitter == nil || remitter.BankCode == "" || remitter.Holder == "" {
		return nil, InvalidPayload(`a credit needs kx:BankAccount Role="remitter" with @BankCode and kx:Holder`)
	}
	if remitter.EncryptedAccountNumber != nil && remitter.AccountNumber == "" {
		return nil, InvalidPayload(`the remitter's kx:AccountNumber must be decrypted`)
	}
	return &CreditRequest{Caller: r.Merchant(), RemitterBank: remitter.BankCode, Reference: p.Ecom.ConsumerOrderID, Amount: m,
		PayeeBank: payee.BankCode, PayeeAccount: payee.AccountNumber, RemitterName: remitter.Holder,
		RemitterAccount: remitter.AccountNumber, Transfer: p.Transfer, IdempotencyKey: r.IdempotencyKey}, nil
}

// InquireFrom decodes a transfer:inquire request.
func InquireFrom(r *connectors.Request) (*InquireRequest, error) {
	p := r.Payload
	if p == nil || p.Ecom == nil || p.Ecom.ConsumerOrderID == "" {
		return nil, InvalidPayload("an inquiry needs Ecom/@ConsumerOrderID, the transfer reference")
	}
	req := &InquireRequest{Caller: r.Merchant(), Reference: p.Ecom.ConsumerOrderID}
	if a := account(p, RoleRemitter); a != nil {
		req.RemitterBank = a.BankCode
	}
	return req, nil
}

// HolderFrom decodes an account:holder-inquiry request.
func HolderFrom(r *connectors.Request) (*HolderRequest, error) {
	p := r.Payload
	var a *ecml.BankAccount
	if p != nil {
		a = account(p, RolePayee)
	}
	if a == nil || a.BankCode == "" || a.AccountNumber == "" {
		return nil, InvalidPayload(`a holder inquiry needs kx:BankAccount Role="payee" with @BankCode and kx:AccountNumber, decrypted`)
	}
	return &HolderRequest{Caller: r.Merchant(), BankCode: a.BankCode, Account: a.AccountNumber}, nil
}

func respond(c *Credit, err error) (*connectors.Response, error) {
	if err != nil {
		return nil, err
	}
	p, err := CreditPayload(c)
	if err != nil {
		return nil, err
	}
	return &connectors.Response{Status: saml.Status{Code: saml.StatusSuccess}, Payload: p}, nil
}

// CreditPayload is the answer payload of a credit or an inquiry.
func CreditPayload(c *Credit) (*ecml.Payload, error) {
	t := &ecml.Transaction{Code: &ecml.Code{Approval: c.CreditRef}, Data: &ecml.Data{Response: &ecml.Text{Value: c.State}}}
	if err := t.SetMoney(c.Amount); err != nil {
		return nil, fmt.Errorf("banking: %w", err)
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: c.Reference, Transaction: t}}, nil
}

// CreditFromPayload reads a credit from an answer payload (the caller's
// side).
func CreditFromPayload(p *ecml.Payload) (*Credit, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil {
		return nil, errors.New("banking: the answer has no Transaction")
	}
	t := p.Ecom.Transaction
	c := &Credit{Reference: p.Ecom.ConsumerOrderID}
	if m, err := t.Money(); err == nil {
		c.Amount = m
	}
	if t.Code != nil {
		c.CreditRef = t.Code.Approval
	}
	if t.Data != nil && t.Data.Response != nil {
		c.State = t.Data.Response.Value
	}
	return c, nil
}

// HolderPayload is the answer payload of a holder inquiry: the bank code
// and the holder's name, never the number.
func HolderPayload(h *Holder) *ecml.Payload {
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion},
		BankAccounts: []*ecml.BankAccount{{BankCode: h.BankCode, Role: RolePayee, Holder: h.Name}}}
}

// HolderFromPayload reads the holder from an answer payload.
func HolderFromPayload(p *ecml.Payload) (*Holder, error) {
	if p == nil {
		return nil, errors.New("banking: the answer has no payload")
	}
	a := account(p, RolePayee)
	if a == nil || a.Holder == "" {
		return nil, errors.New(`banking: the answer has no kx:BankAccount Role="payee" with kx:Holder`)
	}
	return &Holder{BankCode: a.BankCode, Name: a.Holder}, nil
}

// CreditRequestPayload is the request payload of a credit (the remitting
// bank's side; the SDK encrypts the account numbers for the recipient).
func CreditRequestPayload(req *CreditRequest) (*ecml.Payload, error) {
	t := &ecml.Transaction{}
	if err := t.SetMoney(req.Amount); err != nil {
		return nil, fmt.Errorf("banking: %w", err)
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: req.Reference, Transaction: t},
		BankAccounts: []*ecml.BankAccount{
			{BankCode: req.PayeeBank, Role: RolePayee, AccountNumber: req.PayeeAccount},
			{BankCode: req.RemitterBank, Role: RoleRemitter, Holder: req.RemitterName, AccountNumber: req.RemitterAccount},
		}, Transfer: req.Transfer}, nil
}

// HolderRequestPayload is the request payload of a holder inquiry.
func HolderRequestPayload(bankCode string, account ecml.Secret) *ecml.Payload {
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion},
		BankAccounts: []*ecml.BankAccount{{BankCode: bankCode, Role: RolePayee, AccountNumber: account}}}
}

// Resolver finds the bank that answers for a bank code (KECIS §13.4):
// *connectors.Resolver.
type Resolver interface {
	RecipientFor(ctx context.Context, service, bin, bank string) (string, error)
}

// Client calls other banks' transfer and account services through the hub
// (the caller's side, as phone.Client is for the carrier's): the
// recipient is the bank of the payee's bank code, found by Resolver.
type Client struct {
	C        *connectors.Client
	Resolver Resolver
	// BankCode is the caller's own bank code: a credit's remitting bank
	// when the request names none.
	BankCode string
}

// CreditResult is the answer to a credit or an inquiry: the credit when
// the payee's bank succeeded, and the verified result (its status tells a
// refusal, or Pending).
type CreditResult struct {
	Credit *Credit
	Result *connectors.Result
}

// OK reports success.
func (r *CreditResult) OK() bool { return r.Result != nil && r.Result.Status.OK() }

// HolderResult is the answer to a holder inquiry.
type HolderResult struct {
	Holder *Holder
	Result *connectors.Result
}

// OK reports success.
func (r *HolderResult) OK() bool { return r.Result != nil && r.Result.Status.OK() }

func (c *Client) recipient(ctx context.Context, service, bankCode string) (string, error) {
	if c.Resolver == nil {
		return "", errors.New("banking: Client needs a Resolver")
	}
	return c.Resolver.RecipientFor(ctx, service, "", bankCode)
}

// Credit asks the payee's bank (req.PayeeBank) to credit the payee
// (transfer:credit, KECIS §15.8) under req.IdempotencyKey; the account
// numbers travel encrypted for that bank.
func (c *Client) Credit(ctx context.Context, req *CreditRequest) (*CreditResult, error) {
	r := *req
	if r.RemitterBank == "" {
		r.RemitterBank = c.BankCode
	}
	if r.IdempotencyKey == "" {
		return nil, errors.New("banking: a credit needs an idempotency key")
	}
	p, err := CreditRequestPayload(&r)
	if err != nil {
		return nil, err
	}
	to, err := c.recipient(ctx, ServiceCredit, r.PayeeBank)
	if err != nil {
		return nil, err
	}
	return c.creditCall(ctx, connectors.Call{Recipient: to, Service: ServiceCredit, IdempotencyKey: r.IdempotencyKey, Payload: p})
}

// Inquire asks the payee's bank for the caller's transfer by its
// reference (transfer:inquire, KECIS §15.8). The caller's bank code is
// not named: a caller that publishes several must name it (an inquiry
// then answers RequestDenied).
func (c *Client) Inquire(ctx context.Context, payeeBank, reference string) (*CreditResult, error) {
	to, err := c.recipient(ctx, ServiceInquire, payeeBank)
	if err != nil {
		return nil, err
	}
	p := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: reference}}
	return c.creditCall(ctx, connectors.Call{Recipient: to, Service: ServiceInquire, Payload: p})
}

func (c *Client) creditCall(ctx context.Context, call connectors.Call) (*CreditResult, error) {
	res, err := c.C.Do(ctx, call)
	if err != nil {
		return nil, err
	}
	out := &CreditResult{Result: res}
	if res.Status.OK() {
		if out.Credit, err = CreditFromPayload(res.Payload); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Holder asks the account's bank for its holder's name
// (account:holder-inquiry, KECIS §15.9); the number travels encrypted.
func (c *Client) Holder(ctx context.Context, bankCode string, account ecml.Secret) (*HolderResult, error) {
	to, err := c.recipient(ctx, ServiceHolderInquiry, bankCode)
	if err != nil {
		return nil, err
	}
	res, err := c.C.Do(ctx, connectors.Call{Recipient: to, Service: ServiceHolderInquiry, Payload: HolderRequestPayload(bankCode, account)})
	if err != nil {
		return nil, err
	}
	out := &HolderResult{Result: res}
	if res.Status.OK() {
		if out.Holder, err = HolderFromPayload(res.Payload); err != nil {
			return nil, err
		}
	}
	return out, nil
}
