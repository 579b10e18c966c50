package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// vcnModule checks an issuer's virtual card numbers (KECIS §15.4): one
// issued during a cardholder authentication (kx:CardAuth/@VirtualCard,
// the paper's ACS → VCS flow), its format, and the controls the issuer
// enforces when it approves: the merchant lock, the cap, single use.
func vcnModule() *Module {
	return &Module{
		Name:  "vcn",
		Title: "Virtual card numbers",
		Description: "A cardholder authentication that asks for a virtual number (the tester the merchant and, in test mode, the acquirer): the answer's card is a 16-digit number of one of the issuer's published BINs, with the day of issue in Asia/Seoul and a Luhn check digit, locked to the tester, capped at the purchase, single use. " +
			"The second identity's approval with it is refused, so is one above the cap; the tester's approval with the AAV is approved, and a second one is refused.",
		Applies: func(e *Env) (bool, string) { return cardAuthApplies(e, svcCardAuth) },
		Conditions: []*Condition{
			{ID: "vcn.issue", Title: "A cardholder authentication with kx:CardAuth/@VirtualCard=\"true\" answers Success with kx:VirtualCard (@Type, kx:ExpDate, no number) and a Payment/Card encrypted for the acquirer whose number is not the real card's",
				Clauses: []string{"KECIS §15.4", "KECIS §15.7.1"}, Service: svcCardAuth, Run: func(c *C) error {
					m, err := caAmount(c, false)
					if err != nil {
						return err
					}
					f, err := c.caAuthenticate(svcCardAuth, "vcn", m, true)
					if f != nil && f.card != nil {
						c.Set("vcn", f)
					}
					if err != nil {
						return err
					}
					var p []string
					vc := f.resp.Payload.VirtualCard
					switch {
					case vc == nil:
						p = append(p, "no kx:VirtualCard")
					case vc.Type == "" || vc.ExpDate == nil:
						p = append(p, "kx:VirtualCard without @Type or kx:ExpDate")
					case vc.Number != "" || vc.EncryptedNumber != nil:
						p = append(p, "kx:VirtualCard carries the number: in a cardholder authentication it travels as Payment/Card only")
					}
					if f.card != nil && f.card.Number.Reveal() == c.Profile.CardAuth.Card.Number {
						p = append(p, "the card is the real one, not a virtual number")
					}
					if err := c.caCardForAcquirer(f, ""); err != nil {
						p = append(p, err.Error())
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return c.caResultOK(f, []string{caMethodPassword}, 1)
				}},
			{ID: "vcn.format", Title: "The virtual number has 16 digits: one of the issuer's published BINs, the day of the year of issue in Asia/Seoul, a serial and a valid Luhn check digit",
				Clauses: []string{"KECIS §15.4", "KECIS §11.1"}, Service: svcCardAuth, Needs: []string{"vcn.issue"}, Run: func(c *C) error {
					f := getFlow(c, "vcn")
					n := f.card.Number.Reveal()
					var p []string
					if len(n) != 16 || !ecml.AllDigits(n) {
						return fmt.Errorf("the virtual number %s has %d characters, not 16 digits", f.card.Number.Masked(), len(n))
					}
					if !ecml.LuhnValid(n) {
						p = append(p, "its check digit is wrong (Luhn)")
					}
					published := false
					if s, ok := c.Descriptor().Offers(svcApprove); ok {
						published = s.BINs.Contains(n)
					}
					if !published {
						p = append(p, fmt.Sprintf("its BIN %s is not among the BINs the issuer publishes for %s: approvals with it cannot be routed", n[:6], svcApprove))
					}
					issued := f.resp.IssueInstant
					if day := n[6:9]; day != seoulDay(issued) && day != seoulDay(c.Now()) {
						p = append(p, fmt.Sprintf("digits 7–9 are %s, the day of the year of issue in Asia/Seoul is %s", day, seoulDay(issued)))
					}
					if len(p) > 0 {
						return fmt.Errorf("the virtual number %s: %s", f.card.Number.Masked(), strings.Join(p, "; "))
					}
					c.Note("virtual number %s: BIN %s, day %s", f.card.Number.Masked(), n[:6], n[6:9])
					return nil
				}},
			{ID: "vcn.other-merchant", Title: "An approval with the virtual number by the second identity (another merchant) is refused: Responder / Declined",
				Clauses: []string{"KECIS §15.4", "KECIS §13.3"}, Service: svcApprove, Needs: []string{"vcn.issue"}, Run: func(c *C) error {
					if c.Second == nil {
						return Skip("the profile gives no second identity (second:) to approve as another merchant")
					}
					f := getFlow(c, "vcn")
					order := c.OrderID("vcn-other")
					x, err := c.caApprove(c.Second, "approve with the virtual number as the second identity", "vcn-other", order, f.card, f.amount, "", nil)
					if err != nil {
						return err
					}
					return c.refusedAs(x, order, saml.CodeDeclined)
				}},
			{ID: "vcn.above-cap", Title: "An approval with the virtual number above its cap (the purchase amount) is refused: Responder / LimitExceeded",
				Clauses: []string{"KECIS §15.4"}, Service: svcApprove, Needs: []string{"vcn.issue"}, Run: func(c *C) error {
					f := getFlow(c, "vcn")
					order := c.OrderID("vcn-cap")
					more := ecml.Money{Minor: f.amount.Minor * 2, Currency: f.amount.Currency}
					x, err := c.caApprove(nil, "approve with the virtual number above its cap", "vcn-cap", order, f.card, more, "", nil)
					if err != nil {
						return err
					}
					if err := c.refusedAs(x, order, saml.CodeLimitExceeded, saml.CodeDeclined); err != nil {
						return err
					}
					if x.Response.Status.SubCode != saml.CodeLimitExceeded {
						return Warn("refused with %s; KECIS §15.4 answers LimitExceeded for the cap", describeStatus(x.Response.Status))
					}
					return nil
				}},
			{ID: "vcn.approve", Title: "The tester's approval with the virtual number, the AAV and the result, for the purchase: Success",
				Clauses: []string{"KECIS §15.4", "KECIS §15.7.3"}, Service: svcApprove, Needs: []string{"vcn.issue"}, Run: func(c *C) error {
					f := getFlow(c, "vcn")
					x, err := c.caApprove(nil, "approve with the virtual number", "vcn-approve", f.order, f.card, f.amount, f.aav, f.resp.AuthResults)
					if err != nil {
						return err
					}
					n, err := c.approved(x)
					if err != nil {
						return err
					}
					f.approval = n
					c.caVoid(f.order, n)
					return nil
				}},
			{ID: "vcn.single-use", Title: "A second approval with the single-use virtual number (another order, no AAV) is refused: Responder / Declined",
				Clauses: []string{"KECIS §15.4"}, Service: svcApprove, Needs: []string{"vcn.approve"}, Run: func(c *C) error {
					f := getFlow(c, "vcn")
					order := c.OrderID("vcn-again")
					x, err := c.caApprove(nil, "approve again with the spent virtual number", "vcn-again", order, f.card, f.amount, "", nil)
					if err != nil {
						return err
					}
					return c.refusedAs(x, order, saml.CodeDeclined)
				}},
		},
	}
}
