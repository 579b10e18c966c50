package microdeposit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func serve(h http.Handler, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if method == http.MethodPost && strings.HasPrefix(body, "{") {
		r.Header.Set("Content-Type", "application/json")
	} else if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPage(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, nil)
	h := e.Handler(HandlerConfig{Prefix: "/verify"})
	s := mustStart(t, e, "k1")
	p := "/verify/" + s.ID

	res := serve(h, "GET", p, "", nil)
	body := res.Body.String()
	if res.Code != 200 || !strings.Contains(body, "****-7890") || !strings.Contains(body, "KECIS상점") || !strings.Contains(body, `name="amount2"`) ||
		strings.Contains(body, "<script") || !strings.Contains(res.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("GET: %d %s", res.Code, body)
	}
	// A malformed entry is not counted; a wrong one is.
	if res = serve(h, "POST", p, "amount1=1.5&amount2=3", nil); res.Code != 400 {
		t.Fatalf("malformed: %d", res.Code)
	}
	if res = serve(h, "POST", p, "amount1=100&amount2=200", nil); res.Code != 200 || !strings.Contains(res.Body.String(), "does not match") {
		t.Fatalf("wrong: %d %s", res.Code, res.Body.String())
	}
	// A cross-site post is refused.
	if res = serve(h, "POST", p, "amount1=1&amount2=2", map[string]string{"Sec-Fetch-Site": "cross-site"}); res.Code != 403 {
		t.Fatalf("cross-site: %d", res.Code)
	}
	typed := w.read(s)
	form := url.Values{"amount1": {fmt.Sprint(typed.Amounts[1], "원")}, "amount2": {fmt.Sprint(typed.Amounts[0])}}
	if res = serve(h, "POST", p, form.Encode(), nil); res.Code != 200 || !strings.Contains(res.Body.String(), "verified") {
		t.Fatalf("right: %d %s", res.Code, res.Body.String())
	}
	if s, _ = e.Lookup(ctx, "", s.ID); s.State != Verified || s.Attempts != 1 {
		t.Fatalf("%s, %d attempts", s.State, s.Attempts)
	}
	if res = serve(h, "GET", "/verify/nosuchsession", "", nil); res.Code != 404 {
		t.Fatalf("unknown: %d", res.Code)
	}
}

func TestJSONAPI(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, codeVariant)
	h := e.Handler(HandlerConfig{})
	s := mustStart(t, e, "k1")
	p := "/api/" + s.ID
	var v View
	res := serve(h, "GET", p, "", nil)
	if err := json.Unmarshal(res.Body.Bytes(), &v); err != nil || v.State != Awaiting || v.Variant != Code || v.AttemptsLeft != 3 || v.Account != "****-7890" {
		t.Fatalf("GET: %s %v", res.Body.String(), err)
	}
	if res = serve(h, "POST", p, `{"code":"O0"}`, nil); res.Code != 400 {
		t.Fatalf("malformed: %d %s", res.Code, res.Body.String())
	}
	if res = serve(h, "POST", p, `{"code":`, nil); res.Code != 400 {
		t.Fatalf("bad JSON: %d", res.Code)
	}
	res = serve(h, "POST", p, fmt.Sprintf(`{"code":%q}`, strings.ToLower(w.read(s).Code)), nil)
	if err := json.Unmarshal(res.Body.Bytes(), &v); err != nil || v.State != Verified || v.AttemptsLeft != 0 {
		t.Fatalf("POST: %s %v", res.Body.String(), err)
	}
	if strings.Contains(w.logs.String(), w.read(s).Code) {
		t.Fatal("the code was logged")
	}
}

func TestPageRateLimit(t *testing.T) {
	w := newWorld(t)
	e := w.engine(nil, func(c *Config) { c.Limits.ClientPerHour, c.Limits.ClientBurst = 1, 2 })
	h := e.Handler(HandlerConfig{})
	s := mustStart(t, e, "k1")
	for i := range 3 {
		res := serve(h, "GET", "/"+s.ID, "", nil)
		if want := map[bool]int{true: 429, false: 200}[i == 2]; res.Code != want {
			t.Fatalf("request %d: %d", i, res.Code)
		}
	}
}
