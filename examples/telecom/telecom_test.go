package telecom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/internal/testutil"
)

func TestGatewayToPhoneEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	text := "[A은행] 이체 확인 인증번호 482913. 본인이 요청하지 않았다면 응답하지 마세요."
	id := e.send(sms.Message{To: payeePhone, Text: text, Ref: "transfer-1"})

	// Delivery report: delivered at once without a delay.
	m, err := e.tc.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != StatusDelivered || m.To != payeeE164 || m.From != bankCaller || m.Text != text ||
		m.Ref != "transfer-1" || m.SenderID != bankID || !m.DeliveredAt.Equal(testutil.FixedNow) {
		t.Errorf("message = %+v", m)
	}
	if info, _ := sms.Measure(text); m.Type != info.Kind || m.Bytes != info.Bytes || m.Type != sms.KindSMS {
		t.Errorf("type %s %d bytes, want %+v", m.Type, m.Bytes, info)
	}
	var api Message
	e.getJSON("/api/messages/"+id, &api)
	if api.Status != StatusDelivered || api.ID != id || api.Text != text {
		t.Errorf("GET /api/messages/{id} = %+v", api)
	}

	// The phone's inbox shows it, through the Go API and the JSON API.
	inbox, err := e.tc.Inbox(ctx, payeeE164)
	if err != nil || len(inbox) != 1 || inbox[0].ID != id {
		t.Fatalf("Inbox = %+v, %v", inbox, err)
	}
	var list messagesResponse
	e.getJSON("/api/phones/"+payeePath+"/messages", &list)
	if list.Phone != payeeE164 || len(list.Messages) != 1 || list.Messages[0].ID != id {
		t.Errorf("JSON inbox = %+v", list)
	}
	got, err := e.tc.WaitForMessage(ctx, payeePhone, WithRef("transfer-1"))
	if err != nil || got.ID != id {
		t.Errorf("WaitForMessage = %+v, %v", got, err)
	}

	// A retry with the same ref is the same message …
	if again := e.send(sms.Message{To: payeePhone, Text: text, Ref: "transfer-1"}); again != id {
		t.Errorf("retry got id %s, want %s", again, id)
	}
	if inbox, _ := e.tc.Inbox(ctx, payeePhone); len(inbox) != 1 {
		t.Errorf("retry delivered again: %d messages", len(inbox))
	}
	// … and a different message with the same ref is refused.
	_, err = e.gw.Send(ctx, sms.Message{From: bankNumber, To: payeePhone, Text: "다른 내용", Ref: "transfer-1"})
	var ge *sms.GatewayError
	if !errors.As(err, &ge) || ge.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("changed retry: %v, want 422", err)
	}

	// A long Korean text travels as LMS.
	long := strings.Repeat("계약 조건 안내. ", 10)
	lid := e.send(sms.Message{To: payeePhone, Text: long})
	if lm, _ := e.tc.Message(ctx, lid); lm.Type != sms.KindLMS || lm.Bytes <= sms.MaxSMSBytes {
		t.Errorf("long message: %s %d bytes", lm.Type, lm.Bytes)
	}
	e.assertCleanLogs("482913", "1234-5678")
}

func TestDelayedDelivery(t *testing.T) {
	e := newEnv(t, envOptions{delay: 30 * time.Second})
	ctx := context.Background()
	id := e.send(sms.Message{To: payeePhone, Text: "인증번호 111111", Ref: "r-1"})

	m, err := e.tc.Message(ctx, id)
	if err != nil || m.Status != StatusQueued || !m.DeliveredAt.IsZero() {
		t.Fatalf("before the delay: %+v, %v", m, err)
	}
	if inbox, _ := e.tc.Inbox(ctx, payeePhone); len(inbox) != 0 {
		t.Fatalf("queued message in the inbox: %+v", inbox)
	}

	type result struct {
		m   Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := e.tc.WaitForMessage(ctx, payeePhone, WithRef("r-1"))
		done <- result{m, err}
	}()

	e.clock.Advance(29 * time.Second)
	if n, err := e.tc.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("DeliverDue at 29 s = %d, %v", n, err)
	}
	select {
	case r := <-done:
		t.Fatalf("WaitForMessage returned early: %+v", r)
	default:
	}
	e.clock.Advance(time.Second)
	if _, err := e.tc.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.m.ID != id || r.m.Status != StatusDelivered {
		t.Fatalf("WaitForMessage = %+v, %v", r.m, r.err)
	}
	if want := testutil.FixedNow.Add(30 * time.Second); !r.m.DeliveredAt.Equal(want) {
		t.Errorf("DeliveredAt = %v, want %v", r.m.DeliveredAt, want)
	}
	var api Message
	e.getJSON("/api/messages/"+id, &api)
	if api.Status != StatusDelivered {
		t.Errorf("delivery report %s", api.Status)
	}
}

func TestWaitForMessageHonoursContext(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.tc.WaitForMessage(ctx, payeePhone, nil)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestReplyReachesWebhook(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	id := e.send(sms.Message{From: "02-123-4567", To: payeePhone, Text: "인증번호 482913을 답장해 주세요", Ref: "t-1"})

	// A person answers on the phone page.
	form := url.Values{"text": {"482913"}, "in_reply_to": {id}}
	resp, body := e.do(http.MethodPost, "/phones/"+payeePath+"/reply", "application/x-www-form-urlencoded", form.Encode(), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("form reply: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/phones/"+payeePath+"?reply=rpl_") {
		t.Errorf("redirect to %q", loc)
	}
	replies := e.gotReplies()
	if len(replies) != 1 {
		t.Fatalf("webhook got %d replies", len(replies))
	}
	r := replies[0]
	if r.From != payeeE164 || r.To != "021234567" || r.Text != "482913" || r.InReplyTo != id ||
		!strings.HasPrefix(r.ID, "rpl_") || !r.ReceivedAt.Equal(testutil.FixedNow) {
		t.Errorf("webhook reply = %+v", r)
	}
	_, page := e.do(http.MethodGet, loc, "", "", nil)
	if !strings.Contains(page, "delivered to the sender") || !strings.Contains(page, "482913") {
		t.Errorf("page after reply lacks the outcome:\n%s", page)
	}

	// A test answers through the JSON API, to the newest message.
	id2 := e.send(sms.Message{To: payeePhone, Text: "계약 조건에 동의하면 YES"})
	resp, body = e.do(http.MethodPost, "/api/phones/"+payeePath+"/replies", "application/json", `{"text":"YES"}`, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("API reply: %d %s", resp.StatusCode, body)
	}
	var pr PhoneReply
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.InReplyTo != id2 || pr.To != bankCaller || pr.WebhookStatus != WebhookDelivered {
		t.Errorf("API reply = %+v", pr)
	}
	if replies := e.gotReplies(); len(replies) != 2 || replies[1].From != payeeE164 || replies[1].InReplyTo != id2 {
		t.Errorf("webhook replies = %+v", replies)
	}

	// Another phone cannot answer a message it did not receive.
	if _, err := e.tc.Reply(ctx, otherPhone, "YES", id); !errors.Is(err, ErrNotFound) {
		t.Errorf("foreign reply: %v, want ErrNotFound", err)
	}
	if _, err := e.tc.Reply(ctx, otherPhone, "YES", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("reply from an empty inbox: %v, want ErrNotFound", err)
	}
	if _, err := e.tc.Reply(ctx, payeePhone, "", id); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty reply: %v, want ErrInvalid", err)
	}
	if _, err := e.tc.Reply(ctx, "010-9999-0000", "YES", id); !errors.Is(err, ErrNotSubscriber) {
		t.Errorf("reply from a stranger: %v, want ErrNotSubscriber", err)
	}
	resp, body = e.do(http.MethodPost, "/phones/"+payeePath+"/reply", "application/x-www-form-urlencoded", "text=&in_reply_to="+id, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Reply not sent") {
		t.Errorf("empty form reply: %d\n%s", resp.StatusCode, body)
	}
	if n := len(e.gotReplies()); n != 2 {
		t.Errorf("webhook got %d replies, want 2", n)
	}
}

func TestReplyWebhookRefused(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		opts envOptions
		want error
	}{
		{"forged signature", envOptions{senderSecret: []byte("not-the-bank-secret-0123456789")}, ErrWebhookFailed},
		{"expired signature", envOptions{webhookClock: func() time.Time { return testutil.FixedNow.Add(10 * time.Minute) }}, ErrWebhookFailed},
		{"no webhook", envOptions{noWebhook: true}, ErrNoWebhook},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts)
			id := e.send(sms.Message{To: payeePhone, Text: "확인 코드 5555"})
			rep, err := e.tc.Reply(ctx, payeePhone, "5555", id)
			if !errors.Is(err, c.want) {
				t.Fatalf("Reply err = %v, want %v", err, c.want)
			}
			if rep.ID == "" || rep.From != payeeE164 {
				t.Errorf("reply not stored: %+v", rep)
			}
			stored, _ := e.tc.Replies(ctx, payeePhone)
			if len(stored) != 1 || stored[0].WebhookStatus != rep.WebhookStatus {
				t.Errorf("stored replies = %+v", stored)
			}
			if n := len(e.gotReplies()); n != 0 {
				t.Errorf("webhook handler ran %d times", n)
			}
			resp, body := e.do(http.MethodPost, "/api/phones/"+payeePath+"/replies", "application/json", `{"text":"5555","in_reply_to":"`+id+`"}`, nil)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"reply"`) {
				t.Errorf("API: %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestInboxPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.send(sms.Message{To: payeePhone, Text: "첫 번째 메시지"})
	evil := `<script>alert("x")</script> 인증번호 <b>123456</b>`
	second := e.send(sms.Message{To: payeePhone, Text: evil})

	resp, page := e.do(http.MethodGet, "/phones/"+payeePhone, "", "", nil) // hyphenated number in the path
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET phone page: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		`<meta charset="utf-8">`,
		"010-1234-5678",
		"첫 번째 메시지",
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 인증번호 &lt;b&gt;123456&lt;/b&gt;`,
		`<form method="post" action="/phones/01012345678/reply">`,
		`name="in_reply_to" value="` + first + `"`,
		`name="in_reply_to" value="` + second + `"`,
		"2026-11-22 19:00:00", // FixedNow in KST
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<b>123456") {
		t.Error("page does not escape the message text")
	}
	if strings.Index(page, `value="`+second+`"`) > strings.Index(page, `value="`+first+`"`) {
		t.Error("inbox is not newest first")
	}

	resp, list := e.do(http.MethodGet, "/phones", "", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(list, `<a href="/phones/01012345678">010-1234-5678</a>`) ||
		!strings.Contains(list, "011-123-4567") || strings.Contains(list, payeeName) {
		t.Errorf("phone list: %d\n%s", resp.StatusCode, list)
	}
	for _, p := range []string{"/phones/010-9999-0000", "/phones/not-a-number"} {
		if resp, _ := e.do(http.MethodGet, p, "", "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	// The reply form refuses cross-site posts.
	resp, _ = e.do(http.MethodPost, "/phones/"+payeePath+"/reply", "application/x-www-form-urlencoded",
		"text=YES", map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site form post: %d, want 403", resp.StatusCode)
	}
}

func TestMessagesSince(t *testing.T) {
	e := newEnv(t, envOptions{})
	ids := []string{
		e.send(sms.Message{To: payeePhone, Text: "one"}),
		e.send(sms.Message{To: payeePhone, Text: "two"}),
		e.send(sms.Message{To: payeePhone, Text: "three"}),
	}
	e.send(sms.Message{To: otherPhone, Text: "someone else's"})

	var r messagesResponse
	e.getJSON("/api/phones/"+payeePath+"/messages?since="+ids[0], &r)
	if len(r.Messages) != 2 || r.Messages[0].ID != ids[2] || r.Messages[1].ID != ids[1] {
		t.Errorf("since first = %+v", r.Messages)
	}
	e.getJSON("/api/phones/"+payeePath+"/messages?since="+ids[2], &r)
	if r.Messages == nil || len(r.Messages) != 0 {
		t.Errorf("since newest = %+v, want []", r.Messages)
	}
	if resp, _ := e.do(http.MethodGet, "/api/phones/"+payeePath+"/messages?since=msg_unknown", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown since: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodGet, "/api/phones/"+payeePath+"/messages?wait=soon", "", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad wait: %d", resp.StatusCode)
	}

	// Long poll: the request waits until the next message arrives.
	type result struct {
		r   messagesResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(e.srv.URL + "/api/phones/" + payeePath + "/messages?since=" + ids[2] + "&wait=20s")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var r messagesResponse
		done <- result{r, json.NewDecoder(resp.Body).Decode(&r)}
	}()
	id4 := e.send(sms.Message{To: payeePhone, Text: "four"})
	res := <-done
	if res.err != nil || len(res.r.Messages) != 1 || res.r.Messages[0].ID != id4 {
		t.Errorf("long poll = %+v, %v", res.r, res.err)
	}

	ms, err := e.tc.MessagesSince(context.Background(), payeePhone, ids[1])
	if err != nil || len(ms) != 2 || ms[0].ID != id4 {
		t.Errorf("MessagesSince = %+v, %v", ms, err)
	}
	if m, err := e.tc.WaitForMessage(context.Background(), payeePhone, Newer(ms[1])); err != nil || m.ID != id4 {
		t.Errorf("WaitForMessage(Newer) = %+v, %v", m, err)
	}
	if m, err := e.tc.WaitForMessage(context.Background(), payeePhone, FromNumber(bankNumber)); err != nil || m.ID != id4 {
		t.Errorf("WaitForMessage(FromNumber) = %+v, %v", m, err)
	}
}

func TestGatewayRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	post := func(key, body string, header map[string]string) (int, string) {
		h := map[string]string{"X-API-Key": key}
		for k, v := range header {
			h[k] = v
		}
		resp, b := e.do(http.MethodPost, "/api/sms", "application/json", body, h)
		return resp.StatusCode, b
	}
	ok := `{"from":"1588-1234","to":"010-1234-5678","text":"hi"}`
	long := `{"from":"1588-1234","to":"010-1234-5678","type":"SMS","text":"` + strings.Repeat("가", 46) + `"}`
	tests := []struct {
		name   string
		key    string
		body   string
		header map[string]string
		status int
	}{
		{"no key", "", ok, nil, http.StatusUnauthorized},
		{"wrong key", "wrong-key-0123456789", ok, nil, http.StatusUnauthorized},
		{"unregistered caller", bankAPIKey, `{"from":"1588-9999","to":"010-1234-5678","text":"hi"}`, nil, http.StatusForbidden},
		{"landline recipient", bankAPIKey, `{"from":"1588-1234","to":"02-123-4567","text":"hi"}`, nil, http.StatusBadRequest},
		{"SMS too long", bankAPIKey, long, nil, http.StatusBadRequest},
		{"unknown type", bankAPIKey, `{"to":"010-1234-5678","text":"hi","type":"MMS"}`, nil, http.StatusBadRequest},
		{"emoji", bankAPIKey, `{"to":"010-1234-5678","text":"hi 😀"}`, nil, http.StatusBadRequest},
		{"not JSON", bankAPIKey, `from=1`, nil, http.StatusBadRequest},
		{"ref mismatch", bankAPIKey, `{"to":"010-1234-5678","text":"hi","ref":"a"}`, map[string]string{"Idempotency-Key": "b"}, http.StatusBadRequest},
		{"bearer key", "", ok, map[string]string{"Authorization": "Bearer " + bankAPIKey}, http.StatusAccepted},
		{"default caller", bankAPIKey, `{"to":"010-1234-5678","text":"hi"}`, nil, http.StatusAccepted},
	}
	for _, tt := range tests {
		if status, body := post(tt.key, tt.body, tt.header); status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, status, body, tt.status)
		}
	}

	// Numbers without an active line: accepted, then failed.
	if err := e.tc.SetSubscriberStatus(ctx, otherPhone, SubscriberSuspended); err != nil {
		t.Fatal(err)
	}
	for to, reason := range map[string]string{"010-9999-0000": "unknown subscriber", otherPhone: "subscriber suspended"} {
		id := e.send(sms.Message{To: to, Text: "hi"})
		m, err := e.tc.Message(ctx, id)
		if err != nil || m.Status != StatusFailed || m.FailureReason != reason {
			t.Errorf("to %s: %+v, %v", to, m, err)
		}
	}
	if resp, _ := e.do(http.MethodGet, "/api/messages/msg_nope", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown message: %d", resp.StatusCode)
	}
	if _, err := e.tc.Submit(ctx, "nobody", sms.Message{To: payeePhone, Text: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown sender: %v", err)
	}
}

func TestHolderMatches(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	tests := []struct {
		phone, name string
		want        bool
	}{
		{payeePhone, payeeName, true},
		{payeeE164, " 홍 길동 ", true},
		{payeePhone, "홍길순", false},
		{payeePhone, "", false},
		{"010-9999-0000", payeeName, false},
		{otherPhone, "김철수", true},
	}
	for _, tt := range tests {
		got, err := e.tc.HolderMatches(ctx, tt.phone, tt.name)
		if err != nil || got != tt.want {
			t.Errorf("HolderMatches(%s, %q) = %v, %v; want %v", tt.phone, tt.name, got, err, tt.want)
		}
	}
	if err := e.tc.AddSubscriber(ctx, Subscriber{Phone: "010-5555-0001", HolderName: "John SMITH", BirthDate: payeeBirth}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.tc.HolderMatches(ctx, "010-5555-0001", "john smith"); !ok {
		t.Error("Latin names should match case-insensitively")
	}
	if _, err := e.tc.HolderMatches(ctx, "02-123-4567", payeeName); !errors.Is(err, ErrInvalid) {
		t.Errorf("landline: %v, want ErrInvalid", err)
	}
	if err := e.tc.SetSubscriberStatus(ctx, otherPhone, SubscriberTerminated); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.tc.HolderMatches(ctx, otherPhone, "김철수"); ok {
		t.Error("terminated line matched")
	}

	if ok, err := e.tc.BirthDateMatches(ctx, payeePhone, payeeBirth); err != nil || !ok {
		t.Errorf("BirthDateMatches = %v, %v", ok, err)
	}
	if ok, _ := e.tc.BirthDateMatches(ctx, payeePhone, payeeBirth.AddDate(0, 0, 1)); ok {
		t.Error("wrong birth date matched")
	}

	// The birth date is stored as an HMAC, never in clear.
	rows, err := e.tc.db.QueryContext(ctx, `SELECT phone, holder_name, birth_date_hash, status FROM telecom_subscribers`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var phone, name, status string
		var hash []byte
		if err := rows.Scan(&phone, &name, &hash, &status); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{phone, name, string(hash), status} {
			if strings.Contains(f, "1990") || strings.Contains(f, "900102") {
				t.Errorf("birth date in clear in row %s", phone)
			}
		}
		if len(hash) != 32 {
			t.Errorf("hash of %d bytes", len(hash))
		}
	}

	if err := e.tc.AddSubscriber(ctx, Subscriber{Phone: payeePhone, HolderName: "x", BirthDate: payeeBirth}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate subscriber: %v", err)
	}
	if err := e.tc.AddSubscriber(ctx, Subscriber{Phone: "02-123-4567", HolderName: "x", BirthDate: payeeBirth}); !errors.Is(err, ErrInvalid) {
		t.Errorf("landline subscriber: %v", err)
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	sub := `{"phone":"010-7777-8888","holder_name":"이영희","birth_date":"1985-05-05"}`
	if resp, body := e.do(http.MethodPost, "/api/admin/subscribers", "application/json", sub, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(http.MethodPost, "/api/admin/subscribers", "application/json", sub, auth); resp.StatusCode != http.StatusCreated {
		t.Fatalf("add subscriber: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodPost, "/api/admin/subscribers", "application/json", sub, auth); resp.StatusCode != http.StatusConflict {
		t.Errorf("duplicate: %d", resp.StatusCode)
	}
	if ok, _ := e.tc.HolderMatches(context.Background(), "01077778888", "이영희"); !ok {
		t.Error("subscriber added through the API does not match")
	}
	snd := `{"id":"pg-b","api_key":"pg-b-api-key-0123456789","numbers":["1600-0000"]}`
	if resp, body := e.do(http.MethodPost, "/api/admin/senders", "application/json", snd, auth); resp.StatusCode != http.StatusCreated {
		t.Fatalf("add sender: %d %s", resp.StatusCode, body)
	}
	resp, body := e.do(http.MethodPost, "/api/sms", "application/json", `{"to":"010-7777-8888","text":"안녕하세요"}`,
		map[string]string{"X-API-Key": "pg-b-api-key-0123456789"})
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("new sender sends: %d %s", resp.StatusCode, body)
	}

	off := newEnv(t, envOptions{adminDisabled: true})
	if resp, _ := off.do(http.MethodPost, "/api/admin/subscribers", "application/json", sub, auth); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin without a token configured: %d, want 404", resp.StatusCode)
	}
}

func TestNoPANInLogs(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	const pan = "4111111111111111"
	const code = "739201"
	text := "카드 " + pan + " 승인 확인번호 " + code
	id := e.send(sms.Message{To: payeePhone, Text: text, Ref: "pan-1"})
	if _, err := e.tc.Sender(bankID).Send(ctx, sms.Message{To: payeePhone, Text: text}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tc.Reply(ctx, payeePhone, "내 카드는 "+pan+" "+code, id); err != nil {
		t.Fatal(err)
	}
	// Refusals log too.
	_, _ = e.gw.Send(ctx, sms.Message{From: "1588-9999", To: payeePhone, Text: text})
	e.do(http.MethodGet, "/phones/"+payeePath, "", "", nil)
	if len(e.logs.String()) == 0 {
		t.Fatal("nothing logged")
	}
	e.assertCleanLogs(pan, code, "1234-5678", payeeName)
}

func TestReopenKeepsState(t *testing.T) {
	dsn := sqltest.TestSQLiteDSN(t)
	e := newEnv(t, envOptions{dsn: dsn})
	id := e.send(sms.Message{To: payeePhone, Text: "hello", Ref: "keep"})
	e.srv.Close()
	if err := e.tc.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tc, err := Open(ctx, Config{DSN: dsn, Now: e.clock.Now, Logger: e.logger, Rand: testutil.NewDetRand("reopen")})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if ok, err := tc.BirthDateMatches(ctx, payeePhone, payeeBirth); err != nil || !ok {
		t.Errorf("birth date after reopen: %v, %v", ok, err)
	}
	if m, err := tc.WaitForMessage(ctx, payeePhone, WithRef("keep")); err != nil || m.ID != id {
		t.Errorf("message after reopen: %+v, %v", m, err)
	}
}

func TestOpenValidation(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no DSN":         {},
		"short token":    {DSN: "sqlite::memory:", AdminToken: "short"},
		"negative delay": {DSN: "sqlite::memory:", DeliveryDelay: -time.Second},
		"bad DSN":        {DSN: "mysql://x"},
	} {
		if tc, err := Open(ctx, cfg); err == nil {
			tc.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	e := newEnv(t, envOptions{})
	for name, a := range map[string]SenderAccount{
		"no id":         {APIKey: bankAPIKey, Numbers: []string{"114"}},
		"short key":     {ID: "x", APIKey: "short", Numbers: []string{"114"}},
		"no number":     {ID: "x", APIKey: "x-api-key-0123456789"},
		"bad number":    {ID: "x", APIKey: "x-api-key-0123456789", Numbers: []string{"1"}},
		"bad webhook":   {ID: "x", APIKey: "x-api-key-0123456789", Numbers: []string{"114"}, WebhookURL: "ftp://x", WebhookSecret: webhookSecret},
		"short secret":  {ID: "x", APIKey: "x-api-key-0123456789", Numbers: []string{"114"}, WebhookURL: "http://x", WebhookSecret: []byte("s")},
		"duplicate id":  {ID: bankID, APIKey: "x-api-key-0123456789", Numbers: []string{"114"}},
		"duplicate key": {ID: "y", APIKey: bankAPIKey, Numbers: []string{"114"}},
	} {
		if err := e.tc.AddSender(ctx, a); err == nil {
			t.Errorf("%s: AddSender succeeded", name)
		}
	}
}

// TestPostgres runs the main flow on PostgreSQL (skipped without a server,
// failing under CI=true).
func TestPostgres(t *testing.T) {
	e := newEnv(t, envOptions{dsn: sqltest.TestPostgresDSN(t), delay: 5 * time.Second})
	ctx := context.Background()
	id := e.send(sms.Message{To: payeePhone, Text: "인증번호 424242", Ref: "pg-1"})
	if again := e.send(sms.Message{To: payeePhone, Text: "인증번호 424242", Ref: "pg-1"}); again != id {
		t.Errorf("idempotent retry: %s != %s", again, id)
	}
	if m, _ := e.tc.Message(ctx, id); m.Status != StatusQueued {
		t.Errorf("status %s, want queued", m.Status)
	}
	e.clock.Advance(5 * time.Second)
	m, err := e.tc.WaitForMessage(ctx, payeePhone, WithRef("pg-1"))
	if err != nil || m.ID != id || m.Status != StatusDelivered {
		t.Fatalf("WaitForMessage = %+v, %v", m, err)
	}
	if _, err := e.tc.Reply(ctx, payeePhone, "424242", id); err != nil {
		t.Fatal(err)
	}
	if r := e.gotReplies(); len(r) != 1 || r[0].From != payeeE164 {
		t.Errorf("replies = %+v", r)
	}
	if ok, _ := e.tc.HolderMatches(ctx, payeePhone, payeeName); !ok {
		t.Error("holder check failed")
	}
}
