package saml

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
)

// DefaultClockSkew is the acceptance window around IssueInstant (KECIS §7.2).
const DefaultClockSkew = 3 * time.Minute

// Decrypter decrypts, in place, the encrypted elements of a verified
// payload that are addressed to this receiver (KECIS §8). It is the slot of
// step 7 of the receive pipeline; every failure must be the one
// indistinguishable ErrDecryption.
type Decrypter interface {
	DecryptPayload(ctx context.Context, payload *etree.Element) error
}

// Receiver runs the KECIS receive pipeline (KECIS §5.1), in this order:
//
//  1. size cap
//  2. refuse any DOCTYPE
//  3. parse (etree, depth cap; no comments or processing instructions)
//  4. shape: one root, unique IDs, exactly one signature where the profile
//     puts it, its reference naming the root
//  5. verify against the issuer's signing certificates from metadata
//  6. from here on only the element verification returned: version,
//     IssueInstant within the clock skew, Destination, issuer allowed this
//     service (OnBehalfOf only from the hub), embedded authentication
//     results, ID not seen before, InResponseTo of a pending request
//  7. decrypt what is addressed to us (allow-list first)
//  8. ECML validation
//
// and then the caller's handler. Every refusal is an *Error, counted and
// logged with its reason and never with a secret.
type Receiver struct {
	// Keys resolves issuers' signing certificates. Required.
	Keys KeyResolver
	// Replay records message IDs. Required.
	Replay ReplayCache
	// Pending matches responses to requests (ReceiveResponse only).
	Pending PendingRequests

	// Destinations are this endpoint's own published URLs; a message's
	// Destination must be one of them. AcceptDestination, when set, decides
	// instead (the hub accepts any active participant's endpoint).
	Destinations      []string
	AcceptDestination func(ctx context.Context, destination string) error

	// Authorize decides whether a verified request's issuer may call its
	// service (and, for OnBehalfOf requests, whether the named merchant may).
	// Nil allows every known issuer.
	Authorize func(ctx context.Context, req *ServiceRequest) error
	// HubEntityID is the only issuer whose requests may carry OnBehalfOf.
	HubEntityID string
	// AuthResultKeys resolves the keys of embedded authentication results'
	// issuers; nil uses Keys.
	AuthResultKeys KeyResolver

	// Decrypter decrypts what is addressed to this receiver; nil for a
	// receiver that decrypts nothing (the hub).
	Decrypter Decrypter
	// ValidatePayload runs ECML validation (step 8). Encrypted stand-ins are
	// accepted where a sensitive element stands when Decrypter is nil.
	ValidatePayload bool
	// AllowClearSensitive accepts sensitive elements (card, account number,
	// codes…) in clear. Only tools and tests set it: KECIS §8.1 requires
	// them encrypted for the final recipient.
	AllowClearSensitive bool

	ClockSkew time.Duration
	Limits    Limits
	Now       func() time.Time
	Logger    *slog.Logger
	// OnRefusal, when set, is called for every refusal (metrics).
	OnRefusal func(*Error)
}

// Received is what the pipeline hands the handler: the verified element and
// its decoded form. Raw is the exact bytes received, for the audit log.
type Received struct {
	Raw      []byte
	Verified *etree.Element
	Signer   *x509.Certificate
	// AuthResults are the embedded results, each verified on its own.
	AuthResults []*AuthenticationResult
}

// ReceivedRequest is a verified, validated request.
type ReceivedRequest struct {
	Received
	Request *ServiceRequest
}

// ReceivedResponse is a verified, validated response.
type ReceivedResponse struct {
	Received
	Response *ServiceResponse
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Receiver) skew() time.Duration {
	if r.ClockSkew > 0 {
		return r.ClockSkew
	}
	return DefaultClockSkew
}

func (r *Receiver) refuse(ctx context.Context, e *Error, issuer, id string) *Error {
	e = e.withMessage(issuer, id)
	if r.OnRefusal != nil {
		r.OnRefusal(e)
	}
	if r.Logger != nil {
		r.Logger.LogAttrs(ctx, slog.LevelWarn, "kecis message refused", slog.Any("refusal", e))
	}
	return e
}

// verifyStage runs steps 1–5 and returns the verified element.
func (r *Receiver) verifyStage(ctx context.Context, data []byte, kind messageKind) (*etree.Element, *signedParts, *x509.Certificate, error) {
	root, err := ParseDocument(data, r.Limits)
	if err != nil {
		return nil, nil, nil, err
	}
	parts, err := checkShape(root, kind)
	if err != nil {
		return nil, nil, nil, err
	}
	certs, err := r.Keys.SigningCertificates(ctx, parts.issuer)
	if err != nil {
		if errors.Is(err, ErrUnknownEntity) {
			return nil, parts, nil, ErrUnknownIssuer.WithCausef("issuer %q", parts.issuer)
		}
		return nil, parts, nil, ErrInternal.WithCause(err)
	}
	verified, cert, err := verifySigned(root, parts, certs, r.now(), true)
	if err != nil {
		return nil, parts, nil, err
	}
	return verified, parts, cert, nil
}

// checkTime enforces IssueInstant within ±skew of now (KECIS §7.2).
func (r *Receiver) checkTime(t time.Time) error {
	now, skew := r.now(), r.skew()
	if t.After(now.Add(skew)) {
		return ErrTime.WithCausef("issued %s, %s ahead of now", t.Format(TimeLayout), t.Sub(now))
	}
	if t.Before(now.Add(-skew)) {
		return ErrTime.WithCausef("issued %s, %s ago", t.Format(TimeLayout), now.Sub(t))
	}
	return nil
}

func (r *Receiver) checkDestination(ctx context.Context, dest string, required bool) error {
	if dest == "" {
		if required {
			return ErrDestination.WithCausef("no Destination")
		}
		return nil
	}
	if r.AcceptDestination != nil {
		if err := r.AcceptDestination(ctx, dest); err != nil {
			return ErrDestination.WithCause(err)
		}
		return nil
	}
	if !slices.Contains(r.Destinations, dest) {
		return ErrDestination.WithCausef("Destination %q is not one of this endpoint's URLs", dest)
	}
	return nil
}

func checkVersion(v string) error {
	if v == SAMLVersion {
		return nil
	}
	e := ErrVersion
	if major, _, _ := strings.Cut(v, "."); major < "2" {
		c := *e
		c.SubStatus = StatusRequestVersionTooLow
		e = &c
	}
	return e.WithCausef("Version %q", v)
}

// ReceiveRequest runs the pipeline on a request and returns it verified and
// validated, or an *Error whose Stage says how to answer.
func (r *Receiver) ReceiveRequest(ctx context.Context, data []byte) (*ReceivedRequest, error) {
	verified, parts, cert, err := r.verifyStage(ctx, data, kindRequest)
	if err != nil {
		issuer := ""
		if parts != nil {
			issuer = parts.issuer
		}
		return nil, r.refuse(ctx, AsError(err), issuer, "")
	}
	// From here on only `verified` is read.
	req, err := decodeRequest(verified)
	id, issuer := verified.SelectAttrValue("ID", ""), parts.issuer
	if err != nil {
		if v := verified.SelectAttrValue("Version", ""); v != SAMLVersion {
			return nil, r.refuse(ctx, AsError(checkVersion(v)), issuer, id)
		}
		return nil, r.refuse(ctx, ErrStructure.WithCause(err), issuer, id)
	}
	out := &ReceivedRequest{Received: Received{Raw: data, Verified: verified, Signer: cert}, Request: req}
	if err := r.afterVerification(ctx, &out.Received, req.Version, req.IssueInstant, req.Destination, true, req.Issuer, req.ID, req.AuthResults); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	if req.OnBehalfOf != "" && (r.HubEntityID == "" || req.Issuer != r.HubEntityID) {
		return nil, r.refuse(ctx, ErrNotAuthorized.WithCausef("OnBehalfOf from %q, which is not the hub", req.Issuer), issuer, id)
	}
	if r.Authorize != nil {
		if err := r.Authorize(ctx, req); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				pe = ErrNotAuthorized.WithCause(err)
			}
			return nil, r.refuse(ctx, pe, issuer, id)
		}
	}
	if err := r.replay(ctx, req.Issuer, req.ID, req.IssueInstant); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	if req.Payload, err = r.payloadStage(ctx, verified); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	return out, nil
}

// ReceiveResponse runs the pipeline on a response. The response must answer
// a request recorded in Pending and sent to the response's issuer.
func (r *Receiver) ReceiveResponse(ctx context.Context, data []byte) (*ReceivedResponse, error) {
	verified, parts, cert, err := r.verifyStage(ctx, data, kindResponse)
	if err != nil {
		issuer := ""
		if parts != nil {
			issuer = parts.issuer
		}
		return nil, r.refuse(ctx, AsError(err), issuer, "")
	}
	resp, err := decodeResponse(verified)
	id, issuer := verified.SelectAttrValue("ID", ""), parts.issuer
	if err != nil {
		if v := verified.SelectAttrValue("Version", ""); v != SAMLVersion {
			return nil, r.refuse(ctx, AsError(checkVersion(v)), issuer, id)
		}
		return nil, r.refuse(ctx, ErrStructure.WithCause(err), issuer, id)
	}
	out := &ReceivedResponse{Received: Received{Raw: data, Verified: verified, Signer: cert}, Response: resp}
	if err := r.afterVerification(ctx, &out.Received, resp.Version, resp.IssueInstant, resp.Destination, false, resp.Issuer, resp.ID, resp.AuthResults); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	if err := r.replay(ctx, resp.Issuer, resp.ID, resp.IssueInstant); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	if r.Pending == nil {
		return nil, r.refuse(ctx, ErrInResponseTo.WithCausef("no pending-request store configured"), issuer, id)
	}
	if err := r.Pending.Complete(ctx, resp.InResponseTo, resp.Issuer); err != nil {
		if errors.Is(err, ErrNotPending) {
			return nil, r.refuse(ctx, ErrInResponseTo.WithCausef("InResponseTo %q from %q", resp.InResponseTo, resp.Issuer), issuer, id)
		}
		return nil, r.refuse(ctx, ErrStore.WithCause(err), issuer, id)
	}
	if resp.Payload, err = r.payloadStage(ctx, verified); err != nil {
		return nil, r.refuse(ctx, AsError(err), issuer, id)
	}
	return out, nil
}

func (r *Receiver) afterVerification(ctx context.Context, out *Received, version string, issued time.Time, dest string, destRequired bool, issuer, id string, ars []*etree.Element) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if err := r.checkTime(issued); err != nil {
		return err
	}
	if err := r.checkDestination(ctx, dest, destRequired); err != nil {
		return err
	}
	keys := r.AuthResultKeys
	if keys == nil {
		keys = r.Keys
	}
	for _, el := range ars {
		ar, _, err := VerifyAuthenticationResult(ctx, el, keys, r.now(), r.skew())
		if err != nil {
			return err
		}
		out.AuthResults = append(out.AuthResults, ar)
	}
	return nil
}

func (r *Receiver) replay(ctx context.Context, issuer, id string, issued time.Time) error {
	if r.Replay == nil {
		return ErrInternal.WithCausef("no replay cache configured")
	}
	// Keep the ID for as long as the message could be accepted.
	if err := r.Replay.Remember(ctx, issuer, id, issued.Add(r.skew())); err != nil {
		if errors.Is(err, ErrAlreadySeen) {
			return ErrReplay.WithCausef("ID %q from %q", id, issuer)
		}
		return ErrStore.WithCause(err)
	}
	return nil
}

func findPayload(verified *etree.Element) *etree.Element {
	for _, c := range verified.ChildElements() {
		if is(c, verified, NSKECIS, elPayload) {
			return c
		}
	}
	return nil
}

// payloadStage is steps 7 and 8: no sensitive element may travel in clear
// (KECIS §8.1); then decryption of what is addressed to us, and ECML
// validation of the result. It returns the payload as decoded after
// decryption.
func (r *Receiver) payloadStage(ctx context.Context, verified *etree.Element) (*ecml.Payload, error) {
	pel := findPayload(verified)
	if pel == nil {
		return nil, nil
	}
	if !r.AllowClearSensitive {
		if clear := ecml.SensitiveElements(pel); len(clear) > 0 {
			return nil, ErrDecryption.WithCausef("sensitive element %s travels in clear", clear[0].GetPath())
		}
	}
	if r.Decrypter != nil {
		if err := r.Decrypter.DecryptPayload(ctx, pel); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return nil, pe
			}
			return nil, ErrDecryption.WithCause(err)
		}
	}
	p, err := decodePayload(pel)
	if err != nil {
		return nil, ErrPayload.WithCause(err)
	}
	if r.ValidatePayload {
		// Stand-ins are accepted when nothing is decrypted here (the hub),
		// and those a Decryptor kept for a third party (KECIS §8.3).
		allow := r.Decrypter == nil
		if k, ok := r.Decrypter.(interface{ KeepsForOthers() bool }); ok && k.KeepsForOthers() {
			allow = true
		}
		problems := p.Validate(ecml.ValidateOptions{Now: r.now(), AllowEncrypted: allow})
		if len(problems) > 0 {
			return nil, ErrPayload.WithCause(problems)
		}
	}
	return p, nil
}

// Kind names the root element of a KECIS document.
type Kind string

const (
	KindRequest    Kind = "ServiceRequest"
	KindResponse   Kind = "ServiceResponse"
	KindAuthResult Kind = "AuthenticationResult"
)

// Verify runs the pipeline on any KECIS document (request, response or
// authentication result) up to and including signature verification and the
// version, time and Destination checks — no replay, authorisation or
// payload steps. It is what `kecis envelope verify` runs. Destination is
// checked only when Destinations or AcceptDestination is set.
func (r *Receiver) Verify(ctx context.Context, data []byte) (*etree.Element, Kind, error) {
	root, err := ParseDocument(data, r.Limits)
	if err != nil {
		return nil, "", err
	}
	var kind messageKind
	var k Kind
	switch {
	case is(root, root, NSKECIS, elServiceRequest):
		kind, k = kindRequest, KindRequest
	case is(root, root, NSKECIS, elServiceResponse):
		kind, k = kindResponse, KindResponse
	case is(root, root, NSKECIS, elAuthenticationResult):
		kind, k = kindAuthResult, KindAuthResult
	default:
		return nil, "", ErrShape.WithCausef("root %s is not a KECIS message", root.FullTag())
	}
	parts, err := checkShape(root, kind)
	if err != nil {
		return nil, k, err
	}
	certs, err := r.Keys.SigningCertificates(ctx, parts.issuer)
	if err != nil {
		return nil, k, ErrUnknownIssuer.WithCause(err)
	}
	verified, _, err := verifySigned(root, parts, certs, r.now(), true)
	if err != nil {
		return nil, k, err
	}
	if err := checkVersion(verified.SelectAttrValue("Version", "")); err != nil {
		return nil, k, err
	}
	issued, err := ParseTime(verified.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return nil, k, ErrStructure.WithCause(err)
	}
	if kind == kindAuthResult {
		if issued.After(r.now().Add(r.skew())) {
			return nil, k, ErrTime.WithCausef("authentication result issued in the future")
		}
		noa, err := ParseTime(verified.SelectAttrValue("NotOnOrAfter", ""))
		if err != nil {
			return nil, k, ErrStructure.WithCause(err)
		}
		if !r.now().Add(-r.skew()).Before(noa) {
			return nil, k, ErrTime.WithCausef("authentication result expired at %s", noa.Format(TimeLayout))
		}
	} else if err := r.checkTime(issued); err != nil {
		return nil, k, err
	} else if len(r.Destinations) > 0 || r.AcceptDestination != nil {
		if err := r.checkDestination(ctx, verified.SelectAttrValue("Destination", ""), kind == kindRequest); err != nil {
			return nil, k, err
		}
	}
	return verified, k, nil
}
