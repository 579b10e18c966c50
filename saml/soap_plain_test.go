package saml

import (
	"bytes"
	"strings"
	"testing"
)

// TestUnwrapPlain: the scan of WrapSOAP's envelope (unwrapPlain) returns
// exactly what the tokeniser returns, or leaves the body to it. Where it
// returns a message the tokeniser would have refused (a lexical fault
// inside the message, which the scan does not look at), the receive
// pipeline's first step refuses that message as malformed.
func TestUnwrapPlain(t *testing.T) {
	w := newWorld(t)
	signed := signedCancel(t, w, "unwrap-plain")
	fault := FaultBody(&Fault{Code: "soap:Client", String: "no"})
	deep := strings.Repeat("<a>", defaultMaxDepth) + strings.Repeat("</a>", defaultMaxDepth)
	tooDeep := strings.Repeat("<a>", defaultMaxDepth+1) + strings.Repeat("</a>", defaultMaxDepth+1)
	for _, c := range []struct {
		name string
		msg  string // the Body's content, in WrapSOAP's envelope
		// plain: the scan returns the message itself; else it leaves the body to the tokeniser.
		plain bool
		// lexical: the tokeniser refuses it, ParseDocument too.
		lexical bool
	}{
		{"signed message", string(signed), true, false},
		{"empty root", `<x:M xmlns:x="urn:x"/>`, true, false},
		{"quoted > and / in attributes", `<x:M xmlns:x="urn:x" a="1>2" b='/>'><x:N d="/"/>t&amp;x</x:M>`, true, false},
		{"nested at the cap", deep, true, false},
		{"nested over the cap", tooDeep, false, false},
		{"two elements", `<a/><b/>`, false, false},
		{"text after", `<a/>x`, false, false},
		{"whitespace after", `<a/> `, false, false},
		{"whitespace before", ` <a/>`, false, false},
		{"text only", `x`, false, false},
		{"empty", ``, false, false},
		{"comment inside", `<a><!-- c --></a>`, false, false},
		{"CDATA inside", `<a><![CDATA[</a>]]></a>`, false, false},
		{"processing instruction", `<a><?pi x?></a>`, false, false},
		{"fault", `<soap:Fault><faultcode>soap:Client</faultcode><faultstring>no</faultstring></soap:Fault>`, false, false},
		{"fault, another prefix", `<s:Fault xmlns:s="` + NSSOAP11 + `"><faultcode>soap:Client</faultcode><faultstring>no</faultstring></s:Fault>`, false, false},
		{"unclosed", `<a><b></b>`, false, false},
		{"unterminated quote", `<a b="x></a>`, false, false},
		{"stray end tag", `</a>`, false, false},
		{"< in an attribute value", `<a b="<"/>`, true, true},
		{"unknown entity", `<a>&nope;</a>`, true, true},
		{"bad attribute syntax", `<a b=c/>`, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(soapPrefix + c.msg + soapSuffix)
			got, ok := unwrapPlain(body, Limits{})
			if ok != c.plain {
				t.Fatalf("scanned: %v, want %v", ok, c.plain)
			}
			want, werr := unwrapTokens(body, Limits{})
			if !ok {
				// The tokeniser decides: UnwrapSOAP is it.
				got, err := UnwrapSOAP(body, Limits{})
				if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
					t.Fatalf("UnwrapSOAP = %q, %v; the tokeniser %q, %v", got, err, want, werr)
				}
				return
			}
			if string(got) != c.msg {
				t.Fatalf("scanned %q, want the message %q", got, c.msg)
			}
			if c.lexical {
				if werr == nil {
					t.Fatalf("the tokeniser accepted %q", c.msg)
				}
				if _, err := ParseDocument(got, Limits{}); err == nil || AsError(err).Reason != ErrMalformed.Reason {
					t.Fatalf("ParseDocument(%q) = %v, want malformed", got, err)
				}
				return
			}
			if werr != nil || !bytes.Equal(got, want) {
				t.Fatalf("the tokeniser: %q, %v; the scan %q", want, werr, got)
			}
		})
	}
	// Every envelope the tokeniser reads but WrapSOAP does not write goes to it.
	for _, env := range []string{
		`<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Header/><soap:Body>` + string(signed) + soapSuffix,
		`<S:Envelope xmlns:S="` + NSSOAP11 + `"><S:Body>` + string(signed) + `</S:Body></S:Envelope>`,
		string(WrapSOAP(signed)) + "\n",
		string(fault),
	} {
		if _, ok := unwrapPlain([]byte(env), Limits{}); ok {
			t.Errorf("scanned %.60q…", env)
		}
	}
}

// BenchmarkUnwrapSOAP: a signed request in WrapSOAP's envelope (the scan)
// and in another envelope (the tokeniser).
func BenchmarkUnwrapSOAP(b *testing.B) {
	w := newWorld(b)
	el, _ := benchRequest(b, w).Element()
	data, _ := w.merchant.Signer.SignToBytes(el)
	for _, c := range []struct{ name, body string }{
		{"plain", string(WrapSOAP(data))},
		{"tokens", `<S:Envelope xmlns:S="` + NSSOAP11 + `"><S:Body>` + string(data) + `</S:Body></S:Envelope>`},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := UnwrapSOAP(body, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
