package conformance

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// authorizationModule checks the participant's authorization (KECIS §13):
// another participant of the tester's standing (the profile's second
// identity) cannot reach the tester's payment — it gets exactly the answer
// an unknown order gets (object level, §13.3) — and a participant of a role
// the participant's services do not admit (the profile's outsider) is
// refused with RequestDenied (function level, §13.2). Both go directly to
// the participant: the hub would refuse the outsider before the
// participant is tested, and it does not know whose an object is.
func authorizationModule() *Module {
	owner := []string{"authorization.owner-approves"}
	return &Module{
		Name:  "authorization",
		Title: "Authorization: whose payment it is, who may call",
		Description: "The tester approves a payment; a second participant of the same standing (the profile's second:) inquires, refunds and cancels it by order number and by approval number, directly, and must get exactly the answer an unknown order gets, " +
			"while the tester still finds its payment unchanged. A participant of a role the participant's services do not admit (the profile's outsider:) calls each of them and must be refused with a signed Requester / RequestDenied.",
		Conditions: []*Condition{
			{ID: "authorization.owner-approves", Title: "The tester approves the payment another participant will try to reach",
				Clauses: []string{"KECIS §13.3", "KECIS §13.1"}, Service: svcApprove, Run: ownerApproves},
			{ID: "authorization.other-inquire", Title: "Another participant inquiring the tester's payment, by order number and by approval number, gets exactly the answer an unknown order gets",
				Clauses: []string{"KECIS §13.3"}, Service: svcInquire, Needs: owner, Run: otherOwner(svcInquire)},
			{ID: "authorization.other-refund", Title: "Another participant refunding the tester's payment gets exactly the answer an unknown order gets",
				Clauses: []string{"KECIS §13.3"}, Service: svcRefund, Needs: owner, Run: otherOwner(svcRefund)},
			{ID: "authorization.other-cancel", Title: "Another participant cancelling the tester's payment gets exactly the answer an unknown order gets",
				Clauses: []string{"KECIS §13.3"}, Service: svcCancel, Needs: owner, Run: otherOwner(svcCancel)},
			{ID: "authorization.owner-inquire", Title: "The tester still inquires its payment, unchanged: the same approval, approved, nothing refunded",
				Clauses: []string{"KECIS §13.3"}, Service: svcInquire, Needs: owner, Run: ownerInquires},
			{ID: "authorization.caller-role", Title: "A participant of a role a service does not admit is refused: signed Requester / RequestDenied",
				Clauses: []string{"KECIS §13.2", "KECIS §13.1"}, Run: callerRole},
		},
	}
}

// authzState is the tester's payment the module tries to reach.
type authzState struct {
	cardState
	approve *Exchange
}

func ownerApproves(c *C) error {
	switch {
	case c.Second == nil:
		return Skip("the profile gives no second identity (second:) of the tester's standing to reach the tester's payment with")
	case c.Profile.Card == nil:
		return Skip("the profile has no card section (test cards)")
	}
	tc, m := c.card()
	x, err := c.approve("authz-owner", ViaHub, tc, m)
	if err != nil {
		return err
	}
	a, err := cardOK(c, x)
	if err != nil {
		return err
	}
	if a.Number == "" {
		return errors.New("the approval carries no approval number (Transaction/Code/@Approval): another participant could not name it")
	}
	c.Set("authz", &authzState{cardState: cardState{card: tc, amount: m, order: c.OrderID("authz-owner"), approval: a}, approve: x})
	c.Note("the tester (%s) owns order %s, approval %s; the second identity is %s", c.Tester.EntityID, c.OrderID("authz-owner"), a.Number, c.Second.EntityID)
	return nil
}

func getAuthz(c *C) *authzState {
	v, _ := c.Get("authz")
	st, _ := v.(*authzState)
	return st
}

// reference is how a request names the payment: by order number, by
// approval number, or both (as its owner names it to cancel or refund).
type reference struct {
	name            string
	order, approval bool
}

var (
	byOrder    = reference{"by order number", true, false}
	byApproval = reference{"by approval number", false, true}
	byBoth     = reference{"by order and approval number", true, true}
)

// otherOwner has the second identity operate on the tester's payment with
// service, each way of naming it, beside a control naming an unknown
// payment the same way: the two answers must be the same (KECIS §13.3).
func otherOwner(service string) func(c *C) error {
	refs := []reference{byOrder, byApproval}
	if service != svcInquire {
		refs = append(refs, byBoth)
	}
	return func(c *C) error {
		st := getAuthz(c)
		var amount *ecml.Money
		if service == svcRefund {
			amount = &ecml.Money{Minor: st.amount.Minor / 2, Currency: st.amount.Currency}
		}
		_, op, _ := saml.SplitService(service)
		var errs []error
		for i, r := range refs {
			label := fmt.Sprintf("authz-%s-%d", op, i+1)
			var order, approval, unknownOrder, unknownApproval string
			if r.order {
				order, unknownOrder = st.order, c.OrderID(label+"-unknown")
			}
			if r.approval {
				approval, unknownApproval = st.approval.Number, lookalike(st.approval.Number)
			}
			control, err := c.asSecond(fmt.Sprintf("control: %s of an unknown order %s, as the second identity", op, r.name), label+"-unknown", service, unknownOrder, unknownApproval, amount)
			if err != nil {
				return err
			}
			x, err := c.asSecond(fmt.Sprintf("%s of the tester's payment %s, as the second identity", op, r.name), label, service, order, approval, amount)
			if err != nil {
				return err
			}
			if err := controlHolds(c, control, paymentWords); err != nil {
				return err
			}
			if err := sameAsUnknown(c, x, control, []string{order, approval}, []string{unknownOrder, unknownApproval}, paymentWords); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", op, r.name, err))
				continue
			}
			c.Note("%s %s: %s, as for an unknown order", op, r.name, describeStatus(x.Response.Status))
		}
		return errors.Join(errs...)
	}
}

// asSecond sends a card request of the second identity naming order and
// approval, directly to the participant, and records the exchange.
func (c *C) asSecond(what, label, service, order, approval string, amount *ecml.Money) (*Exchange, error) {
	key := ""
	if saml.IsMutation(service) {
		key = c.Key(label)
	}
	req, err := c.refRequestAs(c.Second, service, key, order, approval, amount)
	if err != nil {
		return nil, err
	}
	x, err := c.ExchangeAs(c.Context(), what, c.Second, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	return x, nil
}

// objectWords name the tester's object another participant tries to
// reach, in the messages of controlHolds and sameAsUnknown.
type objectWords struct {
	unknown string // what the control names: "an unknown order"
	theirs  string // "the tester's payment"
	it      string // "the payment"
}

var (
	paymentWords = objectWords{unknown: "an unknown order", theirs: "the tester's payment", it: "the payment"}
	sessionWords = objectWords{unknown: "an unknown session", theirs: "the tester's session", it: "the session"}
)

// controlHolds checks that the control — an unknown object named by the
// second identity — got the participant's signed refusal: otherwise the
// second identity is not a caller of the tester's standing (a person must
// look), or the participant answers for objects that do not exist.
func controlHolds(c *C, control *Exchange, w objectWords) error {
	if err := c.answerOf(control); err != nil {
		return NeedsReview("the control (%s named by the second identity %s) got no signed answer from the participant: %v — the second identity must be a registered participant the participant admits as it admits the tester", w.unknown, c.Second.EntityID, err)
	}
	st := control.Response.Status
	switch {
	case st.SubCode == saml.StatusRequestDenied:
		return NeedsReview("the participant does not admit the second identity %s (%s): give it the tester's standing (its role among the services' callers)", c.Second.EntityID, describeStatus(st))
	case st.OK():
		return fmt.Errorf("%s was answered %s: it must be refused", w.unknown, describeStatus(st))
	}
	return nil
}

// sameAsUnknown compares the answer to the tester's object with the
// control's, each with the references it named masked: the status, its
// second-level code and message, and whether a payload came back must be
// the same, so that the answer does not tell that the object exists.
func sameAsUnknown(c *C, x, control *Exchange, refs, controlRefs []string, w objectWords) error {
	if err := c.answerOf(x); err != nil {
		return fmt.Errorf("%v; %s gets %s", err, w.unknown, describeStatus(control.Response.Status))
	}
	got, want := x.Response.Status, control.Response.Status
	if got.OK() {
		return fmt.Errorf("answered %s — another participant reached %s", describeStatus(got), w.theirs)
	}
	gm, wm := maskRefs(got.Message, refs), maskRefs(want.Message, controlRefs)
	gp, wp := x.Response.Payload != nil, control.Response.Payload != nil
	if got.Code != want.Code || got.SubCode != want.SubCode || gm != wm || gp != wp {
		d := func(st saml.Status, payload bool) string {
			s := describeStatus(st)
			if payload {
				s += " with a payload"
			}
			return s
		}
		return fmt.Errorf("answered %s; %s gets %s — the difference tells another participant that %s exists", d(got, gp), w.unknown, d(want, wp), w.it)
	}
	return nil
}

// maskRefs replaces the references a request named in a status message,
// so that a message quoting them compares equal.
func maskRefs(msg string, refs []string) string {
	for _, r := range refs {
		if r != "" {
			msg = strings.ReplaceAll(msg, r, "<ref>")
		}
	}
	return msg
}

// lookalike is a reference of the same form as s — a digit for each digit,
// a letter for each letter of the same case — that is not s: an approval
// number the participant never issued, which a format check cannot tell
// from a real one.
func lookalike(s string) string {
	pick := func(set string) byte {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		return set[n.Int64()]
	}
	for {
		b := []byte(s)
		for i, ch := range b {
			switch {
			case ch >= '0' && ch <= '9':
				b[i] = pick("0123456789")
			case ch >= 'a' && ch <= 'z':
				b[i] = pick("abcdefghijklmnopqrstuvwxyz")
			case ch >= 'A' && ch <= 'Z':
				b[i] = pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
			}
		}
		if string(b) != s || s == "" {
			return string(b)
		}
	}
}

func ownerInquires(c *C) error {
	st := getAuthz(c)
	defer c.voidIfApproved(st.approve, st.order, "authz-owner")
	x, err := c.cardRef("authz-owner-inquire", svcInquire, st.order, "", nil)
	if err != nil {
		return err
	}
	a, err := cardOK(c, x)
	if err != nil {
		return fmt.Errorf("the tester cannot inquire its own payment: %w", err)
	}
	if a.Number != st.approval.Number || a.State != "approved" || a.Amount != st.amount || a.Refunded.Minor != 0 {
		return fmt.Errorf("the tester's payment reads approval %q, %q, %s, refunded %s; it was approval %q, approved, %s — another participant's operations changed it",
			a.Number, a.State, a.Amount, a.Refunded, st.approval.Number, st.amount)
	}
	return nil
}

func callerRole(c *C) error {
	if c.Outsider == nil {
		return Skip("the profile gives no identity of a role the participant's services do not admit (outsider:)")
	}
	roles, err := c.outsiderRoles()
	if err != nil {
		return Skip("%v", err)
	}
	var targets []metadata.OfferedService
	for _, s := range c.Descriptor().Services {
		// The front-channel services (KECIS §15.7.1, §15.5.1) are called
		// on the provider's page, never over SOAP: the cardauth and twoway
		// modules check them.
		if s.Service == svcCardAuth || s.Service == svcVCNIssue || s.Service == svcTwoWayRequest {
			continue
		}
		if !s.AdmitsCaller(c.Outsider.EntityID, roles) {
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		return Skip("every service the participant declares admits the outsider %s (roles %v): the profile's outsider must be of a role they do not admit", c.Outsider.EntityID, roles)
	}
	var errs []error
	for i, s := range targets {
		who := fmt.Sprintf("callers %v", s.Callers)
		if len(s.CallerEntities) > 0 {
			who += fmt.Sprintf(", narrowed to %v", s.CallerEntities)
		}
		c.Note("%s admits %s; the outsider %s has roles %v", s.Service, who, c.Outsider.EntityID, roles)
		req, err := c.NewRequestAs(c.Outsider, s.Service)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("authz-outsider-%d", i+1)
		if saml.IsMutation(s.Service) {
			req.IdempotencyKey = c.Key(label)
		}
		req.Payload = &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: c.OrderID(label)}}
		_, op, _ := saml.SplitService(s.Service)
		x, err := c.ExchangeAs(c.Context(), fmt.Sprintf("%s as the outsider (%s)", op, joinRoles(roles)), c.Outsider, req, Seal{})
		if err != nil {
			return err
		}
		c.Record(x)
		if err := expectStatus(c, x, saml.StatusRequester, saml.StatusRequestDenied); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Service, err))
		}
	}
	return errors.Join(errs...)
}

// outsiderRoles are the outsider's roles as the hub publishes them, else
// as the profile gives them.
func (c *C) outsiderRoles() ([]metadata.Role, error) {
	id := c.Outsider.EntityID
	if c.Hub != nil {
		t, err := LoadTarget(c.Context(), MDQURL(c.Hub.URL, id), c.Hub.SigningCerts, HubMetadataClient(c.Hub), c.Now())
		switch {
		case err != nil:
			c.Note("the hub does not publish the outsider's metadata: %v", err)
		case t.Descriptor == nil || !t.Signed:
			c.Note("the outsider's metadata from the hub does not verify: %v", t.SignErr)
		case t.Descriptor.EntityID != id:
			c.Note("the hub served %s for the outsider %s", t.Descriptor.EntityID, id)
		default:
			c.Note("the outsider's roles, as the hub publishes them: %v", t.Descriptor.Roles)
			return t.Descriptor.Roles, nil
		}
	}
	if len(c.Profile.Outsider.Roles) == 0 {
		return nil, fmt.Errorf("the outsider's roles are unknown: no hub publishes its metadata and the profile gives no outsider.roles")
	}
	var roles []metadata.Role
	for _, r := range c.Profile.Outsider.Roles {
		roles = append(roles, metadata.Role(r))
	}
	c.Note("the outsider's roles, as the profile gives them: %v", roles)
	return roles, nil
}

func joinRoles(rs []metadata.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
