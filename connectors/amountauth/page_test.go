package amountauth

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/internal/testutil"
)

// pageRig is an engine (the package's fakes) with its page and the log
// lines both wrote.
type pageRig struct {
	*rig
	page *Page
	logs *pageLogs
}

// pageLogs collects log lines (without their wall-clock time).
type pageLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *pageLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *pageLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newPageRig(t *testing.T, pcfg PageConfig, edit func(*Config)) *pageRig {
	t.Helper()
	logs := &pageLogs{}
	r := newRig(t, func(c *Config) {
		c.Rand = testutil.NewDetRand("page " + t.Name())
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
		if edit != nil {
			edit(c)
		}
	})
	p, err := NewPage(r.e, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	return &pageRig{rig: r, page: p, logs: logs}
}

// pageReq is one request to the page.
type pageReq struct {
	method, path string
	form         url.Values
	header       http.Header
	remote       string
	body         string // raw body instead of form
}

// do serves q and checks what every answer carries: the security headers
// and a well-formed HTML page whose style (and script) take the CSP nonce.
func (pr *pageRig) do(t *testing.T, q pageReq) (*httptest.ResponseRecorder, *pageDoc) {
	t.Helper()
	if q.method == "" {
		q.method = http.MethodPost
	}
	body := q.body
	if q.form != nil {
		body = q.form.Encode()
	}
	req := httptest.NewRequest(q.method, q.path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range q.header {
		req.Header[k] = v
	}
	if q.remote != "" {
		req.RemoteAddr = q.remote
	}
	w := httptest.NewRecorder()
	pr.page.ServeHTTP(w, req)
	doc := checkPage(t, w)
	return w, doc
}

// entry posts the merchant checkout's form; confirm posts an entry.
func (pr *pageRig) entry(t *testing.T, id, relay string) (*httptest.ResponseRecorder, *pageDoc) {
	t.Helper()
	f := url.Values{"SessionID": {id}}
	if relay != "" {
		f.Set("RelayState", relay)
	}
	return pr.do(t, pageReq{path: "/", form: f})
}

func (pr *pageRig) confirmPage(t *testing.T, id, relay, entry string) (*httptest.ResponseRecorder, *pageDoc) {
	t.Helper()
	f := url.Values{"SessionID": {id}, "Entry": {entry}}
	if relay != "" {
		f.Set("RelayState", relay)
	}
	return pr.do(t, pageReq{path: "/confirm", form: f})
}

func (pr *pageRig) session(t *testing.T, id string) *Session {
	t.Helper()
	s, err := pr.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// challengeText is the challenge as the cardholder reads it in the text.
func (pr *pageRig) challengeText(t *testing.T, s *Session) string {
	t.Helper()
	c := pr.challenge(t, s)
	if c.Amount != nil {
		return strconv.FormatInt(c.Amount.Minor, 10)
	}
	return c.Code.Reveal()
}

// wrongAmount is an amount that is not s's challenge.
func (pr *pageRig) wrongAmount(t *testing.T, s *Session) string {
	t.Helper()
	if pr.challengeText(t, s) == "13579" {
		return "13578"
	}
	return "13579"
}

// grouped writes digits with thousands separators, as a person may type.
func grouped(digits string) string {
	var b strings.Builder
	for i := range len(digits) {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(digits[i])
	}
	return b.String()
}

// pageElem is an element of a page.
type pageElem struct {
	name string
	attr map[string]string
	text string // the text directly inside it
}

type pageDoc struct {
	elems []*pageElem
	body  string
}

func (d *pageDoc) all(name string) []*pageElem {
	var out []*pageElem
	for _, e := range d.elems {
		if e.name == name {
			out = append(out, e)
		}
	}
	return out
}

func (d *pageDoc) byID(id string) *pageElem {
	for _, e := range d.elems {
		if e.attr["id"] == id {
			return e
		}
	}
	return nil
}

// forms lists the page's forms with their fields (name → value).
func (d *pageDoc) forms() []pageTestForm {
	var out []pageTestForm
	for _, e := range d.elems {
		switch {
		case e.name == "form":
			out = append(out, pageTestForm{elem: e, fields: map[string]string{}})
		case (e.name == "input" || e.name == "button") && len(out) > 0 && e.attr["name"] != "":
			out[len(out)-1].fields[e.attr["name"]] = e.attr["value"]
		}
	}
	return out
}

type pageTestForm struct {
	elem   *pageElem
	fields map[string]string
}

var pageVoid = map[string]bool{"meta": true, "input": true, "br": true, "link": true, "img": true, "hr": true}

// checkPage checks the headers of every answer and parses its page: tags
// balanced (void elements aside), html with lang, head, title and body, a
// viewport, every style and script with the CSP's nonce, every input but
// hidden ones labelled.
func checkPage(t *testing.T, w *httptest.ResponseRecorder) *pageDoc {
	t.Helper()
	h := w.Header()
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		"X-Content-Type-Options": "nosniff", "Content-Type": "text/html; charset=utf-8"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]{22})'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(csp, "style-src 'nonce-"+m[1]+"'") {
		t.Fatalf("CSP %q: no nonce for script and style", csp)
	}
	nonce := m[1]
	body := w.Body.String()
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict = false // HTML: attributes without a value
	d.Entity = xml.HTMLEntity
	doc := &pageDoc{body: body}
	var stack []*pageElem
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page does not parse: %v\n%s", err, body)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &pageElem{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				e.attr[a.Name.Local] = a.Value
			}
			doc.elems = append(doc.elems, e)
			if !pageVoid[e.name] {
				stack = append(stack, e)
			}
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != tok.Name.Local {
				open := make([]string, len(stack))
				for i, e := range stack {
					open[i] = e.name
				}
				t.Fatalf("page: </%s> closes %v\n%s", tok.Name.Local, open, body)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("page: %d elements left open", len(stack))
	}
	if hs := doc.all("html"); len(hs) != 1 || hs[0].attr["lang"] != "ko" {
		t.Fatalf("page: html element %+v", hs)
	}
	if len(doc.all("head")) != 1 || len(doc.all("body")) != 1 || len(doc.all("title")) != 1 || len(doc.all("main")) != 1 {
		t.Fatal("page: head, title, body or main missing")
	}
	viewport := false
	for _, e := range doc.all("meta") {
		viewport = viewport || e.attr["name"] == "viewport" && strings.Contains(e.attr["content"], "width=device-width")
	}
	if !viewport {
		t.Error("page: no viewport")
	}
	for _, e := range append(doc.all("style"), doc.all("script")...) {
		if e.attr["nonce"] != nonce {
			t.Errorf("page: <%s> without the CSP nonce", e.name)
		}
	}
	labels := map[string]bool{}
	for _, e := range doc.all("label") {
		labels[e.attr["for"]] = true
	}
	for _, e := range doc.all("input") {
		if e.attr["type"] != "hidden" && !labels[e.attr["id"]] {
			t.Errorf("page: input %+v without a label", e.attr)
		}
	}
	english := false
	for _, e := range doc.elems {
		english = english || e.attr["lang"] == "en"
	}
	if !english {
		t.Error("page: no English")
	}
	return doc
}

// pageWithoutNonce is the body with its nonce blanked, to compare pages.
func pageWithoutNonce(w *httptest.ResponseRecorder) string {
	return regexp.MustCompile(`nonce="[^"]*"`).ReplaceAllString(w.Body.String(), `nonce=""`)
}

// noSecrets checks that none of the values appears in the page or in the
// log lines.
func (pr *pageRig) noSecrets(t *testing.T, pages []string, values ...string) {
	t.Helper()
	logs := pr.logs.String()
	for _, v := range values {
		for _, form := range []string{v, grouped(v)} {
			for _, p := range pages {
				if strings.Contains(p, form) {
					t.Errorf("typed value %q in a page", form)
				}
			}
			if strings.Contains(logs, form) {
				t.Errorf("typed value %q in the logs:\n%s", form, logs)
			}
		}
	}
}

func TestPageShowsTheFormOfAnAwaitingSession(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P1", 1234500, testPAN)
	w, doc := pr.entry(t, s.ID, "rs-1")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d\n%s", w.Code, w.Body)
	}
	for _, want := range []string{"카드사 문자로 받은 승인 금액을 입력하세요", "Type the amount of the approval your card company just texted you",
		"KECIS 상점", "1,234,500원", "411111******1111", "남은 입력 횟수 3회", "3 attempts left"} {
		if !strings.Contains(doc.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	forms := doc.forms()
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	f := forms[0]
	if f.elem.attr["method"] != "post" || f.elem.attr["action"] != "/confirm" || f.fields["SessionID"] != s.ID || f.fields["RelayState"] != "rs-1" {
		t.Fatalf("form %+v fields %v", f.elem.attr, f.fields)
	}
	in := doc.byID("entry")
	if in == nil || in.attr["name"] != "Entry" || in.attr["inputmode"] != "numeric" || in.attr["autocomplete"] != "one-time-code" ||
		in.attr["required"] == "" || in.attr["value"] != "" {
		t.Fatalf("entry input %+v", in)
	}
	if len(doc.all("button")) != 1 || doc.all("button")[0].attr["type"] != "submit" {
		t.Fatal("no submit button")
	}
	if len(doc.all("script")) != 0 {
		t.Fatal("the form page has a script; it must work without one")
	}
	if pr.session(t, s.ID).Attempts != 0 {
		t.Fatal("showing the form counted an attempt")
	}
}

func TestPageWrongThenRightAmount(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P2", 15000, testPAN)
	right, wrong := pr.challengeText(t, s), pr.wrongAmount(t, s)
	var pages []string

	w, doc := pr.confirmPage(t, s.ID, "rs-2", grouped(wrong)+"원")
	pages = append(pages, w.Body.String())
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "금액이 맞지 않습니다") || !strings.Contains(doc.body, "The amount does not match — 2 attempts left") {
		t.Fatalf("after a wrong amount: %d\n%s", w.Code, doc.body)
	}
	if in := doc.byID("entry"); in == nil || in.attr["value"] != "" || in.attr["aria-invalid"] != "true" {
		t.Fatalf("entry input after a wrong amount %+v", in)
	}
	if got := pr.session(t, s.ID); got.State != AwaitingAmount || got.Attempts != 1 {
		t.Fatalf("after a wrong amount: %s, %d attempts", got.State, got.Attempts)
	}

	w, doc = pr.confirmPage(t, s.ID, "rs-2", " "+grouped(right)+" 원")
	pages = append(pages, w.Body.String())
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "결제가 완료되었습니다") || !strings.Contains(doc.body, "Your payment is complete") {
		t.Fatalf("after the right amount: %d\n%s", w.Code, doc.body)
	}
	if len(doc.forms()) != 0 || len(doc.all("script")) != 0 {
		t.Fatal("an outcome without a return URL has a form or a script")
	}
	got := pr.session(t, s.ID)
	if got.State != Approved || !got.VerifyDone || got.PurchaseApproval == "" {
		t.Fatalf("after the right amount: %+v", got)
	}
	if open := pr.issuer.open(); len(open) != 0 || pr.acq.count() != 1 {
		t.Fatalf("verification approvals standing %v, purchases %d", open, pr.acq.count())
	}
	// The entry after it shows the outcome again, counting nothing.
	w, doc = pr.entry(t, s.ID, "")
	pages = append(pages, w.Body.String())
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "결제가 완료되었습니다") || pr.acq.count() != 1 {
		t.Fatalf("entry after approval: %d", w.Code)
	}
	pr.noSecrets(t, pages, right, wrong)
	logs := pr.logs.String()
	for _, want := range []string{"session=" + s.ID + " outcome=awaiting-amount", "session=" + s.ID + " outcome=approved"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestPageAttemptLimit(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P3", 15000, testPAN)
	wrong := pr.wrongAmount(t, s)
	var pages []string
	for i, left := range []int{2, 1} {
		w, doc := pr.confirmPage(t, s.ID, "", wrong)
		pages = append(pages, w.Body.String())
		want := "남은 횟수 " + strconv.Itoa(left) + "회"
		if w.Code != http.StatusOK || !strings.Contains(doc.body, want) {
			t.Fatalf("wrong entry %d: %d, lacks %q", i+1, w.Code, want)
		}
	}
	w, doc := pr.confirmPage(t, s.ID, "", wrong)
	pages = append(pages, doc.body)
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "입력 횟수를 초과했습니다") || !strings.Contains(doc.body, "Too many wrong entries") {
		t.Fatalf("third wrong entry is not the failed outcome: %d\n%s", w.Code, doc.body)
	}
	got := pr.session(t, s.ID)
	if got.State != Failed || got.Attempts != 3 || !got.VerifyDone {
		t.Fatalf("after the limit: %+v", got)
	}
	// The right amount now changes nothing and counts nothing.
	w, doc = pr.confirmPage(t, s.ID, "", pr.challengeText(t, s))
	pages = append(pages, w.Body.String())
	if !strings.Contains(doc.body, "Too many wrong entries") || pr.session(t, s.ID).Attempts != 3 || pr.acq.count() != 0 {
		t.Fatalf("an entry after the limit: %s", doc.body)
	}
	if open := pr.issuer.open(); len(open) != 0 {
		t.Fatalf("verification approvals standing %v", open)
	}
	pr.noSecrets(t, pages, wrong, pr.challengeText(t, s))
}

func TestPageExpiredSessionReturnsToTheMerchant(t *testing.T) {
	const ret = "https://shop.test:8443/aa/return?x=1"
	pr := newPageRig(t, PageConfig{}, func(c *Config) {
		c.Merchants = map[string]Options{merchantID: {ReturnURL: ret}}
	})
	s := pr.start(t, "ORD-P4", 15000, testPAN)
	pr.clock.Advance(6 * time.Minute)
	w, doc := pr.entry(t, s.ID, "rs/4 &<>")
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "입력 시간이 지났습니다") || !strings.Contains(doc.body, "The time ran out") {
		t.Fatalf("expired: %d\n%s", w.Code, doc.body)
	}
	if got := pr.session(t, s.ID); got.State != Expired || !got.VerifyDone {
		t.Fatalf("after the timeout: %+v", got)
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action 'self' https://shop.test:8443;") {
		t.Fatalf("CSP %q does not let the return form post", w.Header().Get("Content-Security-Policy"))
	}
	forms := doc.forms()
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	f := forms[0]
	if f.elem.attr["action"] != ret || f.elem.attr["method"] != "post" || f.elem.attr["id"] != "kecis-return" ||
		f.fields["SessionID"] != s.ID || f.fields["RelayState"] != "rs/4 &<>" || f.fields["State"] != "expired" {
		t.Fatalf("return form %+v %v", f.elem.attr, f.fields)
	}
	scripts := doc.all("script")
	if len(scripts) != 1 || !strings.Contains(scripts[0].text, `getElementById("kecis-return").submit()`) {
		t.Fatalf("scripts %+v", scripts)
	}
	if len(doc.all("button")) != 1 {
		t.Fatal("no button for a browser without JavaScript")
	}
}

func TestPageReturnURLMustBeHTTPS(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, func(c *Config) {
		c.Merchants = map[string]Options{merchantID: {ReturnURL: "http://shop.test/return"}}
	})
	s := pr.start(t, "ORD-P5", 15000, testPAN)
	pr.clock.Advance(6 * time.Minute)
	w, doc := pr.entry(t, s.ID, "")
	if w.Code != http.StatusOK || len(doc.forms()) != 0 || len(doc.all("script")) != 0 || strings.Contains(w.Header().Get("Content-Security-Policy"), "shop.test") {
		t.Fatalf("a plain-http return URL was used: %d\n%s", w.Code, doc.body)
	}
	if !strings.Contains(pr.logs.String(), "return URL is not an https URL") {
		t.Fatal("the unusable return URL was not logged")
	}
}

func TestReturnOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://Shop.test/r":          "https://shop.test",
		"https://shop.test:8443/r?a=b": "https://shop.test:8443",
		"http://localhost:8080/r":      "http://localhost:8080",
		"http://127.0.0.1/r":           "http://127.0.0.1",
		"http://[::1]:9/r":             "http://[::1]:9",
		"http://shop.test/r":           "",
		"javascript:alert(1)":          "",
		"https://user@shop.test/r":     "",
		"/relative":                    "",
		"ftp://shop.test/r":            "",
	} {
		got, ok := returnOrigin(raw)
		if got != want || ok != (want != "") {
			t.Errorf("returnOrigin(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

func TestPageUnknownSessionIs404WhateverTheReason(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P6", 15000, testPAN)
	var bodies []string
	for _, id := range []string{"AAAAAAAAAAAAAAAAAAAAAA", s.ID[:21], "../" + s.ID, strings.Repeat("A", 65), "<b>x</b>"} {
		for _, path := range []string{"/", "/confirm"} {
			w, doc := pr.do(t, pageReq{path: path, form: url.Values{"SessionID": {id}, "Entry": {"1000"}}})
			if w.Code != http.StatusNotFound || !strings.Contains(doc.body, "No such payment") {
				t.Fatalf("%s %q: %d", path, id, w.Code)
			}
			bodies = append(bodies, pageWithoutNonce(w))
		}
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("404 pages differ:\n%s\n---\n%s", bodies[0], b)
		}
	}
	if strings.Contains(pr.logs.String(), "<b>") || strings.Contains(pr.logs.String(), "../") {
		t.Fatal("a malformed session identifier was logged")
	}
	if pr.session(t, s.ID).Attempts != 0 {
		t.Fatal("an unknown session's entry counted against another")
	}
}

func TestPageRefusesBadForms(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P7", 15000, testPAN)
	for name, f := range map[string]url.Values{
		"RelayState of 81 bytes":  {"SessionID": {s.ID}, "RelayState": {strings.Repeat("r", 81)}},
		"two RelayStates":         {"SessionID": {s.ID}, "RelayState": {"a", "b"}},
		"RelayState not UTF-8":    {"SessionID": {s.ID}, "RelayState": {"\xff\xfe"}},
		"no SessionID":            {"RelayState": {"a"}},
		"two SessionIDs":          {"SessionID": {s.ID, s.ID}},
		"an empty SessionID":      {"SessionID": {""}},
		"81 bytes and an entry":   {"SessionID": {s.ID}, "RelayState": {strings.Repeat("가", 27)}, "Entry": {"1000"}},
		"a long one on /confirm+": {"SessionID": {s.ID}, "RelayState": {strings.Repeat("r", 200)}, "Entry": {"1000"}},
	} {
		for _, path := range []string{"/", "/confirm"} {
			w, doc := pr.do(t, pageReq{path: path, form: f})
			if w.Code != http.StatusBadRequest || !strings.Contains(doc.body, "Bad request") {
				t.Errorf("%s on %s: %d", name, path, w.Code)
			}
		}
	}
	w, _ := pr.entry(t, s.ID, strings.Repeat("r", 80))
	if w.Code != http.StatusOK {
		t.Fatalf("a RelayState of 80 bytes: %d", w.Code)
	}
	w, doc := pr.do(t, pageReq{path: "/confirm", body: "SessionID=" + s.ID + "&RelayState=" + strings.Repeat("x", maxPageBody)})
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(doc.body, "too large") {
		t.Fatalf("a body past the cap: %d", w.Code)
	}
	if got := pr.session(t, s.ID); got.Attempts != 0 {
		t.Fatalf("a refused form counted %d attempts", got.Attempts)
	}
}

func TestPageUnreadableEntryIsNotCounted(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P8", 15000, testPAN)
	for _, entry := range []string{"abc", "12.5", "-100", "", strings.Repeat("1", 40)} {
		w, doc := pr.confirmPage(t, s.ID, "", entry)
		if w.Code != http.StatusUnprocessableEntity || !strings.Contains(doc.body, "Type the amount in digits") {
			t.Fatalf("entry %q: %d", entry, w.Code)
		}
		if strings.Contains(doc.body, "abc") {
			t.Fatal("the entry was shown back")
		}
	}
	if got := pr.session(t, s.ID); got.Attempts != 0 || got.State != AwaitingAmount {
		t.Fatalf("unreadable entries counted: %+v", got)
	}
}

func TestPageRateLimitsClients(t *testing.T) {
	pr := newPageRig(t, PageConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, func(c *Config) {
		c.Limits = Limits{ClientPerHour: 1, ClientBurst: 2}
	})
	s := pr.start(t, "ORD-P9", 15000, testPAN)
	wrong := pr.wrongAmount(t, s)
	viaProxy := func(xff string) pageReq {
		return pageReq{path: "/confirm", form: url.Values{"SessionID": {s.ID}, "Entry": {wrong}}, remote: "10.1.2.3:4444",
			header: http.Header{"X-Forwarded-For": {xff}}}
	}
	// The client behind the proxy is 203.0.113.9 whatever it claims on
	// the left of X-Forwarded-For.
	for _, xff := range []string{"203.0.113.9", "198.51.100.1, 203.0.113.9, 10.0.0.7"} {
		if w, _ := pr.do(t, viaProxy(xff)); w.Code != http.StatusOK {
			t.Fatalf("entry within the limit: %d", w.Code)
		}
	}
	w, doc := pr.do(t, viaProxy("192.0.2.200, 203.0.113.9"))
	if w.Code != http.StatusTooManyRequests || !strings.Contains(doc.body, "Too many requests") {
		t.Fatalf("third entry: %d", w.Code)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if got := pr.session(t, s.ID); got.Attempts != 2 {
		t.Fatalf("a refused entry was counted: %d attempts", got.Attempts)
	}
	// Another client is served.
	if w, _ := pr.do(t, viaProxy("203.0.113.10")); w.Code != http.StatusOK {
		t.Fatalf("another client: %d", w.Code)
	}
	pr.noSecrets(t, []string{doc.body}, wrong)
}

func TestClientAddrAndKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	p := &Page{trusted: trusted}
	for _, c := range []struct{ remote, xff, want string }{
		{"192.0.2.1:5", "203.0.113.9", "192.0.2.1"}, // not a trusted proxy: its header is the client's
		{"10.0.0.1:5", "", "10.0.0.1"},
		{"10.0.0.1:5", "203.0.113.9", "203.0.113.9"},
		{"10.0.0.1:5", "1.2.3.4, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"10.0.0.1:5", "garbage, 203.0.113.9", "203.0.113.9"},
		{"10.0.0.1:5", "203.0.113.9, garbage", "10.0.0.1"},
		{"[fd00::1]:5", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:5", "", "192.0.2.7"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/confirm", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := p.clientKey(r); got != c.want {
			t.Errorf("%s with %q: %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
}

func TestPageDescriptorCode(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, func(c *Config) {
		c.Merchants = map[string]Options{merchantID: {Method: ByDescriptor}}
	})
	s := pr.start(t, "ORD-P10", 15000, testPAN)
	code := pr.challengeText(t, s)
	w, doc := pr.entry(t, s.ID, "")
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "6자리 코드") || !strings.Contains(doc.body, "Type the 6-digit code shown after the merchant's name") {
		t.Fatalf("descriptor form: %d\n%s", w.Code, doc.body)
	}
	if in := doc.byID("entry"); in == nil || in.attr["pattern"] != "[0-9]{6}" || in.attr["autocomplete"] != "one-time-code" {
		t.Fatalf("descriptor input %+v", in)
	}
	w, doc = pr.confirmPage(t, s.ID, "", "12345")
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(doc.body, "Type the 6 digits") || pr.session(t, s.ID).Attempts != 0 {
		t.Fatalf("five digits: %d", w.Code)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	w, doc = pr.confirmPage(t, s.ID, "", wrong)
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "The code does not match — 2 attempts left") {
		t.Fatalf("wrong code: %d\n%s", w.Code, doc.body)
	}
	w, doc = pr.confirmPage(t, s.ID, "", code[:3]+" "+code[3:])
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "Your payment is complete") || pr.session(t, s.ID).State != Approved {
		t.Fatalf("right code: %d\n%s", w.Code, doc.body)
	}
	pr.noSecrets(t, []string{doc.body}, code)
}

func TestPageProcessingThenCheckAgain(t *testing.T) {
	pr := newPageRig(t, PageConfig{Prefix: "/aa"}, func(c *Config) {
		c.Merchants = map[string]Options{merchantID: {ReturnURL: "https://shop.test/return"}}
	})
	s := pr.start(t, "ORD-P11", 15000, testPAN)
	pr.acq.fail = "before"
	w, doc := pr.do(t, pageReq{path: "/aa/confirm", form: url.Values{"SessionID": {s.ID}, "RelayState": {"rs"}, "Entry": {pr.challengeText(t, s)}}})
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "Your payment is being completed") {
		t.Fatalf("processing: %d\n%s", w.Code, doc.body)
	}
	forms := doc.forms()
	if len(forms) != 1 || forms[0].elem.attr["action"] != "/aa/" || forms[0].fields["SessionID"] != s.ID || forms[0].fields["RelayState"] != "rs" {
		t.Fatalf("check-again form %+v", forms)
	}
	if len(doc.all("script")) != 0 || strings.Contains(w.Header().Get("Content-Security-Policy"), "shop.test") {
		t.Fatal("a session being completed returned to the merchant")
	}
	pr.acq.fail = ""
	w, doc = pr.do(t, pageReq{path: "/aa/", form: forms[0].values()})
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "Your payment is complete") || pr.session(t, s.ID).State != Approved {
		t.Fatalf("check again: %d\n%s", w.Code, doc.body)
	}
	if f := doc.forms(); len(f) != 1 || f[0].elem.attr["action"] != "https://shop.test/return" || f[0].fields["State"] != "approved" {
		t.Fatalf("return form %+v", f)
	}
}

func (f pageTestForm) values() url.Values {
	v := url.Values{}
	for k, x := range f.fields {
		v.Set(k, x)
	}
	return v
}

func TestPageDeclinedAndRefused(t *testing.T) {
	pr := newPageRig(t, PageConfig{}, nil)
	s := pr.start(t, "ORD-P12", 15000, testPAN)
	pr.acq.fail = "InsufficientFunds"
	w, doc := pr.confirmPage(t, s.ID, "", pr.challengeText(t, s))
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "The card company did not approve the payment") || !strings.Contains(doc.body, "한도 초과") {
		t.Fatalf("declined: %d\n%s", w.Code, doc.body)
	}
	if pr.session(t, s.ID).State != Declined {
		t.Fatal("not declined")
	}
	pr.issuer.declined = true
	s2, err := pr.e.Start(context.Background(), pr.request("ORD-P13", 15000, otherPAN))
	if err != nil {
		t.Fatal(err)
	}
	if s2.State != Refused {
		t.Fatalf("start: %s", s2.State)
	}
	w, doc = pr.entry(t, s2.ID, "")
	if w.Code != http.StatusOK || !strings.Contains(doc.body, "The card company refused to verify the card") {
		t.Fatalf("refused: %d\n%s", w.Code, doc.body)
	}
}

func TestPageMethodsPathsAndOrigin(t *testing.T) {
	pr := newPageRig(t, PageConfig{Prefix: "/aa"}, nil)
	s := pr.start(t, "ORD-P14", 15000, testPAN)
	for _, q := range []pageReq{{method: http.MethodGet, path: "/aa/"}, {method: http.MethodGet, path: "/aa/confirm"}, {method: http.MethodPut, path: "/aa"}} {
		w, doc := pr.do(t, q)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" || !strings.Contains(doc.body, "This page opens from the shop's checkout") {
			t.Errorf("%s %s: %d", q.method, q.path, w.Code)
		}
	}
	for _, path := range []string{"/", "/confirm", "/aa/x", "/aaa/"} {
		if w, _ := pr.do(t, pageReq{path: path, form: url.Values{"SessionID": {s.ID}}}); w.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d", path, w.Code)
		}
	}
	w, doc := pr.do(t, pageReq{path: "/aa", form: url.Values{"SessionID": {s.ID}}})
	if w.Code != http.StatusOK || doc.forms()[0].elem.attr["action"] != "/aa/confirm" {
		t.Fatalf("POST /aa: %d", w.Code)
	}
	// A confirm the browser says another site sent is refused, counting
	// nothing; one from the page itself, or from a browser that does not
	// say, is taken.
	f := url.Values{"SessionID": {s.ID}, "Entry": {pr.wrongAmount(t, s)}}
	for site, want := range map[string]int{"cross-site": http.StatusForbidden, "same-site": http.StatusForbidden, "same-origin": http.StatusOK, "": http.StatusOK} {
		h := http.Header{}
		if site != "" {
			h.Set("Sec-Fetch-Site", site)
		}
		before := pr.session(t, s.ID).Attempts
		w, _ := pr.do(t, pageReq{path: "/aa/confirm", form: f, header: h})
		counted := pr.session(t, s.ID).Attempts - before
		if w.Code != want || counted != map[bool]int{true: 0, false: 1}[want == http.StatusForbidden] {
			t.Errorf("Sec-Fetch-Site %q: %d, %d counted", site, w.Code, counted)
		}
	}
	for _, bad := range []string{"aa", "/aa/", "/a a", "/a?b"} {
		if _, err := NewPage(pr.e, PageConfig{Prefix: bad}); err == nil {
			t.Errorf("prefix %q taken", bad)
		}
	}
	if _, err := NewPage(nil, PageConfig{}); err == nil {
		t.Error("NewPage without an engine")
	}
}

// TestPageInABrowser runs the page in headless Chromium 360 px wide, as
// a cardholder's phone does: the merchant's checkout posts the session to
// the page, the cardholder types the amount, and the outcome returns the
// browser to the merchant — once with JavaScript (the nonce'd script
// submits the return form under the page's CSP, the style applies) and
// once without (every step a button).
func TestPageInABrowser(t *testing.T) {
	chromium := testutil.RequireTool(t, "chromium", "chromium")
	returned := make(chan url.Values, 1)
	mux := http.NewServeMux()
	var pageURL string
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><body><form id="go" method="post" action="`+pageURL+`/">`+
			`<input type="hidden" name="SessionID" value="`+r.URL.Query().Get("id")+`">`+
			`<input type="hidden" name="RelayState" value="rs-browser"><button type="submit">pay</button></form>`+
			`<noscript><p id="nojs">JavaScript is off</p></noscript>`+
			`<script>document.getElementById("go").submit();</script></body></html>`)
	})
	mux.HandleFunc("POST /return", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		returned <- r.PostForm
		io.WriteString(w, `<!doctype html><h1 id="back">back at the shop</h1>`)
	})
	shop := httptest.NewServer(mux)
	defer shop.Close()
	pr := newPageRig(t, PageConfig{}, func(c *Config) {
		c.Merchants = map[string]Options{merchantID: {ReturnURL: shop.URL + "/return"}}
	})
	pgSrv := httptest.NewServer(pr.page)
	defer pgSrv.Close()
	pageURL = pgSrv.URL

	for i, js := range []bool{true, false} {
		t.Run(map[bool]string{true: "javascript", false: "no javascript"}[js], func(t *testing.T) {
			s := pr.start(t, "ORD-B"+strconv.Itoa(i), 15000, testPAN)
			ctx := pageBrowser(t, chromium, js)
			steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
				chromedp.Navigate(shop.URL + "/checkout?id=" + s.ID)}
			if !js {
				steps = append(steps, chromedp.WaitVisible(chromedp.CSS("#nojs")), chromedp.Click(chromedp.CSS("#go button")))
			}
			steps = append(steps, chromedp.WaitVisible(chromedp.CSS("#entry")))
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("the amount form: %v", err)
			}
			for expr, want := range map[string]float64{
				`document.documentElement.scrollWidth <= window.innerWidth ? 1 : 0`: 1, // fits the phone
				`window.innerWidth`: 360,
				`parseFloat(getComputedStyle(document.querySelector("button")).minHeight)`: 48, // the nonce'd style applies
			} {
				if got, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr)); err != nil || got != want {
					t.Errorf("%s = %v (%v), want %v", expr, got, err, want)
				}
			}
			steps = []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.CSS("#entry"), grouped(pr.challengeText(t, s))),
				chromedp.Click(chromedp.CSS("form button"))}
			if !js {
				steps = append(steps, chromedp.WaitVisible(chromedp.CSS("#kecis-return button")), chromedp.Click(chromedp.CSS("#kecis-return button")))
			}
			steps = append(steps, chromedp.WaitVisible(chromedp.CSS("#back")))
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("typing the amount and returning to the shop: %v", err)
			}
			select {
			case f := <-returned:
				if f.Get("SessionID") != s.ID || f.Get("RelayState") != "rs-browser" || f.Get("State") != "approved" {
					t.Fatalf("the shop got %v", f)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the browser never returned to the shop")
			}
			if got := pr.session(t, s.ID); got.State != Approved {
				t.Fatalf("session %s", got.State)
			}
		})
	}
}

// pageBrowser starts a headless Chromium, with or without JavaScript,
// for the test's lifetime.
func pageBrowser(t *testing.T, chromium string, js bool) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")), chromedp.WindowSize(360, 740))
	if !js {
		opts = append(opts, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser without a timeout
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
