package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// phoneName is a name in Ecom/BillTo/Postal/Name: its words as written,
// family name first — @Last, @First, then @Middle (KECIS §15.10).
func phoneName(s string) *ecml.Name {
	w := strings.Fields(s)
	n := &ecml.Name{}
	if len(w) > 0 {
		n.Last = w[0]
	}
	if len(w) > 1 {
		n.First = w[1]
	}
	if len(w) > 2 {
		n.Middle = strings.Join(w[2:], "")
	}
	return n
}

func (c *C) holderCheck(what string, id *Tester, pc PhoneCheck) (*Exchange, error) {
	if id == nil {
		id = c.Tester
	}
	req, err := c.NewRequestAs(id, svcHolderCheck)
	if err != nil {
		return nil, err
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion,
		BillTo: &ecml.Address{Postal: &ecml.Postal{Name: phoneName(pc.Name)}, Telecom: &ecml.Telecom{Phone: &ecml.Phone{Number: pc.Number}}}}}
	var x *Exchange
	if id == c.Tester {
		x, err = c.Exchange(c.Context(), what, ViaHub, req, Seal{})
	} else {
		x, err = c.ExchangeAs(c.Context(), what, id, req, Seal{})
	}
	if err != nil {
		return nil, err
	}
	c.Record(x)
	v, _ := c.Get("phone-answers")
	xs, _ := v.([]*Exchange)
	c.Set("phone-answers", append(xs, x))
	return x, nil
}

// phoneModule checks a telecom's holder check (KECIS §15.10).
func phoneModule() *Module {
	return &Module{
		Name:        "phone",
		Title:       "Phone holder check",
		Description: "The tester, as a bank, checks each of the profile's numbers and names and must get the outcome the profile expects (match, close-match, no-match, not-possible); the profile's outsider (a merchant) is refused with Requester/RequestDenied; no answer names anyone.",
		Applies: func(e *Env) (bool, string) {
			if e.Profile.Phone == nil {
				return false, "the profile has no phone section (numbers, names and the outcome expected for each)"
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "phone.outcomes", Title: "Each of the profile's holder checks answers Success with the expected Transaction/Data/Response",
				Clauses: []string{"KECIS §15.10"}, Service: svcHolderCheck, Run: func(c *C) error {
					var p []string
					for i, pc := range c.Profile.Phone.Checks {
						x, err := c.holderCheck(fmt.Sprintf("holder check %d (expect %s)", i+1, pc.Expect), nil, pc)
						if err != nil {
							return err
						}
						if err := c.answerOf(x); err != nil {
							p = append(p, err.Error())
							continue
						}
						got := ""
						if pl := x.Response.Payload; pl != nil && pl.Ecom != nil && pl.Ecom.Transaction != nil && pl.Ecom.Transaction.Data != nil && pl.Ecom.Transaction.Data.Response != nil {
							got = pl.Ecom.Transaction.Data.Response.Value
						}
						switch {
						case !x.Response.Status.OK():
							p = append(p, fmt.Sprintf("check %d (%s): refused %s", i+1, pc.Expect, describeStatus(x.Response.Status)))
						case got != pc.Expect:
							p = append(p, fmt.Sprintf("check %d: answered %q, expected %q", i+1, got, pc.Expect))
						}
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return nil
				}},
			{ID: "phone.non-bank-refused", Title: "A holder check from a non-bank (the profile's outsider) is refused with Requester / RequestDenied",
				Clauses: []string{"KECIS §15.10", "KECIS §13.2"}, Service: svcHolderCheck, Run: func(c *C) error {
					if c.Outsider == nil {
						return Skip("the profile gives no outsider (a participant that is not a bank, such as a merchant)")
					}
					x, err := c.holderCheck("holder check from the outsider", c.Outsider, c.Profile.Phone.Checks[0])
					if err != nil {
						return err
					}
					return expectStatus(c, x, saml.StatusRequester, saml.StatusRequestDenied)
				}},
			{ID: "phone.no-name", Title: "No answer of the module names anyone: no Postal/Name or kx:Holder, none of the profile's names in the status or the payload",
				Clauses: []string{"KECIS §15.10"}, Service: svcHolderCheck, Needs: []string{"phone.outcomes"}, Run: func(c *C) error {
					v, _ := c.Get("phone-answers")
					xs, _ := v.([]*Exchange)
					var names []string
					for _, pc := range c.Profile.Phone.Checks {
						names = append(names, pc.Name, strings.Join(strings.Fields(pc.Name), ""))
					}
					var p []string
					for _, x := range xs {
						if x.Response == nil {
							continue
						}
						text := x.Response.Status.Message
						if pl := x.Response.Payload; pl != nil {
							if pl.Ecom != nil && pl.Ecom.BillTo != nil && pl.Ecom.BillTo.Postal != nil && pl.Ecom.BillTo.Postal.Name != nil {
								p = append(p, x.Label+": the answer carries Postal/Name")
							}
							for _, ba := range pl.BankAccounts {
								if ba.Holder != "" {
									p = append(p, x.Label+": the answer carries kx:Holder")
								}
							}
							if b, err := pl.MarshalDocument(); err == nil {
								text += string(b)
							}
						}
						for _, n := range names {
							if n != "" && strings.Contains(text, n) {
								p = append(p, x.Label+": the answer names a person")
								break
							}
						}
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					c.Note("%d answers, no name", len(xs))
					return nil
				}},
		},
	}
}
