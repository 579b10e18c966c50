package conformance

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/pquerna/otp/totp"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Cardholder-authentication and virtual-card service URIs and methods
// (KECIS §15.7, §15.4; connectors/cardauth names them too, the suite keeps
// its own copy to test issuers as black boxes).
var (
	svcCardAuth = saml.ServiceURI("cardauth", "authenticate")
	svcVCNIssue = saml.ServiceURI("vcn", "issue")
)

const (
	caMethodPassword = "urn:kecis:authn:card-password"
	caMethodCert     = "urn:kecis:authn:tls-client-certificate"
	caMethodTOTP     = "urn:kecis:authn:totp"
)

// The names of the page's inputs the suite types into (docs/conformance.md,
// "cardauth"): the card number and password form, the one-time code form.
const (
	caFieldNumber   = "CardNumber"
	caFieldPassword = "Password"
	caFieldCode     = "Code"
)

// caFlow is one cardholder authentication the suite ran as merchant and
// browser.
type caFlow struct {
	label, order, relay string
	amount              ecml.Money
	req                 *saml.ServiceRequest
	ans                 *frontAnswer
	resp                *saml.ServiceResponse
	// card is the number the answer carries (decrypted: the tester is the
	// acquirer), virtual or real.
	card   *ecml.Card
	aav    string
	result *saml.AuthenticationResult
	// approval is the card:approve the suite made with it, if any.
	approval string
}

func getFlow(c *C, key string) *caFlow {
	v, _ := c.Get(key)
	f, _ := v.(*caFlow)
	return f
}

// caAmount is the profile's purchase amount (below the threshold), or the
// threshold itself.
func caAmount(c *C, threshold bool) (ecml.Money, error) {
	a := c.Profile.CardAuth
	s := a.Card.Amount
	if threshold {
		s = a.Threshold
	}
	return ecml.ParseAmount(s, a.Currency)
}

// caRequest is a signed cardauth:authenticate (or vcn:issue) of amount for
// an order named after label: the tester is the merchant and the acquirer
// (test mode), asking for a virtual number when virtual.
func (c *C) caRequest(service, label string, amount ecml.Money, virtual bool) (*saml.ServiceRequest, error) {
	req, err := c.newFrontRequest(service)
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(amount)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = c.Key(label)
	ca := &ecml.CardAuth{}
	if service == svcCardAuth {
		ca.Acquirer = c.Tester.EntityID
	}
	if virtual {
		ca.VirtualCard = "true"
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: c.OrderID(label),
		Transaction: &ecml.Transaction{Amount: a, Currency: amount.Currency, Type: "credit"}}, CardAuth: ca}
	return req, nil
}

// caStart posts a request (sealed with o, then changed by after when
// given) to the page as the browser.
func (c *C) caStart(b *browser, req *saml.ServiceRequest, relay string, o Seal, after ...func([]byte) ([]byte, error)) (*page, error) {
	msg, err := c.Sealed(req, o)
	if err != nil {
		return nil, fmt.Errorf("the suite could not build the request: %w", err)
	}
	for _, f := range after {
		if f != nil {
			if msg, err = f(msg); err != nil {
				return nil, err
			}
		}
	}
	c.Attach("SAMLRequest sent to "+req.Destination, "xml", msg)
	v := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(msg)}}
	if relay != "" {
		v.Set("RelayState", relay)
	}
	return b.post(c.Context(), req.Destination, v)
}

// caRelay is a RelayState of the run for label (≤ 80 bytes).
func (c *C) caRelay(label string) string {
	s := "rs-" + c.RunID + "-" + label
	if len(s) > saml.MaxRelayState {
		s = s[:saml.MaxRelayState]
	}
	return s
}

// typeCard types the profile's card and password (or pw) into the page's
// card form.
func (c *C) typeCard(b *browser, p *page, number, pw string) (*page, error) {
	f := p.formWith(caFieldNumber)
	if f == nil || !f.has(caFieldPassword) {
		c.attachPage("the page", p)
		return nil, fmt.Errorf("the issuer's page (HTTP %d) shows no form with the inputs %s and %s", p.Status, caFieldNumber, caFieldPassword)
	}
	return b.submit(c.Context(), f, map[string]string{caFieldNumber: number, caFieldPassword: pw})
}

// caAuthenticate runs a whole authentication: the request, the card and
// password, and — when the page asks — a TOTP code from the profile's
// seed; it reads and verifies the answer the page posts back.
func (c *C) caAuthenticate(service, label string, amount ecml.Money, virtual bool) (*caFlow, error) {
	a := c.Profile.CardAuth
	f := &caFlow{label: label, order: c.OrderID(label), amount: amount, relay: c.caRelay(label)}
	req, err := c.caRequest(service, label, amount, virtual)
	if err != nil {
		return nil, err
	}
	f.req = req
	b, err := c.newBrowser()
	if err != nil {
		return nil, err
	}
	p, err := c.caStart(b, req, f.relay, Seal{})
	if err != nil {
		return nil, err
	}
	if p, err = c.typeCard(b, p, a.Card.Number, a.Password); err != nil {
		return nil, err
	}
	if cf := p.formWith(caFieldCode); cf != nil {
		if a.TOTPSeed == "" {
			c.attachPage("the page after the password", p)
			return nil, Skip("the page asks for a one-time code, and the profile gives no cardauth.totp_seed")
		}
		code, err := totp.GenerateCode(a.TOTPSeed, c.Now())
		if err != nil {
			return nil, fmt.Errorf("cardauth.totp_seed: %v", errors.New("not a base32 seed"))
		}
		c.redactText(code)
		if p, err = b.submit(c.Context(), cf, map[string]string{caFieldCode: code}); err != nil {
			return nil, err
		}
	}
	ans, err := p.answer()
	if err != nil {
		return nil, err
	}
	if ans == nil {
		c.attachPage("the page", p)
		return nil, fmt.Errorf("the issuer's page (HTTP %d) gave no answer to post back (no form with SAMLResponse) after the card, the password%s", p.Status,
			map[bool]string{true: " and the code", false: ""}[p.formWith(caFieldCode) != nil])
	}
	f.ans = ans
	c.Attach("SAMLResponse the page posts to "+ans.Action, "xml", ans.Message)
	resp, err := c.readFront(c.Context(), ans.Message)
	if err != nil {
		return nil, fmt.Errorf("the answer does not verify with the issuer's keys from its metadata: %w", err)
	}
	f.resp = resp
	if err := c.caEnvelope(f); err != nil {
		return f, err
	}
	if !resp.Status.OK() {
		return f, fmt.Errorf("the authentication was refused: %s", describeStatus(resp.Status))
	}
	return f, c.caReadSuccess(f)
}

// caEnvelope checks the answer's envelope (KECIS §15.7.1, §10.2): the
// participant's, InResponseTo the request, Destination and the form's
// action the tester's endpoint from its metadata, the RelayState echoed.
func (c *C) caEnvelope(f *caFlow) error {
	var p []string
	r := f.resp
	want := c.Profile.CardAuth.Endpoint
	if r.Issuer != c.Descriptor().EntityID {
		p = append(p, fmt.Sprintf("Issuer is %q, not the participant", r.Issuer))
	}
	if r.InResponseTo != f.req.ID {
		p = append(p, fmt.Sprintf("InResponseTo is %q, the request was %s", r.InResponseTo, f.req.ID))
	}
	if r.Destination != want {
		p = append(p, fmt.Sprintf("Destination is %q, the tester's HTTP-POST endpoint in its metadata is %s", r.Destination, want))
	}
	if f.ans.Action != want {
		p = append(p, fmt.Sprintf("the page posts the answer to %q, not the tester's endpoint %s", f.ans.Action, want))
	}
	if f.ans.RelayState != f.relay {
		p = append(p, fmt.Sprintf("RelayState %q, the request's was %q", f.ans.RelayState, f.relay))
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

var aavPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// caReadSuccess reads a successful answer: the card, the AAV, the result.
func (c *C) caReadSuccess(f *caFlow) error {
	pl := f.resp.Payload
	if pl == nil || pl.Ecom == nil {
		return errors.New("the answer carries no Ecom payload")
	}
	if pm := pl.Ecom.Payment; pm != nil && pm.Card != nil {
		f.card = pm.Card
	} else if vc := pl.VirtualCard; vc != nil && vc.Number != "" {
		f.card = &ecml.Card{Number: vc.Number, ExpDate: vc.ExpDate, Type: vc.Type}
	}
	if t := pl.Ecom.Transaction; t != nil && t.Data != nil && t.Data.AAV != nil {
		f.aav = t.Data.AAV.Value
	}
	ed := c.Descriptor()
	keys := saml.StaticKeys{ed.EntityID: ed.SigningCertificates()}
	for _, el := range f.resp.AuthResults {
		r, _, err := saml.VerifyAuthenticationResult(c.Context(), el, keys, c.Now(), saml.DefaultClockSkew)
		if err != nil {
			return fmt.Errorf("the embedded kecis:AuthenticationResult does not verify with the issuer's signing keys: %v", describeRefusal(err))
		}
		f.result = r
	}
	c.Note("authenticated: order %s, %s, card %s, AAV of %d characters, %d result(s)", f.order, f.amount, cardOf(f), len(f.aav), len(f.resp.AuthResults))
	return nil
}

func cardOf(f *caFlow) string {
	if f == nil || f.card == nil {
		return "(none)"
	}
	return f.card.Number.Masked()
}

// caResultOK checks the AAV and the result of an authentication (KECIS
// §15.7.1, §15.7.3): bound to the purchase, the tester, the order, the
// card sent, of method with factors.
func (c *C) caResultOK(f *caFlow, methods []string, factors int) error {
	var p []string
	switch {
	case f.aav == "":
		p = append(p, "no Transaction/Data/AAV")
	case !aavPattern.MatchString(f.aav):
		p = append(p, fmt.Sprintf("the AAV is %d characters, not a token of at most 64 base64url characters", len(f.aav)))
	}
	r := f.result
	if r == nil {
		p = append(p, "no embedded kecis:AuthenticationResult")
		return errors.New(strings.Join(p, "; "))
	}
	if !slices.Contains(methods, r.Method) {
		p = append(p, fmt.Sprintf("method %s, expected %s", r.Method, strings.Join(methods, " or ")))
	}
	if r.Factors != factors {
		p = append(p, fmt.Sprintf("%d factors, expected %d", r.Factors, factors))
	}
	if m, err := ecml.ParseAmount(r.Amount, r.Currency); err != nil || m != f.amount {
		p = append(p, fmt.Sprintf("bound to %q %s, the purchase is %s", r.Amount, r.Currency, f.amount))
	}
	if r.Merchant != c.Tester.EntityID {
		p = append(p, fmt.Sprintf("bound to the merchant %q, not the tester", r.Merchant))
	}
	if r.OrderID != f.order {
		p = append(p, fmt.Sprintf("bound to the order %q, not %s", r.OrderID, f.order))
	}
	switch {
	case r.CardRef == "" || ecml.ContainsPAN(r.CardRef):
		p = append(p, "BoundTo/@CardRef is not a masked card number")
	case f.card != nil && !strings.HasSuffix(r.CardRef, f.card.Number.Last4()):
		p = append(p, "BoundTo/@CardRef does not end with the last four digits of the card sent")
	}
	if !r.NotOnOrAfter.After(c.Now()) {
		p = append(p, "its NotOnOrAfter has passed")
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	c.Note("result %s: method %s, %d factor(s), bound to %s %s, merchant %s, order %s, card %s, valid until %s",
		r.ID, r.Method, r.Factors, r.Amount, r.Currency, r.Merchant, r.OrderID, r.CardRef, r.NotOnOrAfter.Format(saml.TimeLayout))
	return nil
}

// caApprove sends a card:approve of f's card as identity id (nil: the
// tester, through the hub), for amount, with aav (and f's result
// embedded) when given, under order.
func (c *C) caApprove(id *Tester, what, label, order string, card *ecml.Card, amount ecml.Money, aav string, results []*etree.Element) (*Exchange, error) {
	if id == nil {
		id = c.Tester
	}
	req, err := c.NewRequestAs(id, svcApprove)
	if err != nil {
		return nil, err
	}
	a, err := ecml.FormatAmount(amount)
	if err != nil {
		return nil, err
	}
	req.IdempotencyKey = c.Key(label)
	if bin := card.Number.BIN(); bin != "" {
		req.Routing = &saml.Routing{CardBIN: bin, CardLast4: card.Number.Last4()}
	}
	t := &ecml.Transaction{Amount: a, Currency: amount.Currency, Type: "credit"}
	if aav != "" {
		t.Data = &ecml.Data{AAV: &ecml.Text{Value: aav}}
	}
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order,
		Payment:      &ecml.Payment{Card: &ecml.Card{Number: card.Number, ExpDate: card.ExpDate, Type: card.Type}},
		MerchantInfo: &ecml.Merchant{ID: id.EntityID}, Transaction: t}}
	for _, r := range results {
		req.AuthResults = append(req.AuthResults, r.Copy())
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

// caVoid voids an approval the module made (best effort, not judged).
func (c *C) caVoid(order, approval string) {
	if approval == "" || !c.Declares(svcCancel) {
		return
	}
	req, err := c.refRequest(svcCancel, c.Key(order+"-void"), order, approval, nil)
	if err != nil {
		return
	}
	if v, err := c.Exchange(c.Context(), "clean-up void of "+order, ViaHub, req, Seal{}); err == nil {
		c.Note("clean-up: voided %s: %s", order, v.Describe())
	}
}

// approved checks x approved and returns its approval number.
func (c *C) approved(x *Exchange) (string, error) {
	if err := c.answerOf(x); err != nil {
		return "", err
	}
	if !x.Response.Status.OK() {
		return "", fmt.Errorf("refused: %s", describeStatus(x.Response.Status))
	}
	ap, err := approvalOf(x.Response.Payload)
	if err != nil {
		return "", err
	}
	if ap.Number == "" {
		return "", errors.New("the approval names no approval number (Transaction/Code/@Approval)")
	}
	return ap.Number, nil
}

// refusedAs checks x refused with Responder and one of codes; an approval
// is voided and fails.
func (c *C) refusedAs(x *Exchange, order string, codes ...string) error {
	if err := c.answerOf(x); err != nil {
		return err
	}
	st := x.Response.Status
	if st.OK() {
		if ap, err := approvalOf(x.Response.Payload); err == nil {
			c.caVoid(order, ap.Number)
		}
		return fmt.Errorf("approved (%s); KECIS §15.7.3 and §15.4 refuse it", describeStatus(st))
	}
	if st.Code != saml.StatusResponder || !slices.Contains(codes, st.SubCode) {
		var want []string
		for _, code := range codes {
			want = append(want, saml.Status{Code: saml.StatusResponder, SubCode: code}.Short())
		}
		return fmt.Errorf("refused with %s, expected %s", describeStatus(st), strings.Join(want, " or "))
	}
	c.Note("%s: %s", x.Label, describeStatus(st))
	return nil
}

func cardAuthApplies(e *Env, service string) (bool, string) {
	if !e.Declares(service) {
		return false, "the participant declares no " + service
	}
	if e.Profile.CardAuth == nil {
		return false, "the profile has no cardauth section (a test card, its password, the tester's HTTP-POST endpoint)"
	}
	return true, ""
}

// cardAuthModule checks an issuer's cardholder authentication (KECIS
// §15.7) with the suite as the merchant and the cardholder's browser.
func cardAuthModule() *Module {
	return &Module{
		Name:  "cardauth",
		Title: "Cardholder authentication",
		Description: "The suite signs cardauth:authenticate as the merchant (and names itself the acquirer, in test mode), carries it to the issuer's HTTP-POST endpoint as the cardholder's browser, types the profile's card and password (and a TOTP code at the threshold), and reads the signed answer the page posts back: " +
			"its envelope, the card encrypted for the acquirer, the AAV and the issuer-signed result bound to the purchase. An unsigned or tampered request gets no answer; a wrong password reads the same for an unknown card. card:approve with the AAV is approved once; the same AAV again, or for another amount, is refused.",
		Applies: func(e *Env) (bool, string) { return cardAuthApplies(e, svcCardAuth) },
		Conditions: []*Condition{
			{ID: "cardauth.endpoint", Title: "The metadata publishes an HTTPS endpoint with the HTTP-POST binding for cardauth:authenticate",
				Clauses: []string{"KECIS §15.7.1", "KECIS §10.2", "KECIS §11.1"}, Service: svcCardAuth, Run: func(c *C) error {
					u, err := c.FrontEndpoint(svcCardAuth)
					if err != nil {
						return err
					}
					if !strings.HasPrefix(u, "https://") {
						return fmt.Errorf("the HTTP-POST endpoint %s is not https", u)
					}
					c.Note("HTTP-POST endpoint %s", u)
					return nil
				}},
			{ID: "cardauth.unsigned-request", Title: "An unsigned request gets an error page, no answer to post",
				Clauses: []string{"KECIS §15.7.1", "KECIS §5.3.1"}, Service: svcCardAuth, Needs: []string{"cardauth.endpoint"}, Run: func(c *C) error {
					return caNoAnswer(c, "ca-unsigned", Seal{Unsigned: true}, nil)
				}},
			{ID: "cardauth.tampered-request", Title: "A request changed after signing (the amount) gets an error page, no answer to post",
				Clauses: []string{"KECIS §15.7.1", "KECIS §5.3.1"}, Service: svcCardAuth, Needs: []string{"cardauth.endpoint"}, Run: func(c *C) error {
					return caNoAnswer(c, "ca-tampered", Seal{}, func(msg []byte) ([]byte, error) {
						// The amount, after signing: one unit.
						re := regexp.MustCompile(`Amount="[0-9.]+"`)
						if !re.Match(msg) {
							return nil, errors.New("no Transaction/@Amount to tamper with")
						}
						return re.ReplaceAll(msg, []byte(`Amount="1"`)), nil
					})
				}},
			{ID: "cardauth.wrong-password", Title: "A wrong password and an unknown card read the same (no oracle of card numbers); the cardholder's cancel answers a signed Responder / AuthenticationRequired naming no secret",
				Clauses: []string{"KECIS §15.7.1", "KECIS §15.7.2"}, Service: svcCardAuth, Needs: []string{"cardauth.endpoint"}, Run: caWrongPassword},
			{ID: "cardauth.password", Title: "Below the threshold the card password authenticates: the issuer's signed answer, InResponseTo the request, Destination the tester's HTTP-POST endpoint from its metadata, the RelayState echoed, Success",
				Clauses: []string{"KECIS §15.7.1", "KECIS §15.7.2", "KECIS §10.2"}, Service: svcCardAuth, Needs: []string{"cardauth.endpoint"}, Run: func(c *C) error {
					m, err := caAmount(c, false)
					if err != nil {
						return err
					}
					f, err := c.caAuthenticate(svcCardAuth, "ca-password", m, false)
					if f != nil {
						c.Set("ca-password", f)
					}
					return err
				}},
			{ID: "cardauth.card-for-acquirer", Title: "Payment/Card is encrypted for the acquirer named in the request only, and holds the card typed",
				Clauses: []string{"KECIS §15.7.1", "KECIS §8.1"}, Service: svcCardAuth, Needs: []string{"cardauth.password"}, Run: func(c *C) error {
					f := getFlow(c, "ca-password")
					return c.caCardForAcquirer(f, c.Profile.CardAuth.Card.Number)
				}},
			{ID: "cardauth.result", Title: "The answer carries an AAV (a token of at most 64 characters) and an issuer-signed kecis:AuthenticationResult of the card password, 1 factor, bound to the amount, currency, merchant (the tester), order and the masked card",
				Clauses: []string{"KECIS §15.7.1", "KECIS §15.7.3", "KECIS §3.1"}, Service: svcCardAuth, Needs: []string{"cardauth.password"}, Run: func(c *C) error {
					return c.caResultOK(getFlow(c, "ca-password"), []string{caMethodPassword}, 1)
				}},
			{ID: "cardauth.second-factor", Title: "At the threshold the page asks for a second factor; with a TOTP code the result is of method totp, 2 factors, bound to the purchase",
				Clauses: []string{"KECIS §15.7.2", "KECIS §15.7.1"}, Service: svcCardAuth, Needs: []string{"cardauth.endpoint"}, Run: func(c *C) error {
					if c.Profile.CardAuth.TOTPSeed == "" {
						return Skip("the profile gives no cardauth.totp_seed: the suite cannot give a second factor")
					}
					m, err := caAmount(c, true)
					if err != nil {
						return err
					}
					f, err := c.caAuthenticate(svcCardAuth, "ca-totp", m, false)
					if err != nil {
						return err
					}
					return c.caResultOK(f, []string{caMethodTOTP}, 2)
				}},
			{ID: "cardauth.approve", Title: "card:approve with the card, the AAV and the result embedded, for the authenticated amount and order: Success",
				Clauses: []string{"KECIS §15.7.3", "KECIS §15.2"}, Service: svcApprove, Needs: []string{"cardauth.result"}, Run: func(c *C) error {
					f := getFlow(c, "ca-password")
					x, err := c.caApprove(nil, "approve with the AAV", "ca-password-approve", f.order, f.card, f.amount, f.aav, f.resp.AuthResults)
					if err != nil {
						return err
					}
					n, err := c.approved(x)
					if err != nil {
						return err
					}
					f.approval = n
					return nil
				}},
			{ID: "cardauth.aav-reused", Title: "The same AAV again (the first approval voided, a new idempotency key): Responder / AuthenticationRequired",
				Clauses: []string{"KECIS §15.7.3"}, Service: svcApprove, Needs: []string{"cardauth.approve"}, Run: func(c *C) error {
					f := getFlow(c, "ca-password")
					c.caVoid(f.order, f.approval)
					x, err := c.caApprove(nil, "approve with the used AAV", "ca-password-again", f.order, f.card, f.amount, f.aav, f.resp.AuthResults)
					if err != nil {
						return err
					}
					return c.refusedAs(x, f.order, saml.CodeAuthenticationRequired)
				}},
			{ID: "cardauth.aav-other-amount", Title: "An AAV for another amount (a new authentication, approved for one unit more): Responder / AuthenticationRequired",
				Clauses: []string{"KECIS §15.7.3"}, Service: svcApprove, Needs: []string{"cardauth.result"}, Run: func(c *C) error {
					m, err := caAmount(c, false)
					if err != nil {
						return err
					}
					f, err := c.caAuthenticate(svcCardAuth, "ca-amount", m, false)
					if err != nil {
						return NeedsReview("the second authentication failed: %v", err)
					}
					more := ecml.Money{Minor: m.Minor + 1, Currency: m.Currency}
					if u, _ := ecml.MinorUnits(m.Currency); u == 0 {
						more.Minor = m.Minor + 1000
					}
					x, err := c.caApprove(nil, "approve with the AAV for another amount", "ca-amount-approve", f.order, f.card, more, f.aav, f.resp.AuthResults)
					if err != nil {
						return err
					}
					return c.refusedAs(x, f.order, saml.CodeAuthenticationRequired)
				}},
		},
	}
}

// caNoAnswer posts a request sealed with o and expects no answer to post.
func caNoAnswer(c *C, label string, o Seal, after func([]byte) ([]byte, error)) error {
	m, err := caAmount(c, false)
	if err != nil {
		return err
	}
	req, err := c.caRequest(svcCardAuth, label, m, false)
	if err != nil {
		return err
	}
	b, err := c.newBrowser()
	if err != nil {
		return err
	}
	p, err := c.caStart(b, req, "", o, after)
	if err != nil {
		return err
	}
	c.attachPage("the page", p)
	ans, err := p.answer()
	if err != nil || ans != nil {
		return fmt.Errorf("the page (HTTP %d) holds an answer to post to %s: a request that fails verification gets an error page only", p.Status, describeAction(ans))
	}
	if p.formWith(caFieldNumber) != nil {
		return fmt.Errorf("the page (HTTP %d) asks for the card number: the request was taken", p.Status)
	}
	c.Note("an error page, HTTP %d, no answer", p.Status)
	return nil
}

func describeAction(a *frontAnswer) string {
	if a == nil {
		return "(unreadable)"
	}
	return a.Action
}

// unknownCard is a Luhn-valid number no issuer issued (a BIN of the 9999
// test range).
func unknownCard() string {
	body := "999999000000123"
	d, _ := ecml.LuhnCheckDigit(body)
	return body + string(d)
}

var digitsRe = regexp.MustCompile(`[0-9]+`)

func caWrongPassword(c *C) error {
	a := c.Profile.CardAuth
	m, err := caAmount(c, false)
	if err != nil {
		return err
	}
	req, err := c.caRequest(svcCardAuth, "ca-wrong", m, false)
	if err != nil {
		return err
	}
	b, err := c.newBrowser()
	if err != nil {
		return err
	}
	p, err := c.caStart(b, req, "", Seal{})
	if err != nil {
		return err
	}
	wrong := "x" + c.RunID
	c.redactText(wrong)
	known, err := c.typeCard(b, p, a.Card.Number, wrong)
	if err != nil {
		return err
	}
	c.attachPage("the page after a wrong password", known)
	var out *frontAnswer
	if out, err = known.answer(); err != nil {
		return err
	}
	if out == nil {
		unknown, err := c.typeCard(b, known, unknownCard(), wrong)
		if err != nil {
			return err
		}
		c.attachPage("the page after an unknown card", unknown)
		// Digits aside (attempts left), the two pages read the same.
		kt, ut := digitsRe.ReplaceAllString(known.text(), "#"), digitsRe.ReplaceAllString(unknown.text(), "#")
		if known.Status != unknown.Status || kt != ut {
			return fmt.Errorf("a wrong password and an unknown card read differently (HTTP %d %q; HTTP %d %q): the page tells which card numbers exist", known.Status, kt, unknown.Status, ut)
		}
		if out, err = unknown.answer(); err != nil {
			return err
		}
		if out == nil {
			cf := unknown.cancelForm()
			if cf == nil {
				return NeedsReview("the page offers no way to cancel (a form of hidden fields only): the suite cannot end the authentication without locking the card")
			}
			end, err := b.submit(c.Context(), cf, nil)
			if err != nil {
				return err
			}
			c.attachPage("the page after cancelling", end)
			if out, err = end.answer(); err != nil {
				return err
			}
			if out == nil {
				return fmt.Errorf("the cardholder cancelled, and the page (HTTP %d) gives no answer to post back", end.Status)
			}
		}
	}
	c.Attach("SAMLResponse the page posts to "+out.Action, "xml", out.Message)
	resp, err := c.readFront(c.Context(), out.Message)
	if err != nil {
		return fmt.Errorf("the refusal does not verify with the issuer's keys from its metadata: %w", err)
	}
	st := resp.Status
	if st.Code != saml.StatusResponder || st.SubCode != saml.CodeAuthenticationRequired {
		return fmt.Errorf("refused with %s, expected %s", describeStatus(st), saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeAuthenticationRequired}.Short())
	}
	if ecml.ContainsPAN(st.Message) || strings.Contains(st.Message, wrong) || strings.Contains(st.Message, a.Password) {
		return errors.New("the refusal's status message names the card number or the password")
	}
	if resp.Payload != nil && resp.Payload.Ecom != nil && (resp.Payload.Ecom.Payment != nil || resp.Payload.Ecom.Transaction != nil && resp.Payload.Ecom.Transaction.Data != nil && resp.Payload.Ecom.Transaction.Data.AAV != nil) {
		return errors.New("the refusal carries a card or an AAV")
	}
	c.Note("refused: %s", describeStatus(st))
	return nil
}

// caCardForAcquirer checks that the answer's Payment/Card (or a virtual
// number) came encrypted for the acquirer — the tester, named in the
// request — only, and is the number want (empty: any).
func (c *C) caCardForAcquirer(f *caFlow, want string) error {
	root, err := saml.ParseDocument(f.ans.Message, saml.Limits{})
	if err != nil {
		return err
	}
	var recipients []string
	clear := false
	for _, el := range root.FindElements("//EncryptedKey") {
		recipients = append(recipients, el.SelectAttrValue("Recipient", ""))
	}
	for _, el := range root.FindElements("//Payment/Card") {
		if el.SelectAttr("Number") != nil {
			clear = true
		}
	}
	var p []string
	switch {
	case clear:
		p = append(p, "Payment/Card travels in clear")
	case len(recipients) == 0:
		p = append(p, "nothing in the answer is encrypted")
	}
	for _, r := range recipients {
		if r != c.Tester.EntityID {
			p = append(p, fmt.Sprintf("an EncryptedKey names the recipient %q, not the acquirer %s", r, c.Tester.EntityID))
		}
	}
	switch {
	case f.card == nil:
		p = append(p, "no card in the answer")
	case want != "" && f.card.Number.Reveal() != want:
		p = append(p, "the card is not the one typed")
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	c.Note("the card %s came encrypted for %s only", f.card.Number.Masked(), c.Tester.EntityID)
	return nil
}

// seoulDay is the day of the year in Asia/Seoul at t, three digits.
func seoulDay(t time.Time) string {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		loc = time.FixedZone("KST", 9*3600)
	}
	return fmt.Sprintf("%03d", t.In(loc).YearDay())
}
