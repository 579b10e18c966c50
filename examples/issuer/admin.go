package issuer

import (
	"html/template"
	"net/http"
	"time"

	"github.com/kecis/kecis/ecml"
)

var adminPage = template.Must(template.New("admin").Funcs(template.FuncMap{
	"money": func(minor int64, cur string) string { return ecml.Money{Minor: minor, Currency: cur}.Display() },
	"phone": MaskPhone,
	"time": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("2006-01-02 15:04:05 MST")
	},
}).Parse(`<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Brand}} — issuer admin</title>
<style>
*{box-sizing:border-box}
form{display:inline;margin:0}
body{font-family:system-ui,"Apple SD Gothic Neo","Malgun Gothic",sans-serif;margin:0 auto;padding:.5rem 1rem;max-width:72rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem}
.scroll{max-width:100%;overflow-x:auto;margin-bottom:1.5rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;white-space:nowrap} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{min-width:14rem;overflow-wrap:anywhere}
.via{display:block;font-size:.8rem;color:#555;overflow-wrap:anywhere}
</style></head><body>
<h1>{{.Brand}} — issuer admin</h1>
<p>{{time .Now $.Loc}}</p>
<h2>Cards</h2>
<div class="scroll"><table><tr><th>ID</th><th>Card</th><th>Type</th><th>Status</th><th>Expiry</th><th>Holder</th><th>Phone</th><th>Limit</th><th>Available</th><th>Failures</th><th>Authentication</th></tr>
{{range .Cards}}<tr><td>{{.ID}}</td><td>{{.Masked}}</td><td>{{.Type}}</td><td>{{.Status}}{{if .ResponseDelay}} (answers after {{.ResponseDelay}}){{end}}</td><td>{{printf "%02d/%d" .ExpMonth .ExpYear}}</td><td>{{.HolderName}}</td><td>{{phone .HolderPhone}}</td><td class="n">{{money .Limit .Currency}}</td><td class="n">{{money .Available .Currency}}</td><td class="n">{{.FailedAttempts}}</td><td>{{if .AuthPassword}}password{{if .TOTP}} + TOTP{{end}}{{else if .TOTP}}TOTP{{else}}—{{end}}{{if .AuthFailures}}, {{.AuthFailures}} failed{{end}}{{if .AuthLocked}} <strong>locked</strong> <form method="post" action="/admin/cards/{{.ID}}/unlock"><button>Unlock</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="11">no cards</td></tr>{{end}}</table></div>
<h2>Recent approvals</h2>
<div class="scroll"><table><tr><th>No.</th><th>Time</th><th>Merchant</th><th>Order</th><th>Card</th><th>Kind</th><th>Amount</th><th>Refunded</th><th>Status</th><th>Cut-off</th></tr>
{{range .Approvals}}<tr><td>{{.Number}}</td><td>{{time .ApprovedAt $.Loc}}</td><td>{{.MerchantName}}{{if ne .MerchantName .MerchantID}}<span class="via">via {{.MerchantID}}</span>{{end}}</td><td>{{.OrderID}}</td><td>{{.CardBIN}}******{{.CardLast4}}{{if .VirtualCard}}<span class="via">virtual {{.VirtualCard}}</span>{{end}}</td><td>{{if .Verification}}verification{{else}}payment{{end}}</td><td class="n">{{money .Amount.Minor .Amount.Currency}}</td><td class="n">{{money .Refunded .Amount.Currency}}</td><td>{{.Status}}</td><td>{{time .CutOffAt $.Loc}}</td></tr>
{{else}}<tr><td colspan="10">no approvals</td></tr>{{end}}</table></div>
<h2>Recent SMS</h2>
<div class="scroll"><table><tr><th>#</th><th>Time</th><th>To</th><th>Text</th><th>State</th><th>Attempts</th><th>Last error</th></tr>
{{range .SMS}}<tr><td>{{.ID}}</td><td>{{time .CreatedAt $.Loc}}</td><td>{{phone .Phone}}</td><td class="text">{{.Text}}</td><td>{{.State}}</td><td class="n">{{.Attempts}}</td><td>{{.LastError}}</td></tr>
{{else}}<tr><td colspan="7">no messages</td></tr>{{end}}</table></div>
</body></html>
`))

// handleAdminPage renders the admin page: cards (masked), the latest
// approvals — the merchant the cardholder bought from, and the acquirer
// it came through when that is another; a payment or a verification
// approval (KECIS §15.3) — and the latest SMS. It fits a
// phone: a viewport, and tables that scroll sideways within the page.
func (i *Issuer) handleAdminPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cards, err := i.Cards(ctx, 100)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	approvals, err := i.RecentApprovals(ctx, 50)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	sms, err := i.Notifications(ctx, 50)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := adminPage.Execute(w, map[string]any{
		"Brand": i.brand, "Now": i.now(), "Loc": i.loc, "Cards": cards, "Approvals": approvals, "SMS": sms,
	}); err != nil {
		i.log.ErrorContext(ctx, "admin page", "err", err)
	}
}

// handleAdminUnlock is the admin page's unlock button: it clears a card's
// authentication lock and goes back to the page. A form post from another
// site is refused (the browser's Basic credentials would go with it).
func (i *Issuer) handleAdminUnlock(w http.ResponseWriter, r *http.Request) {
	if crossOrigin.Check(r) != nil {
		i.writeError(w, r, newError(CodeUnauthorized, "a cross-site form post is refused"))
		return
	}
	if _, err := i.UnlockAuth(r.Context(), r.PathValue("id")); err != nil {
		i.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// crossOrigin refuses browsers' cross-origin posts (Sec-Fetch-Site, Origin).
var crossOrigin = http.NewCrossOriginProtection()
