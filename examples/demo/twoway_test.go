package demo

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/testutil"
)

// plainJar keeps every cookie of the one host a test talks to, Secure ones
// too: the 2-WAY pages set their session cookie Secure, which browsers
// keep on http://127.0.0.1 and net/http/cookiejar does not.
type plainJar struct {
	mu sync.Mutex
	c  map[string]*http.Cookie
}

func (j *plainJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.c, c.Name)
			continue
		}
		j.c[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
	}
}

func (j *plainJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.c {
		out = append(out, c)
	}
	return out
}

// twoWayClient is a person on bank A's 2-WAY pages without JavaScript.
type twoWayClient struct {
	t    *testing.T
	base string // the bank's native URL
	c    *http.Client
}

func newTwoWayClient(t *testing.T, b *Bank) *twoWayClient {
	return &twoWayClient{t: t, base: b.URL, c: &http.Client{Jar: &plainJar{c: map[string]*http.Cookie{}}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *twoWayClient) do(method, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// get follows redirects to a page.
func (c *twoWayClient) get(path string) string {
	c.t.Helper()
	for range 5 {
		code, loc, body := c.do(http.MethodGet, path, nil)
		switch code {
		case http.StatusOK:
			return body
		case http.StatusSeeOther, http.StatusFound, http.StatusMovedPermanently:
			path = loc
		default:
			c.t.Fatalf("GET %s: HTTP %d\n%s", path, code, body)
		}
	}
	c.t.Fatalf("GET %s: too many redirects", path)
	return ""
}

// submit posts the page's form whose action ends with suffix, with extra
// fields, and answers where it redirects.
func (c *twoWayClient) submit(page, suffix string, extra url.Values) string {
	c.t.Helper()
	f := pageForm(c.t, page, suffix)
	for k, vs := range extra {
		f.Fields[k] = vs
	}
	code, loc, body := c.do(http.MethodPost, f.Action, f.Fields)
	if code != http.StatusSeeOther {
		c.t.Fatalf("POST %s: HTTP %d\n%s", f.Action, code, body)
	}
	return loc
}

var (
	optionRE = regexp.MustCompile(`<select id="account" name="account" required>\s*<option value="([^"]+)"`)
	codeRE   = regexp.MustCompile(`인증번호 (\d{6})`)
)

// waitText waits for a text to phone that contains want.
func waitText(t *testing.T, d *Demo, phone, want string) telecom.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := d.Telecom.WaitForMessage(ctx, phone, func(m telecom.Message) bool { return strings.Contains(m.Text, want) })
	if err != nil {
		t.Fatalf("no text %q to %s: %v", want, phone, err)
	}
	return m
}

// reply answers the message as the phone's holder through the telecom's
// phone API (what the phone page's reply form does).
func reply(t *testing.T, d *Demo, phone, text, inReplyTo string) telecom.PhoneReply {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text, "in_reply_to": inReplyTo})
	resp, err := http.Post(d.TelecomURL+"/api/phones/"+strings.ReplaceAll(phone, "-", "")+"/replies", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r telecom.PhoneReply
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &r) != nil || r.WebhookStatus != telecom.WebhookDelivered {
		t.Fatalf("reply: HTTP %d %s", resp.StatusCode, body)
	}
	return r
}

// TestTwoWayOverHTTP drives the demo's 2-WAY transfer (KECIS §15.5) over
// plain HTTP as a person does, without JavaScript: Kim Jiho logs in on bank
// A's pages, asks to send 50,000원 to Lee Sora's account at bank B with
// her phone; the name check (bank B's holder inquiry and the telecom's
// holder check, through the hub) says match with her name; confirmed, the
// code is texted to her phone, she replies with it on the telecom's phone
// API, the transfer executes, Kim Jiho is texted the outcome, and the
// balances at both banks moved exactly once — a second reply with the
// same code moves nothing. A transfer to Choi Daeun (no match: the phone
// is someone else's) can only be abandoned; one to Park Minsu (close
// match) shows the account holder's actual name. No account number is in
// clear in the hub's database or any log.
func TestTwoWayOverHTTP(t *testing.T) {
	d, logs := startBanksDemo(t)
	a, b := d.Banks[0], d.Banks[1]
	jiho, sora, minsu, daeun := a.Customer("jiho"), b.Customer("sora"), b.Customer("minsu"), b.Customer("daeun")
	if a.TwoWayURL != a.URL+"/twoway/" {
		t.Fatalf("2-WAY pages at %q", a.TwoWayURL)
	}
	c := newTwoWayClient(t, a)
	page := c.get("/twoway/")
	page = c.get(c.submit(page, "/twoway/login", url.Values{"login": {jiho.Login}, "password": {jiho.Password}}))
	m := optionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no withdrawal account in the form:\n%s", page)
	}
	account := html.UnescapeString(m[1])
	start := func(payee *BankCustomer, amount string) string {
		t.Helper()
		form := c.get("/twoway/")
		return c.submit(form, "/twoway/start", url.Values{"account": {account}, "amount": {amount}, "bank": {b.Code},
			"payee_account": {payee.Accounts[0].Number}, "phone": {payee.Phone}, "purpose": {twoway.PhishingPrevention}})
	}

	// No match: the remitter is warned and can only abandon.
	st := c.get(start(daeun, "20000"))
	if !strings.Contains(st, "No match") || strings.Contains(st, "/confirm\"") {
		t.Fatalf("no-match page:\n%s", st)
	}
	if st = c.get(c.submit(st, "/cancel", nil)); !strings.Contains(st, "Abandoned") {
		t.Fatalf("abandoned:\n%s", st)
	}
	// Close match: the account holder's actual name is shown.
	st = c.get(start(minsu, "20000"))
	if !strings.Contains(st, "Close match") || !strings.Contains(st, minsu.Name) {
		t.Fatalf("close-match page:\n%s", st)
	}
	c.submit(st, "/cancel", nil)

	// Match: confirm, the payee is texted the code and replies.
	loc := start(sora, "50,000")
	st = c.get(loc)
	if !strings.Contains(st, "Match: the phone belongs to the account holder, "+sora.Name) {
		t.Fatalf("match page:\n%s", st)
	}
	if st = c.get(c.submit(st, "/confirm", nil)); !strings.Contains(st, "Awaiting the payee") {
		t.Fatalf("after confirming:\n%s", st)
	}
	text := waitText(t, d, sora.Phone, "인증번호")
	code := codeRE.FindStringSubmatch(text.Text)
	if code == nil || !strings.Contains(text.Text, "50,000") || !strings.Contains(text.Text, jiho.Name) || !strings.Contains(text.Text, "보이스피싱") {
		t.Fatalf("the payee's text: %q", text.Text)
	}
	reply(t, d, sora.Phone, code[1], text.ID)
	done := waitText(t, d, jiho.Phone, "2-WAY 송금 완료")
	if !strings.Contains(done.Text, "50,000") {
		t.Fatalf("the remitter's text: %q", done.Text)
	}
	if st = c.get(loc); !strings.Contains(st, "Transfer executed") {
		t.Fatalf("the status page:\n%s", st)
	}
	// The payee replies again: nothing moves twice.
	reply(t, d, sora.Phone, code[1], text.ID)
	if got, want := balance(t, a, "jiho"), int64(5_000_000-50_000); got != want {
		t.Fatalf("the remitter's balance %d, want %d", got, want)
	}
	if got, want := balance(t, b, "sora"), int64(100_000+50_000); got != want {
		t.Fatalf("the payee's balance %d, want %d", got, want)
	}

	secrets := accountForms(sora.Accounts[0].Number, minsu.Accounts[0].Number, daeun.Accounts[0].Number, jiho.Accounts[0].Number)
	assertNoSecretInSQLite(t, d.path("hub", "hub.db"), secrets...)
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("an account number in clear in the logs (…%s)", s[len(s)-4:])
		}
	}
}

// TestTwoWayInTheBrowser drives the 2-WAY demo in headless Chromium 360 px
// wide, as a person does: Kim Jiho logs in on bank A's pages, fills in the
// transfer to Lee Sora, sees the name check match and confirms; on Lee
// Sora's phone page she replies with the texted code; bank A's status page
// says the transfer executed and Kim Jiho's phone shows the outcome; the
// balances moved once. Skipped without Chromium, unless CI=true.
func TestTwoWayInTheBrowser(t *testing.T) {
	testutil.RequireTool(t, "chromium", "chromium")
	d, _ := startBanksDemo(t)
	a, b := d.Banks[0], d.Banks[1]
	jiho, sora := a.Customer("jiho"), b.Customer("sora")
	ctx := browser(t, 60*time.Second)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\n%s", what, err, body)
		}
	}
	// waitFor waits until the page shows text, across the navigations a
	// form post or a meta refresh makes.
	waitFor := func(text string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.body && document.body.innerText.includes(`+strconv.Quote(text)+`)`))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
				t.Fatalf("the page does not show %q (%v):\n%s", text, err, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	run("login", chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(a.TwoWayURL),
		chromedp.WaitVisible(chromedp.ID("login")), chromedp.SendKeys(chromedp.ID("login"), jiho.Login),
		chromedp.SendKeys(chromedp.ID("password"), jiho.Password), chromedp.Click(chromedp.CSS(`form[action$="/login"] button[type=submit]`)))
	run("the transfer form", chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SendKeys(chromedp.ID("amount"), "30000"), chromedp.SetValue(chromedp.ID("bank"), b.Code),
		chromedp.SendKeys(chromedp.ID("payee_account"), sora.Accounts[0].Number), chromedp.SendKeys(chromedp.ID("phone"), sora.Phone),
		chromedp.Click(chromedp.CSS(`form[action$="/start"] button[type=submit]`)))
	waitFor("Match: the phone belongs to the account holder, " + sora.Name)
	width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
	if err != nil || width > 360 {
		t.Errorf("the name check's page is %.0f px wide on a 360 px screen (%v)", width, err)
	}
	status, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	run("confirm", chromedp.Click(chromedp.CSS(`form[action$="/confirm"] button[type=submit]`)))
	waitFor("Awaiting the payee")
	text := waitText(t, d, sora.Phone, "인증번호")
	code := codeRE.FindStringSubmatch(text.Text)
	if code == nil {
		t.Fatalf("the payee's text: %q", text.Text)
	}
	form := `form:has(input[name=in_reply_to][value="` + text.ID + `"])`
	run("the payee's reply", chromedp.Navigate(d.TelecomURL+"/phones/"+strings.ReplaceAll(sora.Phone, "-", "")),
		chromedp.WaitVisible(chromedp.CSS(form+" textarea")), chromedp.SendKeys(chromedp.CSS(form+" textarea"), code[1]),
		chromedp.Click(chromedp.CSS(form+" button[type=submit]")))
	waitFor("delivered to the sender")
	run("the status page", chromedp.Navigate(status))
	waitFor("Transfer executed")
	run("the remitter's phone", chromedp.Navigate(d.TelecomURL+"/phones/"+strings.ReplaceAll(jiho.Phone, "-", "")))
	waitFor("2-WAY 송금 완료")
	if got, want := balance(t, a, "jiho"), int64(5_000_000-30_000); got != want {
		t.Fatalf("the remitter's balance %d, want %d", got, want)
	}
	if got, want := balance(t, b, "sora"), int64(100_000+30_000); got != want {
		t.Fatalf("the payee's balance %d, want %d", got, want)
	}
}
