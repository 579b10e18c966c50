package saml

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strings"
)

// BindingSOAP is the SAML SOAP binding URI (SAML bindings §3.2): KECIS's
// server-to-server binding, over HTTPS with TLS client certificates.
const BindingSOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"

// BindingHTTPPOST is the SAML HTTP-POST binding URI (SAML bindings §3.5),
// for the steps a browser carries.
const BindingHTTPPOST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

// SOAPAction is the SOAPAction header SAML bindings §3.2.2.3 recommends.
const SOAPAction = "http://www.oasis-open.org/committees/security"

const (
	soapPrefix = `<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body>`
	soapSuffix = `</soap:Body></soap:Envelope>`
)

// WrapSOAP puts a standalone KECIS message into a SOAP 1.1 envelope, byte
// for byte: the message declares its own namespaces (KECIS §2.5), so the
// envelope adds nothing it depends on, and a relay can forward the HTTP body
// unchanged.
func WrapSOAP(msg []byte) []byte {
	msg = stripXMLDecl(msg)
	out := make([]byte, 0, len(soapPrefix)+len(msg)+len(soapSuffix))
	out = append(out, soapPrefix...)
	out = append(out, msg...)
	return append(out, soapSuffix...)
}

func stripXMLDecl(b []byte) []byte {
	t := bytes.TrimLeft(b, " \t\r\n")
	if bytes.HasPrefix(t, []byte("<?xml")) {
		if i := bytes.Index(t, []byte("?>")); i >= 0 {
			return bytes.TrimLeft(t[i+2:], " \t\r\n")
		}
	}
	return b
}

// UnwrapSOAP returns the exact bytes of the one element in the SOAP Body: the
// KECIS message, or a soap:Fault (reported as a *Fault error). The message is
// cut from the body, not re-serialised, so a message that relies on a
// declaration of the envelope stays broken and is refused as not standalone
// by the receive pipeline. Headers that must be understood are refused:
// KECIS defines none.
//
// The envelope every KECIS participant writes (WrapSOAP: no header, the
// message alone in the Body) is recognised by its bytes and the message's
// extent found by a scan of its tags, without a tokeniser (the receive
// pipeline parses the message strictly anyway, ParseDocument: tokenising it
// here too cost the hub 3.5 % of an approval's CPU). Anything else — another
// envelope, a fault, a comment, CDATA or processing instruction, a second
// element or text beside the message, a depth over the cap — takes the
// tokenising path, so every refusal above stays this function's own. What
// the scan leaves unchecked inside the message — the lexical rules the
// tokeniser would also enforce there (names, entity references, attribute
// syntax) — ParseDocument refuses as malformed: every receiver of the
// message runs it before anything else.
func UnwrapSOAP(body []byte, lim Limits) ([]byte, error) {
	if len(body) > lim.maxBytes()+4096 {
		return nil, ErrTooLarge.WithCausef("SOAP body of %d bytes", len(body))
	}
	if bytes.Contains(body, doctypeMarker) {
		return nil, ErrDoctype.WithCausef("DOCTYPE in SOAP envelope")
	}
	if msg, ok := unwrapPlain(body, lim); ok {
		return msg, nil
	}
	return unwrapTokens(body, lim)
}

// unwrapTokens is UnwrapSOAP by the tokeniser: any envelope.
func unwrapTokens(body []byte, lim Limits) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	depth := 0
	var (
		inBody, inHeader bool
		start, end       int64 = -1, -1
		isFault          bool
		children         int
	)
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ErrMalformed.WithCause(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > lim.maxDepth()+2 {
				return nil, ErrMalformed.WithCausef("SOAP nesting too deep")
			}
			switch depth {
			case 1:
				if t.Name.Local != "Envelope" || soapNS(t, d) != NSSOAP11 {
					return nil, ErrMalformed.WithCausef("not a SOAP 1.1 envelope")
				}
			case 2:
				switch t.Name.Local {
				case "Header":
					inHeader = true
				case "Body":
					inBody = true
				default:
					return nil, ErrMalformed.WithCausef("unexpected %s in SOAP envelope", t.Name.Local)
				}
			case 3:
				if inHeader {
					for _, a := range t.Attr {
						if a.Name.Local == "mustUnderstand" && (a.Value == "1" || a.Value == "true") {
							return nil, ErrMalformed.WithCausef("SOAP header %s must be understood", t.Name.Local)
						}
					}
				}
				if inBody {
					children++
					if children > 1 {
						return nil, ErrMalformed.WithCausef("more than one element in the SOAP Body")
					}
					start = off
					isFault = t.Name.Local == "Fault"
				}
			}
		case xml.EndElement:
			if depth == 3 && inBody {
				end = d.InputOffset()
			}
			if depth == 2 {
				inBody, inHeader = false, false
			}
			depth--
		case xml.Comment, xml.ProcInst, xml.Directive:
			if depth > 0 {
				return nil, ErrMalformed.WithCausef("comment, processing instruction or directive in the SOAP envelope")
			}
		case xml.CharData:
			if depth == 2 && inBody && len(bytes.TrimSpace(t)) > 0 {
				return nil, ErrMalformed.WithCausef("text in the SOAP Body")
			}
		}
	}
	if start < 0 || end < 0 {
		return nil, ErrMalformed.WithCausef("empty SOAP Body")
	}
	msg := body[start:end]
	if isFault {
		return nil, parseFault(msg)
	}
	return msg, nil
}

// unwrapPlain returns the message of an envelope exactly as WrapSOAP
// writes it (soapPrefix, one element, soapSuffix), and false for any other
// body, which UnwrapSOAP then tokenises. The message must be one element
// that is not a Fault, as many end tags as start tags, nested at most lim's depth,
// without comments, CDATA sections, processing instructions or
// declarations ("<!", "<?": left to the tokeniser), and nothing after it.
// Quoted attribute values are skipped whole, so a '>' or '/' in one does
// not end a tag.
func unwrapPlain(body []byte, lim Limits) ([]byte, bool) {
	if !bytes.HasPrefix(body, []byte(soapPrefix)) || !bytes.HasSuffix(body, []byte(soapSuffix)) ||
		len(body) < len(soapPrefix)+len(soapSuffix) {
		return nil, false
	}
	msg := body[len(soapPrefix) : len(body)-len(soapSuffix)]
	if len(msg) < 2 || msg[0] != '<' {
		return nil, false
	}
	// The root's name: a Fault is UnwrapSOAP's to read.
	name := msg[1:]
	if n := bytes.IndexAny(name, " \t\r\n/>"); n >= 0 {
		name = name[:n]
	}
	if _, local, ok := bytes.Cut(name, []byte(":")); (ok && string(local) == "Fault") || string(name) == "Fault" {
		return nil, false
	}
	depth, maxDepth := 0, lim.maxDepth()
	for i := 0; i < len(msg); {
		if msg[i] != '<' {
			if depth == 0 {
				return nil, false // text after the message
			}
			n := bytes.IndexByte(msg[i:], '<')
			if n < 0 {
				return nil, false
			}
			i += n
			continue
		}
		if i+1 >= len(msg) {
			return nil, false
		}
		switch msg[i+1] {
		case '!', '?':
			return nil, false
		case '/': // an end tag: no quotes inside
			n := bytes.IndexByte(msg[i:], '>')
			if n < 0 || depth == 0 {
				return nil, false
			}
			depth--
			i += n + 1
			if depth == 0 {
				return msg[:i], i == len(msg)
			}
			continue
		}
		if depth == 0 && i > 0 {
			return nil, false // a second element
		}
		// A start tag: find its '>' outside quoted attribute values.
		j := i + 1
		for ; j < len(msg); j++ {
			c := msg[j]
			if c == '"' || c == '\'' {
				n := bytes.IndexByte(msg[j+1:], c)
				if n < 0 {
					return nil, false
				}
				j += n + 1
				continue
			}
			if c == '<' {
				return nil, false
			}
			if c == '>' {
				break
			}
		}
		if j >= len(msg) {
			return nil, false
		}
		i = j + 1
		if msg[j-1] == '/' { // empty-element tag
			if depth == 0 {
				return msg[:i], i == len(msg)
			}
			continue
		}
		if depth++; depth > maxDepth {
			return nil, false
		}
	}
	return nil, false
}

// soapNS resolves the element's prefix from its own attributes (the SOAP
// envelope declares it on itself; RawToken does not resolve).
func soapNS(t xml.StartElement, _ *xml.Decoder) string {
	for _, a := range t.Attr {
		if (t.Name.Space == "" && a.Name.Space == "" && a.Name.Local == "xmlns") ||
			(a.Name.Space == "xmlns" && a.Name.Local == t.Name.Space) {
			return a.Value
		}
	}
	return ""
}

// Fault is a SOAP 1.1 Fault: the unsigned, generic answer to a message that
// failed before its signature was verified, or to a transport error
// (KECIS §5.3.1).
type Fault struct {
	Code   string // "soap:Client" or "soap:Server"
	String string // public text only
}

func (f *Fault) Error() string { return "kecis: SOAP fault " + f.Code + ": " + f.String }

func parseFault(b []byte) error {
	var v struct {
		Code   string `xml:"faultcode"`
		String string `xml:"faultstring"`
	}
	if err := xml.Unmarshal(b, &v); err != nil {
		return ErrMalformed.WithCausef("unreadable SOAP fault")
	}
	return &Fault{Code: strings.TrimSpace(v.Code), String: strings.TrimSpace(v.String)}
}

// FaultBody renders a SOAP 1.1 Fault envelope.
func FaultBody(f *Fault) []byte {
	var b bytes.Buffer
	b.WriteString(`<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body><soap:Fault><faultcode>`)
	_ = xml.EscapeText(&b, []byte(f.Code))
	b.WriteString(`</faultcode><faultstring>`)
	_ = xml.EscapeText(&b, []byte(f.String))
	b.WriteString(`</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// FaultFor maps a pre-verification refusal to its fault: the sender's fault
// (soap:Client) with the public category, or soap:Server for our own.
func FaultFor(err error) *Fault {
	e := AsError(err)
	code := "soap:Client"
	if e.Reason == ErrInternal.Reason || e.Reason == ErrStore.Reason {
		code = "soap:Server"
	}
	return &Fault{Code: code, String: e.Public}
}

// WriteSOAP writes a SOAP response carrying msg (HTTP 200).
func WriteSOAP(w http.ResponseWriter, msg []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(WrapSOAP(msg))
}

// WriteFault writes a SOAP Fault (HTTP 500, SOAP 1.1 §6.2).
func WriteFault(w http.ResponseWriter, f *Fault) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(FaultBody(f))
}

// ReadSOAPRequest reads a SOAP request body under the size cap and returns
// the KECIS message inside it.
func ReadSOAPRequest(r *http.Request, lim Limits) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, ErrMalformed.WithCausef("method %s", r.Method)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(lim.maxBytes())+4097))
	if err != nil {
		return nil, ErrMalformed.WithCause(err)
	}
	return UnwrapSOAP(body, lim)
}

// SOAPClient sends KECIS messages over the SOAP binding. Its HTTP client
// carries the TLS configuration (client certificate, pinned server
// certificate).
type SOAPClient struct {
	HTTP   *http.Client
	Limits Limits
}

// TransportError is a failure to exchange a message: no connection, a
// timeout, an HTTP status other than 200 and 500-with-fault. Delivered tells
// whether the request may have reached the recipient (only then is a retry
// on another endpoint unsafe; KECIS §7.1).
type TransportError struct {
	Delivered bool
	Err       error
}

func (e *TransportError) Error() string { return "kecis: transport: " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Send posts msg to url and returns the KECIS message of the answer, a
// *Fault when the peer answered with one, or a *TransportError.
func (c *SOAPClient) Send(ctx context.Context, url string, msg []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(WrapSOAP(msg)))
	if err != nil {
		return nil, &TransportError{Err: err}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", SOAPAction)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Whether the body reached the peer is unknown once the connection
		// was made; only a failure to connect is known to be undelivered.
		return nil, &TransportError{Delivered: !isDialError(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.Limits.maxBytes())+4097))
	if err != nil {
		return nil, &TransportError{Delivered: true, Err: err}
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusInternalServerError:
		m, err := UnwrapSOAP(body, c.Limits)
		if err != nil {
			var f *Fault
			if errors.As(err, &f) {
				return nil, f
			}
			return nil, &TransportError{Delivered: true, Err: fmt.Errorf("unreadable SOAP answer (HTTP %d): %w", resp.StatusCode, err)}
		}
		return m, nil
	}
	return nil, &TransportError{Delivered: true, Err: fmt.Errorf("HTTP %d", resp.StatusCode)}
}

// isDialError reports a failure before the request could be written: the
// connection or the TLS handshake (a pinned server certificate that does not
// match, say) failed. Only then is the request known to be undelivered.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	return errors.As(err, &cv) || errors.As(err, &rh)
}

// MaxRelayState is the RelayState limit of SAML bindings §3.5.3.
const MaxRelayState = 80

var postTemplate = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>KECIS</title></head>
<body>
<form method="post" action="{{.Action}}" id="kecis-post">
<input type="hidden" name="{{.Field}}" value="{{.Value}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">{{end}}
<noscript><p>JavaScript is off: press the button to continue.</p><button type="submit">Continue</button></noscript>
</form>
<script{{if .Nonce}} nonce="{{.Nonce}}"{{end}}>document.getElementById("kecis-post").submit();</script>
</body></html>
`))

// PostForm renders the HTTP-POST binding's auto-submitting form (SAML
// bindings §3.5.4): field is "SAMLRequest" or "SAMLResponse", msg the signed
// message (base64-encoded here), relayState at most 80 bytes. With
// JavaScript off a button submits the same form. nonce, when set, is the
// script's CSP nonce.
func PostForm(action, field string, msg []byte, relayState, nonce string) ([]byte, error) {
	if field != "SAMLRequest" && field != "SAMLResponse" {
		return nil, fmt.Errorf("kecis: HTTP-POST field must be SAMLRequest or SAMLResponse")
	}
	if len(relayState) > MaxRelayState {
		return nil, fmt.Errorf("kecis: RelayState of %d bytes; at most %d", len(relayState), MaxRelayState)
	}
	var b bytes.Buffer
	err := postTemplate.Execute(&b, struct {
		Action, Field, Value, RelayState, Nonce string
	}{action, field, base64Std(msg), relayState, nonce})
	return b.Bytes(), err
}

// ReadPost reads an HTTP-POST binding message from a form post: the base64
// field (SAMLRequest or SAMLResponse) and RelayState (at most 80 bytes).
func ReadPost(r *http.Request, field string, lim Limits) (msg []byte, relayState string, err error) {
	if r.Method != http.MethodPost {
		return nil, "", ErrMalformed.WithCausef("method %s", r.Method)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, int64(lim.maxBytes())*4/3+8192)
	if err := r.ParseForm(); err != nil {
		return nil, "", ErrTooLarge.WithCause(err)
	}
	vals := r.PostForm[field]
	if len(vals) != 1 {
		return nil, "", ErrMalformed.WithCausef("%s given %d times", field, len(vals))
	}
	rs := r.PostForm["RelayState"]
	if len(rs) > 1 || (len(rs) == 1 && len(rs[0]) > MaxRelayState) {
		return nil, "", ErrMalformed.WithCausef("RelayState repeated or longer than %d bytes", MaxRelayState)
	}
	if len(rs) == 1 {
		relayState = rs[0]
	}
	msg, err = base64StdDecode(vals[0])
	if err != nil {
		return nil, "", ErrMalformed.WithCausef("%s is not base64", field)
	}
	return msg, relayState, nil
}
