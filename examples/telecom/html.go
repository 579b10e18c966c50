package telecom

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/kecis/kecis/connectors/sms"
)

// kst is Korea Standard Time (no daylight saving time), in which the
// phones show their clocks.
var kst = time.FixedZone("KST", 9*60*60)

var pageFuncs = template.FuncMap{
	"display":  sms.FormatPhone,
	"national": sms.National,
	"kst":      func(t time.Time) string { return t.In(kst).Format("2006-01-02 15:04:05") },
	"rfc3339":  func(t time.Time) string { return t.Format(time.RFC3339) },
}

const pageHead = `{{define "head"}}<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} — KECIS telecom simulator</title>
<style>
body{font-family:system-ui,"Apple SD Gothic Neo","Malgun Gothic",sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;color:#222}
a{color:#0b57d0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd}
.msg{border:1px solid #ccc;border-radius:.6rem;padding:.6rem .8rem;margin:.8rem 0;background:#f7f9fc}
.meta{font-size:.85rem;color:#555;display:flex;gap:.8rem;flex-wrap:wrap}
.text{white-space:pre-wrap;word-break:break-word;font:inherit;margin:.5rem 0}
textarea{width:100%;box-sizing:border-box;font:inherit}
.flash{padding:.5rem .8rem;border-radius:.4rem}.ok{background:#e6f4ea}.err{background:#fce8e6}
.sent{font-size:.9rem}
</style>
</head>
<body>{{end}}`

var phonesPage = template.Must(template.New("phones").Funcs(pageFuncs).Parse(pageHead + `{{template "head" "Phones"}}
<h1>전화기 목록 · Phones</h1>
{{if .}}<table>
<thead><tr><th>번호 · Number</th><th>상태 · Status</th><th>메시지 · Messages</th></tr></thead>
<tbody>
{{range .}}<tr><td><a href="/phones/{{national .Phone}}">{{display .Phone}}</a></td><td>{{.Status}}</td><td>{{.Messages}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>가입자가 없습니다 · No subscribers.</p>{{end}}
</body>
</html>
`))

type phonePageData struct {
	Phone    string
	Status   SubscriberStatus
	Messages []Message
	Replies  []PhoneReply
	Flash    *flash
}

type flash struct {
	OK   bool
	Text string
}

var phonePage = template.Must(template.New("phone").Funcs(pageFuncs).Parse(pageHead + `{{template "head" (display .Phone)}}
<p><a href="/phones">← 전화기 목록 · Phones</a></p>
<h1>{{display .Phone}}</h1>
{{with .Status}}{{if ne . "active"}}<p class="flash err">회선 상태 · Line status: {{.}}</p>{{end}}{{end}}
{{with .Flash}}<p class="flash {{if .OK}}ok{{else}}err{{end}}" role="status">{{.Text}}</p>{{end}}
<h2>받은 메시지 · Inbox</h2>
{{range .Messages}}<article class="msg" id="{{.ID}}">
<div class="meta"><span class="from">보낸 번호 · From {{.From}}</span><time datetime="{{rfc3339 .DeliveredAt}}">{{kst .DeliveredAt}}</time><span>{{.Type}} · {{.Bytes}} bytes</span></div>
<pre class="text">{{.Text}}</pre>
<form method="post" action="/phones/{{national $.Phone}}/reply">
<input type="hidden" name="in_reply_to" value="{{.ID}}">
<label>답장 · Reply<br><textarea name="text" rows="2" maxlength="2000" required></textarea></label>
<button type="submit">보내기 · Send</button>
</form>
</article>
{{else}}<p>받은 메시지가 없습니다 · No messages.</p>
{{end}}
{{with .Replies}}<h2>보낸 답장 · Sent replies</h2>
<table class="sent"><thead><tr><th>시각 · Time</th><th>받는 번호 · To</th><th>내용 · Text</th><th>전달 · Webhook</th></tr></thead><tbody>
{{range .}}<tr><td>{{kst .ReceivedAt}}</td><td>{{.To}}</td><td>{{.Text}}</td><td>{{.WebhookStatus}}</td></tr>
{{end}}</tbody></table>{{end}}
</body>
</html>
`))

// renderHTML executes a page into a buffer first, so that a template
// error never leaves half a page behind.
func (t *Telecom) renderHTML(w http.ResponseWriter, r *http.Request, status int, tmpl *template.Template, data any) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.log.ErrorContext(r.Context(), "telecom: render page", "page", tmpl.Name(), "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (t *Telecom) handlePhonesPage(w http.ResponseWriter, r *http.Request) {
	phones, err := t.Phones(r.Context())
	if err != nil {
		t.log.ErrorContext(r.Context(), "telecom: phones page", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	t.renderHTML(w, r, http.StatusOK, phonesPage, phones)
}

// loadPhonePage loads what the phone page shows; it reports false (after
// answering 404) for a number without a line.
func (t *Telecom) loadPhonePage(w http.ResponseWriter, r *http.Request) (phonePageData, bool) {
	ctx := r.Context()
	phone, err := sms.NormalizePhone(r.PathValue("number"))
	if err != nil {
		http.NotFound(w, r)
		return phonePageData{}, false
	}
	status, err := subscriberStatus(ctx, t.db, phone)
	if err == nil && status == "" {
		http.NotFound(w, r)
		return phonePageData{}, false
	}
	d := phonePageData{Phone: phone, Status: status}
	if err == nil {
		d.Messages, err = t.Inbox(ctx, phone)
	}
	if err == nil {
		d.Replies, err = t.Replies(ctx, phone)
	}
	if err != nil {
		t.log.ErrorContext(ctx, "telecom: phone page", "phone", sms.MaskPhone(phone), "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return phonePageData{}, false
	}
	return d, true
}

func (t *Telecom) handlePhonePage(w http.ResponseWriter, r *http.Request) {
	d, ok := t.loadPhonePage(w, r)
	if !ok {
		return
	}
	if id := r.URL.Query().Get("reply"); id != "" {
		if rep, err := t.reply(r.Context(), id); err == nil && rep.From == d.Phone {
			d.Flash = replyFlash(rep, nil)
		}
	}
	t.renderHTML(w, r, http.StatusOK, phonePage, d)
}

// replyFlash describes the outcome of a reply: a stored reply by its
// webhook status, a refused one by err.
func replyFlash(rep PhoneReply, err error) *flash {
	if rep.ID != "" {
		switch rep.WebhookStatus {
		case WebhookDelivered:
			return &flash{OK: true, Text: "답장을 보냈습니다 · Reply sent and delivered to the sender"}
		case WebhookNone:
			return &flash{OK: true, Text: "답장을 보냈습니다 · Reply sent; the sender has no reply webhook"}
		case WebhookFailed:
			return &flash{Text: "답장은 저장되었지만 전달되지 않았습니다 · Reply stored, but the sender's webhook refused it: " + rep.WebhookError}
		}
		return &flash{OK: true, Text: "답장을 보내는 중입니다 · Reply being forwarded"}
	}
	switch {
	case errors.Is(err, ErrInvalid):
		return &flash{Text: "답장을 보낼 수 없습니다 · Reply not sent: " + err.Error()}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotSubscriber):
		return &flash{Text: "답장을 보낼 수 없습니다 · Reply not sent: no such message on this phone"}
	}
	return &flash{Text: "답장을 보낼 수 없습니다 · Reply not sent (internal error)"}
}

// handleFormReply takes the reply form: on success it redirects to the
// phone page (POST/redirect/GET), otherwise it shows the page again with
// the reason.
func (t *Telecom) handleFormReply(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	rep, err := t.Reply(r.Context(), r.PathValue("number"), r.PostForm.Get("text"), r.PostForm.Get("in_reply_to"))
	if rep.ID != "" {
		// Stored, whatever the webhook said: show it on the page.
		http.Redirect(w, r, "/phones/"+url.PathEscape(sms.National(rep.From))+"?reply="+url.QueryEscape(rep.ID), http.StatusSeeOther)
		return
	}
	status, _ := errorStatus(err)
	if status == http.StatusInternalServerError {
		t.log.ErrorContext(r.Context(), "telecom: form reply", "error", err)
	}
	d, ok := t.loadPhonePage(w, r)
	if !ok {
		return
	}
	d.Flash = replyFlash(rep, err)
	t.renderHTML(w, r, status, phonePage, d)
}
