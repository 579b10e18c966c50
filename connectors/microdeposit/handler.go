package microdeposit

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
)

// HandlerConfig configures the holder's page and JSON API.
type HandlerConfig struct {
	// Prefix is the path served under, without a trailing slash.
	Prefix string
	// TrustedProxies are the reverse proxies in front (see
	// httpserver.ClientAddr).
	TrustedProxies []netip.Prefix
}

// maxBody caps a request's body.
const maxBody = 4 << 10

// maxSessionID bounds a session id looked up (the engine's are 22).
const maxSessionID = 64

// Handler serves the holder's entry (KECIS §15.8.1), by the session's id
// — 128 random bits, the capability the verifier hands its user:
//
//   - GET Prefix/{id}: a page without JavaScript that says which account
//     and what to look for on the statement, with the form;
//   - POST Prefix/{id}: the form (amount1 and amount2, or code);
//   - GET Prefix/api/{id}: the session as JSON;
//   - POST Prefix/api/{id}: {"amounts": ["12", "34"]} or {"code": "7KQ2"},
//     answered as GET's.
//
// An entry that does not parse is answered 400 and not counted; every
// request counts against its client's rate limit; a cross-site form post
// is refused. The verifier's own backend calls Engine.Confirm with its
// entityID instead.
func (e *Engine) Handler(cfg HandlerConfig) http.Handler {
	h := &handler{e: e, trusted: cfg.TrustedProxies}
	p := strings.TrimSuffix(cfg.Prefix, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/{id}", h.page)
	mux.HandleFunc("POST "+p+"/{id}", h.page)
	mux.HandleFunc("GET "+p+"/api/{id}", h.api)
	mux.HandleFunc("POST "+p+"/api/{id}", h.api)
	return mux
}

type handler struct {
	e       *Engine
	trusted []netip.Prefix
}

// View is the session as the holder sees it (the JSON API's answer).
type View struct {
	State        State   `json:"state"`
	Variant      Variant `json:"variant"`
	Bank         string  `json:"bank"`
	Account      string  `json:"account"` // masked
	Name         string  `json:"name"`    // the remitter's name to look for
	AttemptsLeft int     `json:"attemptsLeft"`
	Expires      string  `json:"expires"` // RFC 3339
	Error        string  `json:"error,omitempty"`
}

func view(s *Session) View {
	return View{State: s.State, Variant: s.Variant, Bank: s.Bank, Account: s.AccountRef, Name: s.Memo,
		AttemptsLeft: s.AttemptsLeft(), Expires: s.Deadline.UTC().Format(time.RFC3339)}
}

// entry reads the typed values; a malformed one is an error (400, not
// counted).
func entry(v Variant, amounts []string, code string) (Typed, error) {
	if v == Code {
		if strings.TrimSpace(code) == "" {
			return Typed{}, nil
		}
		c, err := ParseCode(code)
		return Typed{Code: c}, err
	}
	blank := true
	for _, a := range amounts {
		blank = blank && strings.TrimSpace(a) == ""
	}
	if blank {
		return Typed{}, nil
	}
	a, err := ParseAmounts(amounts...)
	if err == nil && len(a) != 2 {
		err = errNotAmounts
	}
	return Typed{Amounts: a}, err
}

// session reads the request's session and applies the client's limit;
// it writes the refusal itself and answers nil.
func (h *handler) session(w http.ResponseWriter, r *http.Request, fail func(int, string)) *Session {
	if ok, retry := h.e.AllowClient(httpserver.ClientKey(r, h.trusted)); !ok {
		w.Header().Set("Retry-After", retryAfter(retry))
		fail(http.StatusTooManyRequests, "too many entries; try again later")
		return nil
	}
	id := r.PathValue("id")
	if id == "" || len(id) > maxSessionID {
		fail(http.StatusNotFound, "no such verification")
		return nil
	}
	s, err := h.e.Lookup(r.Context(), "", id)
	if errors.Is(err, ErrNotFound) {
		fail(http.StatusNotFound, "no such verification")
		return nil
	} else if err != nil {
		h.e.log.ErrorContext(r.Context(), "microdeposit: page", "error", errText(err))
		fail(http.StatusServiceUnavailable, "the verification is not available now; try again later")
		return nil
	}
	return s
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1))
}

func (h *handler) api(w http.ResponseWriter, r *http.Request) {
	httpserver.SetBareHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	fail := func(code int, msg string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	s := h.session(w, r, fail)
	if s == nil {
		return
	}
	if r.Method == http.MethodPost {
		var in struct {
			Amounts []string `json:"amounts"`
			Code    string   `json:"code"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		if err := dec.Decode(&in); err != nil || len(in.Amounts) > 2 {
			fail(http.StatusBadRequest, "the body is {\"amounts\": [\"12\", \"34\"]} or {\"code\": \"7KQ2\"}")
			return
		}
		t, err := entry(s.Variant, in.Amounts, in.Code)
		if err != nil {
			v := view(s)
			v.Error = err.Error()
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(v)
			return
		}
		if s, err = h.e.Confirm(r.Context(), "", s.ID, t); err != nil {
			h.e.log.ErrorContext(r.Context(), "microdeposit: confirm", "error", errText(err))
			fail(http.StatusServiceUnavailable, "the verification is not available now; try again later")
			return
		}
	}
	_ = json.NewEncoder(w).Encode(view(s))
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, msg string) {
		httpserver.SetBareHeaders(w.Header())
		http.Error(w, msg, code)
	}
	if r.Method == http.MethodPost && httpserver.CrossSite(r) {
		fail(http.StatusForbidden, "the form must be posted from this site")
		return
	}
	s := h.session(w, r, fail)
	if s == nil {
		return
	}
	v := view(s)
	status := http.StatusOK
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "the form could not be read")
			return
		}
		t, err := entry(s.Variant, []string{r.PostForm.Get("amount1"), r.PostForm.Get("amount2")}, r.PostForm.Get("code"))
		if err != nil {
			v.Error, status = err.Error(), http.StatusBadRequest
		} else {
			before := s.Attempts
			if s, err = h.e.Confirm(r.Context(), "", s.ID, t); err != nil {
				h.e.log.ErrorContext(r.Context(), "microdeposit: confirm", "error", errText(err))
				fail(http.StatusServiceUnavailable, "the verification is not available now; try again later")
				return
			}
			v = view(s)
			if s.State == Awaiting && s.Attempts > before {
				v.Error = "that does not match; look at the statement again"
			}
		}
	}
	nonce, err := httpserver.PageNonce(h.e.rand)
	if err != nil {
		fail(http.StatusInternalServerError, "try again")
		return
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, struct {
		View
		Nonce, Action string
	}{v, nonce, r.URL.Path}); err != nil {
		fail(http.StatusInternalServerError, "try again")
		return
	}
	httpserver.SetPageHeaders(w.Header(), nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>계좌 인증 — account verification</title>
<style nonce="{{.Nonce}}">body{font-family:sans-serif;max-width:28em;margin:1em auto;padding:0 1em}input{font-size:1.2em;width:6em}.err{color:#b00}</style>
</head><body>
<h1>계좌 인증 · Account verification</h1>
<p>Bank {{.Bank}}, account {{.Account}}.</p>
{{if eq .State "awaiting"}}
{{if eq .Variant "code"}}
<p>We sent 1 won to this account. On your bank's statement, the sender's name is a code followed by <b>{{.Name}}</b>. Type the code.</p>
{{else}}
<p>We sent two small amounts to this account, from <b>{{.Name}}</b>. Type both amounts, in any order.</p>
{{end}}
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{if eq .Variant "code"}}
<label>Code <input name="code" autocomplete="off" autocapitalize="characters" maxlength="16" required></label>
{{else}}
<label>First amount <input name="amount1" inputmode="numeric" autocomplete="off" maxlength="12" required></label> 원<br>
<label>Second amount <input name="amount2" inputmode="numeric" autocomplete="off" maxlength="12" required></label> 원
{{end}}
<p><button type="submit">Verify</button> ({{.AttemptsLeft}} attempts left, until {{.Expires}})</p>
</form>
{{else if eq .State "sending"}}
<p>The deposits are on their way. Come back in a few minutes.</p>
{{else if eq .State "verified"}}
<p>The account is verified. You may close this page.</p>
{{else if eq .State "failed"}}
<p>Too many wrong entries: this verification has ended. Ask for a new one.</p>
{{else if eq .State "expired"}}
<p>This verification has expired. Ask for a new one.</p>
{{else}}
<p>The bank did not accept the deposit: check the bank and the account number and ask for a new verification.</p>
{{end}}
</body></html>
`))
