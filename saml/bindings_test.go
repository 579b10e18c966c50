package saml

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// issuerSOAPServer is a minimal provider endpoint on the SOAP binding: the
// receive pipeline, an unsigned fault before verification, a signed status
// after.
func issuerSOAPServer(t *testing.T, w *world) *httptest.Server {
	rc := w.issuerReceiver()
	b := w.builder(issuerID, "soap-server")
	return httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		msg, err := ReadSOAPRequest(r, Limits{})
		if err != nil {
			WriteFault(rw, FaultFor(err))
			return
		}
		got, err := rc.ReceiveRequest(r.Context(), msg)
		var st Status
		var inResponseTo string
		if err != nil {
			e := AsError(err)
			if e.Stage == BeforeVerification {
				WriteFault(rw, FaultFor(err))
				return
			}
			st, inResponseTo = e.StatusValue(), e.ID
		} else {
			st, inResponseTo = Status{Code: StatusSuccess}, got.Request.ID
		}
		resp, _ := b.NewResponse(inResponseTo, "", st)
		out := signResponse(t, resp, w.issuer.Signer)
		WriteSOAP(rw, out)
	}))
}

func TestSOAPRoundTripThroughRelay(t *testing.T) {
	w := newWorld(t)
	provider := issuerSOAPServer(t, w)
	defer provider.Close()
	// A relay that forwards the HTTP body unchanged, as the hub does.
	relay := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := provider.Client().Post(provider.URL, "text/xml; charset=utf-8", bytes.NewReader(body))
		if err != nil {
			t.Errorf("relay: %v", err)
			return
		}
		defer resp.Body.Close()
		rw.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}))
	defer relay.Close()

	pending := NewMemoryPending(w.clock.Now)
	client := &SOAPClient{HTTP: relay.Client()}
	data := w.sealedApprove(t, "soap", nil, nil)
	id := parseRoot(t, data).SelectAttrValue("ID", "")
	pending.Add(bg, id, issuerID, w.clock.Now().Add(time.Minute))
	answer, err := client.Send(bg, relay.URL, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.merchantReceiver(pending).ReceiveResponse(bg, answer)
	if err != nil {
		t.Fatalf("%v (%v)", err, AsError(err).Cause())
	}
	if !got.Response.Status.OK() || got.Response.InResponseTo != id {
		t.Fatalf("status %+v", got.Response.Status)
	}

	// After verification a refusal is a signed status: the replay.
	answer, err = client.Send(bg, relay.URL, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(answer, []byte(CodeReplay)) || !bytes.Contains(answer, []byte("<ds:Signature")) {
		t.Fatalf("replay not answered with a signed Replay status:\n%s", answer)
	}

	// Before verification it is an unsigned, generic SOAP fault.
	tampered := bytes.Replace(data, []byte(`Amount="15000"`), []byte(`Amount="1"`), 1)
	_, err = client.Send(bg, relay.URL, tampered)
	var f *Fault
	if !errors.As(err, &f) || f.Code != "soap:Client" || f.String != "message could not be verified" {
		t.Fatalf("tampered message: %v, want a generic client fault", err)
	}
}

func TestSOAPEnvelopeRules(t *testing.T) {
	w := newWorld(t)
	msg := signedCancel(t, w, "soap-rules")
	if got, err := UnwrapSOAP(WrapSOAP(msg), Limits{}); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("wrap/unwrap is not byte-exact: %v", err)
	}
	// A message relying on a declaration of the envelope: cut out, it is
	// not standalone, and the pipeline refuses it.
	reliant := bytes.Replace(msg, []byte(` xmlns:kecis="urn:kecis:protocol:1.0"`), nil, 1)
	env := []byte(`<soap:Envelope xmlns:soap="` + NSSOAP11 + `" xmlns:kecis="urn:kecis:protocol:1.0"><soap:Body>` + string(reliant) + soapSuffix)
	inner, err := UnwrapSOAP(env, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.issuerReceiver().ReceiveRequest(bg, inner); err == nil || AsError(err).Stage != BeforeVerification {
		t.Fatalf("a message relying on the envelope's namespaces was not refused before verification: %v", err)
	}
	for name, env := range map[string]string{
		"two body children": soapPrefix + string(msg) + string(msg) + soapSuffix,
		"must-understand":   `<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Header><x:H xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header><soap:Body>` + string(msg) + soapSuffix,
		"SOAP 1.2":          `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` + string(msg) + `</env:Body></env:Envelope>`,
		"doctype":           `<!DOCTYPE x>` + string(WrapSOAP(msg)),
		"empty body":        soapPrefix + soapSuffix,
	} {
		if _, err := UnwrapSOAP([]byte(env), Limits{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var f *Fault
	if _, err := UnwrapSOAP(FaultBody(&Fault{Code: "soap:Server", String: "x < y"}), Limits{}); !errors.As(err, &f) || f.String != "x < y" {
		t.Fatalf("fault not parsed: %v", err)
	}
}

func TestHTTPPostBinding(t *testing.T) {
	w := newWorld(t)
	msg := signedCancel(t, w, "post")
	page, err := PostForm("https://issuer.example/kecis/post", "SAMLRequest", msg, "tx-123", "n0nce")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{`method="post"`, `name="SAMLRequest"`, `name="RelayState" value="tx-123"`, `<noscript>`, `<button type="submit">`, `nonce="n0nce"`} {
		if !strings.Contains(s, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if _, err := PostForm("https://x", "SAMLRequest", msg, strings.Repeat("r", 81), ""); err == nil {
		t.Error("RelayState of 81 bytes accepted")
	}
	form := url.Values{"SAMLRequest": {base64Std(msg)}, "RelayState": {"tx-123"}}
	r := httptest.NewRequest(http.MethodPost, "/kecis/post", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got, rs, err := ReadPost(r, "SAMLRequest", Limits{})
	if err != nil || rs != "tx-123" || !bytes.Equal(got, msg) {
		t.Fatalf("ReadPost: %v %q", err, rs)
	}
	if _, err := w.issuerReceiver().ReceiveRequest(bg, got); err != nil {
		t.Fatalf("message carried by HTTP-POST does not verify: %v", err)
	}
	form.Set("RelayState", strings.Repeat("r", 81))
	r = httptest.NewRequest(http.MethodPost, "/kecis/post", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, _, err := ReadPost(r, "SAMLRequest", Limits{}); err == nil {
		t.Fatal("long RelayState accepted")
	}
}
