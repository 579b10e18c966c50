package conformance

import (
	"errors"
	"fmt"

	"github.com/kecis/kecis/saml"
)

// probe returns the exchange of the envelope module's probe.
func probe(c *C) *Exchange {
	v, _ := c.Get("probe")
	x, _ := v.(*Exchange)
	return x
}

// aspectCondition judges one aspect of the probe's answer.
func aspectCondition(id, title string, a aspect, clauses ...string) *Condition {
	return &Condition{ID: id, Title: title, Clauses: clauses, Needs: []string{"envelope.probe"}, Run: func(c *C) error {
		x := probe(c)
		c.Record(x)
		err := c.check(x, a)
		if errors.Is(err, errNA) {
			return Skip("the probe's answer carries nothing this applies to")
		}
		return err
	}}
}

func envelopeModule() *Module {
	return &Module{
		Name:  "envelope",
		Title: "Envelope, signature, status",
		Description: "A valid, signed request sent the way members send it (through the hub) gets a signed kecis:ServiceResponse over the SOAP binding: " +
			"standalone, of the profile's shape, verifying with the signing keys the metadata publishes — and no others —, answering the request, with top-level status codes only.",
		Conditions: []*Condition{
			{ID: "envelope.probe", Title: "A valid request gets the participant's signed answer over the SOAP binding",
				Clauses: []string{"KECIS §10.1", "SAML bindings §3.2.3", "KECIS §2.3"}, Run: func(c *C) error {
					req, err := c.ProbeRequest("probe")
					if err != nil {
						return err
					}
					x, err := c.Exchange(c.Context(), "envelope probe", ViaHub, req, Seal{})
					if err != nil {
						return err
					}
					c.Set("probe", x)
					c.Record(x)
					if x.Message == nil {
						return fmt.Errorf("no KECIS message came back: %s", x.Describe())
					}
					if x.HTTPStatus != 200 {
						return fmt.Errorf("the answer came with HTTP %d; the SOAP binding answers with 200", x.HTTPStatus)
					}
					if x.Response != nil && c.Hub != nil && x.Response.Issuer == c.Hub.EntityID {
						return fmt.Errorf("the hub answered for the participant: %s (%q) — the participant did not answer a valid request", describeStatus(x.Response.Status), x.Response.Status.Message)
					}
					return nil
				}},
			aspectCondition("envelope.standalone", "The answer is a standalone document: UTF-8, no DOCTYPE, comments or processing instructions, every namespace declared inside", aspStandalone, "KECIS §2.5", "KECIS §10.1"),
			aspectCondition("envelope.shape", "The answer has the profile's shape: kecis:ServiceResponse, its attributes and children in order, one enveloped signature of the allowed algorithms", aspShape, "KECIS §2.3", "KECIS §4.1", "KECIS §4.2", "KECIS §4.4"),
			aspectCondition("envelope.signature", "The answer verifies with a signing certificate the participant's metadata publishes, and only with those", aspSignature, "KECIS §4.3", "KECIS §5.1"),
			aspectCondition("envelope.issuer", "The answer's Issuer is the participant", aspIssuer, "KECIS §2.3", "SAML core §3.2.2"),
			aspectCondition("envelope.in-response-to", "InResponseTo names the request answered", aspInResponseTo, "KECIS §2.3", "SAML core §3.2.2"),
			aspectCondition("envelope.status", "Top-level SAML status codes only; a refusal carries a second-level code", aspStatus, "KECIS §6.1", "KECIS §2.4", "SAML core §3.2.2.2"),
			schemaCondition("envelope.schema", "The answer is valid against the KECIS schemas: a kecis:ServiceResponse of kecis:ServiceResponseType",
				"kecis.xsd", "kecis:ServiceResponseType", saml.NSKECIS, "ServiceResponse", []string{"envelope.probe"}, func(c *C) ([]byte, string) {
					return answerDoc(probe(c))
				}),
			{ID: "envelope.unknown-service", Title: "A request for a service the participant does not offer is refused with a signed Requester / RequestUnsupported",
				Clauses: []string{"KECIS §5.3.2", "KECIS §2.6"}, Needs: []string{"envelope.probe"}, Run: func(c *C) error {
					probeReq, err := c.ProbeRequest("unknown-service")
					if err != nil {
						return err
					}
					req := *probeReq
					req.Service = saml.ServiceURI("conformance", "unoffered")
					req.IdempotencyKey = c.Key("unknown-service")
					msg, err := c.Sealed(&req, Seal{})
					if err != nil {
						return err
					}
					// Sent directly: the hub would refuse it first.
					x := c.Send(c.Context(), "unknown service", Direct, probeReq.Service, req.ID, msg)
					c.Set("unknown-service", x)
					c.Record(x)
					return expectStatus(c, x, saml.StatusRequester, saml.StatusRequestUnsupported)
				}},
			// Its own check: a refusal's form is judged whether or not its
			// codes are the right ones.
			schemaCondition("envelope.unknown-service-schema", "The refusal of the unoffered service is valid against the KECIS schemas: a kecis:ServiceResponse of kecis:ServiceResponseType",
				"kecis.xsd", "kecis:ServiceResponseType", saml.NSKECIS, "ServiceResponse", []string{"envelope.probe"}, func(c *C) ([]byte, string) {
					v, _ := c.Get("unknown-service")
					x, _ := v.(*Exchange)
					return answerDoc(x)
				}),
		},
	}
}

// expectStatus checks that x is the participant's verified answer with
// the given top-level code and (when not empty) second-level code.
func expectStatus(c *C, x *Exchange, code, sub string) error {
	return expectStatusFrom(x, c.answerOf, code, sub)
}

// expectStatusFrom is expectStatus with the signer judged by from (the
// participant, or the hub when it refuses in the participant's place).
func expectStatusFrom(x *Exchange, from func(*Exchange) error, code, sub string) error {
	if x.Fault != nil {
		return fmt.Errorf("refused with an unsigned SOAP fault (%q), but the request verified: KECIS §5.3.2 answers it with a signed %s", x.Fault.String, saml.Status{Code: code, SubCode: sub}.Short())
	}
	if err := from(x); err != nil {
		return err
	}
	st := x.Response.Status
	if st.Code != code || (sub != "" && st.SubCode != sub) {
		want := saml.Status{Code: code, SubCode: sub}.Short()
		if st.OK() {
			return fmt.Errorf("accepted (%s); expected the refusal %s", describeStatus(st), want)
		}
		return fmt.Errorf("answered %s; expected %s", describeStatus(st), want)
	}
	return nil
}

// answerDoc is the KECIS message an exchange brought back, or why there
// is none.
func answerDoc(x *Exchange) ([]byte, string) {
	switch {
	case x == nil:
		return nil, "no answer to check"
	case x.Message != nil:
		return x.Message, ""
	case x.Fault != nil:
		return nil, "the answer is a SOAP fault, not a KECIS message (the binding's form, KECIS §10.1)"
	}
	return nil, "no KECIS message came back: " + x.Describe()
}
