package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// holderRequest is an account:holder-inquiry of number at the bank (KECIS
// §15.9), from id (the tester when nil).
func (c *C) holderRequest(id *Tester, number string) (*saml.ServiceRequest, error) {
	if id == nil {
		id = c.Tester
	}
	req, err := c.NewRequestAs(id, svcHolderInquiry)
	if err != nil {
		return nil, err
	}
	req.Routing = &saml.Routing{BankCode: c.Profile.Bank.Code}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion},
		BankAccounts: []*ecml.BankAccount{{BankCode: c.Profile.Bank.Code, Role: "payee", AccountNumber: ecml.Secret(number)}}}
	return req, nil
}

func (c *C) holderInquiry(what string, id *Tester, number string) (*Exchange, error) {
	req, err := c.holderRequest(id, number)
	if err != nil {
		return nil, err
	}
	var x *Exchange
	if id == nil {
		x, err = c.Exchange(c.Context(), what, ViaHub, req, Seal{})
	} else {
		x, err = c.ExchangeAs(c.Context(), what, id, req, Seal{})
	}
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}

// accountModule checks a bank's account holder inquiry (KECIS §15.9).
func accountModule() *Module {
	return &Module{
		Name:        "account",
		Title:       "Account holder inquiry",
		Description: "The tester, as a bank, asks the holder of the profile's account: the name, never the number; the profile's outsider (a merchant) asks the same and is refused with Requester/RequestDenied, learning no name; an unknown account is Responder/Declined \"no such account\".",
		Applies:     bankApplies,
		Conditions: []*Condition{
			{ID: "account.holder", Title: "A bank's holder inquiry answers Success with kx:BankAccount Role=\"payee\", the bank's code and the holder's name — never the account number",
				Clauses: []string{"KECIS §15.9"}, Service: svcHolderInquiry, Run: func(c *C) error {
					b := c.Profile.Bank
					x, err := c.holderInquiry("holder inquiry", nil, b.Account.Number)
					if err != nil {
						return err
					}
					if err := c.answerOf(x); err != nil {
						return err
					}
					if !x.Response.Status.OK() {
						return fmt.Errorf("refused: %s", describeStatus(x.Response.Status))
					}
					var payee *ecml.BankAccount
					var p []string
					if pl := x.Response.Payload; pl != nil {
						for _, ba := range pl.BankAccounts {
							if ba.AccountNumber != "" || ba.EncryptedAccountNumber != nil {
								p = append(p, "the answer carries an account number (kx:AccountNumber): KECIS §15.9 answers the name only")
							}
							if ba.Role == "payee" {
								payee = ba
							}
						}
					}
					switch {
					case payee == nil:
						p = append(p, "no kx:BankAccount Role=\"payee\" in the answer")
					case payee.BankCode != b.Code:
						p = append(p, fmt.Sprintf("@BankCode is %q, not the bank's %q", payee.BankCode, b.Code))
					case payee.Holder == "":
						p = append(p, "no kx:Holder")
					case b.Account.Holder != "" && payee.Holder != b.Account.Holder:
						p = append(p, fmt.Sprintf("the holder is %q, the profile says %q", payee.Holder, b.Account.Holder))
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					c.Note("holder: %s", payee.Holder)
					return nil
				}},
			{ID: "account.non-bank-refused", Title: "A holder inquiry from a non-bank (the profile's outsider) is refused with Requester / RequestDenied and names no holder",
				Clauses: []string{"KECIS §15.9", "KECIS §13.2"}, Service: svcHolderInquiry, Run: func(c *C) error {
					if c.Outsider == nil {
						return Skip("the profile gives no outsider (a participant that is not a bank, such as a merchant)")
					}
					x, err := c.holderInquiry("holder inquiry from the outsider", c.Outsider, c.Profile.Bank.Account.Number)
					if err != nil {
						return err
					}
					if x.Response != nil && x.Response.Payload != nil {
						for _, ba := range x.Response.Payload.BankAccounts {
							if ba.Holder != "" {
								return fmt.Errorf("a non-bank (%s) learnt the account's holder: answered %s with kx:Holder", c.Outsider.EntityID, describeStatus(x.Response.Status))
							}
						}
					}
					return expectStatus(c, x, saml.StatusRequester, saml.StatusRequestDenied)
				}},
			{ID: "account.unknown", Title: "A holder inquiry of an unknown account answers Responder / Declined \"no such account\" (a closed one the same)",
				Clauses: []string{"KECIS §15.9"}, Service: svcHolderInquiry, Run: func(c *C) error {
					x, err := c.holderInquiry("holder inquiry of an unknown account", nil, c.unknownAccount())
					if err != nil {
						return err
					}
					if err := expectStatus(c, x, saml.StatusResponder, saml.CodeDeclined); err != nil {
						return err
					}
					if n := c.Profile.Bank.ClosedAccount; n != "" {
						y, err := c.holderInquiry("holder inquiry of a closed account", nil, n)
						if err != nil {
							return err
						}
						return sameRefusal(x, y)
					}
					return nil
				}},
		},
	}
}
