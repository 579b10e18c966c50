package conformance

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Escrow and collect service URIs (KECIS §15.6, §15.8; connectors/escrow
// names them too, the suite keeps its own copy to test banks as black
// boxes).
var (
	svcEscrowOpen   = saml.ServiceURI("escrow", "open")
	svcEscrowShip   = saml.ServiceURI("escrow", "ship")
	svcEscrowRefund = saml.ServiceURI("escrow", "refund")
	svcEscrowStatus = saml.ServiceURI("escrow", "status")
	svcEscrowPay    = saml.ServiceURI("escrow", "pay")
	svcCollect      = saml.ServiceURI("transfer", "collect")
)

// escrowNoSuch is the message of the answer to an unknown escrow — and to
// another merchant's (KECIS §15.6, §13.3).
const escrowNoSuch = "no such escrow"

// The buyer page as the suite drives it (docs/conformance.md, "escrow"):
// the entry takes the reference in the input `reference`; the login form
// is the 2-WAY page's (twFieldLogin, twFieldPassword); the pay form has a
// select `account` and posts to an action ending in /pay; the buyer's
// confirmation is a form posting to an action ending in /confirm.
const (
	esFieldReference = "reference"
	esFieldAccount   = "account"
	esActionPay      = "/pay"
	esActionConfirm  = "/confirm"
)

// The escrow states the module sees (KECIS §15.6).
const (
	esAwaitingPayment = "awaiting-payment"
	esFunded          = "funded"
	esShipped         = "shipped"
	esConfirmed       = "confirmed"
	esRefunded        = "refunded"
	esPaid            = "paid"
)

// The shipment the module ships with.
const (
	esCarrier  = "KECIS Conformance Logistics"
	esTracking = "CONF-TRACK-0001"
)

// esFlow is one escrow (or collect payment) the module opened as merchant.
type esFlow struct {
	label, order, ref string
	amount            ecml.Money
	collect           bool
}

// esView is what an answer says of an escrow.
type esView struct {
	order, ref, state string
	amount            ecml.Money
	escrow            *ecml.Escrow
}

func escrowApplies(e *Env) (bool, string) {
	switch {
	case !e.Declares(svcEscrowOpen) && !e.Declares(svcCollect):
		return false, "the participant declares neither " + svcEscrowOpen + " nor " + svcCollect + ": it offers no escrow"
	case e.Profile.Escrow == nil:
		return false, "the profile has no escrow section (the buyer's login and account, the settlement account)"
	}
	return true, ""
}

func getES(c *C, key string) *esFlow {
	v, _ := c.Get(key)
	f, _ := v.(*esFlow)
	return f
}

func (c *C) esAmount(collect bool) ecml.Money {
	e := c.Profile.Escrow
	s := e.Amount
	if collect {
		s = e.CollectAmount
	}
	m, _ := ecml.ParseAmount(s, e.Currency)
	return m
}

// esOpenRequest is an escrow:open (or transfer:collect) of f from identity
// id under key: shipped goods, the profile's settlement account encrypted
// for the bank (KECIS §15.6).
func (c *C) esOpenRequest(id *Tester, f *esFlow, key string) (*saml.ServiceRequest, error) {
	e := c.Profile.Escrow
	svc := svcEscrowOpen
	if f.collect {
		svc = svcCollect
	}
	req, err := c.NewRequestAs(id, svc)
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(f.amount)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = key
	req.Routing = &saml.Routing{BankCode: e.BankCode}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: f.order,
		Transaction: &ecml.Transaction{Amount: a, Currency: f.amount.Currency},
		ShipTo: &ecml.Address{Postal: &ecml.Postal{Name: &ecml.Name{Last: "KECIS", First: "Conformance"}, CountryCode: "KR",
			Street: &ecml.Street{Line1: "1 Test-ro"}, City: &ecml.Text{Value: "Seoul"}, PostalCode: "04524"}}},
		BankAccounts: []*ecml.BankAccount{{BankCode: e.Settlement.BankCode, Role: "settlement", AccountNumber: ecml.Secret(e.Settlement.Account)}}}
	return req, nil
}

// esOpen opens f as the tester (through the hub) under key.
func (c *C) esOpen(what string, f *esFlow, key string) (*Exchange, error) {
	req, err := c.esOpenRequest(c.Tester, f, key)
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

// esCall sends service (ship, refund, status) naming the escrow by
// reference and/or order, from identity id: the tester through the hub,
// another identity directly. ship adds the shipment.
func (c *C) esCall(id *Tester, what, service, key, ref, order string) (*Exchange, error) {
	req, err := c.NewRequestAs(id, service)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = key
	req.Routing = &saml.Routing{BankCode: c.Profile.Escrow.BankCode}
	e := &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order}
	if ref != "" {
		e.Transaction = &ecml.Transaction{Code: &ecml.Code{Approval: ref}}
	}
	req.Payload = &ecml.Payload{Ecom: e}
	if service == svcEscrowShip {
		req.Payload.Escrow = &ecml.Escrow{State: esShipped, Carrier: esCarrier, Tracking: esTracking}
	}
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
	return x, nil
}

// esRead checks x is a Success answer about f and returns what it says.
func (c *C) esRead(x *Exchange, f *esFlow) (*esView, error) {
	if err := c.answerOf(x); err != nil {
		return nil, err
	}
	if st := x.Response.Status; !st.OK() {
		return nil, fmt.Errorf("%s: refused: %s", x.Label, describeStatus(st))
	}
	pl := x.Response.Payload
	if pl == nil || pl.Ecom == nil || pl.Ecom.Transaction == nil {
		return nil, fmt.Errorf("%s: Success without Ecom/Transaction", x.Label)
	}
	t := pl.Ecom.Transaction
	v := &esView{order: pl.Ecom.ConsumerOrderID, state: twState(pl), escrow: pl.Escrow}
	if t.Code != nil {
		v.ref = t.Code.Approval
	}
	var p []string
	if v.ref == "" {
		p = append(p, "no reference (Transaction/Code/@Approval)")
	} else if f.ref != "" && v.ref != f.ref {
		p = append(p, fmt.Sprintf("the reference is %q, the escrow's is %q", v.ref, f.ref))
	}
	if v.order != f.order {
		p = append(p, fmt.Sprintf("the order is %q, not %q", v.order, f.order))
	}
	if m, err := t.Money(); err != nil || m != f.amount {
		p = append(p, fmt.Sprintf("the amount is %s %s, not %s", t.Amount, t.Currency, f.amount))
	} else {
		v.amount = m
	}
	if v.state == "" {
		p = append(p, "no state (Transaction/Data/Response)")
	}
	if !f.collect {
		switch {
		case v.escrow == nil:
			p = append(p, "no kx:Escrow")
		case v.escrow.State != v.state:
			p = append(p, fmt.Sprintf("kx:Escrow/@State %q is not the state %q of Transaction/Data/Response", v.escrow.State, v.state))
		}
	}
	if err := c.esNoAccountNumber(x); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("%s: %s", x.Label, strings.Join(p, "; "))
	}
	return v, nil
}

// esNoAccountNumber checks an answer names neither the settlement account
// nor the buyer's (masked at most, KECIS §15.6): no kx:AccountNumber,
// clear or encrypted, and neither number's digits in the message.
func (c *C) esNoAccountNumber(x *Exchange) error {
	e := c.Profile.Escrow
	if pl := x.Response.Payload; pl != nil {
		for _, ba := range pl.BankAccounts {
			if ba.AccountNumber != "" || ba.EncryptedAccountNumber != nil {
				return fmt.Errorf("the answer carries a kx:AccountNumber (Role %q): no answer names an account number", ba.Role)
			}
		}
	}
	flat := strings.ReplaceAll(string(x.Message), "-", "")
	for _, n := range []struct{ what, number string }{{"the settlement account", e.Settlement.Account}, {"the buyer's account", e.Buyer.Account}} {
		if d, ok := ecml.AccountDigits(n.number); ok && containsNumber(flat, d) {
			return fmt.Errorf("the answer names %s's number", n.what)
		}
	}
	return nil
}

// esStatus asks escrow:status of f by its reference and reads the answer.
func (c *C) esStatus(f *esFlow) (*esView, error) {
	x, err := c.esCall(c.Tester, "status of "+f.label, svcEscrowStatus, "", f.ref, "")
	if err != nil {
		return nil, err
	}
	return c.esRead(x, f)
}

// esAwait asks status until f's state is want, within the settle timeout.
func (c *C) esAwait(f *esFlow, want string) (*esView, error) {
	limit := time.Duration(c.Profile.Timeouts.Settle)
	if limit <= 0 {
		limit = 30 * time.Second
	}
	end := time.Now().Add(limit)
	for {
		v, err := c.esStatus(f)
		if err != nil || v.state == want || time.Now().After(end) {
			return v, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// esExpectState checks f's status is want.
func (c *C) esExpectState(f *esFlow, want, why string) error {
	v, err := c.esStatus(f)
	if err != nil {
		return err
	}
	if v.state != want {
		return fmt.Errorf("escrow:status says %q, not %s %s", v.state, want, why)
	}
	return nil
}

// esRefused checks x is the refusal code/sub, and f's state is still
// want.
func (c *C) esRefused(x *Exchange, f *esFlow, code, sub, want string) error {
	if err := expectStatus(c, x, code, sub); err != nil {
		return fmt.Errorf("%s: %w", x.Label, err)
	}
	return c.esExpectState(f, want, "after the refusal")
}

// esBalances reads the settlement's and the buyer's balances through the
// balance hook; ok is false without the hook.
func (c *C) esBalances() (settlement, buyer ecml.Money, ok bool, err error) {
	e := c.Profile.Escrow
	if settlement, ok, err = c.balance(e.Settlement.BankCode, e.Settlement.Account); err != nil || !ok {
		return
	}
	buyer, _, err = c.balance(e.BankCode, e.Buyer.Account)
	return
}

// esMoved checks the balances moved by (settlement, buyer) since the
// balances kept under key; nothing to check without the hook.
func (c *C) esMoved(key string, settlement, buyer int64) error {
	v, ok := c.Get(key)
	if !ok {
		c.Note("no balance hook: the settlement's and the buyer's balances are not checked")
		return nil
	}
	before := v.([2]ecml.Money)
	s, b, _, err := c.esBalances()
	if err != nil {
		return err
	}
	c.Note("balances (the balance hook): the settlement account %s → %s (expected %+d), the buyer's %s → %s (expected %+d)",
		before[0].Display(), s.Display(), settlement, before[1].Display(), b.Display(), buyer)
	var p []string
	if d := s.Minor - before[0].Minor; d != settlement {
		p = append(p, fmt.Sprintf("the settlement account's balance moved by %d, expected %d", d, settlement))
	}
	if d := b.Minor - before[1].Minor; d != buyer {
		p = append(p, fmt.Sprintf("the buyer's balance moved by %d, expected %d", d, buyer))
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// esKeepBalances keeps the balances under key (when the hook is there).
func (c *C) esKeepBalances(key string) error {
	s, b, ok, err := c.esBalances()
	if err != nil || !ok {
		return err
	}
	c.Set(key, [2]ecml.Money{s, b})
	return nil
}

// esBrowser is the buyer's browser, one for the module (logged in once).
func (c *C) esBrowser() (*browser, error) {
	if v, ok := c.Get("es-browser"); ok {
		return v.(*browser), nil
	}
	b, err := c.newBrowser()
	if err != nil {
		return nil, err
	}
	c.Set("es-browser", b)
	return b, nil
}

// esPage opens f's page as the buyer: the reference posted to the bank's
// HTTP-POST endpoint for escrow:pay, the buyer's login typed when the page
// asks for it, and the reference posted again when the login led
// elsewhere. want reports whether a page is the one sought.
func (c *C) esPage(b *browser, f *esFlow, want func(*page) bool) (*page, error) {
	ep, err := c.FrontEndpoint(svcEscrowPay)
	if err != nil {
		return nil, err
	}
	e := c.Profile.Escrow
	entry := url.Values{esFieldReference: {f.ref}}
	p, err := b.post(c.Context(), ep, entry)
	if err != nil {
		return nil, err
	}
	if lf := p.formWith(twFieldLogin); lf != nil && lf.has(twFieldPassword) {
		if p, err = b.submit(c.Context(), lf, map[string]string{twFieldLogin: e.Buyer.Login, twFieldPassword: e.Buyer.Password}); err != nil {
			return nil, err
		}
		if lf := p.formWith(twFieldLogin); lf != nil && lf.has(twFieldPassword) {
			c.attachPage("the bank's page after the login", p)
			return nil, fmt.Errorf("the bank's page (HTTP %d) asks for the login again: it refused the profile's buyer", p.Status)
		}
		if !want(p) {
			if p, err = b.post(c.Context(), ep, entry); err != nil {
				return nil, err
			}
		}
	}
	if !want(p) {
		c.attachPage("the bank's page", p)
	}
	return p, nil
}

// formAction returns the page's first form whose action ends in suffix.
func (p *page) formAction(suffix string) *form {
	for _, f := range p.Forms {
		u, err := url.Parse(f.Action)
		if err == nil && strings.HasSuffix(u.Path, suffix) {
			return f
		}
	}
	return nil
}

// pickAccount returns the value of the select's option that is account:
// its value's digits, or its text or value showing the masked number.
func pickAccount(f *form, account string) (string, bool) {
	d, _ := ecml.AccountDigits(account)
	mask := ecml.MaskAccount(account)
	for _, o := range f.Options[esFieldAccount] {
		if od, ok := ecml.AccountDigits(o.Value); ok && od == d {
			return o.Value, true
		}
		if strings.Contains(o.Text, mask) || strings.Contains(o.Value, mask) {
			return o.Value, true
		}
	}
	return "", false
}

// esPay pays f on the page as the buyer from the profile's account; the
// page must show the amount.
func (c *C) esPay(f *esFlow) error {
	b, err := c.esBrowser()
	if err != nil {
		return err
	}
	isPay := func(p *page) bool { return p.formAction(esActionPay) != nil }
	p, err := c.esPage(b, f, isPay)
	if err != nil {
		return err
	}
	pf := p.formAction(esActionPay)
	if pf == nil || !pf.has(esFieldAccount) {
		return fmt.Errorf("the bank's page (HTTP %d) shows no form posting to …%s with the input %s", p.Status, esActionPay, esFieldAccount)
	}
	text := p.text()
	if !strings.Contains(text, f.amount.Grouped()) && !strings.Contains(text, f.amount.Display()) {
		c.attachPage("the pay page", p)
		return fmt.Errorf("the pay page does not show the amount %s", f.amount.Display())
	}
	acct, ok := pickAccount(pf, c.Profile.Escrow.Buyer.Account)
	if !ok {
		c.attachPage("the pay page", p)
		return fmt.Errorf("the pay page offers no account shown as %s (the profile's buyer account) among %d", ecml.MaskAccount(c.Profile.Escrow.Buyer.Account), len(pf.Options[esFieldAccount]))
	}
	r, err := b.submit(c.Context(), pf, map[string]string{esFieldAccount: acct})
	if err != nil {
		return err
	}
	if r.Status/100 != 2 {
		c.attachPage("the page after paying", r)
		return fmt.Errorf("paying answered HTTP %d", r.Status)
	}
	return nil
}

// esConfirm confirms f's receipt on the page as the buyer.
func (c *C) esConfirm(f *esFlow) error {
	b, err := c.esBrowser()
	if err != nil {
		return err
	}
	isConfirm := func(p *page) bool { return p.formAction(esActionConfirm) != nil }
	p, err := c.esPage(b, f, isConfirm)
	if err != nil {
		return err
	}
	cf := p.formAction(esActionConfirm)
	if cf == nil {
		return fmt.Errorf("the bank's page (HTTP %d) shows the buyer who paid no form posting to …%s", p.Status, esActionConfirm)
	}
	r, err := b.submit(c.Context(), cf, nil)
	if err != nil {
		return err
	}
	if r.Status/100 != 2 {
		c.attachPage("the page after confirming", r)
		return fmt.Errorf("confirming answered HTTP %d", r.Status)
	}
	return nil
}

// esOpened opens a new escrow (or collect payment) for label and reads
// the answer: awaiting-payment, a reference, no account number.
func (c *C) esOpened(label string, collect bool) (*esFlow, error) {
	f := &esFlow{label: label, order: c.OrderID(label), amount: c.esAmount(collect), collect: collect}
	what := "open " + label
	if collect {
		what = "collect " + label
	}
	x, err := c.esOpen(what, f, c.Key(label))
	if err != nil {
		return nil, err
	}
	v, err := c.esRead(x, f)
	if err != nil {
		return nil, err
	}
	if v.state != esAwaitingPayment {
		return nil, fmt.Errorf("%s: the state is %q, not %s", what, v.state, esAwaitingPayment)
	}
	f.ref = v.ref
	c.Set(label, f)
	return f, nil
}

// esOtherSees asks, as the second identity, what it is told of f by
// reference and by order, and ships and refunds it: each must be exactly
// the answer to an unknown escrow (control).
func (c *C) esOtherSees(f *esFlow, control *Exchange) []string {
	var p []string
	calls := []struct{ what, service, key, ref, order string }{
		{"the second identity's status of the tester's escrow by reference", svcEscrowStatus, "", f.ref, ""},
		{"the second identity's status of the tester's escrow by order", svcEscrowStatus, "", "", f.order},
		{"the second identity ships the tester's escrow", svcEscrowShip, c.Key("es-other-ship"), f.ref, ""},
		{"the second identity refunds the tester's escrow", svcEscrowRefund, c.Key("es-other-refund"), f.ref, f.order},
	}
	for _, k := range calls {
		if !c.Declares(k.service) {
			continue
		}
		x, err := c.esCall(c.Second, k.what, k.service, k.key, k.ref, k.order)
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		if x.Response == nil {
			p = append(p, fmt.Sprintf("%s: no verified answer: %s", k.what, x.Describe()))
			continue
		}
		a, b := control.Response.Status, x.Response.Status
		if a.Code != b.Code || a.SubCode != b.SubCode || a.Message != b.Message || x.Response.Payload != nil {
			p = append(p, fmt.Sprintf("%s: answered %s; an unknown escrow gets %s — another merchant's escrow must get exactly that answer", k.what, describeStatus(b), describeStatus(a)))
		}
	}
	return p
}

// escrowModule checks a bank's escrow (KECIS §15.6) and collect payment
// (KECIS §15.8): the suite is the merchant (the tester, in test mode) and,
// on the bank's buyer page, the profile's buyer.
func escrowModule() *Module {
	return &Module{
		Name:  "escrow",
		Title: "Escrow and collect payments",
		Description: "The tester, as a merchant, opens an escrow for shipped goods (awaiting-payment, a reference, no account number); a retry answers the same reference; another merchant is told \"no such escrow\"; shipping before payment is a PolicyViolation; " +
			"the buyer pays on the bank's page (funded), the tester ships (shipped with the carrier, tracking number and confirm-by deadline — not confirmed, the money held), the buyer confirms on the page (confirmed, the money released), and a refund afterwards is refused; " +
			"a second escrow refunded before shipping gives the buyer the money back; a small transfer:collect is paid straight on.",
		Applies: escrowApplies,
		Conditions: []*Condition{
			{ID: "escrow.open", Title: "escrow:open for shipped goods answers Success: awaiting-payment, the bank's reference, the order and the amount, kx:Escrow — and no account number",
				Clauses: []string{"KECIS §15.6.1", "KECIS §15.6", "KECIS §8.1"}, Service: svcEscrowOpen, Run: func(c *C) error {
					if err := c.esKeepBalances("es-a-balances"); err != nil {
						return err
					}
					_, err := c.esOpened("es-a", false)
					return err
				}},
			{ID: "escrow.open-retry", Title: "The same escrow:open again under its idempotency key answers the same reference",
				Clauses: []string{"KECIS §7.1", "KECIS §15.6.1"}, Service: svcEscrowOpen, Needs: []string{"escrow.open"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					x, err := c.esOpen("the same open again", f, c.Key(f.label))
					if err != nil {
						return err
					}
					v, err := c.esRead(x, &esFlow{label: f.label, order: f.order, amount: f.amount})
					if err != nil {
						return err
					}
					if v.ref != f.ref {
						return fmt.Errorf("the retry answers the reference %q, the first open %q: one key, one escrow", v.ref, f.ref)
					}
					return c.esExpectState(f, esAwaitingPayment, "after the retry")
				}},
			{ID: "escrow.status", Title: "escrow:status of the tester's own escrow answers its state, awaiting-payment, with the reference, order and amount",
				Clauses: []string{"KECIS §15.6.1"}, Service: svcEscrowStatus, Needs: []string{"escrow.open"}, Run: func(c *C) error {
					return c.esExpectState(getES(c, "es-a"), esAwaitingPayment, "before payment")
				}},
			{ID: "escrow.other-merchant", Title: "Another merchant asking the status of the tester's escrow (by reference, by order), shipping or refunding it gets exactly the answer an unknown escrow gets (Requester / Declined \"no such escrow\"), and the escrow is unchanged",
				Clauses: []string{"KECIS §13.3", "KECIS §15.6.6"}, Service: svcEscrowStatus, Needs: []string{"escrow.open"}, Run: func(c *C) error {
					if c.Second == nil {
						return Skip("the profile has no second identity")
					}
					f := getES(c, "es-a")
					control, err := c.esCall(c.Second, "the second identity's status of an unknown escrow", svcEscrowStatus, "", "", c.OrderID("es-never-opened"))
					if err != nil {
						return err
					}
					if control.Response != nil && control.Response.Status.SubCode == saml.StatusRequestDenied {
						return Skip("the participant does not admit the second identity as a caller of %s (KECIS §13.2): whose escrow it is cannot be checked with it", svcEscrowStatus)
					}
					if err := expectStatus(c, control, saml.StatusRequester, saml.CodeDeclined); err != nil {
						return fmt.Errorf("an unknown escrow: %w", err)
					}
					if msg := control.Response.Status.Message; !strings.EqualFold(msg, escrowNoSuch) {
						return fmt.Errorf("an unknown escrow: the message is %q; KECIS §15.6 says %q", msg, escrowNoSuch)
					}
					p := c.esOtherSees(f, control)
					if err := c.esExpectState(f, esAwaitingPayment, "after another merchant's calls"); err != nil {
						p = append(p, err.Error())
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					return nil
				}},
			{ID: "escrow.ship-before-payment", Title: "Shipping an escrow before the buyer paid answers Requester / PolicyViolation, and it stays awaiting-payment",
				Clauses: []string{"KECIS §15.6.6", "KECIS §15.6.2", "KECIS §6.2"}, Service: svcEscrowShip, Needs: []string{"escrow.open"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					x, err := c.esCall(c.Tester, "ship before payment", svcEscrowShip, c.Key("es-a-ship-early"), f.ref, "")
					if err != nil {
						return err
					}
					return c.esRefused(x, f, saml.StatusRequester, saml.CodePolicyViolation, esAwaitingPayment)
				}},
			{ID: "escrow.pay", Title: "The buyer pays on the bank's page (the reference posted to its escrow:pay endpoint, login, the buyer's account chosen): the escrow is funded, the buyer debited, the settlement account unmoved",
				Clauses: []string{"KECIS §15.6.3", "KECIS §10.2"}, Service: svcEscrowStatus, Needs: []string{"escrow.open"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					if err := c.esPay(f); err != nil {
						return err
					}
					v, err := c.esAwait(f, esFunded)
					if err != nil {
						return err
					}
					if v.state != esFunded {
						return fmt.Errorf("after the buyer paid the escrow is %q, not %s", v.state, esFunded)
					}
					return c.esMoved("es-a-balances", 0, -f.amount.Minor)
				}},
			{ID: "escrow.ship", Title: "escrow:ship answers shipped with the carrier, the tracking number and a confirm-by deadline — not confirmed: the bank releases nothing without the buyer's confirmation",
				Clauses: []string{"KECIS §15.6.1", "KECIS §15.6.2", "KECIS §15.6.4", "KECIS §14.5"}, Service: svcEscrowShip, Needs: []string{"escrow.pay"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					x, err := c.esCall(c.Tester, "ship", svcEscrowShip, c.Key("es-a-ship"), f.ref, "")
					if err != nil {
						return err
					}
					v, err := c.esRead(x, f)
					if err != nil {
						return err
					}
					released := func(state string) error {
						return fmt.Errorf("funds released without the buyer's confirmation: escrow:ship left the escrow %q, not %s", state, esShipped)
					}
					if v.state != esShipped {
						return released(v.state)
					}
					var p []string
					if v.escrow.Carrier != esCarrier || v.escrow.Tracking != esTracking {
						p = append(p, fmt.Sprintf("kx:Escrow names the carrier %q and tracking %q, not the shipment's %q, %q", v.escrow.Carrier, v.escrow.Tracking, esCarrier, esTracking))
					}
					if by, err := time.Parse(time.RFC3339, v.escrow.ConfirmBy); err != nil {
						p = append(p, fmt.Sprintf("kx:Escrow/@ConfirmBy %q is no xs:dateTime deadline", v.escrow.ConfirmBy))
					} else if !by.After(c.Now()) {
						p = append(p, fmt.Sprintf("the confirm-by deadline %s is not ahead", v.escrow.ConfirmBy))
					}
					if v.escrow.Auto == "true" {
						p = append(p, "kx:Escrow/@Auto is true on a shipment")
					}
					if len(p) > 0 {
						return errors.New(strings.Join(p, "; "))
					}
					s, err := c.esStatus(f)
					if err != nil {
						return err
					}
					if s.state != esShipped {
						return released(s.state)
					}
					return nil
				}},
			{ID: "escrow.held", Title: "Until the buyer confirms, the money is held: after payment and shipping the settlement account has not moved (the balance hook)",
				Clauses: []string{"KECIS §15.6.5", "KECIS §15.6.2"}, Service: svcEscrowShip, Needs: []string{"escrow.pay"}, Run: func(c *C) error {
					if _, ok := c.Get("es-a-balances"); !ok {
						return Skip("the profile has no balance hook")
					}
					if err := c.esMoved("es-a-balances", 0, -getES(c, "es-a").amount.Minor); err != nil {
						return fmt.Errorf("funds released without the buyer's confirmation: %w", err)
					}
					return nil
				}},
			{ID: "escrow.confirm", Title: "The buyer confirms receipt on the bank's page: the escrow is confirmed and the money released to the settlement account",
				Clauses: []string{"KECIS §15.6.3", "KECIS §15.6.5"}, Service: svcEscrowStatus, Needs: []string{"escrow.ship"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					if err := c.esConfirm(f); err != nil {
						return err
					}
					v, err := c.esAwait(f, esConfirmed)
					if err != nil {
						return err
					}
					if v.state != esConfirmed {
						return fmt.Errorf("after the buyer's confirmation the escrow is %q, not %s", v.state, esConfirmed)
					}
					if v.escrow.Auto == "true" {
						return errors.New("the buyer's confirmation is marked automatic (kx:Escrow/@Auto true)")
					}
					if _, ok := c.Get("es-a-balances"); !ok {
						return nil
					}
					// A release to another bank may be pending a while.
					end := time.Now().Add(time.Duration(max(c.Profile.Timeouts.Settle, Duration(5*time.Second))))
					for {
						err := c.esMoved("es-a-balances", f.amount.Minor, -f.amount.Minor)
						if err == nil || time.Now().After(end) {
							return err
						}
						time.Sleep(250 * time.Millisecond)
					}
				}},
			{ID: "escrow.refund-after-confirm", Title: "A refund of the confirmed escrow answers Requester / PolicyViolation, and it stays confirmed",
				Clauses: []string{"KECIS §15.6.6", "KECIS §6.2"}, Service: svcEscrowRefund, Needs: []string{"escrow.confirm"}, Run: func(c *C) error {
					f := getES(c, "es-a")
					x, err := c.esCall(c.Tester, "refund after confirmation", svcEscrowRefund, c.Key("es-a-refund"), f.ref, "")
					if err != nil {
						return err
					}
					if err := c.esRefused(x, f, saml.StatusRequester, saml.CodePolicyViolation, esConfirmed); err != nil {
						return err
					}
					return c.esMoved("es-a-balances", f.amount.Minor, -f.amount.Minor)
				}},
			{ID: "escrow.refund-before-shipping", Title: "A second escrow, paid and refunded before shipping, answers refunded, and the buyer's balance is restored",
				Clauses: []string{"KECIS §15.6.2", "KECIS §15.6.5"}, Service: svcEscrowRefund, Needs: []string{"escrow.pay"}, Run: func(c *C) error {
					if err := c.esKeepBalances("es-b-balances"); err != nil {
						return err
					}
					f, err := c.esOpened("es-b", false)
					if err != nil {
						return err
					}
					if err := c.esPay(f); err != nil {
						return err
					}
					if v, err := c.esAwait(f, esFunded); err != nil {
						return err
					} else if v.state != esFunded {
						return fmt.Errorf("after the buyer paid the second escrow is %q, not %s", v.state, esFunded)
					}
					x, err := c.esCall(c.Tester, "refund before shipping", svcEscrowRefund, c.Key("es-b-refund"), f.ref, "")
					if err != nil {
						return err
					}
					v, err := c.esRead(x, f)
					if err != nil {
						return err
					}
					if v.state != esRefunded {
						return fmt.Errorf("the refund answers %q, not %s", v.state, esRefunded)
					}
					if err := c.esExpectState(f, esRefunded, "after the refund"); err != nil {
						return err
					}
					return c.esMoved("es-b-balances", 0, 0)
				}},
			{ID: "escrow.collect", Title: "transfer:collect of a small amount answers awaiting-payment with a reference; paid on the bank's page it is paid, the settlement account credited at once; a refund of it answers Requester / PolicyViolation",
				Clauses: []string{"KECIS §15.8", "KECIS §15.6.1", "KECIS §15.6.6"}, Service: svcCollect, Run: func(c *C) error {
					if !c.Declares(svcEscrowStatus) {
						return Skip("the participant declares no %s to follow the payment", svcEscrowStatus)
					}
					if err := c.esKeepBalances("es-c-balances"); err != nil {
						return err
					}
					f, err := c.esOpened("es-c", true)
					if err != nil {
						return err
					}
					if err := c.esPay(f); err != nil {
						return err
					}
					v, err := c.esAwait(f, esPaid)
					if err != nil {
						return err
					}
					if v.state != esPaid {
						return fmt.Errorf("after the buyer paid the collect payment is %q, not %s", v.state, esPaid)
					}
					if err := c.esMoved("es-c-balances", f.amount.Minor, -f.amount.Minor); err != nil {
						return err
					}
					if !c.Declares(svcEscrowRefund) {
						return nil
					}
					// The bank does not refund a paid collect (KECIS §15.8).
					x, err := c.esCall(c.Tester, "refund the paid collect", svcEscrowRefund, c.Key("es-c-refund"), f.ref, "")
					if err != nil {
						return err
					}
					if err := c.esRefused(x, f, saml.StatusRequester, saml.CodePolicyViolation, esPaid); err != nil {
						return err
					}
					return c.esMoved("es-c-balances", f.amount.Minor, -f.amount.Minor)
				}},
		},
	}
}
