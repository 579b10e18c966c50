package router_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// The relay's circuit breakers (KECIS §12.1.1), against endpoints faked at
// the router's transport: every exchange is counted where the dial would
// happen, each failure is instant, and the breakers' open period runs on
// an injected clock — no socket, no sleeping.

// endpointMode is how a faked endpoint answers.
type endpointMode string

const (
	epDead     endpointMode = "dead"     // the dial fails: not delivered
	epTimeout  endpointMode = "timeout"  // delivered, no answer in time: Pending
	epGarbage  endpointMode = "garbage"  // 200 with something that is no SOAP
	epFault    endpointMode = "fault"    // 500 with a SOAP fault
	epLimited  endpointMode = "limited"  // 429 Too Many Requests
	epOK       endpointMode = "ok"       // a signed Success
	epDeclined endpointMode = "declined" // a signed Requester/Declined: a business refusal
	epBlock    endpointMode = "block"    // waits for release, then a signed Success
)

// fakeEndpoints is the router's transport for the breaker tests.
type fakeEndpoints struct {
	t      *testing.T
	signer *saml.Signer
	now    func() time.Time

	mu      sync.Mutex
	modes   map[string]endpointMode // by URL
	calls   map[string]int          // exchanges started, by URL
	arrived chan string             // epBlock: the request has arrived
	release chan struct{}           // epBlock: answer now
}

func (e *fakeEndpoints) set(url string, m endpointMode) {
	e.mu.Lock()
	e.modes[url] = m
	e.mu.Unlock()
}

func (e *fakeEndpoints) count(url string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[url]
}

func (e *fakeEndpoints) RoundTrip(r *http.Request) (*http.Response, error) {
	url := r.URL.String()
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.calls[url]++
	mode := e.modes[url]
	e.mu.Unlock()
	answer := func(code int, ctype string, b []byte) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {ctype}}, Body: io.NopCloser(bytes.NewReader(b)), Request: r}
	}
	switch mode {
	case epDead:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	case epTimeout:
		return nil, context.DeadlineExceeded
	case epGarbage:
		return answer(http.StatusOK, "text/html", []byte("<html>maintenance</html>")), nil
	case epFault:
		var b bytes.Buffer
		rec := &headerlessWriter{Buffer: &b}
		saml.WriteFault(rec, &saml.Fault{Code: "soap:Server", String: "backend down"})
		return answer(http.StatusInternalServerError, "text/xml", b.Bytes()), nil
	case epLimited:
		return answer(http.StatusTooManyRequests, "application/problem+json", []byte(`{"type":"urn:kecis:problem:rate-limited","status":429}`)), nil
	case epBlock:
		e.arrived <- url
		select {
		case <-e.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	st := saml.Status{Code: saml.StatusSuccess}
	if mode == epDeclined {
		st = saml.Status{Code: saml.StatusRequester, SubCode: saml.CodeDeclined, Message: "card blocked"}
	}
	msg, err := saml.UnwrapSOAP(body, saml.Limits{})
	if err != nil {
		e.t.Error(err)
		return nil, err
	}
	root, err := saml.ParseDocument(msg, saml.Limits{})
	if err != nil {
		e.t.Error(err)
		return nil, err
	}
	b := &saml.Builder{Issuer: issuerID, Now: e.now}
	resp, err := b.NewResponse(root.SelectAttrValue("ID", ""), "", st)
	if err != nil {
		e.t.Error(err)
		return nil, err
	}
	el, err := resp.Element()
	if err != nil {
		e.t.Error(err)
		return nil, err
	}
	out, err := e.signer.SignToBytes(el)
	if err != nil {
		e.t.Error(err)
		return nil, err
	}
	return answer(http.StatusOK, "text/xml; charset=utf-8", saml.WrapSOAP(out)), nil
}

// headerlessWriter is an http.ResponseWriter into a buffer.
type headerlessWriter struct {
	*bytes.Buffer
	h http.Header
}

func (w *headerlessWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *headerlessWriter) WriteHeader(int) {}

// breakerFixture is a fixture whose router has breakers configured by cfg,
// an injected clock and the faked endpoints as its transport.
func breakerFixture(t *testing.T, cfg router.BreakerConfig) (*fixture, *fakeEndpoints, *testutil.Clock) {
	t.Helper()
	f := newFixture(t, 5*time.Second)
	clock := testutil.NewClock(time.Now().UTC().Truncate(time.Second))
	eps := &fakeEndpoints{t: t, signer: f.issuer, now: clock.Now, modes: map[string]endpointMode{}, calls: map[string]int{},
		arrived: make(chan string, 1), release: make(chan struct{})}
	hubTLS, _ := devKey(t, devpki.TLSClient, "hub tls")
	f.reg = prometheus.NewRegistry()
	m := router.NewMetrics(f.reg, func() float64 { return 0 })
	f.rt = router.New(router.Config{HubEntityID: hubID, Signer: f.hub, ClientCert: hubTLS, Timeout: 5 * time.Second,
		IdemKey: []byte("idempotency key of the tests"), ReplicaID: "r1", Breaker: cfg}, f.st, f.dir, m, nil, clock.Now)
	f.rt.Transport = func([]*x509.Certificate) http.RoundTripper { return eps }
	return f, eps, clock
}

// gauge reads kecis_hub_breaker_state for an endpoint.
func (f *fixture) breakerGauge(t *testing.T, provider, endpoint string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kecis_hub_breaker_state" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "provider" && l.GetValue() != provider) || (l.GetName() == "endpoint" && l.GetValue() != endpoint) {
					continue metrics
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no kecis_hub_breaker_state{provider=%q,endpoint=%q}", provider, endpoint)
	return 0
}

const (
	primaryURL   = "https://issuer.test/kecis/soap"
	secondaryURL = "https://backup.issuer.test/kecis/soap"
)

// A provider that fails the way an unavailable provider fails — the dial,
// no answer in time, garbage, a SOAP fault — is answered as today for
// Failures exchanges; then its breaker opens and every request is answered
// ProviderUnavailable at once, without an exchange, its idempotency key
// left retryable (never Pending: it was not delivered); the hub's signed
// answer on the SOAP endpoint is the one a dead provider gets.
func TestBreakerOpensOnAnUnavailableProvider(t *testing.T) {
	for _, tc := range []struct {
		mode    endpointMode
		out     router.Outcome
		wantSub string
	}{
		{epDead, router.OutcomeUnavailable, saml.CodeProviderUnavailable},
		{epTimeout, router.OutcomePending, saml.CodePending},
		{epGarbage, router.OutcomeUnavailable, saml.CodeProviderUnavailable},
		{epFault, router.OutcomeUnavailable, saml.CodeProviderUnavailable},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f, eps, _ := breakerFixture(t, router.BreakerConfig{Failures: 3, OpenFor: 30 * time.Second})
			eps.set(primaryURL, tc.mode)
			dest := f.addRecipient(t, issuerID, primaryURL)
			for i := range 3 {
				if s := f.rt.BreakerState(issuerID, primaryURL); s != "closed" {
					t.Fatalf("after %d failures the breaker is %s", i, s)
				}
				req, msg := f.request(t, "k"+string(rune('a'+i)), "15000", primaryURL)
				wantOutcome(t, "a failing exchange", f.relay(req, dest, msg), tc.out, tc.wantSub)
			}
			if n := eps.count(primaryURL); n != 3 {
				t.Fatalf("%d exchanges, want 3", n)
			}
			if s := f.rt.BreakerState(issuerID, primaryURL); s != "open" {
				t.Fatalf("after 3 failures the breaker is %s, want open", s)
			}
			if g := f.breakerGauge(t, issuerID, primaryURL); g != 2 {
				t.Fatalf("kecis_hub_breaker_state = %v, want 2 (open)", g)
			}

			// Open: answered at once, not sent, the key retryable.
			for i := range 5 {
				req, msg := f.request(t, "open", "15000", primaryURL)
				start := time.Now()
				res := f.relay(req, dest, msg)
				wantOutcome(t, "a request while the breaker is open", res, router.OutcomeUnavailable, saml.CodeProviderUnavailable)
				if took := time.Since(start); took > time.Second {
					t.Fatalf("request %d while open took %v", i, took)
				}
			}
			if n := eps.count(primaryURL); n != 3 {
				t.Fatalf("%d exchanges: requests were sent while the breaker was open", n)
			}
			e, err := f.st.GetIdem(context.Background(), merchantID, "open")
			if err != nil || e.State != store.IdemInFlight || e.LeaseOwner != "" {
				t.Fatalf("the key of a request the open breaker kept: %+v %v; want in flight, lease cleared (retryable)", e, err)
			}

			// The SOAP endpoint answers with the hub's signed
			// ProviderUnavailable, as for a dead provider.
			_, msg := f.request(t, "soap", "15000", primaryURL)
			w := f.serve(msg, f.merchantTLS)
			if st := f.hubStatus(t, w.Body.Bytes(), parseRequestID(t, msg)); st.Code != saml.StatusResponder || st.SubCode != saml.CodeProviderUnavailable {
				t.Fatalf("the SOAP answer while open: %+v", st)
			}
			if n := eps.count(primaryURL); n != 3 {
				t.Fatalf("%d exchanges after the SOAP request", n)
			}
		})
	}
}

// parseRequestID is the ID of a signed message.
func parseRequestID(t *testing.T, msg []byte) string {
	t.Helper()
	root, err := saml.ParseDocument(msg, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return root.SelectAttrValue("ID", "")
}

// Business refusals are a healthy provider: any number of signed Declined
// answers never open the breaker, and one between failures starts the
// count of consecutive failures again. A 429 (the provider limits the
// hub's rate) is not counted either way.
func TestBreakerIgnoresBusinessRefusals(t *testing.T) {
	f, eps, _ := breakerFixture(t, router.BreakerConfig{Failures: 3, OpenFor: time.Minute})
	dest := f.addRecipient(t, issuerID, primaryURL)
	send := func(key string, mode endpointMode) *router.Result {
		eps.set(primaryURL, mode)
		req, msg := f.request(t, key, "15000", primaryURL)
		return f.relay(req, dest, msg)
	}
	for i := range 10 {
		res := send("declined-"+string(rune('a'+i)), epDeclined)
		wantOutcome(t, "a declined approval", res, router.OutcomeAnswered, saml.CodeDeclined)
	}
	seq := []endpointMode{epDead, epGarbage, epDeclined, epDead, epLimited, epLimited, epFault, epDeclined, epTimeout, epDead}
	for i, m := range seq {
		send("mixed-"+string(rune('a'+i)), m)
		if s := f.rt.BreakerState(issuerID, primaryURL); s != "closed" {
			t.Fatalf("after %v the breaker is %s; never 3 failures in a row", seq[:i+1], s)
		}
	}
	if n := eps.count(primaryURL); n != 10+len(seq) {
		t.Fatalf("%d exchanges, want %d", n, 10+len(seq))
	}
	if g := f.breakerGauge(t, issuerID, primaryURL); g != 0 {
		t.Fatalf("kecis_hub_breaker_state = %v, want 0 (closed)", g)
	}
}

// After OpenFor (on the injected clock) the breaker is half-open: one
// probe is sent, and while it runs other requests are still answered at
// once; a successful probe closes the breaker, a failed one opens it for
// another OpenFor at once (not after Failures more).
func TestBreakerHalfOpenProbe(t *testing.T) {
	f, eps, clock := breakerFixture(t, router.BreakerConfig{Failures: 2, OpenFor: 30 * time.Second})
	dest := f.addRecipient(t, issuerID, primaryURL)
	relay := func(key string) *router.Result {
		req, msg := f.request(t, key, "15000", primaryURL)
		return f.relay(req, dest, msg)
	}
	eps.set(primaryURL, epDead)
	relay("a")
	relay("b")
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "open" {
		t.Fatalf("breaker %s, want open", s)
	}
	clock.Advance(29 * time.Second)
	wantOutcome(t, "before OpenFor", relay("c"), router.OutcomeUnavailable, saml.CodeProviderUnavailable)
	if n := eps.count(primaryURL); n != 2 {
		t.Fatalf("%d exchanges before OpenFor passed, want 2", n)
	}

	// A failed probe opens it again at once.
	clock.Advance(time.Second)
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "half-open" {
		t.Fatalf("after OpenFor the breaker is %s, want half-open", s)
	}
	if g := f.breakerGauge(t, issuerID, primaryURL); g != 1 {
		t.Fatalf("kecis_hub_breaker_state = %v, want 1 (half-open)", g)
	}
	wantOutcome(t, "a failed probe", relay("d"), router.OutcomeUnavailable, saml.CodeProviderUnavailable)
	if n := eps.count(primaryURL); n != 3 {
		t.Fatalf("%d exchanges, want 3 (one probe)", n)
	}
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "open" {
		t.Fatalf("after a failed probe the breaker is %s, want open", s)
	}
	relay("e")
	if n := eps.count(primaryURL); n != 3 {
		t.Fatalf("a request was sent right after a failed probe")
	}

	// A successful probe closes it; while it runs, nothing else is sent.
	clock.Advance(30 * time.Second)
	eps.set(primaryURL, epBlock)
	probe := make(chan *router.Result, 1)
	go func() { probe <- relay("probe") }()
	select {
	case <-eps.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe was not sent")
	}
	wantOutcome(t, "a request during the probe", relay("during"), router.OutcomeUnavailable, saml.CodeProviderUnavailable)
	if n := eps.count(primaryURL); n != 4 {
		t.Fatalf("%d exchanges during the probe, want 4", n)
	}
	close(eps.release)
	wantOutcome(t, "the probe", <-probe, router.OutcomeAnswered, "")
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "closed" {
		t.Fatalf("after a successful probe the breaker is %s, want closed", s)
	}
	eps.set(primaryURL, epOK)
	wantOutcome(t, "after recovery", relay("after"), router.OutcomeAnswered, "")
	// The key the open breaker refused is retried and answered: it was
	// never Pending.
	wantOutcome(t, "the refused key, retried", relay("c"), router.OutcomeAnswered, "")
	if e, err := f.st.GetIdem(context.Background(), merchantID, "c"); err != nil || e.State != store.IdemDone {
		t.Fatalf("the retried key: %+v %v", e, err)
	}
}

// One breaker per endpoint: when the primary endpoint is dead, its breaker
// opens and requests go straight to the next endpoint of the same
// provider, without dialling the dead one; a Pending on the primary
// (delivered, no answer) never fails over. With every endpoint open the
// answer is ProviderUnavailable at once.
func TestBreakerAndFailover(t *testing.T) {
	f, eps, _ := breakerFixture(t, router.BreakerConfig{Failures: 2, OpenFor: time.Minute})
	dest := f.addRecipient(t, issuerID, primaryURL, secondaryURL)
	relay := func(key string) *router.Result {
		req, msg := f.request(t, key, "15000", primaryURL)
		return f.relay(req, dest, msg)
	}
	eps.set(primaryURL, epDead)
	eps.set(secondaryURL, epOK)
	for _, k := range []string{"a", "b"} {
		wantOutcome(t, "failover", relay(k), router.OutcomeAnswered, "")
	}
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "open" {
		t.Fatalf("the primary's breaker is %s, want open", s)
	}
	for _, k := range []string{"c", "d", "e"} {
		wantOutcome(t, "the primary skipped", relay(k), router.OutcomeAnswered, "")
	}
	if p, s := eps.count(primaryURL), eps.count(secondaryURL); p != 2 || s != 5 {
		t.Fatalf("exchanges: primary %d, secondary %d; want 2 and 5", p, s)
	}
	if s := f.rt.BreakerState(issuerID, secondaryURL); s != "closed" {
		t.Fatalf("the secondary's breaker is %s", s)
	}

	// The secondary times out after delivery: Pending, counted against it.
	eps.set(secondaryURL, epTimeout)
	wantOutcome(t, "no answer from the secondary", relay("f"), router.OutcomePending, saml.CodePending)
	wantOutcome(t, "no answer from the secondary", relay("g"), router.OutcomePending, saml.CodePending)
	if s := f.rt.BreakerState(issuerID, secondaryURL); s != "open" {
		t.Fatalf("the secondary's breaker is %s, want open", s)
	}
	wantOutcome(t, "every endpoint open", relay("h"), router.OutcomeUnavailable, saml.CodeProviderUnavailable)
	if p, s := eps.count(primaryURL), eps.count(secondaryURL); p != 2 || s != 7 {
		t.Fatalf("exchanges: primary %d, secondary %d; want 2 and 7", p, s)
	}
	if e, err := f.st.GetIdem(context.Background(), merchantID, "h"); err != nil || e.State != store.IdemInFlight || e.LeaseOwner != "" {
		t.Fatalf("the key nothing was sent for: %+v %v", e, err)
	}
}

// A request the sender abandons says nothing of the provider: it is not
// counted. Disabled breakers send every request.
func TestBreakerNotCountedAndDisabled(t *testing.T) {
	f, eps, _ := breakerFixture(t, router.BreakerConfig{Failures: 1, OpenFor: time.Minute})
	dest := f.addRecipient(t, issuerID, primaryURL)
	eps.set(primaryURL, epBlock)
	ctx, cancel := context.WithCancel(context.Background())
	req, msg := f.request(t, "gone", "15000", primaryURL)
	done := make(chan *router.Result, 1)
	go func() { done <- f.rt.Relay(ctx, req, dest, saml.WrapSOAP(msg)) }()
	<-eps.arrived
	cancel()
	<-done
	if n := eps.count(primaryURL); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
	if s := f.rt.BreakerState(issuerID, primaryURL); s != "closed" {
		t.Fatalf("an abandoned request opened the breaker (%s)", s)
	}

	f, eps, _ = breakerFixture(t, router.BreakerConfig{Failures: 1, Disabled: true})
	dest = f.addRecipient(t, issuerID, primaryURL)
	eps.set(primaryURL, epDead)
	for _, k := range []string{"a", "b", "c"} {
		req, msg := f.request(t, k, "15000", primaryURL)
		f.relay(req, dest, msg)
	}
	if n := eps.count(primaryURL); n != 3 {
		t.Fatalf("disabled breakers: %d exchanges, want 3", n)
	}
	if strings.Contains(f.rt.BreakerState(issuerID, primaryURL), "open") {
		t.Fatal("a disabled breaker opened")
	}
}
