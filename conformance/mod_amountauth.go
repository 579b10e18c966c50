package conformance

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Amount-authentication service URIs (KECIS §15.3.1; connectors/amountauth
// names them too, the suite keeps its own copy to test PGs as black boxes).
var (
	svcAAStart   = saml.ServiceURI("amountauth", "start")
	svcAAConfirm = saml.ServiceURI("amountauth", "confirm")
	svcAAStatus  = saml.ServiceURI("amountauth", "status")
)

// aaMethod is the method of the authentication result a verified session
// embeds (KECIS §15.3.1).
const aaMethod = "urn:kecis:authn:amount-auth"

// Session states (KECIS §15.3.1).
const (
	aaAwaiting   = "awaiting-amount"
	aaProcessing = "processing"
	aaApproved   = "approved"
	aaFailed     = "failed"
	aaExpired    = "expired"
)

// States of a verification approval at the issuer, as the amountauth
// hook reports them (docs/conformance.md, "Hook semantics").
const (
	hookApproved  = "approved"
	hookCancelled = "cancelled"
	hookRefunded  = "refunded"
	hookNone      = "none"
)

// aaSession is an amount authentication the module runs: what it started
// and what it learnt.
type aaSession struct {
	label   string
	order   string
	card    TestCard
	amount  ecml.Money
	id      string
	ceiling ecml.Money
	// started is when start answered: the PG's deadline is at most its
	// timeout after it.
	started time.Time
	// challenge is the amount the issuer approved and texted, from the
	// hook (a one-time password: redacted from every report).
	challenge *ecml.Money
	// approval is the purchase's approval number, once approved.
	approval string
}

// aaAnswer is what an amountauth answer says of the session.
type aaAnswer struct {
	id, order, state, approval string
	amount, ceiling            ecml.Money
}

// amountAuthModule checks a PG's amount authentication (KECIS §15.3) with
// three sessions of the profile's card: one matched (the result, status,
// the verification approval voided), one with a wrong amount that another
// merchant then tries to reach and that times out, and one that reaches
// the attempt limit. The test hook says what stands at the issuer.
func amountAuthModule() *Module {
	m := &Module{
		Name:  "amountauth",
		Title: "Amount authentication",
		Description: "Three amount authentications with the profile's card, through the hub. The first is matched: start awaits the amount (no challenge in any answer), the test hook reads the verification approval at the issuer, confirm with that amount approves the purchase " +
			"with an embedded authentication result of the PG bound to the purchase, status answers the same, and the verification approval is voided. The second gets a wrong amount (Declined, still awaiting), is read and confirmed by another merchant (the answer an unknown session gets), " +
			"and times out (Expired, even with the right amount; voided). The third reaches the attempt limit (AuthenticationRequired; voided). No answer of the run gives the challenge or a typed amount away.",
		Applies: func(e *Env) (bool, string) {
			if !e.Declares(svcAAStart) {
				return false, "the participant declares no amount authentication (" + svcAAStart + ")"
			}
			if e.Profile.AmountAuth == nil {
				return false, "the profile has no amountauth section (the card, the purchase amount, the PG's attempts and timeout for the tester)"
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "amountauth.start", Title: "Start answers Success in state awaiting-amount: the session (kx:AmountAuth with SessionID, Ceiling, Currency and no kx:Challenge), the order and the purchase amount",
				Clauses: []string{"KECIS §15.3.1", "KECIS §15.3"}, Service: svcAAStart, Run: func(c *C) error {
					s, err := aaStart(c, "aa-match")
					if s != nil {
						c.Set("aa-match", s)
					}
					return err
				}},
			{ID: "amountauth.verification-approval", Title: "The test hook finds the session's verification approval standing at the issuer, in the purchase's currency, within the ceiling and below the purchase amount",
				Clauses: []string{"KECIS §15.2", "KECIS §15.3", "KECIS §15.3.4"}, Service: svcAAStart, Needs: []string{"amountauth.start"}, Run: func(c *C) error {
					return aaLearn(c, getAA(c, "aa-match"))
				}},
			{ID: "amountauth.confirm", Title: "Confirm with the amount the cardholder was texted, encrypted for the PG: Success, state approved, the purchase's approval number",
				Clauses: []string{"KECIS §15.3.1", "KECIS §8.1"}, Service: svcAAConfirm, Needs: []string{"amountauth.verification-approval"}, Run: aaConfirmMatch},
			{ID: "amountauth.result", Title: "The approved answer embeds the PG's kecis:AuthenticationResult: it verifies with the PG's signing keys from its metadata, method amount-auth, bound to the purchase amount, currency, merchant (the tester), order and a masked card",
				Clauses: []string{"KECIS §3.1", "KECIS §3.2", "KECIS §15.3.1"}, Service: svcAAConfirm, Needs: []string{"amountauth.confirm"}, Run: func(c *C) error {
					s := getAA(c, "aa-match")
					v, _ := c.Get("aa-match-approved")
					x, _ := v.(*Exchange)
					return aaResultOK(c, x, s)
				}},
			{ID: "amountauth.status", Title: "Status answers the same: Success, state approved, the same approval number and the embedded result",
				Clauses: []string{"KECIS §15.3.1", "KECIS §3.1"}, Service: svcAAStatus, Needs: []string{"amountauth.confirm"}, Run: func(c *C) error {
					s := getAA(c, "aa-match")
					x, err := c.aaSend("status of the matched session", "", nil, svcAAStatus, s.id, s.ceiling, nil)
					if err != nil {
						return err
					}
					a, err := c.aaCheck(x, s, aaApproved, true)
					if err != nil {
						return err
					}
					if a.approval != s.approval {
						return fmt.Errorf("status names approval %q, confirm answered %q", a.approval, s.approval)
					}
					return aaResultOK(c, x, s)
				}},
			{ID: "amountauth.voided-after-match", Title: "After the match the verification approval is voided at the issuer (cancelled or refunded, as the test hook reports)",
				Clauses: []string{"KECIS §15.3.3", "KECIS §15.3"}, Service: svcAAConfirm, Needs: []string{"amountauth.confirm"}, Run: func(c *C) error {
					s := getAA(c, "aa-match")
					defer c.aaVoidPurchase(s)
					return aaVoided(c, s)
				}},
			{ID: "amountauth.wrong-amount", Title: "A wrong amount is refused with Responder / Declined, the session still awaits the amount, and no answer names the challenge or the amount typed",
				Clauses: []string{"KECIS §15.3.1", "KECIS §15.3"}, Service: svcAAConfirm, Needs: []string{"amountauth.start"}, Run: aaWrongAmount},
			{ID: "amountauth.other-merchant", Title: "Another merchant's session reads as unknown: status and confirm (with the right amount) by the second identity get exactly the answer an unknown session gets, and the session is unchanged",
				Clauses: []string{"KECIS §15.3.1", "KECIS §13.3"}, Service: svcAAStatus, Needs: []string{"amountauth.start"}, Run: aaOtherMerchant},
			{ID: "amountauth.timeout", Title: "After the PG's timeout, confirm — even with the right amount — answers Responder / Expired, and status says expired",
				Clauses: []string{"KECIS §15.3.1", "KECIS §15.3.4"}, Service: svcAAConfirm, Needs: []string{"amountauth.start"}, Run: aaTimeout},
			{ID: "amountauth.voided-after-timeout", Title: "After the timeout the verification approval is voided at the issuer",
				Clauses: []string{"KECIS §15.3.3"}, Service: svcAAConfirm, Needs: []string{"amountauth.timeout"}, Run: func(c *C) error {
					return aaVoided(c, getAA(c, "aa-wrong"))
				}},
			{ID: "amountauth.attempt-limit", Title: "Wrong amounts up to the attempt limit: Declined until the last, which answers Responder / AuthenticationRequired; status says failed, and the right amount afterwards approves nothing",
				Clauses: []string{"KECIS §15.3.1", "KECIS §15.3.4"}, Service: svcAAConfirm, Needs: []string{"amountauth.start"}, Run: aaAttemptLimit},
			{ID: "amountauth.voided-after-limit", Title: "After the attempt limit the verification approval is voided at the issuer",
				Clauses: []string{"KECIS §15.3.3"}, Service: svcAAConfirm, Needs: []string{"amountauth.attempt-limit"}, Run: func(c *C) error {
					return aaVoided(c, getAA(c, "aa-limit"))
				}},
			{ID: "amountauth.no-challenge", Title: "No amountauth answer of the run carries kx:Challenge or kx:OneTimeCode, or names the challenge or an amount the suite typed",
				Clauses: []string{"KECIS §15.3.1", "KECIS §15.2", "KECIS §8.1"}, Service: svcAAStart, Run: aaNoChallenge},
		},
	}
	for _, c := range m.Conditions {
		if c.ID != "amountauth.no-challenge" {
			c.Run = leakChecked(c.Run)
		}
	}
	return m
}

// leakChecked runs a check, then fails it when one of the answers it got
// gives a secret away (aaLeaks) — whatever it found otherwise, so that a
// flow that leaks still runs to its end.
func leakChecked(run func(*C) error) func(*C) error {
	return func(c *C) error {
		n := len(c.Exchanges())
		err := run(c)
		var leaks []error
		for _, x := range c.Exchanges()[n:] {
			if l := c.aaLeaks(x); l != nil {
				leaks = append(leaks, l)
			}
		}
		if len(leaks) == 0 {
			return err
		}
		leak := errors.Join(leaks...)
		if err != nil {
			// Not wrapped: a Skip or NeedsReview beside a leak is a
			// failure still.
			return fmt.Errorf("%v\n(besides: %v)", leak, err)
		}
		return leak
	}
}

func getAA(c *C, key string) *aaSession {
	v, _ := c.Get(key)
	s, _ := v.(*aaSession)
	return s
}

// aaStartRequest is an amountauth:start of tc for amount, its order and
// idempotency key named after label; the card is encrypted for the PG.
func (e *Env) aaStartRequest(label string, tc TestCard, amount ecml.Money) (*saml.ServiceRequest, error) {
	return e.purchaseRequest(svcAAStart, label, tc, amount)
}

// aaSend sends a confirm (typed set) or status of session as identity id
// (nil: the tester, through the hub; another identity directly) and
// records it. A confirm's typed amount travels as kx:Challenge, encrypted
// for the PG.
func (c *C) aaSend(what, label string, id *Tester, service, session string, ceiling ecml.Money, typed *ecml.Money) (*Exchange, error) {
	if id == nil {
		id = c.Tester
	}
	req, err := c.NewRequestAs(id, service)
	if err != nil {
		return nil, err
	}
	if saml.IsMutation(service) {
		req.IdempotencyKey = c.Key(label)
	}
	aa := &ecml.AmountAuth{SessionID: session}
	if err := aa.SetCeiling(ceiling); err != nil {
		return nil, err
	}
	if typed != nil {
		if err := aa.SetChallenge(*typed); err != nil {
			return nil, err
		}
	}
	// A payload holds one Ecom (KECIS §14.1); the session is named by
	// kx:AmountAuth alone.
	req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion}, AmountAuth: aa}
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

// aaConfirm confirms s with typed, as the tester.
func (c *C) aaConfirm(s *aaSession, what, label string, typed ecml.Money) (*Exchange, error) {
	return c.aaSend(what, label, nil, svcAAConfirm, s.id, s.ceiling, &typed)
}

// aaStatus asks the tester's session's status.
func (c *C) aaStatus(s *aaSession, what string) (*Exchange, error) {
	return c.aaSend(what, "", nil, svcAAStatus, s.id, s.ceiling, nil)
}

// aaAnswerOf reads the session an answer describes (KECIS §15.3.1).
func aaAnswerOf(p *ecml.Payload) (*aaAnswer, error) {
	if p == nil || p.AmountAuth == nil || p.AmountAuth.SessionID == "" {
		return nil, errors.New("the answer names no session (kx:AmountAuth/@SessionID)")
	}
	ceiling, err := p.AmountAuth.CeilingMoney()
	if err != nil {
		return nil, fmt.Errorf("kx:AmountAuth/@Ceiling %q %s: %v", p.AmountAuth.Ceiling, p.AmountAuth.Currency, err)
	}
	ap, err := approvalOf(p)
	if err != nil {
		return nil, err
	}
	return &aaAnswer{id: p.AmountAuth.SessionID, order: ap.Order, state: ap.State, approval: ap.Number, amount: ap.Amount, ceiling: ceiling}, nil
}

// aaCheck checks x is the participant's answer about s in state want
// (any state for ""): the session, the order and the purchase amount as
// started (what gives a secret away, leakChecked judges). Without
// needPayload a refusal may come without the session.
func (c *C) aaCheck(x *Exchange, s *aaSession, want string, needPayload bool) (*aaAnswer, error) {
	if err := c.answerOf(x); err != nil {
		return nil, err
	}
	if x.Response.Payload == nil && !needPayload {
		return nil, nil
	}
	a, err := aaAnswerOf(x.Response.Payload)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", x.Label, describeStatus(x.Response.Status), err)
	}
	var p []string
	if s.id != "" && a.id != s.id {
		p = append(p, fmt.Sprintf("names session %q, not %q", a.id, s.id))
	}
	if a.order != s.order {
		p = append(p, fmt.Sprintf("names order %q, not %q", a.order, s.order))
	}
	if a.amount != s.amount {
		p = append(p, fmt.Sprintf("Transaction/@Amount is %s, the purchase %s", a.amount, s.amount))
	}
	if want != "" && a.state != want {
		p = append(p, fmt.Sprintf("state %q, expected %s", a.state, want))
	}
	if len(p) > 0 {
		return a, fmt.Errorf("%s (%s): %s", x.Label, describeStatus(x.Response.Status), strings.Join(p, "; "))
	}
	c.Note("%s: %s, session %s in state %s", x.Label, describeStatus(x.Response.Status), a.id, a.state)
	return a, nil
}

// aaStart starts a session of the profile's card named after label and
// checks the answer: Success, awaiting the amount.
func aaStart(c *C, label string) (*aaSession, error) {
	a := c.Profile.AmountAuth
	m, err := ecml.ParseAmount(a.Card.Amount, a.Currency)
	if err != nil {
		return nil, err
	}
	s := &aaSession{label: label, order: c.OrderID(label), card: a.Card, amount: m}
	req, err := c.aaStartRequest(label, a.Card, m)
	if err != nil {
		return nil, err
	}
	x, err := c.Exchange(c.Context(), "start "+label, ViaHub, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	s.started = time.Now()
	if err := c.answerOf(x); err != nil {
		return nil, err
	}
	if st := x.Response.Status; !st.OK() {
		return nil, fmt.Errorf("start refused: %s", describeStatus(st))
	}
	ans, err := c.aaCheck(x, s, "", true)
	if err != nil {
		return nil, err
	}
	s.id, s.ceiling = ans.id, ans.ceiling
	switch ans.state {
	case aaAwaiting:
	case aaApproved:
		s.approval = ans.approval
		c.aaVoidPurchase(s)
		return nil, NeedsReview("start approved the purchase at once, without amount authentication: the PG's options skip it for this purchase — the profile's amountauth.card.amount must be at or above the PG's minimum purchase, and the tester's user not in its profile store")
	default:
		return nil, fmt.Errorf("start answered Success in state %q; a session that awaits the amount is %s", ans.state, aaAwaiting)
	}
	var p []string
	if s.ceiling.Currency != m.Currency {
		p = append(p, fmt.Sprintf("the ceiling's currency is %s, the purchase's %s", s.ceiling.Currency, m.Currency))
	}
	if s.ceiling.Minor <= 0 || s.ceiling.Minor > m.Minor {
		p = append(p, fmt.Sprintf("the ceiling %s is not above zero and at most the purchase amount %s", s.ceiling, m))
	}
	if len(p) > 0 {
		return s, errors.New(strings.Join(p, "; "))
	}
	return s, nil
}

// verification is what the amountauth hook reports.
type verification struct {
	state  string
	amount *ecml.Money
}

// aaHook asks the amountauth hook for the verification approval of s at
// the issuer. The amount it reveals is redacted from every report at
// once.
func (c *C) aaHook(s *aaSession) (*verification, error) {
	body, err := json.Marshal(map[string]string{"session_id": s.id})
	if err != nil {
		return nil, err
	}
	b, err := c.hookCall(c.Context(), c.Profile.Hooks.AmountAuth, body)
	if err != nil {
		return nil, err
	}
	var v struct {
		State    string `json:"state"`
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
	}
	// The answer's text is never quoted: it holds a one-time password.
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return nil, errors.New("the amountauth hook's answer is not the JSON object {state, amount, currency}")
	}
	out := &verification{state: v.State}
	if v.Amount != "" {
		m, err := ecml.ParseAmount(v.Amount, v.Currency)
		if err != nil {
			return nil, fmt.Errorf("the amountauth hook's amount is not an amount in %q (value not shown)", v.Currency)
		}
		c.redact(m)
		out.amount = &m
	}
	switch v.State {
	case hookApproved, hookCancelled, hookRefunded, hookNone:
	default:
		return nil, fmt.Errorf("the amountauth hook reports state %q, not one of approved, cancelled, refunded, none", v.State)
	}
	return out, nil
}

// aaLearn asks the hook for the verification approval of a session that
// awaits the amount: it must stand at the issuer, and its amount (the
// challenge) be in the purchase's currency, within the ceiling and below
// the purchase amount (KECIS §15.3.4).
func aaLearn(c *C, s *aaSession) error {
	if c.Profile.Hooks.AmountAuth == nil {
		return Skip("the profile names no amountauth hook (hooks.amountauth): the suite cannot learn the amount the cardholder was texted")
	}
	v, err := c.aaHook(s)
	if err != nil {
		return NeedsReview("the amountauth hook failed: %v", err)
	}
	switch {
	case v.state == hookNone:
		return fmt.Errorf("start answered %s, but the issuer holds no verification approval of session %s (the amountauth hook)", aaAwaiting, s.id)
	case v.state != hookApproved:
		return fmt.Errorf("the session awaits the amount, but its verification approval is %s at the issuer already", v.state)
	case v.amount == nil:
		return NeedsReview("the amountauth hook reports the verification approval without its amount")
	}
	m := *v.amount
	var p []string
	if m.Currency != s.amount.Currency {
		p = append(p, fmt.Sprintf("it is in %s, the purchase in %s", m.Currency, s.amount.Currency))
	}
	// The amount itself is never named: it is the cardholder's password.
	if m.Minor <= 0 || m.Minor >= s.amount.Minor {
		p = append(p, "its amount is not above zero and below the purchase amount")
	}
	if m.Minor > s.ceiling.Minor {
		p = append(p, "its amount exceeds the session's public ceiling")
	}
	if len(p) > 0 {
		return fmt.Errorf("the verification approval of session %s: %s", s.id, strings.Join(p, "; "))
	}
	s.challenge = &m
	c.Note("the amountauth hook: the verification approval of session %s stands at the issuer, within the ceiling %s", s.id, s.ceiling)
	return nil
}

// aaConfirmMatch confirms the matched session with the challenge; a
// Pending answer (processing) is followed with status until the session
// is decided.
func aaConfirmMatch(c *C) error {
	s := getAA(c, "aa-match")
	x, err := c.aaConfirm(s, "confirm with the texted amount", "aa-match-confirm", *s.challenge)
	if err != nil {
		return err
	}
	if err := c.answerOf(x); err != nil {
		return err
	}
	if st := x.Response.Status; st.Code == saml.StatusResponder && st.SubCode == saml.CodePending {
		c.Note("confirm answered Pending: the PG is completing the purchase; asking with status")
		if x, err = aaAwaitDecision(c, s); err != nil {
			return err
		}
	}
	if st := x.Response.Status; !st.OK() {
		return fmt.Errorf("the right amount was refused: %s", describeStatus(st))
	}
	a, err := c.aaCheck(x, s, aaApproved, true)
	if err != nil {
		return err
	}
	if a.approval == "" {
		return errors.New("the approved session names no approval number of the purchase (Transaction/Code/@Approval)")
	}
	s.approval = a.approval
	c.Set("aa-match-approved", x)
	return nil
}

// aaAwaitDecision asks status until the session is no longer processing,
// for as long as the profile's settle timeout.
func aaAwaitDecision(c *C, s *aaSession) (*Exchange, error) {
	deadline := time.Now().Add(settleWait(c))
	for {
		x, err := c.aaStatus(s, "status while processing")
		if err != nil {
			return nil, err
		}
		a, err := c.aaCheck(x, s, "", true)
		if err != nil {
			return nil, err
		}
		if a.state != aaProcessing {
			return x, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the session was still %s %s after the match", aaProcessing, settleWait(c))
		}
		if err := sleep(c, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// settleWait is how long the module waits for the truth: the profile's
// settle timeout, else 30 s.
func settleWait(c *C) time.Duration {
	if d := time.Duration(c.Profile.Timeouts.Settle); d > 0 {
		return d
	}
	return 30 * time.Second
}

func sleep(c *C, d time.Duration) error {
	select {
	case <-c.Context().Done():
		return c.Context().Err()
	case <-time.After(d):
		return nil
	}
}

// aaResultOK checks the embedded authentication result of an approved
// answer (KECIS §3, §15.3.1): the PG's, verifying with the signing keys
// its metadata publishes, of method amount-auth, bound to the purchase.
func aaResultOK(c *C, x *Exchange, s *aaSession) error {
	if x == nil || x.Response == nil {
		return errors.New("no approved answer to read")
	}
	ed := c.Descriptor()
	keys := saml.StaticKeys{ed.EntityID: ed.SigningCertificates()}
	var found *saml.AuthenticationResult
	var bad []string
	for _, el := range x.Response.AuthResults {
		r, _, err := saml.VerifyAuthenticationResult(c.Context(), el, keys, c.Now(), saml.DefaultClockSkew)
		if err != nil {
			bad = append(bad, describeRefusal(err).Error())
			continue
		}
		if r.Method == aaMethod && found == nil {
			found = r
		}
	}
	switch {
	case found == nil && len(bad) > 0:
		return fmt.Errorf("%s: the embedded kecis:AuthenticationResult does not verify with the PG's signing keys from its metadata: %s", x.Label, strings.Join(bad, "; "))
	case found == nil:
		return fmt.Errorf("%s: no embedded kecis:AuthenticationResult of method %s (%d embedded)", x.Label, aaMethod, len(x.Response.AuthResults))
	}
	r := found
	var p []string
	if m, err := ecml.ParseAmount(r.Amount, r.Currency); err != nil || m != s.amount {
		p = append(p, fmt.Sprintf("bound to the amount %q %s, the purchase is %s", r.Amount, r.Currency, s.amount))
	}
	if r.Merchant != c.Tester.EntityID {
		p = append(p, fmt.Sprintf("bound to the merchant %q, not the tester %s", r.Merchant, c.Tester.EntityID))
	}
	if r.OrderID != s.order {
		p = append(p, fmt.Sprintf("bound to the order %q, not %s", r.OrderID, s.order))
	}
	switch {
	case r.CardRef == "":
		p = append(p, "bound to no card (BoundTo/@CardRef)")
	case ecml.ContainsPAN(r.CardRef):
		p = append(p, "BoundTo/@CardRef holds a card number in clear")
	}
	if len(p) > 0 {
		return fmt.Errorf("%s: the authentication result %s: %s", x.Label, r.ID, strings.Join(p, "; "))
	}
	c.Note("%s: authentication result %s of %s verifies: method %s, bound to %s %s, merchant %s, order %s, card %s, valid until %s",
		x.Label, r.ID, r.Issuer, r.Method, r.Amount, r.Currency, r.Merchant, r.OrderID, r.CardRef, r.NotOnOrAfter.Format(saml.TimeLayout))
	last4 := ecml.PAN(s.card.Number).Last4()
	if !strings.HasSuffix(r.CardRef, last4) {
		return Warn("BoundTo/@CardRef %q does not end with the card's last four digits: a masked card number names them (KECIS §15.3.1)", r.CardRef)
	}
	if r.Factors != 1 {
		return Warn("kecis:Method/@Factors is %d: amount authentication is one factor (KECIS §15.3.1)", r.Factors)
	}
	return nil
}

// aaVoided asks the hook until the verification approval of an ended
// session is voided (cancelled, or refunded when it was settled), for as
// long as the profile's settle timeout (KECIS §15.3.3).
func aaVoided(c *C, s *aaSession) error {
	if c.Profile.Hooks.AmountAuth == nil {
		return Skip("the profile names no amountauth hook (hooks.amountauth)")
	}
	wait := settleWait(c)
	deadline := time.Now().Add(wait)
	for {
		v, err := c.aaHook(s)
		if err != nil {
			return NeedsReview("the amountauth hook failed: %v", err)
		}
		switch v.state {
		case hookCancelled, hookRefunded:
			c.Note("the amountauth hook: the verification approval of session %s is %s at the issuer", s.id, v.state)
			return nil
		case hookNone:
			return NeedsReview("the amountauth hook no longer finds the verification approval of session %s, which it reported approved before", s.id)
		}
		if time.Now().After(deadline) {
			c.Note("the amountauth hook: the verification approval of session %s is %s at the issuer, asked for %s after the session ended", s.id, v.state, wait)
			return fmt.Errorf("%s after session %s ended, its verification approval still stands at the issuer (%s): a stray charge on the cardholder's card", wait, s.id, v.state)
		}
		if err := sleep(c, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// aaVoidPurchase voids a purchase the module had approved (best effort,
// not judged), through the card service when the PG declares it.
func (c *C) aaVoidPurchase(s *aaSession) {
	if s == nil || s.approval == "" || !c.Declares(svcCancel) {
		return
	}
	req, err := c.refRequest(svcCancel, c.Key(s.label+"-void"), s.order, s.approval, nil)
	if err != nil {
		return
	}
	if v, err := c.Exchange(c.Context(), "clean-up void of the purchase of "+s.label, ViaHub, req, Seal{}); err == nil {
		c.Note("clean-up: voided the purchase: %s", v.Describe())
	}
}

// wrongAmount is an amount the suite types in place of the challenge:
// random (so that an echo of it tells nothing of the challenge), within
// the ceiling, not the challenge, from the upper half of the range where
// there is room.
func wrongAmount(challenge, ceiling ecml.Money) (ecml.Money, error) {
	lo, hi := max(1, ceiling.Minor/2), ceiling.Minor-1
	if hi <= lo {
		lo, hi = 1, ceiling.Minor
	}
	if hi <= lo {
		return ecml.Money{}, fmt.Errorf("the ceiling %s leaves no wrong amount to type", ceiling)
	}
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(hi-lo+1))
		if err != nil {
			return ecml.Money{}, err
		}
		if v := lo + n.Int64(); v != challenge.Minor {
			return ecml.Money{Minor: v, Currency: ceiling.Currency}, nil
		}
	}
}

// aaTypeWrong confirms s with a wrong amount (redacted like the
// challenge: it is what a cardholder types).
func (c *C) aaTypeWrong(s *aaSession, what, label string) (*Exchange, error) {
	w, err := wrongAmount(*s.challenge, s.ceiling)
	if err != nil {
		return nil, err
	}
	c.redact(w)
	return c.aaConfirm(s, what, label, w)
}

// aaSecondSession starts a session and learns its challenge.
func aaSecondSession(c *C, label string) (*aaSession, error) {
	if c.Profile.Hooks.AmountAuth == nil {
		return nil, Skip("the profile names no amountauth hook (hooks.amountauth): the suite cannot tell a wrong amount from the right one")
	}
	s, err := aaStart(c, label)
	if err != nil {
		return nil, err
	}
	if err := aaLearn(c, s); err != nil {
		return nil, err
	}
	c.Set(label, s)
	return s, nil
}

// expiredEarly turns a refusal as Expired, before the suite was done with
// the session, into advice on the profile.
func expiredEarly(c *C, x *Exchange, s *aaSession) error {
	if x.Response != nil && x.Response.Status.SubCode == saml.CodeExpired {
		return tooShort(c, s)
	}
	return nil
}

func tooShort(c *C, s *aaSession) error {
	return NeedsReview("session %s expired %s after it started, before the suite was done with it: the PG's timeout for the tester is too short for the run (the profile says %s)",
		s.id, time.Since(s.started).Round(time.Millisecond), time.Duration(c.Profile.AmountAuth.Timeout))
}

func aaWrongAmount(c *C) error {
	s, err := aaSecondSession(c, "aa-wrong")
	if err != nil {
		return err
	}
	x, err := c.aaTypeWrong(s, "confirm with a wrong amount", "aa-wrong-confirm")
	if err != nil {
		return err
	}
	if err := expectStatus(c, x, saml.StatusResponder, saml.CodeDeclined); err != nil {
		if r := expiredEarly(c, x, s); r != nil {
			return r
		}
		return err
	}
	if _, err := c.aaCheck(x, s, aaAwaiting, false); err != nil {
		return err
	}
	st, err := c.aaStatus(s, "status after the wrong amount")
	if err != nil {
		return err
	}
	if st.Response != nil && !st.Response.Status.OK() {
		return fmt.Errorf("status answered %s; it answers Success in every state", describeStatus(st.Response.Status))
	}
	_, err = c.aaCheck(st, s, aaAwaiting, true)
	return err
}

func aaOtherMerchant(c *C) error {
	if c.Second == nil {
		return Skip("the profile gives no second identity (second:) of the tester's standing to reach the tester's session with")
	}
	s := getAA(c, "aa-wrong")
	if s == nil || s.challenge == nil {
		return Skip("amountauth.wrong-amount started no session awaiting the amount")
	}
	var errs []error
	for i, service := range []string{svcAAStatus, svcAAConfirm} {
		_, op, _ := saml.SplitService(service)
		var typed *ecml.Money
		if service == svcAAConfirm {
			typed = s.challenge
		}
		unknown := lookalike(s.id)
		label := fmt.Sprintf("aa-other-%d", i+1)
		control, err := c.aaSend(fmt.Sprintf("control: %s of an unknown session, as the second identity", op), label+"-unknown", c.Second, service, unknown, s.ceiling, typed)
		if err != nil {
			return err
		}
		x, err := c.aaSend(fmt.Sprintf("%s of the tester's session, as the second identity", op), label, c.Second, service, s.id, s.ceiling, typed)
		if err != nil {
			return err
		}
		if err := controlHolds(c, control, sessionWords); err != nil {
			return err
		}
		if err := sameAsUnknown(c, x, control, []string{s.id}, []string{unknown}, sessionWords); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, err))
			continue
		}
		c.Note("%s: %s, as for an unknown session", op, describeStatus(x.Response.Status))
	}
	st, err := c.aaStatus(s, "the tester's status after the second identity's attempts")
	if err != nil {
		return err
	}
	a, err := c.aaCheck(st, s, "", true)
	switch {
	case err != nil:
		errs = append(errs, err)
	case a.state == aaApproved:
		s.approval = a.approval
		c.aaVoidPurchase(s)
		errs = append(errs, errors.New("the second identity's confirm approved the tester's purchase"))
	case a.state == aaExpired && len(errs) == 0:
		return tooShort(c, s)
	case a.state != aaAwaiting:
		errs = append(errs, fmt.Errorf("after the second identity's attempts the tester's session is %s, not %s", a.state, aaAwaiting))
	}
	return errors.Join(errs...)
}

func aaTimeout(c *C) error {
	s := getAA(c, "aa-wrong")
	timeout := time.Duration(c.Profile.AmountAuth.Timeout)
	switch {
	case timeout == 0:
		return Skip("the profile gives no amountauth.timeout (the PG's session timeout for the tester)")
	case s == nil || s.challenge == nil:
		return Skip("amountauth.wrong-amount started no session awaiting the amount")
	}
	// The PG's deadline is at most its timeout after it answered start.
	wait := time.Until(s.started.Add(timeout + time.Second))
	c.Note("waiting %s: the PG's timeout for the tester is %s", wait.Round(time.Millisecond), timeout)
	if wait > 0 {
		if err := sleep(c, wait); err != nil {
			return err
		}
	}
	x, err := c.aaConfirm(s, "confirm with the right amount after the timeout", "aa-wrong-late", *s.challenge)
	if err != nil {
		return err
	}
	if x.Response != nil && x.Response.Status.OK() {
		if a, _ := aaAnswerOf(x.Response.Payload); a != nil {
			s.approval = a.approval
		}
		c.aaVoidPurchase(s)
		return fmt.Errorf("the purchase was approved %s after the session started (%s): the session did not expire at the profile's timeout of %s",
			time.Since(s.started).Round(time.Millisecond), describeStatus(x.Response.Status), timeout)
	}
	if err := expectStatus(c, x, saml.StatusResponder, saml.CodeExpired); err != nil {
		return fmt.Errorf("%w (the profile says the PG's timeout for the tester is %s)", err, timeout)
	}
	if _, err := c.aaCheck(x, s, aaExpired, false); err != nil {
		return err
	}
	st, err := c.aaStatus(s, "status after the timeout")
	if err != nil {
		return err
	}
	_, err = c.aaCheck(st, s, aaExpired, true)
	return err
}

func aaAttemptLimit(c *C) error {
	n := c.Profile.AmountAuth.Attempts
	if n == 0 {
		return Skip("the profile gives no amountauth.attempts (the PG's attempt limit for the tester)")
	}
	s, err := aaSecondSession(c, "aa-limit")
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		x, err := c.aaTypeWrong(s, fmt.Sprintf("wrong amount %d of %d", i, n), fmt.Sprintf("aa-limit-confirm-%d", i))
		if err != nil {
			return err
		}
		code, state := saml.CodeDeclined, aaAwaiting
		if i == n {
			code, state = saml.CodeAuthenticationRequired, aaFailed
		}
		if err := expectStatus(c, x, saml.StatusResponder, code); err != nil {
			if r := expiredEarly(c, x, s); r != nil {
				return r
			}
			return fmt.Errorf("wrong amount %d of the profile's %d attempts: %w", i, n, err)
		}
		if _, err := c.aaCheck(x, s, state, false); err != nil {
			return err
		}
	}
	st, err := c.aaStatus(s, "status after the attempt limit")
	if err != nil {
		return err
	}
	if _, err := c.aaCheck(st, s, aaFailed, true); err != nil {
		return err
	}
	x, err := c.aaConfirm(s, "confirm with the right amount after the attempt limit", "aa-limit-after", *s.challenge)
	if err != nil {
		return err
	}
	if x.Response != nil && x.Response.Status.OK() {
		if a, _ := aaAnswerOf(x.Response.Payload); a != nil {
			s.approval = a.approval
		}
		c.aaVoidPurchase(s)
		return fmt.Errorf("the right amount after the attempt limit approved the purchase (%s): a failed session must stay failed", describeStatus(x.Response.Status))
	}
	if err := expectStatus(c, x, saml.StatusResponder, saml.CodeAuthenticationRequired); err != nil {
		return fmt.Errorf("a confirm after the attempt limit: %w", err)
	}
	_, err = c.aaCheck(x, s, aaFailed, false)
	return err
}

// aaLeaks reports an answer that gives an amount-authentication secret
// away: kx:Challenge or kx:OneTimeCode (in clear or encrypted), or the
// challenge or an amount the suite typed — as a number of its own — in
// the status message or in the payload's text and attributes
// (identifiers aside).
func (c *C) aaLeaks(x *Exchange) error {
	if x.Response == nil {
		return nil
	}
	var where []string
	p := x.Response.Payload
	if p != nil && p.AmountAuth != nil && (p.AmountAuth.Challenge != "" || p.AmountAuth.EncryptedChallenge != nil) {
		where = append(where, "kx:AmountAuth/kx:Challenge")
	}
	if p != nil && (p.OneTimeCode != "" || p.EncryptedOneTimeCode != nil) {
		where = append(where, "kx:OneTimeCode")
	}
	forms := c.otpForms()
	has := func(s string) bool {
		return slices.ContainsFunc(forms, func(f string) bool { return containsNumber(s, f) })
	}
	if has(x.Response.Status.Message) {
		where = append(where, "the status message")
	}
	if p != nil {
		where = append(where, payloadLeaks(p, has)...)
	}
	if len(where) > 0 {
		return fmt.Errorf("%s: the answer gives an amount-authentication secret away (the challenge, or an amount typed for it) in %s", x.Label, strings.Join(where, ", "))
	}
	return nil
}

// leakExempt are payload attributes that hold identifiers, whose digit
// runs are no amount.
var leakExempt = []string{"ConsumerOrderID", "SessionID", "Approval", "ID", "OrderID"}

// payloadLeaks returns where in p's text and attributes has finds a
// secret.
func payloadLeaks(p *ecml.Payload, has func(string) bool) []string {
	box := etree.NewElement("box")
	if err := p.AppendTo(box); err != nil {
		return nil
	}
	var where []string
	var walk func(el *etree.Element, path string)
	walk = func(el *etree.Element, path string) {
		path += "/" + el.Tag
		for _, a := range el.Attr {
			if a.Space != "xmlns" && a.Key != "xmlns" && !slices.Contains(leakExempt, a.Key) && has(a.Value) {
				where = append(where, path+"/@"+a.Key)
			}
		}
		for _, t := range el.Child {
			if cd, ok := t.(*etree.CharData); ok && has(cd.Data) {
				where = append(where, path)
				break
			}
		}
		for _, ch := range el.ChildElements() {
			walk(ch, path)
		}
	}
	for _, el := range box.ChildElements() {
		walk(el, "")
	}
	return where
}

func aaNoChallenge(c *C) error {
	pid := c.Descriptor().EntityID
	var errs []error
	n := 0
	for _, x := range c.Exchanges() {
		if g, _, _ := saml.SplitService(x.Service); g != "amountauth" || x.Response == nil || x.Response.Issuer != pid {
			continue
		}
		n++
		if err := c.aaLeaks(x); err != nil {
			errs = append(errs, err)
			if len(errs) <= 3 {
				c.Record(x)
			}
		}
	}
	if n == 0 {
		return Skip("no amountauth answer of the participant in the run")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d answers: %w", len(errs), n, errors.Join(errs...))
	}
	c.Note("%d amountauth answers checked", n)
	return nil
}
