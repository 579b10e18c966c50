package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

var emptyTLS tls.Certificate

// Env is a run's environment: the participant, the tester, the hub, the
// profile, and every exchange made so far.
type Env struct {
	Target  *Target
	Profile *Profile
	Tester  *Tester
	// Second and Outsider are the profile's other identities (nil when it
	// gives none): a participant of the tester's standing, and one of a
	// role the participant's services do not admit.
	Second, Outsider *Tester
	// Hub is nil when the run sends everything directly.
	Hub *HubConfig
	// RunID makes this run's order IDs and idempotency keys unique.
	RunID string

	plan       *Plan
	now        func() time.Time
	timeout    time.Duration
	scrubber   *strings.Replacer
	directHTTP *http.Client
	hubHTTP    *http.Client
	// readers read answers, one per identity the suite sends as (by
	// entityID): each decrypts with that identity's keys.
	readers map[string]*saml.Receiver

	mu        sync.Mutex
	exchanges []*Exchange
	passed    map[string]bool
	// otps are one-time secrets learnt during the run (redact), each in
	// the forms it may be written in.
	otps []string
	// subs are environments addressed to another participant (the hub
	// plan's provider), closed with this one; their exchanges count in
	// their parent's run.
	subs   []*Env
	parent *Env
}

// Now is the run's clock.
func (e *Env) Now() time.Time { return e.now().UTC() }

// Descriptor is the participant's metadata (nil when unreadable).
func (e *Env) Descriptor() *metadata.EntityDescriptor { return e.Target.Descriptor }

// Declares reports whether the participant's metadata offers service.
func (e *Env) Declares(service string) bool {
	ed := e.Descriptor()
	if ed == nil {
		return false
	}
	_, ok := ed.Offers(service)
	return ok
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *Env) init() {
	if e.RunID == "" {
		e.RunID = newRunID()
	}
	e.scrubber = newScrubber(e.Profile.secrets())
	if ed := e.Descriptor(); ed != nil {
		e.directHTTP = e.httpClient(e.Tester.TLS, ed)
	}
	if e.Hub != nil {
		e.hubHTTP = &http.Client{Timeout: e.timeout, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(e.Tester.TLS, e.Hub.TLSCerts)}}
	}
	keys := saml.StaticKeys{}
	if ed := e.Descriptor(); ed != nil {
		keys[ed.EntityID] = ed.SigningCertificates()
	}
	if e.Hub != nil {
		keys[e.Hub.EntityID] = e.Hub.SigningCerts
	}
	replay := saml.NewMemoryReplayCache(e.now)
	e.readers = map[string]*saml.Receiver{}
	for _, id := range []*Tester{e.Tester, e.Second, e.Outsider} {
		if id == nil {
			continue
		}
		e.readers[id.EntityID] = &saml.Receiver{
			Keys:              keys,
			Replay:            replay,
			Pending:           anyPending{},
			AcceptDestination: func(context.Context, string) error { return nil },
			Decrypter:         &saml.Decryptor{EntityID: id.EntityID, Keys: id.Decryption},
			ValidatePayload:   true,
			// The clock is judged by its own condition; here only what the
			// answer says is read.
			ClockSkew: 24 * time.Hour,
			Now:       e.now,
		}
	}
}

// identity returns the identity the suite sent as: entityID, or the
// tester for "".
func (e *Env) identity(entityID string) *Tester {
	for _, id := range []*Tester{e.Second, e.Outsider} {
		if id != nil && entityID == id.EntityID {
			return id
		}
	}
	return e.Tester
}

// httpClient is a client presenting cert to the participant's endpoints,
// pinning its published TLS server certificates.
func (e *Env) httpClient(cert tls.Certificate, ed *metadata.EntityDescriptor) *http.Client {
	return &http.Client{Timeout: e.timeout, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(cert, ed.TLSServerCertificates()), DisableKeepAlives: true}}
}

func newScrubber(secrets []string) *strings.Replacer {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "[REDACTED]")
		}
	}
	return strings.NewReplacer(pairs...)
}

// scrub masks card numbers, the profile's secrets and the run's one-time
// secrets.
func (e *Env) scrub(s string) string {
	if e.scrubber != nil {
		s = e.scrubber.Replace(s)
	}
	return ecml.RedactPANs(e.redactOTPs(s))
}

// root is the run's environment (a sub-environment's parent).
func (e *Env) root() *Env {
	if e.parent != nil {
		return e.parent
	}
	return e
}

// redact adds amounts learnt during the run that are one-time passwords —
// an amount authentication's challenge, and what the suite typed in its
// place (KECIS §15.3) — to what every report scrubs: from now on, and
// again over the whole report when the run ends (Run). Each is redacted in
// its ECML form, grouped by thousands and in minor units, wherever it
// stands as a number of its own (not where its digits are part of a
// longer digit run).
func (e *Env) redact(amounts ...ecml.Money) {
	r := e.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range amounts {
		for _, f := range amountForms(m) {
			if !slices.Contains(r.otps, f) {
				r.otps = append(r.otps, f)
			}
		}
	}
	// Longer forms first, so that "1,234" goes whole before "234" could.
	slices.SortFunc(r.otps, func(a, b string) int { return len(b) - len(a) })
}

// amountForms are the ways an amount may be written: its ECML form
// ("1234", "12.34"), grouped by thousands ("1,234", "1,234.50") and its
// minor units ("1234" for 12.34).
func amountForms(m ecml.Money) []string {
	s, err := ecml.FormatAmount(m)
	if err != nil || m.Minor <= 0 {
		return nil
	}
	out := []string{s}
	if g := m.Grouped(); g != s {
		out = append(out, g)
	}
	if minor := fmt.Sprint(m.Minor); minor != s {
		out = append(out, minor)
	}
	return out
}

// otpForms returns the run's one-time secrets (see redact).
func (e *Env) otpForms() []string {
	r := e.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.otps)
}

// redactOTPs replaces the run's one-time secrets in s.
func (e *Env) redactOTPs(s string) string {
	for _, f := range e.otpForms() {
		s = replaceNumber(s, f, "[REDACTED]")
	}
	return s
}

// numberAt reports whether s[i:] starts with the number n standing on its
// own: no digit right before it or right after it.
func numberAt(s string, i int, n string) bool {
	isDigit := func(b byte) bool { return b >= '0' && b <= '9' }
	if !strings.HasPrefix(s[i:], n) {
		return false
	}
	if i > 0 && isDigit(s[i-1]) {
		return false
	}
	j := i + len(n)
	return j >= len(s) || !isDigit(s[j])
}

// containsNumber reports whether the number n stands on its own in s.
func containsNumber(s, n string) bool {
	if n == "" {
		return false
	}
	for i := 0; ; {
		k := strings.Index(s[i:], n)
		if k < 0 {
			return false
		}
		if numberAt(s, i+k, n) {
			return true
		}
		i += k + 1
	}
}

// replaceNumber replaces every occurrence of the number n standing on its
// own in s with repl.
func replaceNumber(s, n, repl string) string {
	if n == "" || !strings.Contains(s, n) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if numberAt(s, i, n) {
			b.WriteString(repl)
			i += len(n)
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// rescrub redacts the run's one-time secrets from what conditions
// recorded before the secret was learnt.
func (e *Env) rescrub(rep *Report) {
	if len(e.otpForms()) == 0 {
		return
	}
	for _, m := range rep.Modules {
		for _, c := range m.Conditions {
			c.Message = e.redactOTPs(c.Message)
			for i := range c.Evidence {
				c.Evidence[i].Content = e.redactOTPs(c.Evidence[i].Content)
			}
		}
	}
}

// anyPending is the response reader's pending-request store: it accepts
// every InResponseTo, which the suite compares with the request itself as
// a check of its own (envelope.in-response-to, responses.in-response-to).
type anyPending struct{}

func (anyPending) Add(context.Context, string, string, time.Time) error { return nil }
func (anyPending) Complete(context.Context, string, string) error       { return nil }

// close releases the run's connections.
func (e *Env) close() {
	for _, s := range e.subs {
		s.close()
	}
	for _, c := range []*http.Client{e.directHTTP, e.hubHTTP} {
		if c != nil {
			c.CloseIdleConnections()
		}
	}
}

// Endpoint returns the participant's SOAP endpoint for service.
func (e *Env) Endpoint(service string) (string, error) {
	ed := e.Descriptor()
	if ed == nil {
		return "", errors.New("the participant's metadata could not be read")
	}
	ep, ok := ed.Endpoint(service, saml.BindingSOAP)
	if !ok {
		return "", fmt.Errorf("the metadata publishes no SOAP endpoint for %s", service)
	}
	return ep.Location, nil
}

// NewRequest starts a request from the tester to the participant's
// endpoint for service.
func (e *Env) NewRequest(service string) (*saml.ServiceRequest, error) {
	return e.NewRequestAs(e.Tester, service)
}

// NewRequestAs starts a request from identity id (the tester, Second or
// Outsider) to the participant's endpoint for service; ExchangeAs sends it.
func (e *Env) NewRequestAs(id *Tester, service string) (*saml.ServiceRequest, error) {
	dest, err := e.Endpoint(service)
	if err != nil {
		return nil, err
	}
	b := &saml.Builder{Issuer: id.EntityID, Now: e.now}
	return b.NewRequest(dest, service)
}

// Seal options.
type Seal struct {
	// Encryptor replaces the default encryption for the participant
	// (AES-256-GCM, rsa-oaep-mgf1p); NoEncrypt leaves sensitive elements
	// in clear.
	Encryptor *saml.Encryptor
	NoEncrypt bool
	// Tamper changes the element after encryption and before signing.
	Tamper func(root *etree.Element) error
	// Signer replaces the tester's signer; Unsigned leaves the message
	// unsigned.
	Signer   *saml.Signer
	Unsigned bool
}

// Build returns the request as an unsigned element with its sensitive
// elements encrypted (the step before signing).
func (e *Env) Build(req *saml.ServiceRequest, o Seal) (*etree.Element, error) {
	root, err := req.Element()
	if err != nil {
		return nil, err
	}
	if !o.NoEncrypt {
		if p := childElement(root, "Payload"); p != nil && len(ecml.SensitiveElements(p)) > 0 {
			enc := o.Encryptor
			if enc == nil {
				cert, ok := e.Descriptor().EncryptionCertificate(e.Now())
				if !ok {
					return nil, errors.New("the participant publishes no encryption certificate valid now")
				}
				enc = &saml.Encryptor{Recipient: e.Descriptor().EntityID, Cert: cert}
			}
			if _, err := saml.EncryptDocument(root, enc); err != nil {
				return nil, err
			}
		}
	}
	if o.Tamper != nil {
		if err := o.Tamper(root); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// Sealed builds, encrypts and signs a request (see Seal).
func (e *Env) Sealed(req *saml.ServiceRequest, o Seal) ([]byte, error) {
	root, err := e.Build(req, o)
	if err != nil {
		return nil, err
	}
	if o.Unsigned {
		return saml.Serialize(root)
	}
	s := o.Signer
	if s == nil {
		s = e.Tester.Signer
	}
	return s.SignToBytes(root)
}

func childElement(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// Exchange is one request and what came back.
type Exchange struct {
	Label     string
	Route     Route
	URL       string
	Service   string
	RequestID string
	// Request is the KECIS message sent (the SOAP body, when Raw).
	Request []byte
	Raw     bool
	// As is the identity the request was sent as (its entityID) when not
	// the tester: its answers are read with that identity's keys.
	As string

	HTTPStatus   int
	Body         []byte
	TransportErr error
	// Fault is the SOAP fault the peer answered with.
	Fault *saml.Fault
	// Message is the KECIS message in the answer.
	Message []byte
	// Response is the answer verified (signature, with the metadata keys
	// only) and decoded, its payload decrypted; ReadErr why it is nil
	// although a message came back.
	Response *saml.ServiceResponse
	ReadErr  error
	// TransportRefusal marks an exchange whose refusal is the connection's
	// (a TLS client certificate), not a message's.
	TransportRefusal bool
	// ReadReason is the pipeline's reason for ReadErr ("signature",
	// "shape", "decryption"…).
	ReadReason string
	At         time.Time
	Elapsed    time.Duration
}

// Answered reports a verified ServiceResponse.
func (x *Exchange) Answered() bool { return x.Response != nil }

// From is the answer's issuer.
func (x *Exchange) From() string {
	if x.Response == nil {
		return ""
	}
	return x.Response.Issuer
}

// Status is the verified answer's status (zero without one).
func (x *Exchange) Status() saml.Status {
	if x.Response == nil {
		return saml.Status{}
	}
	return x.Response.Status
}

// Describe summarises the answer in one line for messages.
func (x *Exchange) Describe() string {
	switch {
	case x.TransportErr != nil:
		return "no answer: " + x.TransportErr.Error()
	case x.Fault != nil:
		return fmt.Sprintf("HTTP %d SOAP fault %s %q", x.HTTPStatus, x.Fault.Code, x.Fault.String)
	case x.Response != nil:
		s := x.Response.Status
		d := "signed " + s.Short()
		if x.Response.Issuer != "" && x.Route == ViaHub {
			d += " from " + x.Response.Issuer
		}
		return d
	case x.Message != nil:
		return fmt.Sprintf("HTTP %d, an answer that does not verify: %v", x.HTTPStatus, x.ReadErr)
	}
	return fmt.Sprintf("HTTP %d, unreadable answer: %v", x.HTTPStatus, x.ReadErr)
}

func (x *Exchange) evidence(e *Env) []Evidence {
	head := fmt.Sprintf("%s → %s (%s)", x.Label, x.URL, x.Route)
	if x.As != "" {
		head += "\nsent as " + x.As
	}
	if x.Service != "" {
		head += "\nservice " + x.Service
	}
	if x.RequestID != "" {
		head += "\nrequest ID " + x.RequestID
	}
	head += "\nanswer: " + x.Describe()
	if x.Response != nil {
		head += "\nInResponseTo " + x.Response.InResponseTo
		if x.Response.Status.Message != "" {
			head += fmt.Sprintf("\nStatusMessage %q", x.Response.Status.Message)
		}
	}
	head += fmt.Sprintf("\n%d ms", x.Elapsed.Milliseconds())
	out := []Evidence{{Label: "exchange", Kind: "text", Content: e.scrub(head)}}
	if len(x.Request) > 0 {
		req := x.Request
		if len(req) > 64<<10 {
			req = append(append([]byte{}, req[:4096]...), []byte(fmt.Sprintf("\n… (%d bytes in all)", len(x.Request)))...)
		}
		out = append(out, Evidence{Label: "request", Kind: "xml", Content: e.scrub(string(req))})
	}
	switch {
	case x.Message != nil:
		out = append(out, Evidence{Label: "answer", Kind: "xml", Content: e.scrub(string(x.Message))})
	case len(x.Body) > 0:
		out = append(out, Evidence{Label: "answer (HTTP body)", Kind: "xml", Content: e.scrub(string(x.Body))})
	}
	return out
}

// Exchanges returns every exchange of the run so far.
func (e *Env) Exchanges() []*Exchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.exchanges)
}

// Send posts a signed KECIS message over route and reads the answer.
func (e *Env) Send(ctx context.Context, label string, route Route, service, requestID string, msg []byte) *Exchange {
	x := &Exchange{Label: label, Route: route, Service: service, RequestID: requestID, Request: msg}
	e.post(ctx, x, saml.WrapSOAP(msg), nil)
	return x
}

// SendWith is Send directly to the participant with another HTTP client
// (another TLS client certificate, or none).
func (e *Env) SendWith(ctx context.Context, label, service, requestID string, msg []byte, client *http.Client) *Exchange {
	x := &Exchange{Label: label, Route: Direct, Service: service, RequestID: requestID, Request: msg}
	e.post(ctx, x, saml.WrapSOAP(msg), client)
	return x
}

// SendRaw posts body (a whole SOAP envelope, or anything) directly to the
// participant's endpoint for service, with client (nil: the tester's).
func (e *Env) SendRaw(ctx context.Context, label, service string, body []byte, client *http.Client) *Exchange {
	x := &Exchange{Label: label, Route: Direct, Service: service, Request: body, Raw: true}
	e.post(ctx, x, body, client)
	return x
}

func (e *Env) post(ctx context.Context, x *Exchange, body []byte, client *http.Client) {
	defer func() {
		run := e
		if e.parent != nil {
			run = e.parent
		}
		run.mu.Lock()
		run.exchanges = append(run.exchanges, x)
		run.mu.Unlock()
	}()
	start := time.Now()
	x.At = e.Now()
	defer func() { x.Elapsed = time.Since(start) }()
	if x.Route == ViaHub && e.Hub == nil {
		x.Route = Direct
	}
	switch {
	case x.Route == ViaHub:
		x.URL = strings.TrimRight(e.Hub.URL, "/") + "/kecis/soap"
		if client == nil {
			client = e.hubHTTP
		}
	default:
		u, err := e.Endpoint(x.Service)
		if err != nil {
			x.TransportErr = err
			return
		}
		x.URL = u
		if client == nil {
			client = e.directHTTP
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.URL, bytes.NewReader(body))
	if err != nil {
		x.TransportErr = err
		return
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", saml.SOAPAction)
	resp, err := client.Do(req)
	if err != nil {
		x.TransportErr = err
		return
	}
	defer resp.Body.Close()
	x.HTTPStatus = resp.StatusCode
	x.Body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		x.TransportErr = err
		return
	}
	msg, err := saml.UnwrapSOAP(x.Body, saml.Limits{MaxBytes: 4 << 20})
	if err != nil {
		var f *saml.Fault
		if errors.As(err, &f) {
			x.Fault = f
			return
		}
		x.ReadErr = err
		x.ReadReason = saml.AsError(err).Reason
		return
	}
	x.Message = msg
	got, err := e.readers[e.identity(x.As).EntityID].ReceiveResponse(ctx, msg)
	if err != nil {
		x.ReadErr = describeRefusal(err)
		x.ReadReason = saml.AsError(err).Reason
		return
	}
	x.Response = got.Response
}

// describeRefusal keeps the private cause of a pipeline refusal: the
// suite's reader is on the participant's side of nothing.
func describeRefusal(err error) error {
	var se *saml.Error
	if errors.As(err, &se) && se.Cause() != nil {
		return fmt.Errorf("%s: %v", se.Reason, se.Cause())
	}
	return err
}

// Exchange builds, seals and sends a request in one step.
func (e *Env) Exchange(ctx context.Context, label string, route Route, req *saml.ServiceRequest, o Seal) (*Exchange, error) {
	msg, err := e.Sealed(req, o)
	if err != nil {
		return nil, fmt.Errorf("the suite could not build %s: %w", label, err)
	}
	return e.Send(ctx, label, route, req.Service, req.ID, msg), nil
}

// ExchangeAs is Exchange for a request of another identity (NewRequestAs):
// signed with its key, sent directly over the tester's TLS client
// certificate, its answer read with its keys.
func (e *Env) ExchangeAs(ctx context.Context, label string, id *Tester, req *saml.ServiceRequest, o Seal) (*Exchange, error) {
	if o.Signer == nil {
		o.Signer = id.Signer
	}
	msg, err := e.Sealed(req, o)
	if err != nil {
		return nil, fmt.Errorf("the suite could not build %s: %w", label, err)
	}
	x := &Exchange{Label: label, Route: Direct, Service: req.Service, RequestID: req.ID, Request: msg}
	if id != e.Tester {
		x.As = id.EntityID
	}
	e.post(ctx, x, saml.WrapSOAP(msg), nil)
	return x, nil
}

// callHook posts body to a test hook.
func (e *Env) callHook(ctx context.Context, h *Hook, body []byte) error {
	_, err := e.hookCall(ctx, h, body)
	return err
}

// hookCall posts body to a test hook and returns its answer's body (at
// most 64 KiB). An error names the hook and its HTTP status, never what it
// answered (a hook may reveal a one-time password).
func (e *Env) hookCall(ctx context.Context, h *Hook, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: e.timeout}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("hook %s answered HTTP %d", h.URL, resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("hook %s: reading its answer: %w", h.URL, err)
	}
	return b, nil
}

// passedOrWarned reports whether condition id ended PASSED or WARNING.
func (e *Env) passedOrWarned(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.passed[id]
}
