package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The names of the bank page's inputs the suite types into
// (docs/conformance.md, "twoway"): the remitter's login form.
const (
	twFieldLogin    = "login"
	twFieldPassword = "password"
)

// balance reads an account's balance through the balance hook; ok is
// false without the hook.
func (c *C) balance(bankCode, account string) (m ecml.Money, ok bool, err error) {
	h := c.Profile.Hooks.Balance
	if h == nil {
		return ecml.Money{}, false, nil
	}
	body, _ := json.Marshal(map[string]string{"bank_code": bankCode, "account": account})
	b, err := c.hookCall(c.Context(), h, body)
	if err != nil {
		return ecml.Money{}, false, NeedsReview("the balance hook: %v", err)
	}
	var v struct{ Balance, Currency string }
	if err := json.Unmarshal(b, &v); err != nil {
		return ecml.Money{}, false, NeedsReview("the balance hook answered no JSON {balance, currency}")
	}
	m, err = ecml.ParseAmount(v.Balance, v.Currency)
	if err != nil {
		return ecml.Money{}, false, NeedsReview("the balance hook's balance %q: %v", v.Balance, err)
	}
	return m, true, nil
}

// twFlow is one 2-WAY request the suite made as requester and remitter.
type twFlow struct {
	label, order string
	amount       ecml.Money
	code         string
}

func twApplies(e *Env) (bool, string) {
	switch {
	case !e.Declares(svcTwoWayRequest):
		return false, "the participant declares no " + svcTwoWayRequest
	case e.Profile.TwoWay == nil:
		return false, "the profile has no twoway section (the remitter's login, the payee, the tester's HTTP-POST endpoint)"
	case e.Profile.Hooks.SMS == nil || e.Profile.Hooks.SMSReply == nil:
		return false, "the profile has no sms and sms_reply hooks (the payee's texts and replies)"
	}
	return true, ""
}

// texts are the texts phone received, through the sms hook.
func (c *C) texts(phone string) ([]string, error) {
	body, _ := json.Marshal(map[string]string{"phone": phone})
	b, err := c.hookCall(c.Context(), c.Profile.Hooks.SMS, body)
	if err != nil {
		return nil, NeedsReview("the sms hook: %v", err)
	}
	var v struct {
		Messages []struct{ From, Text string }
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, NeedsReview("the sms hook answered no JSON {messages: [{from, text}]}")
	}
	out := make([]string, len(v.Messages))
	for i, m := range v.Messages {
		out[i] = m.Text
	}
	return out, nil
}

// reply sends text from phone through the sms_reply hook.
func (c *C) reply(from, text string) error {
	body, _ := json.Marshal(map[string]string{"from": from, "text": text})
	if err := c.callHook(c.Context(), c.Profile.Hooks.SMSReply, body); err != nil {
		return NeedsReview("the sms_reply hook: %v", err)
	}
	return nil
}

// codeRE finds a code of six digits standing alone (KECIS §15.5.2).
var codeRE = regexp.MustCompile(`(^|[^0-9,.\-*])([0-9]{6})($|[^0-9,.\-*])`)

// twStart requests a 2-WAY transfer of amount over HTTP-POST as the
// requester, logs in and confirms as the remitter, reads the answer the
// page posts back, and learns the code texted to the payee.
func (c *C) twStart(label string, amount ecml.Money) (*twFlow, error) {
	tw := c.Profile.TwoWay
	f := &twFlow{label: label, order: c.OrderID(label), amount: amount}
	before, err := c.texts(tw.Payee.Phone)
	if err != nil {
		return nil, err
	}
	req, err := c.newFrontRequest(svcTwoWayRequest)
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(amount)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = c.Key(label)
	bill := &ecml.Address{Telecom: &ecml.Telecom{Phone: &ecml.Phone{Number: tw.Payee.Phone}}}
	if tw.Payee.Name != "" {
		bill.Postal = &ecml.Postal{Name: phoneName(tw.Payee.Name)}
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: f.order,
		Transaction: &ecml.Transaction{Amount: a, Currency: amount.Currency}, BillTo: bill},
		BankAccounts: []*ecml.BankAccount{{BankCode: tw.Payee.BankCode, Role: "payee", AccountNumber: ecml.Secret(tw.Payee.Account)}},
		Transfer:     &ecml.Transfer{Purpose: ecml.PurposePhishingPrevention}}
	b, err := c.newBrowser()
	if err != nil {
		return nil, err
	}
	p, err := c.caStart(b, req, c.caRelay(label), Seal{})
	if err != nil {
		return nil, err
	}
	lf := p.formWith(twFieldLogin)
	if lf == nil || !lf.has(twFieldPassword) {
		c.attachPage("the bank's page", p)
		return nil, fmt.Errorf("the bank's page (HTTP %d) shows no form with the inputs %s and %s", p.Status, twFieldLogin, twFieldPassword)
	}
	if p, err = b.submit(c.Context(), lf, map[string]string{twFieldLogin: tw.Login, twFieldPassword: tw.Password}); err != nil {
		return nil, err
	}
	for i := 0; i < 4; i++ {
		if f := p.formWith("SAMLResponse"); f != nil {
			break
		}
		var next *form
		for _, cand := range p.Forms {
			if strings.HasSuffix(cand.Action, "/confirm") {
				next = cand
			}
		}
		if next == nil {
			c.attachPage("the bank's page", p)
			return nil, fmt.Errorf("the bank's page (HTTP %d) after the login shows no form to /confirm and no answer to post back", p.Status)
		}
		if p, err = b.submit(c.Context(), next, nil); err != nil {
			return nil, err
		}
	}
	ans, err := p.answer()
	if err != nil {
		return nil, err
	}
	if ans == nil {
		c.attachPage("the bank's page", p)
		return nil, fmt.Errorf("the bank's page (HTTP %d) gave no answer to post back after the confirmation", p.Status)
	}
	c.Attach("SAMLResponse the page posts to "+ans.Action, "xml", ans.Message)
	resp, err := c.readFront(c.Context(), ans.Message)
	if err != nil {
		return nil, fmt.Errorf("the answer does not verify with the bank's keys from its metadata: %w", err)
	}
	var pr []string
	if resp.InResponseTo != req.ID {
		pr = append(pr, fmt.Sprintf("InResponseTo %q, not the request %q", resp.InResponseTo, req.ID))
	}
	if resp.Destination != tw.Endpoint || ans.Action != tw.Endpoint {
		pr = append(pr, fmt.Sprintf("posted to %q (Destination %q), not the tester's endpoint %q", ans.Action, resp.Destination, tw.Endpoint))
	}
	st := resp.Status
	if !(st.Code == saml.StatusResponder && st.SubCode == saml.CodePending) && !(st.OK() && twState(resp.Payload) == "awaiting-reply") {
		pr = append(pr, fmt.Sprintf("answered %s, state %q: once the code is texted the answer is Responder/Pending (or the state awaiting-reply)", describeStatus(st), twState(resp.Payload)))
	}
	if len(pr) > 0 {
		return nil, errors.New(strings.Join(pr, "; "))
	}
	after, err := c.texts(tw.Payee.Phone)
	if err != nil {
		return nil, err
	}
	if len(after) > len(before) {
		for _, t := range after[len(before):] {
			if m := codeRE.FindAllStringSubmatch(t, -1); len(m) > 0 {
				f.code = m[len(m)-1][2]
			}
		}
	}
	if f.code == "" {
		return nil, fmt.Errorf("the payee's phone received no text with a code of six digits (%d new texts)", len(after)-len(before))
	}
	c.redactText(f.code)
	return f, nil
}

func twState(pl *ecml.Payload) string {
	if pl == nil || pl.Ecom == nil || pl.Ecom.Transaction == nil || pl.Ecom.Transaction.Data == nil || pl.Ecom.Transaction.Data.Response == nil {
		return ""
	}
	return pl.Ecom.Transaction.Data.Response.Value
}

// twStatus asks twoway:status of f's order and returns the state and the
// reference.
func (c *C) twStatus(f *twFlow) (state, ref string, err error) {
	req, err := c.NewRequest(svcTwoWayStatus)
	if err != nil {
		return "", "", err
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: f.order}}
	x, err := c.Exchange(c.Context(), "status of "+f.label, ViaHub, req, Seal{})
	if err != nil {
		return "", "", err
	}
	c.Record(x)
	if err := c.answerOf(x); err != nil {
		return "", "", err
	}
	if !x.Response.Status.OK() {
		return "", "", fmt.Errorf("status of %s: %s", f.label, describeStatus(x.Response.Status))
	}
	pl := x.Response.Payload
	if t := pl; t != nil && t.Ecom != nil && t.Ecom.Transaction != nil && t.Ecom.Transaction.Code != nil {
		ref = t.Ecom.Transaction.Code.Approval
	}
	return twState(pl), ref, nil
}

// twAwait asks status until f's state is want, within the settle timeout.
func (c *C) twAwait(f *twFlow, want string) (string, string, error) {
	limit := time.Duration(c.Profile.Timeouts.Settle)
	if limit <= 0 {
		limit = 30 * time.Second
	}
	end := time.Now().Add(limit)
	for {
		st, ref, err := c.twStatus(f)
		if err != nil || st == want || time.Now().After(end) {
			return st, ref, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *C) twPayeeBalance() (ecml.Money, bool, error) {
	p := c.Profile.TwoWay.Payee
	return c.balance(p.BankCode, p.Account)
}

func getTW(c *C, key string) *twFlow {
	v, _ := c.Get(key)
	f, _ := v.(*twFlow)
	return f
}

// twoWayModule checks a bank's 2-WAY transfer as far as a black box
// allows (KECIS §15.5): the suite is the requester (HTTP-POST), the
// remitter (the bank's page) and, through the sms hooks, the payee.
func twoWayModule() *Module {
	return &Module{
		Name:  "twoway",
		Title: "2-WAY transfer",
		Description: "The suite requests a transfer (the profile's amount) over HTTP-POST, logs in and confirms as the remitter, and reads the code texted to the payee: nothing moves before the payee replies; a reply from another number does not count; " +
			"a second request of ten times the amount gets another code, and the first code confirms the first transfer only; the transfer executes once (a code used again moves nothing), and the second code confirms the second.",
		Applies: twApplies,
		Conditions: []*Condition{
			{ID: "twoway.request", Title: "A 2-WAY request over HTTP-POST: the remitter logs in and confirms, the bank posts a signed Responder / Pending answer to the tester's endpoint, and the payee is texted a code",
				Clauses: []string{"KECIS §15.5", "KECIS §15.5.1", "KECIS §10.2"}, Service: svcTwoWayRequest, Run: func(c *C) error {
					bal, has, err := c.twPayeeBalance()
					if err != nil {
						return err
					}
					c.Set("tw-balance", bal)
					c.Set("tw-has-balance", has)
					m, err := ecml.ParseAmount(c.Profile.TwoWay.Amount, c.Profile.TwoWay.Currency)
					if err != nil {
						return err
					}
					f, err := c.twStart("tw-a", m)
					if err != nil {
						return err
					}
					c.Set("tw-a", f)
					return nil
				}},
			{ID: "twoway.no-money-before-reply", Title: "Before the payee replies the transfer is awaiting-reply and no money has moved",
				Clauses: []string{"KECIS §15.5", "KECIS §15.5.1"}, Service: svcTwoWayStatus, Needs: []string{"twoway.request"}, Run: func(c *C) error {
					return c.twUnmoved(getTW(c, "tw-a"), 0)
				}},
			{ID: "twoway.other-number", Title: "The code replied from another number than the payee's does not confirm the transfer",
				Clauses: []string{"KECIS §15.5.2"}, Service: svcTwoWayStatus, Needs: []string{"twoway.no-money-before-reply"}, Run: func(c *C) error {
					f := getTW(c, "tw-a")
					if err := c.reply(c.Profile.TwoWay.OtherPhone, f.code); err != nil {
						return err
					}
					time.Sleep(time.Second)
					return c.twUnmoved(f, 0)
				}},
			{ID: "twoway.code-bound", Title: "A second request for ten times the amount gets another code, and the first transfer's code confirms the first transfer only",
				Clauses: []string{"KECIS §15.5.2"}, Service: svcTwoWayRequest, Needs: []string{"twoway.no-money-before-reply"}, Run: func(c *C) error {
					a := getTW(c, "tw-a")
					big := ecml.Money{Minor: a.amount.Minor * 10, Currency: a.amount.Currency}
					b, err := c.twStart("tw-b", big)
					if err != nil {
						return err
					}
					c.Set("tw-b", b)
					if b.code == a.code {
						return fmt.Errorf("the code texted for %s is the code texted for %s: it is not bound to the amount (nor drawn with a nonce)", big.Display(), a.amount.Display())
					}
					if err := c.reply(c.Profile.TwoWay.Payee.Phone, a.code); err != nil {
						return err
					}
					st, _, err := c.twAwait(a, "completed")
					if err != nil {
						return err
					}
					stB, _, err := c.twStatus(b)
					if err != nil {
						return err
					}
					if stB == "completed" {
						return fmt.Errorf("the code texted for %s confirmed the transfer of %s", a.amount.Display(), big.Display())
					}
					if st != "completed" {
						return fmt.Errorf("the payee replied with its code from its number, and the transfer is %q, not completed", st)
					}
					return nil
				}},
			{ID: "twoway.executed-once", Title: "The confirmed transfer is completed with a reference and moved its amount once; its code again moves nothing; the second code confirms the second transfer",
				Clauses: []string{"KECIS §15.5", "KECIS §15.5.1", "KECIS §15.5.2"}, Service: svcTwoWayStatus, Needs: []string{"twoway.code-bound"}, Run: func(c *C) error {
					a, b := getTW(c, "tw-a"), getTW(c, "tw-b")
					_, ref, err := c.twStatus(a)
					if err != nil {
						return err
					}
					if ref == "" {
						return errors.New("the completed transfer names no reference (Transaction/Code/@Approval)")
					}
					if err := c.twUnmovedBy(a.amount.Minor); err != nil {
						return err
					}
					if err := c.reply(c.Profile.TwoWay.Payee.Phone, a.code); err != nil {
						return err
					}
					if err := c.reply(c.Profile.TwoWay.Payee.Phone, b.code); err != nil {
						return err
					}
					st, _, err := c.twAwait(b, "completed")
					if err != nil {
						return err
					}
					if st != "completed" {
						return fmt.Errorf("the second transfer's own code from the payee's number left it %q", st)
					}
					return c.twUnmovedBy(a.amount.Minor + b.amount.Minor)
				}},
		},
	}
}

// twUnmoved checks f awaits the reply and the payee's balance moved by
// delta since the module began.
func (c *C) twUnmoved(f *twFlow, delta int64) error {
	st, _, err := c.twStatus(f)
	if err != nil {
		return err
	}
	if st != "awaiting-reply" {
		return fmt.Errorf("the transfer is %q before the payee's reply, not awaiting-reply", st)
	}
	return c.twUnmovedBy(delta)
}

// twUnmovedBy checks the payee's balance moved by delta since the module
// began (nothing to check without the balance hook).
func (c *C) twUnmovedBy(delta int64) error {
	if v, _ := c.Get("tw-has-balance"); v != true {
		c.Note("no balance hook: the payee's balance is not checked")
		return nil
	}
	v, _ := c.Get("tw-balance")
	before, _ := v.(ecml.Money)
	now, _, err := c.twPayeeBalance()
	if err != nil {
		return err
	}
	if d := now.Minor - before.Minor; d != delta {
		return fmt.Errorf("the payee's balance moved by %d, expected %d", d, delta)
	}
	return nil
}
