package bank

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// Notifier sends a text message to a customer's registered phone. Korean
// banks text the customer on every movement of the account (입출금 알림).
type Notifier interface {
	Send(ctx context.Context, phone, text string) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, phone, text string) error

// Send calls f.
func (f NotifierFunc) Send(ctx context.Context, phone, text string) error { return f(ctx, phone, text) }

// LogNotifier logs that an SMS would have been sent, with the phone masked
// and the text's length only (the default Notifier).
type LogNotifier struct{ Logger *slog.Logger }

// Send logs the SMS without its text.
func (n LogNotifier) Send(ctx context.Context, phone, text string) error {
	l := n.Logger
	if l == nil {
		l = slog.Default()
	}
	l.InfoContext(ctx, "sms not sent: no notifier configured", "to", MaskPhone(phone), "chars", utf8.RuneCountInString(text))
	return nil
}

// SMS is one text message an Inbox received.
type SMS struct {
	Phone string
	Text  string
}

// Inbox is an in-memory Notifier that keeps every message, for demos and
// tests. The zero value is ready to use.
type Inbox struct {
	mu   sync.Mutex
	msgs []SMS
}

// Send records the message.
func (x *Inbox) Send(_ context.Context, phone, text string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.msgs = append(x.msgs, SMS{Phone: phone, Text: text})
	return nil
}

// Messages returns the messages sent to phone (all if phone is ""), oldest
// first.
func (x *Inbox) Messages(phone string) []SMS {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []SMS
	for _, m := range x.msgs {
		if phone == "" || m.Phone == phone {
			out = append(out, m)
		}
	}
	return out
}

// MaskPhone shows a phone number as 010-****-5678.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return "****"
	}
	return p[:3] + "-****-" + p[len(p)-4:]
}

// smsText is a movement text in the style of Korean banks:
//
//	[KECIS Bank] 입금 15,000원 홍길동 11/22 19:00 잔액 115,000원 (6789)
//	[KECIS Bank] 출금 15,000원 김영희 11/22 19:00 잔액 85,000원 (6789)
//
// The account shows its last four digits only; the counter-party name is
// cut to 12 characters.
func (b *Bank) smsText(label string, m ecml.Money, counterparty string, at time.Time, balance int64, last4 string) string {
	name := strings.TrimSpace(ecml.RedactPANs(counterparty))
	if utf8.RuneCountInString(name) > 12 {
		name = string([]rune(name)[:12])
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "[%s] %s %s", b.name, label, m.Display())
	if name != "" {
		fmt.Fprintf(&sb, " %s", name)
	}
	fmt.Fprintf(&sb, " %s 잔액 %s (%s)", at.In(b.loc).Format("01/02 15:04"),
		ecml.Money{Minor: balance, Currency: Currency}.Display(), last4)
	return sb.String()
}

// queuedSMS is an SMS a transaction queued, for its first attempt after
// the commit.
type queuedSMS struct {
	id          int64
	phone, text string
}

// enqueueSMS writes an SMS to the outbox in the caller's transaction, so
// that it exists exactly when the movement it reports was committed. It
// is written leased, its first attempt counted, for the delivery right
// after the commit; should the process die first, the lease runs out and
// DeliverNotifications sends it.
func (b *Bank) enqueueSMS(ctx context.Context, q sqlstore.Queryer, kind, ref, phone, text string, now time.Time) (queuedSMS, error) {
	var id int64
	if err := q.QueryRowContext(ctx, `INSERT INTO bank_outbox (kind, ref, phone, body, state, attempts,
		next_attempt_at, lease_until, created_at) VALUES ($1, $2, $3, $4, 'pending', 1, $5, $6, $5) RETURNING id`,
		kind, ref, phone, text, b.t(now), b.t(now.Add(b.smsLease()))).Scan(&id); err != nil {
		return queuedSMS{}, fmt.Errorf("bank: queue sms: %w", err)
	}
	return queuedSMS{id: id, phone: phone, text: text}, nil
}

func (b *Bank) smsLease() time.Duration { return 2 * b.notifyTimeout }

// deliverAfterCommit makes the first attempt of committed SMS, detached
// from the caller's cancellation; a failure stays for DeliverNotifications.
func (b *Bank) deliverAfterCommit(ctx context.Context, ms ...queuedSMS) {
	for _, m := range ms {
		if m.id == 0 {
			continue
		}
		if err := b.attempt(context.WithoutCancel(ctx), m.id, m.phone, m.text, 1); err != nil {
			b.log.ErrorContext(ctx, "sms outbox", "outbox", m.id, "err", err)
		}
	}
}

// DeliverNotifications attempts every pending SMS that is due and not
// leased (at most 100 per run); failures are retried with backoff (30 s
// doubling, at most an hour) up to Config.NotifyMaxAttempts. It returns
// how many were sent.
func (b *Bank) DeliverNotifications(ctx context.Context) (int, error) {
	now := b.now()
	rows, err := b.db.QueryContext(ctx, `SELECT id FROM bank_outbox WHERE state = 'pending' AND next_attempt_at <= $1
		AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, id LIMIT 100`, b.t(now))
	if err != nil {
		return 0, fmt.Errorf("bank: sms outbox: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("bank: sms outbox: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("bank: sms outbox: %w", err)
	}
	sent := 0
	for _, id := range ids {
		lease := now.Add(b.smsLease())
		var phone, text string
		var attempts int
		err := b.db.QueryRowContext(ctx, `UPDATE bank_outbox SET attempts = attempts + 1, lease_until = $1
			WHERE id = $2 AND state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
			RETURNING phone, body, attempts`, b.t(lease), id, b.t(now)).Scan(&phone, &text, &attempts)
		if err != nil {
			continue // taken, or rescheduled after a failure, by another deliverer since the SELECT
		}
		if err := b.attempt(ctx, id, phone, text, attempts); err != nil {
			return sent, err
		}
		var state string
		if err := b.db.QueryRowContext(ctx, `SELECT state FROM bank_outbox WHERE id = $1`, id).Scan(&state); err == nil && state == "sent" {
			sent++
		}
	}
	return sent, nil
}

// attempt sends a leased SMS and records the outcome.
func (b *Bank) attempt(ctx context.Context, id int64, phone, text string, attempts int) error {
	sctx, cancel := context.WithTimeout(ctx, b.notifyTimeout)
	sendErr := b.notifier.Send(sctx, phone, text)
	cancel()
	done := b.now()
	q := `UPDATE bank_outbox SET state = 'sent', sent_at = $1, lease_until = NULL, last_error = '' WHERE id = $2`
	args := []any{b.t(done), id}
	if sendErr != nil {
		state := "pending"
		if attempts >= b.notifyMax {
			state = "dead"
		}
		msg := errorText(sendErr)
		q = `UPDATE bank_outbox SET state = $1, next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $4`
		args = []any{state, b.t(done.Add(backoff(attempts))), msg, id}
		b.log.WarnContext(ctx, "sms delivery failed", "outbox", id, "attempts", attempts, "state", state, "err", msg)
	}
	return sqlstore.Retry(ctx, func() error {
		_, err := b.db.ExecContext(ctx, q, args...)
		return err
	})
}

func backoff(n int) time.Duration {
	d := 30 * time.Second
	for k := 1; k < n && d < time.Hour; k++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// errorText is an error as stored and logged: one line, card numbers
// masked, at most 300 bytes.
func errorText(err error) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, ecml.RedactPANs(err.Error()))
	for len(s) > 300 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// Notification is a row of the SMS outbox.
type Notification struct {
	ID        int64
	Kind      string
	Ref       string
	Phone     string
	Text      string
	State     string
	Attempts  int
	LastError string
	CreatedAt time.Time
}

// Notifications lists the SMS outbox, newest first, at most limit (50 if
// limit ≤ 0).
func (b *Bank) Notifications(ctx context.Context, limit int) ([]Notification, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := b.db.QueryContext(ctx, `SELECT id, kind, ref, phone, body, state, attempts, last_error, created_at
		FROM bank_outbox ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("bank: list sms: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.ID, &n.Kind, &n.Ref, &n.Phone, &n.Text, &n.State, &n.Attempts, &n.LastError,
			sqlstore.ScanTime(&n.CreatedAt)); err != nil {
			return nil, fmt.Errorf("bank: list sms: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
