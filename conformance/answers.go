package conformance

import (
	"errors"

	"fmt"
	"github.com/beevik/etree"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// aspect is one property of an answer that the envelope module checks on
// its probe and the responses module on every answer of the run.
type aspect int

const (
	aspStandalone aspect = iota
	aspShape
	aspSignature
	aspDecrypt
	aspIssuer
	aspInResponseTo
	aspStatus
	aspEncryption
	aspNoPAN
	aspTime
	aspFault
)

// errNA: the aspect does not apply to this exchange.
var errNA = errors.New("not applicable")

var allowedContent = []string{saml.AlgAES256GCM, saml.AlgAES128GCM}
var allowedTransport = []string{saml.AlgRSAOAEPMGF1P, saml.AlgRSAOAEP}

// publicFaultTexts are the category texts of KECIS §5.3.1.
var publicFaultTexts = []string{"message too large", "malformed message", "message does not follow the KECIS profile", "message could not be verified", "message could not be processed"}

func reasonIn(x *Exchange, reasons ...string) bool { return slices.Contains(reasons, x.ReadReason) }

// check judges one aspect of x's answer: nil when it holds, errNA when it
// does not apply, else what is wrong.
func (e *Env) check(x *Exchange, a aspect) error {
	if a == aspNoPAN {
		if len(x.Body) == 0 {
			return errNA
		}
		if where := panIn(x.Body); where != "" {
			return fmt.Errorf("%s: a Luhn-valid card number stands in clear in the answer (%s)", x.Label, where)
		}
		return nil
	}
	if a == aspFault {
		if x.Fault == nil {
			return errNA
		}
		var p []string
		if x.HTTPStatus != 500 {
			p = append(p, fmt.Sprintf("HTTP %d (SOAP 1.1 faults travel with HTTP 500)", x.HTTPStatus))
		}
		if x.Fault.Code != "soap:Client" && x.Fault.Code != "soap:Server" {
			p = append(p, fmt.Sprintf("faultcode %q (soap:Client or soap:Server)", x.Fault.Code))
		}
		// A refusal of the connection (not the hub's or a tester's TLS
		// client certificate) is no message refusal: any text will do.
		if !x.TransportRefusal && !slices.Contains(publicFaultTexts, x.Fault.String) {
			p = append(p, fmt.Sprintf("faultstring %q is not one of the public category texts", x.Fault.String))
		}
		if len(p) > 0 {
			return fmt.Errorf("%s: %s", x.Label, strings.Join(p, "; "))
		}
		return nil
	}
	if x.Message == nil {
		return errNA
	}
	// Hub statuses are the hub's business, not the participant's.
	if x.Response != nil && e.Hub != nil && x.Response.Issuer == e.Hub.EntityID && a != aspSignature {
		return errNA
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{x.Label}, args...)...)
	}
	switch a {
	case aspStandalone:
		if reasonIn(x, "doctype", "malformed", "too_large") {
			return fail("the answer is not a standalone KECIS document: %v", x.ReadErr)
		}
	case aspShape:
		if reasonIn(x, "shape", "algorithm", "structure", "version") {
			return fail("the answer does not follow the profile: %v", x.ReadErr)
		}
	case aspSignature:
		if reasonIn(x, "signature", "unknown_issuer") {
			return fail("the answer does not verify with the signing keys the metadata publishes: %v", x.ReadErr)
		}
		if x.Response == nil {
			return errNA
		}
	case aspDecrypt:
		if reasonIn(x, "decryption", "payload") {
			return fail("the answer's payload cannot be decrypted and read: %v", x.ReadErr)
		}
	case aspIssuer:
		if x.Response == nil {
			return errNA
		}
		if x.Response.Issuer != e.Descriptor().EntityID {
			return fail("Issuer is %q, not the participant", x.Response.Issuer)
		}
	case aspInResponseTo:
		if x.Response == nil || x.RequestID == "" {
			return errNA
		}
		if x.Response.InResponseTo != x.RequestID {
			return fail("InResponseTo %q does not name the request it answers (%s)", x.Response.InResponseTo, x.RequestID)
		}
	case aspStatus:
		if x.Response == nil {
			return errNA
		}
		st := x.Response.Status
		if sub := st.SubCode; sub != "" && !strings.HasPrefix(sub, saml.KECISStatusPrefix) && !strings.HasPrefix(sub, "urn:oasis:names:tc:SAML:2.0:status:") {
			return fail("second-level status %q is neither a KECIS code nor SAML's", sub)
		}
		if st.Code != saml.StatusSuccess && st.SubCode == "" {
			return fail("a refusal (%s) without a second-level code that tells the sender why", st.Top())
		}
	case aspEncryption:
		rep := saml.Inspect(x.Message)
		if len(rep.Encrypted) == 0 {
			return errNA
		}
		var p []string
		for _, ei := range rep.Encrypted {
			if ei.Type != saml.TypeElement {
				p = append(p, fmt.Sprintf("%s: Type %q", ei.Path, ei.Type))
			}
			if !slices.Contains(allowedContent, ei.EncryptionMethod) {
				p = append(p, fmt.Sprintf("%s: content algorithm %s is not allowed", ei.Path, ei.EncryptionMethod))
			}
			if !slices.Contains(allowedTransport, ei.KeyTransport) {
				p = append(p, fmt.Sprintf("%s: key transport %s is not allowed", ei.Path, ei.KeyTransport))
			}
			requester := e.identity(x.As)
			if ei.Recipient != requester.EntityID {
				p = append(p, fmt.Sprintf("%s: encrypted for %q, not the requester", ei.Path, ei.Recipient))
			}
			if requester.EncCert != nil && ei.RecipientCertSHA256 != saml.Fingerprint(requester.EncCert) {
				p = append(p, fmt.Sprintf("%s: the EncryptedKey does not name the requester's encryption certificate", ei.Path))
			}
		}
		if len(p) > 0 {
			return fail("%s", strings.Join(p, "; "))
		}
	case aspTime:
		if x.Response == nil {
			return errNA
		}
		if d := x.Response.IssueInstant.Sub(x.At); d > saml.DefaultClockSkew || d < -saml.DefaultClockSkew-time.Minute {
			return fail("IssueInstant %s is %s from the suite's clock", x.Response.IssueInstant.Format(saml.TimeLayout), d.Round(time.Second))
		}
	}
	return nil
}

// checkAll runs check over exchanges and joins the failures; it returns
// Skip when the aspect applied to none of them.
func (e *Env) checkAll(c *C, xs []*Exchange, a aspect, what string) error {
	var errs []error
	n := 0
	for _, x := range xs {
		err := e.check(x, a)
		if errors.Is(err, errNA) {
			continue
		}
		n++
		if err != nil {
			errs = append(errs, err)
			if len(errs) <= 3 {
				c.Record(x)
			}
		}
	}
	if n == 0 {
		return Skip("no answer of the run %s", what)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d answers: %w", len(errs), n, errors.Join(errs...))
	}
	c.Note("%d answers checked", n)
	return nil
}

// Where panIn does not look: identifiers (random hex, whose digit runs
// pass the Luhn check one time in ten) and base64 values.
var (
	idAttributes   = []string{"ID", "InResponseTo", "id", "URI"}
	base64Elements = []string{"DigestValue", "SignatureValue", "X509Certificate", "CipherValue"}
)

// panIn reports where a Luhn-valid 13–19 digit number stands in clear in
// an answer's body — in text or an attribute value — or "" when nowhere.
func panIn(body []byte) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		if ecml.ContainsPAN(string(body)) {
			return "the body"
		}
		return ""
	}
	var found string
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		if found != "" {
			return
		}
		for _, a := range el.Attr {
			if a.Space != "xmlns" && !slices.Contains(idAttributes, a.Key) && ecml.ContainsPAN(a.Value) {
				found = el.Tag + "/@" + a.Key
				return
			}
		}
		if !slices.Contains(base64Elements, el.Tag) {
			for _, t := range el.Child {
				if cd, ok := t.(*etree.CharData); ok && ecml.ContainsPAN(cd.Data) {
					found = el.Tag
					return
				}
			}
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(doc.Root())
	return found
}
