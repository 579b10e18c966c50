package saml

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRequestRoundTrip(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name   string
		signer party
	}{{"rsa", w.merchant}, {"ecdsa", w.merchantEC}} {
		t.Run(tc.name, func(t *testing.T) {
			req := w.cancelRequest(t, "roundtrip-"+tc.name)
			data := signRequest(t, req, tc.signer.Signer)
			got, err := w.issuerReceiver().ReceiveRequest(bg, data)
			if err != nil {
				t.Fatalf("ReceiveRequest: %v (%v)", err, AsError(err).Cause())
			}
			r := got.Request
			if r.ID != req.ID || r.Issuer != merchantID || r.Service != req.Service || r.IdempotencyKey != req.IdempotencyKey ||
				r.Destination != issuerEndpoint || !r.IssueInstant.Equal(req.IssueInstant.Truncate(time.Millisecond)) {
				t.Errorf("decoded request differs: %+v", r)
			}
			if r.Routing == nil || *r.Routing != *req.Routing {
				t.Errorf("routing = %+v, want %+v", r.Routing, req.Routing)
			}
			if r.Payload == nil || r.Payload.Ecom == nil || r.Payload.Ecom.ConsumerOrderID != "ORDER-20261122-0001" {
				t.Errorf("payload not decoded: %+v", r.Payload)
			}
			if !got.Signer.Equal(tc.signer.Cert) {
				t.Errorf("signer certificate not reported")
			}
			if !strings.Contains(string(data), "<ds:Signature") {
				t.Fatal("no signature in output")
			}
		})
	}
}

func TestSignerRefusesWeakKeys(t *testing.T) {
	weak := func() error {
		_, err := LoadSigner("testdata/keys/weak-rsa1024.key.pem", "testdata/keys/weak-rsa1024.cert.pem")
		return err
	}
	if err := weak(); err == nil || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("1024-bit RSA accepted: %v", err)
	}
	w := newWorld(t)
	if _, err := NewSigner(w.merchant.Signer.Key, w.issuer.Cert); err == nil {
		t.Fatal("key/certificate mismatch accepted")
	}
}

func TestResponseMatchesPendingRequest(t *testing.T) {
	w := newWorld(t)
	pending := NewMemoryPending(w.clock.Now)
	req := w.cancelRequest(t, "resp")
	if err := pending.Add(bg, req.ID, issuerID, w.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	resp, err := w.builder(issuerID, "resp-1").NewResponse(req.ID, "", Status{Code: StatusSuccess})
	if err != nil {
		t.Fatal(err)
	}
	resp.Payload = payloadFrom(t, cancelPayloadXML)
	data := signResponse(t, resp, w.issuerEC.Signer)
	mr := w.merchantReceiver(pending)
	got, err := mr.ReceiveResponse(bg, data)
	if err != nil {
		t.Fatalf("ReceiveResponse: %v (%v)", err, AsError(err).Cause())
	}
	if got.Response.InResponseTo != req.ID || !got.Response.Status.OK() {
		t.Fatalf("got %+v", got.Response)
	}
	// The same response again is a replay; a fresh one for the same request
	// no longer matches a pending request.
	if _, err := mr.ReceiveResponse(bg, data); !errors.Is(err, ErrReplay) {
		t.Fatalf("second delivery: %v, want replay", err)
	}
	resp2, _ := w.builder(issuerID, "resp-2").NewResponse(req.ID, "", Status{Code: StatusSuccess})
	if _, err := mr.ReceiveResponse(bg, signResponse(t, resp2, w.issuer.Signer)); !errors.Is(err, ErrInResponseTo) {
		t.Fatalf("answer to a completed request: %v, want InResponseTo refusal", err)
	}
}

func TestPipelineRefusals(t *testing.T) {
	withoutCapture(t) // signs messages of other versions, which the schemas refuse too
	w := newWorld(t)
	for _, tc := range []struct {
		name   string
		mutate func(*ServiceRequest)
		want   *Error
		status string
	}{
		{"expired", func(r *ServiceRequest) { r.IssueInstant = r.IssueInstant.Add(-10 * time.Minute) }, ErrTime, StatusRequester},
		{"future", func(r *ServiceRequest) { r.IssueInstant = r.IssueInstant.Add(10 * time.Minute) }, ErrTime, StatusRequester},
		{"wrong destination", func(r *ServiceRequest) { r.Destination = "https://other.example/kecis/soap" }, ErrDestination, StatusRequester},
		{"wrong version", func(r *ServiceRequest) { r.Version = "3.0" }, ErrVersion, StatusVersionMismatch},
		{"old version", func(r *ServiceRequest) { r.Version = "1.1" }, ErrVersion, StatusVersionMismatch},
		{"on behalf of, not from the hub", func(r *ServiceRequest) { r.OnBehalfOf = "https://shop.example/kecis" }, ErrNotAuthorized, StatusRequester},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := w.cancelRequest(t, "refusal-"+tc.name)
			tc.mutate(req)
			_, err := w.issuerReceiver().ReceiveRequest(bg, signRequest(t, req, w.merchant.Signer))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			e := AsError(err)
			if e.Stage != AfterVerification || e.Status != tc.status {
				t.Fatalf("stage %v status %s, want after-verification %s", e.Stage, e.Status, tc.status)
			}
		})
	}
}
