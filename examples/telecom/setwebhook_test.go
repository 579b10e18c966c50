package telecom

import (
	"context"
	"errors"
	"testing"

	"github.com/kecis/kecis/connectors/sms"
)

// TestSetSenderWebhook: a sender's webhook moves (a restarted bank on
// another port) and the next reply goes there; without one a reply is kept
// and not forwarded; a bad URL, a short secret or an unknown sender are
// refused.
func TestSetSenderWebhook(t *testing.T) {
	e := newEnv(t, envOptions{noWebhook: true})
	ctx := context.Background()
	e.send(sms.Message{To: payeePhone, Text: "first"})
	if _, err := e.tc.Reply(ctx, payeePhone, "YES", ""); !errors.Is(err, ErrNoWebhook) {
		t.Fatalf("reply without a webhook: %v", err)
	}
	if err := e.tc.SetSenderWebhook(ctx, bankID, e.webhook.URL+webhookPath, webhookSecret); err != nil {
		t.Fatal(err)
	}
	if r, err := e.tc.Reply(ctx, payeePhone, "YES", ""); err != nil || r.WebhookStatus != WebhookDelivered || len(e.gotReplies()) != 1 {
		t.Fatalf("reply after the webhook was set: %v %+v", err, r)
	}
	if err := e.tc.SetSenderWebhook(ctx, bankID, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tc.Reply(ctx, payeePhone, "NO", ""); !errors.Is(err, ErrNoWebhook) {
		t.Fatalf("reply after the webhook was removed: %v", err)
	}
	for name, c := range map[string]struct {
		id, url string
		secret  []byte
		want    error
	}{
		"bad url":        {bankID, "ftp://x", webhookSecret, ErrInvalid},
		"short secret":   {bankID, "http://x", []byte("s"), ErrInvalid},
		"unknown sender": {"nobody", "http://x", webhookSecret, ErrNotFound},
	} {
		if err := e.tc.SetSenderWebhook(ctx, c.id, c.url, c.secret); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
