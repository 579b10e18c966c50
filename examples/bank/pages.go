package bank

import (
	"crypto/hmac"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
)

// The customers' and the administrator's pages: plain HTML forms that fit
// a phone (a viewport, tables that scroll sideways), no JavaScript, under
// the CSP of secureHeaders. A customer logs in with Authenticate; the
// session is a cookie holding the customer's id and expiry under an HMAC
// of a pepper-derived key (HttpOnly, SameSite=Strict, Secure over TLS).
// Cross-site form posts are refused.

const sessionCookie = "bank_session"

var crossOrigin = http.NewCrossOriginProtection()

var funcs = template.FuncMap{
	"won": func(n int64) string { return ecml.Money{Minor: n, Currency: Currency}.Display() },
	"signed": func(n int64) string {
		s := ecml.Money{Minor: abs(n), Currency: Currency}.Display()
		if n < 0 {
			return "−" + s
		}
		return "+" + s
	},
	"phone": MaskPhone,
	"acct":  ecml.MaskAccount,
	"date":  func(t time.Time) string { return t.Format("2006-01-02 15:04") },
}

const head = `<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Bank}}</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,"Apple SD Gothic Neo","Malgun Gothic",sans-serif;margin:0 auto;padding:.5rem 1rem;max-width:48rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.1rem}
.scroll{max-width:100%;overflow-x:auto;margin-bottom:1.5rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left}
th{background:#f4f4f4;white-space:nowrap} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
label{display:block;margin:.5rem 0}input{font-size:1rem;padding:.4rem;width:100%;max-width:20rem}
button{font-size:1rem;padding:.4rem 1rem}.err{color:#a00}form.inline{display:inline}
</style></head><body>
<h1>{{.Bank}}</h1>
`

var (
	loginPage = template.Must(template.New("login").Funcs(funcs).Parse(head + `
<h2>로그인 · Log in</h2>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<label>아이디 · Login <input name="login" autocomplete="username" required></label>
<label>비밀번호 · Password <input name="password" type="password" autocomplete="current-password" required></label>
<button>로그인</button>
</form></body></html>`))

	homePage = template.Must(template.New("home").Funcs(funcs).Parse(head + `
<p>{{.Customer.Name}} · {{phone .Customer.Phone}}
<form class="inline" method="post" action="/logout"><button>로그아웃</button></form></p>
<h2>계좌 · Accounts</h2>
<div class="scroll"><table><tr><th>계좌</th><th>잔액</th><th>상태</th><th>이체한도</th></tr>
{{range .Accounts}}<tr><td><a href="/accounts/{{.ID}}">{{acct .Last4}}</a></td><td class="n">{{won .Balance}}</td><td>{{.Status}}</td><td class="n">{{won .TransferLimit}}</td></tr>
{{else}}<tr><td colspan="4">계좌가 없습니다</td></tr>{{end}}</table></div>
{{if .Account}}<h2>거래내역 · {{acct .Account.Last4}}</h2>
<div class="scroll"><table><tr><th>일시</th><th>내용</th><th>금액</th><th>잔액</th></tr>
{{range .Lines}}<tr><td>{{.At.In $.Loc | date}}</td><td>{{.Counterparty}}{{if .Memo}} · {{.Memo}}{{end}}</td><td class="n">{{signed .Amount}}</td><td class="n">{{won .Balance}}</td></tr>
{{else}}<tr><td colspan="4">거래가 없습니다</td></tr>{{end}}</table></div>{{end}}
</body></html>`))

	adminPage = template.Must(template.New("admin").Funcs(funcs).Parse(head + `
<h2>Ledger</h2>
{{if .LedgerError}}<p class="err">{{.LedgerError}}</p>{{else}}<p>{{.Ledger.Journals}} journals, {{.Ledger.Entries}} entries, balanced.
Customers hold {{won .Ledger.Customers}}; cash {{won .Ledger.Cash}}; escrow held {{won .Ledger.Escrow}};
{{range $bank, $bal := .Ledger.Clearing}} clearing {{$bank}} {{won $bal}};{{end}}</p>{{end}}
<h2>Customers</h2>
<div class="scroll"><table><tr><th>ID</th><th>Name</th><th>Phone</th><th>Login</th><th>Failures</th></tr>
{{range .Customers}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{phone .Phone}}</td><td>{{.Login}}</td><td class="n">{{.Failures}}{{if .Locked}} <strong>locked</strong> <form class="inline" method="post" action="/admin/customers/{{.ID}}/unlock"><button>Unlock</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="5">no customers</td></tr>{{end}}</table></div>
<h2>Accounts</h2>
<div class="scroll"><table><tr><th>ID</th><th>Account</th><th>Holder</th><th>Balance</th><th>Status</th><th>Limit</th></tr>
{{range .Accounts}}<tr><td>{{.ID}}</td><td>{{acct .Last4}}</td><td>{{.Holder}}</td><td class="n">{{won .Balance}}</td><td>{{.Status}}</td><td class="n">{{won .TransferLimit}}</td></tr>
{{else}}<tr><td colspan="6">no accounts</td></tr>{{end}}</table></div>
<h2>Recent SMS</h2>
<div class="scroll"><table><tr><th>#</th><th>To</th><th>Text</th><th>State</th></tr>
{{range .SMS}}<tr><td>{{.ID}}</td><td>{{phone .Phone}}</td><td>{{.Text}}</td><td>{{.State}}</td></tr>
{{else}}<tr><td colspan="4">no messages</td></tr>{{end}}</table></div>
</body></html>`))
)

func (b *Bank) pages(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { b.render(w, r, loginPage, nil) })
	mux.HandleFunc("POST /login", b.postLogin)
	mux.HandleFunc("POST /logout", b.postLogout)
	mux.HandleFunc("GET /{$}", b.home)
	mux.HandleFunc("GET /accounts/{id}", b.home)
	mux.HandleFunc("GET /admin", b.adminOnlyPage(b.adminHome))
	mux.HandleFunc("POST /admin/customers/{id}/unlock", b.adminOnlyPage(b.adminUnlock))
}

func (b *Bank) render(w http.ResponseWriter, r *http.Request, t *template.Template, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Bank"], data["Loc"] = b.name, b.loc
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := t.Execute(w, data); err != nil {
		b.log.ErrorContext(r.Context(), "page", "err", err)
	}
}

func (b *Bank) postLogin(w http.ResponseWriter, r *http.Request) {
	if crossOrigin.Check(r) != nil {
		http.Error(w, "cross-site form post refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c, err := b.Authenticate(r.Context(), r.PostForm.Get("login"), ecml.Secret(r.PostForm.Get("password")))
	if err != nil {
		var msg string
		switch CodeOf(err) {
		case CodeLoginFailed:
			msg = "아이디 또는 비밀번호가 틀립니다 (wrong login or password)"
		case CodeLocked:
			msg = "로그인이 잠겼습니다 (locked after repeated failures)"
		default:
			b.log.ErrorContext(r.Context(), "login", "err", errorText(err))
			msg = "잠시 후 다시 시도하세요 (try again later)"
		}
		w.WriteHeader(http.StatusUnauthorized)
		b.render(w, r, loginPage, map[string]any{"Error": msg})
		return
	}
	exp := b.now().Add(b.session)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: b.sessionValue(c.ID, exp), Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, Expires: exp})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (b *Bank) postLogout(w http.ResponseWriter, r *http.Request) {
	if crossOrigin.Check(r) != nil {
		http.Error(w, "cross-site form post refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sessionValue is id.expiry.mac.
func (b *Bank) sessionValue(id string, exp time.Time) string {
	payload := id + "." + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(b.vault.sessKey.Hash(payload))
}

// sessionCustomer returns the logged-in customer's id, "" for none.
func (b *Bank) sessionCustomer(r *http.Request) string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 {
		return ""
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !b.now().Before(time.Unix(exp, 0)) {
		return ""
	}
	if !hmac.Equal([]byte(b.sessionValue(parts[0], time.Unix(exp, 0))), []byte(ck.Value)) {
		return ""
	}
	return parts[0]
}

// home is the customer's page: their accounts and, for /accounts/{id} of
// their own, its statement.
func (b *Bank) home(w http.ResponseWriter, r *http.Request) {
	id := b.sessionCustomer(r)
	if id == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	c, err := b.Customer(ctx, id)
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	accts, err := b.Accounts(ctx, id)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	data := map[string]any{"Customer": c, "Accounts": accts}
	if want := r.PathValue("id"); want != "" {
		var a *Account
		for _, x := range accts {
			if x.ID == want {
				a = x
			}
		}
		if a == nil {
			http.NotFound(w, r)
			return
		}
		lines, err := b.Statement(ctx, a.ID, 50)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		data["Account"], data["Lines"] = a, lines
	}
	b.render(w, r, homePage, data)
}

func (b *Bank) adminOnlyPage(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !b.isAdmin(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="bank admin"`)
			http.Error(w, "admin credentials required", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// adminHome is the administrator's page: the ledger check, customers (with
// the unlock button), accounts (masked) and the latest SMS.
func (b *Bank) adminHome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data := map[string]any{}
	if rep, err := b.CheckLedger(ctx); err != nil {
		data["LedgerError"] = err.Error()
	} else {
		data["Ledger"] = rep
	}
	var err error
	if data["Customers"], err = b.Customers(ctx, 200); err == nil {
		if data["Accounts"], err = b.Accounts(ctx, ""); err == nil {
			data["SMS"], err = b.Notifications(ctx, 50)
		}
	}
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b.render(w, r, adminPage, data)
}

func (b *Bank) adminUnlock(w http.ResponseWriter, r *http.Request) {
	if crossOrigin.Check(r) != nil {
		http.Error(w, "cross-site form post refused", http.StatusForbidden)
		return
	}
	if _, err := b.UnlockCustomer(r.Context(), r.PathValue("id")); err != nil {
		b.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
