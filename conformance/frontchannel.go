package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/html"

	"github.com/kecis/kecis/saml"
)

// The front channel (KECIS §10.2, HTTP-POST binding) as the suite drives
// it: the suite is the merchant, which signs the request, and the
// cardholder's browser, which carries it to the participant's page, follows
// the page's forms with its cookies kept, and reads the answer the page
// would post back. No JavaScript runs: a conformant page works with plain
// form posts.

// browser is one cardholder's browser: a cookie jar and a client that
// trusts the page's TLS server certificate (the metadata's, or the
// profile's page_tls_certs).
type browser struct {
	c      *C
	client *http.Client
}

// page is what the browser was shown.
type page struct {
	URL    string
	Status int
	Body   []byte
	Forms  []*form
}

// form is one HTML form: its action (absolute) and its named inputs with
// their values (hidden fields keep theirs; what a person types is empty).
type form struct {
	Action string
	Inputs []string
	Values url.Values
	// Options are the choices of each select input, in page order (the
	// form's Values keep none of them: the check chooses).
	Options map[string][]option
}

// option is one choice of a select input: the value it submits and the
// text it shows.
type option struct{ Value, Text string }

// has reports whether the form has an input named name.
func (f *form) has(name string) bool { return slices.Contains(f.Inputs, name) }

// newBrowser starts a browser for a front-channel exchange.
func (c *C) newBrowser() (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	pins := c.Descriptor().TLSServerCertificates()
	if a := c.Profile.CardAuth; a != nil && len(a.PageTLSCerts) > 0 {
		extra, err := loadCerts(c.Profile, a.PageTLSCerts)
		if err != nil {
			return nil, fmt.Errorf("cardauth.page_tls_certs: %w", err)
		}
		pins = append(slices.Clone(pins), extra...)
	}
	if a := c.Profile.TwoWay; a != nil && len(a.PageTLSCerts) > 0 {
		extra, err := loadCerts(c.Profile, a.PageTLSCerts)
		if err != nil {
			return nil, fmt.Errorf("twoway.page_tls_certs: %w", err)
		}
		pins = append(slices.Clone(pins), extra...)
	}
	if a := c.Profile.Escrow; a != nil && len(a.PageTLSCerts) > 0 {
		extra, err := loadCerts(c.Profile, a.PageTLSCerts)
		if err != nil {
			return nil, fmt.Errorf("escrow.page_tls_certs: %w", err)
		}
		pins = append(slices.Clone(pins), extra...)
	}
	return &browser{c: c, client: &http.Client{Timeout: c.timeout, Jar: jar,
		Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(emptyTLS, pins), DisableKeepAlives: true},
		// The browser follows redirects as browsers do (GET), within
		// the page's own flow.
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		}}}, nil
}

// post submits a form (or the first post of a front-channel request).
func (b *browser) post(ctx context.Context, action string, vals url.Values) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting to %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the page of %s: %w", action, err)
	}
	p := &page{URL: resp.Request.URL.String(), Status: resp.StatusCode, Body: body}
	p.Forms = parseForms(resp.Request.URL, body)
	return p, nil
}

// submit fills f with vals (over its own values) and posts it.
func (b *browser) submit(ctx context.Context, f *form, vals map[string]string) (*page, error) {
	v := url.Values{}
	for k, vs := range f.Values {
		v[k] = slices.Clone(vs)
	}
	for k, s := range vals {
		v.Set(k, s)
	}
	return b.post(ctx, f.Action, v)
}

// formWith returns the page's first form with an input named name.
func (p *page) formWith(name string) *form {
	for _, f := range p.Forms {
		if f.has(name) {
			return f
		}
	}
	return nil
}

// cancelForm returns a form that submits nothing a person types: only
// hidden fields (the page's cancel button), other than the answer's.
func (p *page) cancelForm() *form {
	for _, f := range p.Forms {
		if f.has("SAMLResponse") || f.has("SAMLRequest") {
			continue
		}
		typed := false
		for _, in := range f.Inputs {
			if f.Values.Get(in) == "" {
				typed = true
			}
		}
		if !typed {
			return f
		}
	}
	return nil
}

// frontAnswer is the answer a page would post back to the requester.
type frontAnswer struct {
	Action     string
	Message    []byte
	RelayState string
}

// answer returns the SAMLResponse form of the page, if any.
func (p *page) answer() (*frontAnswer, error) {
	f := p.formWith("SAMLResponse")
	if f == nil {
		return nil, nil
	}
	msg, err := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
	if err != nil {
		return nil, fmt.Errorf("the page's SAMLResponse is not base64: %w", err)
	}
	return &frontAnswer{Action: f.Action, Message: msg, RelayState: f.Values.Get("RelayState")}, nil
}

// text is the page's visible text: no tags, scripts or styles, spaces
// collapsed.
func (p *page) text() string {
	doc, err := html.Parse(bytes.NewReader(p.Body))
	if err != nil {
		return ""
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// parseForms reads the forms of a page, their actions resolved against
// base.
func parseForms(base *url.URL, body []byte) []*form {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	var out []*form
	var cur *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, _ := attr(n, "action")
				u, err := base.Parse(action)
				if err != nil {
					u = base
				}
				cur = &form{Action: u.String(), Values: url.Values{}}
				out = append(out, cur)
				for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
					walk(ch)
				}
				cur = nil
				return
			case "input", "textarea", "select":
				if name, ok := attr(n, "name"); ok && cur != nil {
					typ, _ := attr(n, "type")
					if typ != "submit" && typ != "button" {
						cur.Inputs = append(cur.Inputs, name)
						if v, ok := attr(n, "value"); ok && v != "" {
							cur.Values.Add(name, v)
						}
					}
					if n.Data == "select" {
						cur.addOptions(name, n)
					}
				}
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	return out
}

// addOptions records the options of select n named name.
func (f *form) addOptions(name string, n *html.Node) {
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			if ch.Type == html.ElementNode && ch.Data == "option" {
				text := strings.Join(strings.Fields(nodeText(ch)), " ")
				v, ok := attr(ch, "value")
				if !ok {
					v = text
				}
				if f.Options == nil {
					f.Options = map[string][]option{}
				}
				f.Options[name] = append(f.Options[name], option{Value: v, Text: text})
				continue
			}
			walk(ch)
		}
	}
	walk(n)
}

// nodeText is the text under n.
func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(n)
	return b.String()
}

// FrontEndpoint returns the participant's HTTP-POST endpoint for service.
func (e *Env) FrontEndpoint(service string) (string, error) {
	ed := e.Descriptor()
	if ed == nil {
		return "", errors.New("the participant's metadata could not be read")
	}
	ep, ok := ed.Endpoint(service, saml.BindingHTTPPOST)
	if !ok {
		return "", fmt.Errorf("the metadata publishes no HTTP-POST endpoint for %s", service)
	}
	return ep.Location, nil
}

// newFrontRequest starts a request from the tester to the participant's
// HTTP-POST endpoint for service.
func (e *Env) newFrontRequest(service string) (*saml.ServiceRequest, error) {
	dest, err := e.FrontEndpoint(service)
	if err != nil {
		return nil, err
	}
	b := &saml.Builder{Issuer: e.Tester.EntityID, Now: e.now}
	return b.NewRequest(dest, service)
}

// redactText adds one-time secrets the run learnt or computed (a TOTP
// code) to what every report scrubs, as redact does for amounts.
func (e *Env) redactText(secrets ...string) {
	r := e.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" && !slices.Contains(r.otps, s) {
			r.otps = append(r.otps, s)
		}
	}
	slices.SortFunc(r.otps, func(a, b string) int { return len(b) - len(a) })
}

// attachPage records a page the browser was shown, scrubbed.
func (c *C) attachPage(label string, p *page) {
	if p == nil {
		return
	}
	c.Attach(fmt.Sprintf("%s: HTTP %d from %s", label, p.Status, p.URL), "text", p.Body)
}

// readFront verifies an answer read from a page as the tester's reader
// does a SOAP answer: the signature with the metadata's keys, the shape,
// the payload decrypted.
func (c *C) readFront(ctx context.Context, msg []byte) (*saml.ServiceResponse, error) {
	got, err := c.readers[c.Tester.EntityID].ReceiveResponse(ctx, msg)
	if err != nil {
		return nil, describeRefusal(err)
	}
	return got.Response, nil
}
