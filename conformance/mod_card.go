package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// approval is what a card service answer reports (the ECML mapping of the
// card service: Transaction/Code/@Approval, Transaction/@Amount and
// @Currency, Transaction/Data/Response the state, Transaction/Data/
// PrivateUse "refunded=<amount>").
type approval struct {
	Number   string
	Order    string
	State    string
	Amount   ecml.Money
	Refunded ecml.Money
}

func approvalOf(p *ecml.Payload) (*approval, error) {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil {
		return nil, errors.New("the answer carries no Ecom/Transaction")
	}
	t := p.Ecom.Transaction
	a := &approval{Order: p.Ecom.ConsumerOrderID}
	if t.Amount != "" {
		m, err := t.Money()
		if err != nil {
			return nil, fmt.Errorf("Transaction/@Amount %q %s: %v", t.Amount, t.Currency, err)
		}
		a.Amount = m
	}
	if t.Code != nil {
		a.Number = t.Code.Approval
	}
	if t.Data != nil {
		if t.Data.Response != nil {
			a.State = t.Data.Response.Value
		}
		if t.Data.PrivateUse != nil {
			if v, ok := strings.CutPrefix(t.Data.PrivateUse.Value, "refunded="); ok {
				if m, err := ecml.ParseAmount(v, a.Amount.Currency); err == nil {
					a.Refunded = m
				}
			}
		}
	}
	a.Refunded.Currency = a.Amount.Currency
	return a, nil
}

// cardOK checks x is the participant's Success with an approval payload.
func cardOK(c *C, x *Exchange) (*approval, error) {
	if err := c.answerOf(x); err != nil {
		return nil, err
	}
	st := x.Response.Status
	if !st.OK() {
		return nil, fmt.Errorf("refused: %s", describeStatus(st))
	}
	a, err := approvalOf(x.Response.Payload)
	if err != nil {
		return nil, err
	}
	c.Note("approval %s: %s, %s, refunded %s", a.Number, a.State, a.Amount, a.Refunded)
	return a, nil
}

type cardState struct {
	card     TestCard
	amount   ecml.Money
	order    string
	approval *approval
}

func (c *C) card() (TestCard, ecml.Money) {
	tc := c.Profile.Card.Approve
	m, _ := ecml.ParseAmount(tc.Amount, c.Profile.Card.Currency)
	return tc, m
}

func (c *C) approve(label string, route Route, tc TestCard, m ecml.Money) (*Exchange, error) {
	req, err := c.ApproveRequest(label, tc, m)
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), label, route, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}

func (c *C) cardRef(label, service, order, number string, amount *ecml.Money) (*Exchange, error) {
	key := ""
	if saml.IsMutation(service) {
		key = c.Key(label)
	}
	req, err := c.refRequest(service, key, order, number, amount)
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), label, ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}

func cardModule() *Module {
	return &Module{
		Name:  "card",
		Title: "Card service",
		Description: "The card service with the profile's test cards, through the hub: approve, a retry with the same idempotency key (the same approval, no second charge) and a changed retry (refused), inquire, void, " +
			"partial and full refunds and an over-refund (refused), the profile's declines with their codes, and inquire after a timeout.",
		Applies: func(e *Env) (bool, string) {
			if !e.Declares(svcApprove) {
				return false, "the participant declares no card service (" + svcApprove + ")"
			}
			if e.Profile.Card == nil {
				return false, "the profile has no card section (test cards)"
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "card.approve", Title: "The test card is approved: Success, an approval number, state approved, the amount asked",
				Clauses: []string{"KECIS §2.6", "KECIS §6.1", "RFC 4112 note 27"}, Service: svcApprove, Run: func(c *C) error {
					tc, m := c.card()
					x, err := c.approve("approve", ViaHub, tc, m)
					if err != nil {
						return err
					}
					a, err := cardOK(c, x)
					if err != nil {
						return err
					}
					c.Set("approve", &cardState{card: tc, amount: m, order: c.OrderID("approve"), approval: a})
					var p []string
					if a.Number == "" {
						p = append(p, "no approval number (Transaction/Code/@Approval)")
					}
					if a.Amount != m {
						p = append(p, fmt.Sprintf("approved %s, asked %s", a.Amount, m))
					}
					if a.State != "approved" {
						p = append(p, fmt.Sprintf("state %q, not approved", a.State))
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return nil
				}},
			{ID: "card.retry-same-key", Title: "A retry — a new message with the same idempotency key — gets the original approval, freshly signed",
				Clauses: []string{"KECIS §7.1"}, Service: svcApprove, Needs: []string{"card.approve"}, Run: func(c *C) error {
					st := getState(c, "approve")
					x, err := c.approve("approve", ViaHub, st.card, st.amount)
					if err != nil {
						return err
					}
					a, err := cardOK(c, x)
					if err != nil {
						return err
					}
					if a.Number != st.approval.Number {
						return fmt.Errorf("the retry got approval %q, the first attempt %q: a second charge", a.Number, st.approval.Number)
					}
					return nil
				}},
			{ID: "card.retry-changed", Title: "A retry with the same key and another amount is refused with Requester / IdempotencyConflict (sent directly: the hub's guard would refuse first)",
				Clauses: []string{"KECIS §7.1", "KECIS §6.2"}, Service: svcApprove, Needs: []string{"card.approve"}, Run: func(c *C) error {
					st := getState(c, "approve")
					changed := st.amount
					changed.Minor++
					x, err := c.approve("approve", Direct, st.card, changed)
					if err != nil {
						return err
					}
					return expectStatus(c, x, saml.StatusRequester, saml.CodeIdempotencyConflict)
				}},
			{ID: "card.inquire", Title: "Inquire by the merchant's order reports the approval: its number, state and amount",
				Clauses: []string{"KECIS §2.6", "KECIS §7.1"}, Service: svcInquire, Needs: []string{"card.approve"}, Run: func(c *C) error {
					st := getState(c, "approve")
					x, err := c.cardRef("inquire", svcInquire, st.order, "", nil)
					if err != nil {
						return err
					}
					a, err := cardOK(c, x)
					if err != nil {
						return err
					}
					if a.Number != st.approval.Number || a.State != "approved" || a.Amount != st.amount {
						return fmt.Errorf("inquire reports approval %q, %q, %s; expected %q, approved, %s", a.Number, a.State, a.Amount, st.approval.Number, st.amount)
					}
					return nil
				}},
			{ID: "card.void", Title: "A void before settlement cancels the approval",
				Clauses: []string{"KECIS §2.6", "KECIS §6.1"}, Service: svcCancel, Needs: []string{"card.approve"}, Run: func(c *C) error {
					st := getState(c, "approve")
					x, err := c.cardRef("void", svcCancel, st.order, st.approval.Number, nil)
					if err != nil {
						return err
					}
					a, err := cardOK(c, x)
					if err != nil {
						return err
					}
					if a.State != "cancelled" {
						return fmt.Errorf("state %q after a void, not cancelled", a.State)
					}
					return nil
				}},
			{ID: "card.refund-partial", Title: "A partial refund of a (settled) approval: Success, state partially-refunded, the amount refunded",
				Clauses: []string{"KECIS §2.6", "KECIS §6.1"}, Service: svcRefund, Run: refundPartial},
			{ID: "card.refund-rest", Title: "Refunding the rest: Success, state refunded",
				Clauses: []string{"KECIS §2.6", "KECIS §6.1"}, Service: svcRefund, Needs: []string{"card.refund-partial"}, Run: func(c *C) error {
					st := getState(c, "refund")
					rest := st.amount
					rest.Minor -= st.amount.Minor / 2
					x, err := c.cardRef("refund-rest", svcRefund, st.order, st.approval.Number, &rest)
					if err != nil {
						return err
					}
					a, err := cardOK(c, x)
					if err != nil {
						return err
					}
					if a.State != "refunded" || a.Refunded != st.amount {
						return fmt.Errorf("after refunding everything: state %q, refunded %s (expected refunded, %s)", a.State, a.Refunded, st.amount)
					}
					return nil
				}},
			{ID: "card.over-refund", Title: "A refund above what was approved is refused (Responder / LimitExceeded)",
				Clauses: []string{"KECIS §6.2", "KECIS §2.6"}, Service: svcRefund, Needs: []string{"card.refund-rest"}, Run: func(c *C) error {
					st := getState(c, "refund")
					one := ecml.Money{Minor: 1, Currency: st.amount.Currency}
					x, err := c.cardRef("over-refund", svcRefund, st.order, st.approval.Number, &one)
					if err != nil {
						return err
					}
					if err := c.answerOf(x); err != nil {
						return err
					}
					s := x.Response.Status
					switch {
					case s.OK():
						return fmt.Errorf("refunded %s more than was approved: %s", one, describeStatus(s))
					case s.SubCode != saml.CodeLimitExceeded:
						return Warn("refused, with %s rather than LimitExceeded", describeStatus(s))
					}
					return nil
				}},
			{ID: "card.declines", Title: "Each decline card of the profile is refused with its expected code",
				Clauses: []string{"KECIS §6.2", "KECIS §6.1"}, Service: svcApprove, Run: func(c *C) error {
					ds := c.Profile.Card.Declines
					if len(ds) == 0 {
						return Skip("the profile lists no decline cards")
					}
					var errs []error
					for i, tc := range ds {
						m, _ := ecml.ParseAmount(tc.Amount, c.Profile.Card.Currency)
						x, err := c.approve(fmt.Sprintf("decline-%d", i+1), ViaHub, tc, m)
						if err != nil {
							return err
						}
						name := tc.Name
						if name == "" {
							name = fmt.Sprintf("decline %d", i+1)
						}
						if err := c.answerOf(x); err != nil {
							errs = append(errs, fmt.Errorf("%s: %w", name, err))
							continue
						}
						s := x.Response.Status
						if s.OK() || s.SubCode != tc.expectCode() {
							errs = append(errs, fmt.Errorf("%s: answered %s, expected %s", name, describeStatus(s), saml.StatusName(tc.expectCode())))
						} else {
							c.Note("%s: %s", name, describeStatus(s))
						}
					}
					return errors.Join(errs...)
				}},
			{ID: "card.inquire-after-timeout", Title: "After a timeout (the stall hook), inquire tells the truth and a same-key retry gets that approval, not a second one",
				Clauses: []string{"KECIS §7.1", "KECIS §10.3", "KECIS §6.2"}, Service: svcInquire, Run: inquireAfterTimeout},
		},
	}
}

func getState(c *C, key string) *cardState {
	v, _ := c.Get(key)
	st, _ := v.(*cardState)
	return st
}

func refundPartial(c *C) error {
	tc, m := c.card()
	x, err := c.approve("refund", ViaHub, tc, m)
	if err != nil {
		return err
	}
	a, err := cardOK(c, x)
	if err != nil {
		return fmt.Errorf("approving what to refund: %w", err)
	}
	st := &cardState{card: tc, amount: m, order: c.OrderID("refund"), approval: a}
	if c.Profile.Card.SettleBeforeRefund {
		if c.Profile.Hooks.Settle == nil {
			return Skip("the profile says refunds need settlement (settle_before_refund) but names no settle hook")
		}
		if err := c.callHook(c.Context(), c.Profile.Hooks.Settle, []byte(`{"event":"settle"}`)); err != nil {
			return NeedsReview("the settle hook failed: %v", err)
		}
		c.Note("settled through the settle hook")
	}
	half := ecml.Money{Minor: m.Minor / 2, Currency: m.Currency}
	x, err = c.cardRef("refund-partial", svcRefund, st.order, a.Number, &half)
	if err != nil {
		return err
	}
	if x.Response != nil && x.Response.Status.SubCode == saml.CodePolicyViolation && !c.Profile.Card.SettleBeforeRefund {
		return NeedsReview("the refund was refused as a policy violation (%q): if refunds need settlement, set card.settle_before_refund and hooks.settle in the profile", x.Response.Status.Message)
	}
	r, err := cardOK(c, x)
	if err != nil {
		return err
	}
	c.Set("refund", st)
	if r.State != "partially-refunded" || r.Refunded != half {
		return fmt.Errorf("after refunding %s of %s: state %q, refunded %s (expected partially-refunded, %s)", half, m, r.State, r.Refunded, half)
	}
	return nil
}

func inquireAfterTimeout(c *C) error {
	if !c.Declares(svcApprove) {
		return Skip("the participant declares no %s", svcApprove)
	}
	h := c.Profile.Hooks.Stall
	if h == nil {
		return Skip("the profile names no stall hook")
	}
	stall := time.Duration(c.Profile.Timeouts.Stall)
	if stall == 0 {
		stall = 3 * time.Second
	}
	body, _ := json.Marshal(map[string]any{"service": svcApprove, "seconds": stall.Seconds()})
	if err := c.callHook(c.Context(), h, body); err != nil {
		return NeedsReview("the stall hook failed: %v", err)
	}
	tc, m := c.card()
	req, err := c.ApproveRequest("timeout", tc, m)
	if err != nil {
		return err
	}
	msg, err := c.Sealed(req, Seal{})
	if err != nil {
		return err
	}
	ctx := c.Context()
	if c.Hub == nil {
		// Without a hub the suite itself gives up, as a client would.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stall/2)
		defer cancel()
	}
	x := c.Send(ctx, "approve that times out", ViaHub, req.Service, req.ID, msg)
	c.Record(x)
	switch {
	case x.Response != nil && c.Hub != nil && x.Response.Issuer == c.Hub.EntityID && x.Response.Status.SubCode == saml.CodePending:
		c.Note("the hub answered Pending")
	case x.TransportErr != nil && c.Hub == nil:
		c.Note("the suite stopped waiting after %s", stall/2)
	case x.Response != nil && x.Response.Issuer == c.Descriptor().EntityID:
		c.Note("the participant answered in time (%s): the stall was shorter than the hub's relay timeout", describeStatus(x.Response.Status))
	default:
		return fmt.Errorf("after the stall: %s (expected the hub's Pending)", x.Describe())
	}
	wait := time.Duration(c.Profile.Timeouts.Settle)
	if wait == 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	var last *Exchange
	for time.Now().Before(deadline) {
		q, err := c.refRequest(svcInquire, "", c.OrderID("timeout"), "", nil)
		if err != nil {
			return err
		}
		last, err = c.Exchange(c.Context(), "inquire after the timeout", ViaHub, q, Seal{})
		if err != nil {
			return err
		}
		if last.Response != nil && last.Response.Status.OK() {
			break
		}
		select {
		case <-c.Context().Done():
			return c.Context().Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	c.Record(last)
	a, err := cardOK(c, last)
	if err != nil {
		return fmt.Errorf("within %s of the timeout, inquire did not report the approval: %w", wait, err)
	}
	if a.State != "approved" || a.Amount != m {
		return fmt.Errorf("inquire reports %q for %s; expected approved for %s", a.State, a.Amount, m)
	}
	retry, err := c.approve("timeout", ViaHub, tc, m)
	if err != nil {
		return err
	}
	r, err := cardOK(c, retry)
	if err != nil {
		return fmt.Errorf("the same-key retry after the timeout: %w", err)
	}
	if r.Number != a.Number {
		return fmt.Errorf("the same-key retry got approval %q, inquire reported %q: a second charge", r.Number, a.Number)
	}
	return nil
}
