package connectors_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// fakeHub stands where the hub's router stands: it receives the caller's
// SOAP request and, by default, forwards the body unchanged to the provider
// over TLS with the hub's client certificate (the verifying part of the
// real router is not what these tests are about). answer, when set, decides
// instead for the n-th request (1-based).
type fakeHub struct {
	w   *world
	srv *httptest.Server
	hc  *http.Client

	mu      sync.Mutex
	n       int
	ids     []string
	keys    []string
	remotes map[string]bool // the callers' connections, by remote address
	answer  func(n int, id string, body []byte, rw http.ResponseWriter)
}

func newFakeHub(t *testing.T, w *world) *fakeHub {
	h := &fakeHub{w: w}
	h.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: saml.PinnedTLS(w.hubTLS, []*x509.Certificate{w.srv.Certificate()})}}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.hc.CloseIdleConnections)
	return h
}

func (h *fakeHub) serve(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/kecis/soap" {
		http.NotFound(rw, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	id, key := "", ""
	if msg, err := saml.UnwrapSOAP(body, saml.Limits{}); err == nil {
		if root, err := saml.ParseDocument(msg, saml.Limits{}); err == nil {
			id = root.SelectAttrValue("ID", "")
			if k := root.FindElement("IdempotencyKey"); k != nil {
				key = k.Text()
			}
		}
	}
	h.mu.Lock()
	h.n++
	if h.remotes == nil {
		h.remotes = map[string]bool{}
	}
	h.remotes[r.RemoteAddr] = true
	n, answer := h.n, h.answer
	h.ids, h.keys = append(h.ids, id), append(h.keys, key)
	h.mu.Unlock()
	if answer != nil {
		answer(n, id, body, rw)
		return
	}
	h.forwardTo(rw, body)
}

// forward relays body to the provider and returns its answer.
func (h *fakeHub) forward(body []byte) (int, []byte, error) {
	resp, err := h.hc.Post(h.w.srv.URL+"/kecis/soap", "text/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func (h *fakeHub) forwardTo(rw http.ResponseWriter, body []byte) {
	code, out, err := h.forward(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadGateway)
		return
	}
	rw.Header().Set("Content-Type", "text/xml; charset=utf-8")
	rw.WriteHeader(code)
	_, _ = rw.Write(out)
}

// signed writes a response to inResponseTo signed by signer as issuer.
func (h *fakeHub) signed(rw http.ResponseWriter, issuer string, signer *saml.Signer, inResponseTo string, st saml.Status) {
	b := &saml.Builder{Issuer: issuer, Now: h.w.clock.Now}
	resp, err := b.NewResponse(inResponseTo, "", st)
	if err != nil {
		panic(err)
	}
	el, err := resp.Element()
	if err != nil {
		panic(err)
	}
	out, err := signer.SignToBytes(el)
	if err != nil {
		panic(err)
	}
	saml.WriteSOAP(rw, out)
}

var pending = saml.Status{Code: saml.StatusResponder, SubCode: saml.CodePending, Message: "the provider has not answered yet"}

func (h *fakeHub) requests() ([]string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...), append([]string(nil), h.keys...)
}

func (h *fakeHub) setAnswer(f func(n int, id string, body []byte, rw http.ResponseWriter)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer = f
}

// newClient is the merchant's client through h.
func newClient(t *testing.T, w *world, h *fakeHub) *connectors.Client {
	t.Helper()
	c, err := connectors.NewClient(connectors.ClientConfig{
		EntityID:    merchantID,
		Signer:      w.merchant,
		Decryption:  decryptionKeys(w.merchant),
		Directory:   w.dir,
		HubEntityID: hubID,
		HubURL:      h.srv.URL + "/",
		TLSClient:   loadTLS(t, "merchant-rsa"),
		HubTLS:      []*x509.Certificate{h.srv.Certificate()},
		Attempts:    3,
		Backoff:     time.Millisecond,
		Timeout:     5 * time.Second,
		Now:         w.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func approveReq(key string, pan string, won int64, order string) *card.ApproveRequest {
	return &card.ApproveRequest{OrderID: order, Amount: ecml.Money{Minor: won, Currency: "KRW"}, IdempotencyKey: key,
		Card: card.Card{Number: ecml.PAN(pan), ExpMonth: "12", ExpYear: "2030", Name: "HONG GILDONG"}}
}

func wantCode(t testing.TB, o *card.Outcome, err error, code string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if o.Code() != code || o.OK() || o.Approval != nil {
		t.Fatalf("outcome %s / %s (%s), want %s", o.Result.Status.Code, o.Code(), o.Result.Status.Message, code)
	}
}

func wantApproval(t testing.TB, o *card.Outcome, err error) *card.Approval {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !o.OK() || o.Approval == nil {
		t.Fatalf("outcome %s / %s (%s), want success", o.Result.Status.Code, o.Code(), o.Result.Status.Message)
	}
	if o.Result.From != issuerID {
		t.Fatalf("answer from %s, want the issuer", o.Result.From)
	}
	return o.Approval
}

// TestClientCardLifecycle: card.Client through the hub to the Handler:
// approve (with key-in data), retry, conflict, decline, cancel, refund,
// inquire.
func TestClientCardLifecycle(t *testing.T) {
	w := newWorld(t)
	hub := newFakeHub(t, w)
	cc := &card.Client{C: newClient(t, w, hub)}
	ctx := context.Background()

	req := approveReq("order-1", testPAN, 15000, "ORD-1")
	req.KeyIn = &card.KeyIn{PasswordPrefix: "12", BirthDate: "900101"}
	o, err := cc.Approve(ctx, issuerID, req)
	a := wantApproval(t, o, err)
	if a.State != card.Approved || a.Amount.Minor != 15000 || o.Result.Attempts != 1 {
		t.Fatalf("%+v after %d attempts", a, o.Result.Attempts)
	}
	if got := w.iss.lastApprove(); got.KeyIn == nil || got.KeyIn.BirthDate.Reveal() != "900101" || got.Merchant != merchantID {
		t.Fatalf("the provider got %#v", got)
	}
	// The retry a merchant makes after a crash of its own: same key, same
	// outcome, no second approval.
	o, err = cc.Approve(ctx, issuerID, req)
	if b := wantApproval(t, o, err); *b != *a {
		t.Fatalf("retry: %+v, want %+v", b, a)
	}
	o, err = cc.Approve(ctx, issuerID, approveReq("order-1", testPAN, 16000, "ORD-1"))
	wantCode(t, o, err, "IdempotencyConflict")
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider approved %d times, want 1", n)
	}
	o, err = cc.Approve(ctx, issuerID, approveReq("order-2", declinedPAN, 15000, "ORD-2"))
	wantCode(t, o, err, "Declined")

	// Cancel before settlement; not twice.
	o, err = cc.Cancel(ctx, issuerID, &card.CancelRequest{ApprovalNumber: a.ApprovalNumber, IdempotencyKey: "cancel-1"})
	if c := wantApproval(t, o, err); c.State != card.Cancelled || c.ApprovalNumber != a.ApprovalNumber {
		t.Fatalf("cancel: %+v", c)
	}
	o, err = cc.Cancel(ctx, issuerID, &card.CancelRequest{ApprovalNumber: a.ApprovalNumber, IdempotencyKey: "cancel-2"})
	wantCode(t, o, err, "PolicyViolation")

	// Refunds of a settled approval, never above it.
	o, err = cc.Approve(ctx, issuerID, approveReq("order-3", otherPAN, 30000, "ORD-3"))
	b := wantApproval(t, o, err)
	w.iss.settle(b.ApprovalNumber)
	o, err = cc.Refund(ctx, issuerID, &card.RefundRequest{ApprovalNumber: b.ApprovalNumber, Amount: ecml.Money{Minor: 10000, Currency: "KRW"}, IdempotencyKey: "refund-1"})
	if r := wantApproval(t, o, err); r.State != card.PartiallyRefunded || r.Refunded.Minor != 10000 {
		t.Fatalf("refund: %+v", r)
	}
	o, err = cc.Refund(ctx, issuerID, &card.RefundRequest{ApprovalNumber: b.ApprovalNumber, Amount: ecml.Money{Minor: 20001, Currency: "KRW"}, IdempotencyKey: "refund-2"})
	wantCode(t, o, err, "LimitExceeded")

	// Inquire (by order), and an unknown approval.
	o, err = cc.Inquire(ctx, issuerID, &card.InquireRequest{OrderID: "ORD-3"})
	if q := wantApproval(t, o, err); q.ApprovalNumber != b.ApprovalNumber || q.State != card.PartiallyRefunded || q.Refunded != (ecml.Money{Minor: 10000, Currency: "KRW"}) {
		t.Fatalf("inquire: %+v", q)
	}
	o, err = cc.Inquire(ctx, issuerID, &card.InquireRequest{ApprovalNumber: "A9999"})
	wantCode(t, o, err, "Declined")
	if _, err := cc.Inquire(ctx, issuerID, &card.InquireRequest{}); err == nil {
		t.Fatal("an inquire naming nothing was sent")
	}

	// Every mutation went with its key; the inquiries without one.
	_, keys := hub.requests()
	if keys[0] != "order-1" || keys[1] != "order-1" || keys[len(keys)-1] != "" {
		t.Fatalf("keys sent: %q", keys)
	}
}

// TestClientRetriesOnHubPending: the hub relays the request but the
// provider's answer does not come back in time, so the hub answers Pending;
// the client sends a new message with the same key and gets the outcome the
// provider recorded — one approval.
func TestClientRetriesOnHubPending(t *testing.T) {
	w := newWorld(t)
	hub := newFakeHub(t, w)
	hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) {
		if n == 1 {
			_, _, _ = hub.forward(body) // the provider's answer is lost
			hub.signed(rw, hubID, w.hub, id, pending)
			return
		}
		hub.forwardTo(rw, body)
	})
	c := newClient(t, w, hub)
	o, err := (&card.Client{C: c}).Approve(context.Background(), issuerID, approveReq("order-1", testPAN, 15000, "ORD-1"))
	a := wantApproval(t, o, err)
	if o.Result.Attempts != 2 || a.ApprovalNumber != "A0001" {
		t.Fatalf("%+v after %d attempts", a, o.Result.Attempts)
	}
	if n := w.iss.count("approve"); n != 1 {
		t.Fatalf("the provider approved %d times, want 1", n)
	}
	ids, keys := hub.requests()
	if len(ids) != 2 || ids[0] == ids[1] || keys[0] != "order-1" || keys[1] != "order-1" {
		t.Fatalf("the retry must be a new message with the same key: IDs %q, keys %q", ids, keys)
	}
	if o.Result.Response.InResponseTo != ids[1] {
		t.Fatalf("the answer is to %s, want the retry %s", o.Result.Response.InResponseTo, ids[1])
	}

	// Pending every time: after Attempts the Pending result is returned, and
	// inquire tells the truth.
	hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) {
		_, _, _ = hub.forward(body)
		hub.signed(rw, hubID, w.hub, id, pending)
	})
	res, err := c.Do(context.Background(), connectors.Call{Recipient: issuerID, Service: card.ServiceApprove, IdempotencyKey: "order-2",
		Payload: approvePayload(t, otherPAN, 20000, "ORD-2")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pending() || res.From != hubID || res.Attempts != 3 {
		t.Fatalf("%+v, want Pending from the hub after 3 attempts", res)
	}
	hub.setAnswer(nil)
	o, err = (&card.Client{C: c}).Inquire(context.Background(), issuerID, &card.InquireRequest{OrderID: "ORD-2"})
	if a := wantApproval(t, o, err); a.State != card.Approved || a.Amount.Minor != 20000 {
		t.Fatalf("inquire: %+v", a)
	}
	if n := w.iss.count("approve"); n != 2 {
		t.Fatalf("the provider approved %d times, want 2", n)
	}
}

// TestClientRetriesTransportFailure: the connection drops after the
// provider answered; the retry gets the recorded outcome.
func TestClientRetriesTransportFailure(t *testing.T) {
	w := newWorld(t)
	hub := newFakeHub(t, w)
	hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) {
		if n == 1 {
			_, _, _ = hub.forward(body)
			conn, _, err := rw.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		hub.forwardTo(rw, body)
	})
	o, err := (&card.Client{C: newClient(t, w, hub)}).Approve(context.Background(), issuerID, approveReq("order-1", testPAN, 15000, "ORD-1"))
	a := wantApproval(t, o, err)
	if o.Result.Attempts != 2 || w.iss.count("approve") != 1 || a.ApprovalNumber != "A0001" {
		t.Fatalf("%+v after %d attempts, %d approvals", a, o.Result.Attempts, w.iss.count("approve"))
	}

	// Without a key (inquire) nothing is retried.
	hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) {
		conn, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	_, err = (&card.Client{C: newClient(t, w, hub)}).Inquire(context.Background(), issuerID, &card.InquireRequest{OrderID: "ORD-1"})
	var te *saml.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("%v, want a transport error", err)
	}
	if ids, _ := hub.requests(); len(ids) != 3 {
		t.Fatalf("%d requests reached the hub, want 3", len(ids))
	}
}

// TestClientRefusesAnswers: answers that do not belong to a pending
// request, or that are signed by neither the recipient nor the hub, are
// refused, and not retried.
func TestClientRefusesAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w *world, h *fakeHub, id string, rw http.ResponseWriter)
		want   error
	}{
		{"InResponseTo of no pending request", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, hubID, w.hub, "_00000000000000000000000000000000", pending)
		}, saml.ErrInResponseTo},
		{"the recipient answering another request", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, issuerID, w.issuer, "_"+strings.Repeat("1", 32), saml.Status{Code: saml.StatusSuccess})
		}, saml.ErrInResponseTo},
		{"signed by another participant", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, evilID, w.evil, id, saml.Status{Code: saml.StatusSuccess})
		}, saml.ErrInResponseTo},
		{"signed by no participant", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, "https://nobody.test/kecis", w.evil, id, saml.Status{Code: saml.StatusSuccess})
		}, saml.ErrUnknownIssuer},
		{"claiming to be the hub", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, hubID, w.evil, id, pending)
		}, saml.ErrSignature},
		{"claiming to be the recipient", func(w *world, h *fakeHub, id string, rw http.ResponseWriter) {
			h.signed(rw, issuerID, w.evil, id, saml.Status{Code: saml.StatusSuccess})
		}, saml.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			hub := newFakeHub(t, w)
			hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) { tc.answer(w, hub, id, rw) })
			res, err := newClient(t, w, hub).Do(context.Background(), connectors.Call{Recipient: issuerID, Service: card.ServiceApprove,
				IdempotencyKey: "k", Payload: approvePayload(t, testPAN, 15000, "ORD-1")})
			if err == nil || !errors.Is(err, tc.want) {
				t.Fatalf("%+v, %v; want %v", res, err, tc.want)
			}
			if ids, _ := hub.requests(); len(ids) != 1 {
				t.Fatalf("%d requests, want 1 (no retry)", len(ids))
			}
		})
	}
}

func TestClientHubFaultAndMissingKey(t *testing.T) {
	w := newWorld(t)
	hub := newFakeHub(t, w)
	hub.setAnswer(func(n int, id string, body []byte, rw http.ResponseWriter) {
		saml.WriteFault(rw, &saml.Fault{Code: "soap:Client", String: "message is not valid"})
	})
	c := newClient(t, w, hub)
	_, err := c.Do(context.Background(), connectors.Call{Recipient: issuerID, Service: card.ServiceApprove, IdempotencyKey: "k",
		Payload: approvePayload(t, testPAN, 15000, "ORD-1")})
	if err == nil || !strings.Contains(err.Error(), "refused the request before verifying it") {
		t.Fatalf("%v", err)
	}
	if _, err := c.Do(context.Background(), connectors.Call{Recipient: issuerID, Service: card.ServiceApprove,
		Payload: approvePayload(t, testPAN, 15000, "ORD-1")}); err == nil {
		t.Fatal("a mutation without an idempotency key was sent")
	}
	if ids, _ := hub.requests(); len(ids) != 1 {
		t.Fatalf("%d requests, want 1", len(ids))
	}
	if _, err := connectors.NewClient(connectors.ClientConfig{EntityID: merchantID}); err == nil {
		t.Fatal("NewClient accepted an incomplete configuration")
	}
}

// TestClientReusesConnections: a client built without its own HTTP client
// keeps its connections to the hub for the next calls — 8 callers, 4
// rounds of concurrent approvals open no more than the 8 connections of
// the first round (net/http's default of 2 idle connections per host made
// the others dial, and handshake, again every round).
func TestClientReusesConnections(t *testing.T) {
	w := newWorld(t)
	hub := newFakeHub(t, w)
	cc := &card.Client{C: newClient(t, w, hub)}
	const callers, rounds = 8, 4
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Go(func() {
				order := fmt.Sprintf("ORD-%d-%d", r, i)
				o, err := cc.Approve(context.Background(), issuerID, approveReq(order, testPAN, 1000, order))
				if err == nil && !o.OK() {
					err = fmt.Errorf("%s: %s", order, o.Code())
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if n := len(hub.remotes); n > callers+2 {
		t.Fatalf("%d connections to the hub for %d rounds of %d concurrent calls, want at most %d", n, rounds, callers, callers+2)
	}
}
