package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Bank and telecom service URIs (KECIS §15.5, §15.8–§15.10;
// connectors/banking, connectors/phone and connectors/twoway name them
// too, the suite keeps its own copy to test participants as black boxes).
var (
	svcCredit         = saml.ServiceURI("transfer", "credit")
	svcTransferInq    = saml.ServiceURI("transfer", "inquire")
	svcHolderInquiry  = saml.ServiceURI("account", "holder-inquiry")
	svcHolderCheck    = saml.ServiceURI("phone", "holder-check")
	svcTwoWayRequest  = saml.ServiceURI("twoway", "request")
	svcTwoWayStatus   = saml.ServiceURI("twoway", "status")
	bankNoSuchAccount = "no such account"
)

// remitterName is the remitter's name the suite's credits carry.
const remitterName = "KECIS 적합성 시험"

func bankApplies(e *Env) (bool, string) {
	if e.Profile.Bank == nil {
		return false, "the profile has no bank section (the bank's code, an account and its holder)"
	}
	return true, ""
}

func (c *C) bankAmount() ecml.Money {
	b := c.Profile.Bank
	m, _ := ecml.ParseAmount(b.Amount, b.Currency)
	return m
}

// unknownAccount is a number the bank does not know: the profile's, else
// one the suite makes up from the run.
func (c *C) unknownAccount() string {
	if n := c.Profile.Bank.UnknownAccount; n != "" {
		return n
	}
	d := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, c.RunID)
	return "999-" + (d + "00000000")[:8]
}

// creditRequest is a transfer:credit of m to account at the bank, from the
// tester as the profile's caller bank (KECIS §15.8).
func (c *C) creditRequest(key, order, account string, m ecml.Money) (*saml.ServiceRequest, error) {
	b := c.Profile.Bank
	req, err := c.NewRequest(svcCredit)
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(m)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = key
	req.Routing = &saml.Routing{BankCode: b.Code}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order,
		Transaction: &ecml.Transaction{Amount: a, Currency: m.Currency}},
		BankAccounts: []*ecml.BankAccount{
			{BankCode: b.Code, Role: "payee", AccountNumber: ecml.Secret(account)},
			{BankCode: b.CallerCode, Role: "remitter", Holder: remitterName}}}
	return req, nil
}

func (c *C) credit(what, key, order, account string, m ecml.Money) (*Exchange, error) {
	req, err := c.creditRequest(key, order, account, m)
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), what, ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}

// credited checks x is a credit of m for order and returns its reference.
func (c *C) credited(x *Exchange, order string, m ecml.Money) (string, error) {
	if err := c.answerOf(x); err != nil {
		return "", err
	}
	st := x.Response.Status
	if !st.OK() {
		return "", fmt.Errorf("%s: refused: %s", x.Label, describeStatus(st))
	}
	pl := x.Response.Payload
	if pl == nil || pl.Ecom == nil || pl.Ecom.Transaction == nil {
		return "", fmt.Errorf("%s: Success without Ecom/Transaction", x.Label)
	}
	t := pl.Ecom.Transaction
	var p []string
	if t.Code == nil || t.Code.Approval == "" {
		p = append(p, "no credit reference (Transaction/Code/@Approval)")
	}
	if t.Data == nil || t.Data.Response == nil || t.Data.Response.Value != "credited" {
		p = append(p, "Transaction/Data/Response is not credited")
	}
	if pl.Ecom.ConsumerOrderID != order {
		p = append(p, fmt.Sprintf("the order is %q, not %q", pl.Ecom.ConsumerOrderID, order))
	}
	if got, err := t.Money(); err != nil || got != m {
		p = append(p, fmt.Sprintf("the amount is %s %s, not %s", t.Amount, t.Currency, m))
	}
	if len(p) > 0 {
		return "", fmt.Errorf("%s: %s", x.Label, strings.Join(p, "; "))
	}
	return t.Code.Approval, nil
}

// sameRefusal checks that x answers exactly as ref does: status codes and
// message (KECIS §15.8: one answer, no oracle of accounts).
func sameRefusal(ref, x *Exchange) error {
	if x.Response == nil {
		return fmt.Errorf("%s: no verified answer: %s", x.Label, x.Describe())
	}
	a, b := ref.Response.Status, x.Response.Status
	if a.Code != b.Code || a.SubCode != b.SubCode || a.Message != b.Message || (ref.Response.Payload == nil) != (x.Response.Payload == nil) {
		return fmt.Errorf("%s answers %s, an unknown account %s: the two must be one answer", x.Label, describeStatus(b), describeStatus(a))
	}
	return nil
}

// transferModule checks a bank's transfer service (KECIS §15.8): the
// tester credits as a bank.
func transferModule() *Module {
	return &Module{
		Name:  "transfer",
		Title: "Account transfer",
		Description: "The tester, as a bank (test mode), credits the profile's account: Success, credited, a reference; the same request again and the same reference under another key answer that credit; other content under the reference is Duplicate; " +
			"an unknown account is Responder/Declined \"no such account\", and a closed or another bank's account is exactly the same answer; inquire finds the credit, and an unknown reference is Requester/Declined.",
		Applies: bankApplies,
		Conditions: []*Condition{
			{ID: "transfer.credit", Title: "A credit to an active account answers Success: credited, the bank's reference, the order and the amount",
				Clauses: []string{"KECIS §15.8"}, Service: svcCredit, Run: func(c *C) error {
					m, order := c.bankAmount(), c.OrderID("credit")
					before, hasBal, err := c.balance(c.Profile.Bank.Code, c.Profile.Bank.Account.Number)
					if err != nil {
						return err
					}
					x, err := c.credit("credit", c.Key("credit"), order, c.Profile.Bank.Account.Number, m)
					if err != nil {
						return err
					}
					ref, err := c.credited(x, order, m)
					if err != nil {
						return err
					}
					c.Set("credit-ref", ref)
					if hasBal {
						after, _, err := c.balance(c.Profile.Bank.Code, c.Profile.Bank.Account.Number)
						if err != nil {
							return err
						}
						if after.Minor-before.Minor != m.Minor {
							return fmt.Errorf("the account's balance moved by %d, not %s (the balance hook)", after.Minor-before.Minor, m)
						}
					}
					c.Note("credited %s: reference %s", m, ref)
					return nil
				}},
			{ID: "transfer.repeat", Title: "The same credit again (same key), and under another key with the same reference and content, answers the first credit",
				Clauses: []string{"KECIS §15.8", "KECIS §7"}, Service: svcCredit, Needs: []string{"transfer.credit"}, Run: func(c *C) error {
					m, order := c.bankAmount(), c.OrderID("credit")
					v, _ := c.Get("credit-ref")
					ref, _ := v.(string)
					var p []string
					for _, k := range []struct{ what, key string }{{"the same credit again", c.Key("credit")}, {"the same credit under another key", c.Key("credit-2")}} {
						x, err := c.credit(k.what, k.key, order, c.Profile.Bank.Account.Number, m)
						if err != nil {
							return err
						}
						got, err := c.credited(x, order, m)
						switch {
						case err != nil:
							p = append(p, err.Error())
						case got != ref:
							p = append(p, fmt.Sprintf("%s: reference %s, the first credit's is %s (credited twice?)", k.what, got, ref))
						}
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return nil
				}},
			{ID: "transfer.duplicate", Title: "The same reference with other content (another amount, another key) answers Requester / Duplicate",
				Clauses: []string{"KECIS §15.8"}, Service: svcCredit, Needs: []string{"transfer.credit"}, Run: func(c *C) error {
					m := c.bankAmount()
					m.Minor++
					x, err := c.credit("the reference again for another amount", c.Key("credit-3"), c.OrderID("credit"), c.Profile.Bank.Account.Number, m)
					if err != nil {
						return err
					}
					return expectStatus(c, x, saml.StatusRequester, saml.CodeDuplicate)
				}},
			{ID: "transfer.no-such-account", Title: "A credit to an unknown account answers Responder / Declined \"no such account\"; a closed account and another bank's account get exactly that answer",
				Clauses: []string{"KECIS §15.8"}, Service: svcCredit, Run: func(c *C) error {
					b, m := c.Profile.Bank, c.bankAmount()
					x, err := c.credit("credit to an unknown account", c.Key("unknown"), c.OrderID("unknown"), c.unknownAccount(), m)
					if err != nil {
						return err
					}
					if err := expectStatus(c, x, saml.StatusResponder, saml.CodeDeclined); err != nil {
						return err
					}
					if msg := x.Response.Status.Message; !strings.EqualFold(msg, bankNoSuchAccount) {
						return fmt.Errorf("the message is %q; KECIS §15.8 says %q", msg, bankNoSuchAccount)
					}
					var p []string
					for _, o := range []struct{ label, number string }{{"closed", b.ClosedAccount}, {"foreign", b.ForeignAccount}} {
						if o.number == "" {
							c.Note("the profile gives no %s_account", o.label)
							continue
						}
						y, err := c.credit("credit to a "+o.label+" account", c.Key(o.label), c.OrderID(o.label), o.number, m)
						if err != nil {
							return err
						}
						if err := sameRefusal(x, y); err != nil {
							p = append(p, err.Error())
						}
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return nil
				}},
			{ID: "transfer.inquire", Title: "inquire finds the tester's credit (credited, the same reference); an unknown reference answers Requester / Declined",
				Clauses: []string{"KECIS §15.8", "KECIS §13.3"}, Service: svcTransferInq, Needs: []string{"transfer.credit"}, Run: func(c *C) error {
					v, _ := c.Get("credit-ref")
					ref, _ := v.(string)
					x, err := c.transferInquire("inquire the credit", c.OrderID("credit"))
					if err != nil {
						return err
					}
					got, err := c.credited(x, c.OrderID("credit"), c.bankAmount())
					if err != nil {
						return err
					}
					if got != ref {
						return fmt.Errorf("inquire names the reference %s, the credit's is %s", got, ref)
					}
					y, err := c.transferInquire("inquire an unknown reference", c.OrderID("never-sent"))
					if err != nil {
						return err
					}
					return expectStatus(c, y, saml.StatusRequester, saml.CodeDeclined)
				}},
		},
	}
}

func (c *C) transferInquire(what, order string) (*Exchange, error) {
	req, err := c.NewRequest(svcTransferInq)
	if err != nil {
		return nil, err
	}
	req.Routing = &saml.Routing{BankCode: c.Profile.Bank.Code}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order},
		BankAccounts: []*ecml.BankAccount{{BankCode: c.Profile.Bank.CallerCode, Role: "remitter", Holder: remitterName}}}
	x, err := c.Exchange(c.Context(), what, ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}
