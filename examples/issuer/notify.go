package issuer

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/ecml"
)

// Notifier sends a text message to a cardholder's phone. Korean card
// companies text the cardholder on every approval, void and refund; the
// text shows the exact amount and the merchant name, which amount
// authentication relies on (KECIS §15.3).
type Notifier interface {
	Send(ctx context.Context, phone, text string) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, phone, text string) error

// Send calls f.
func (f NotifierFunc) Send(ctx context.Context, phone, text string) error { return f(ctx, phone, text) }

// LogNotifier logs that an SMS would have been sent instead of sending it
// (the default Notifier). It logs the masked phone number and the text's
// length, never the text: a verification approval's text carries a
// one-time password (its amount, or a descriptor code; KECIS §15.3), which
// no log may hold.
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

// Inbox is an in-memory Notifier, a simulated phone network that keeps
// every message: demos and tests read the cardholder's SMS from it. The
// zero value is ready to use.
type Inbox struct {
	mu   sync.Mutex
	msgs []SMS
}

// Send records the message.
func (b *Inbox) Send(_ context.Context, phone, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, SMS{Phone: phone, Text: text})
	return nil
}

// Messages returns the messages sent to phone (all messages if phone is
// empty), oldest first.
func (b *Inbox) Messages(phone string) []SMS {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []SMS
	for _, m := range b.msgs {
		if phone == "" || m.Phone == phone {
			out = append(out, m)
		}
	}
	return out
}

// Last returns the latest message sent to phone.
func (b *Inbox) Last(phone string) (SMS, bool) {
	ms := b.Messages(phone)
	if len(ms) == 0 {
		return SMS{}, false
	}
	return ms[len(ms)-1], true
}

// MaskPhone shows a phone number as 010-****-5678.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return "****"
	}
	return p[:3] + "-****-" + p[len(p)-4:]
}

// smsKind is what an SMS reports.
type smsKind string

const (
	smsApproval smsKind = "approval"
	smsCancel   smsKind = "cancel"
	smsRefund   smsKind = "refund"
)

var smsLabel = map[smsKind]string{smsApproval: "승인", smsCancel: "승인취소", smsRefund: "환불"}

// smsText is the cardholder SMS, in the style of Korean card companies:
//
//	[KECIS Card] 승인 15,000원 Example Shop 11/22 19:00 (1111)
//	[KECIS Card] 승인 300,000원 3개월 Example Shop 11/22 19:00 (1111)
//	[KECIS Card] 승인 1,234원 Example Shop 482193 11/22 19:00 (1111)
//	[KECIS Card] 승인취소 15,000원 Example Shop 11/22 19:05 (1111)
//	[KECIS Card] 환불 5,000원 Example Shop 11/23 10:00 (1111)
//
// The time is local (Config.Location), the card shows its last four digits
// only, and the merchant name is cut to 20 characters; code, the
// descriptor code of a verification approval (KECIS §15.3.5), follows it
// when given.
func (i *Issuer) smsText(kind smsKind, merchant, code string, m ecml.Money, installments int, at time.Time, last4 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s %s", i.brand, smsLabel[kind], m.Display())
	if installments > 1 {
		fmt.Fprintf(&b, " %d개월", installments)
	}
	name := ecml.RedactPANs(merchant)
	if utf8.RuneCountInString(name) > 20 {
		name = string([]rune(name)[:20])
	}
	fmt.Fprintf(&b, " %s", strings.TrimSpace(name))
	if code != "" {
		fmt.Fprintf(&b, " %s", code)
	}
	fmt.Fprintf(&b, " %s (%s)", at.In(i.loc).Format("01/02 15:04"), last4)
	return b.String()
}

// Notification is a row of the SMS outbox.
type Notification struct {
	ID            int64
	Kind          string // approval, cancel or refund
	Ref           string // approval number or refund ID
	Phone         string
	Text          string
	State         string // pending, sent or dead
	Attempts      int
	LastError     string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	SentAt        time.Time
}

// DeliveryReport counts the outcomes of one DeliverNotifications run.
type DeliveryReport struct {
	Sent   int // delivered
	Failed int // failed, to be retried
	Dead   int // failed for the last time
}

type deliveryResult int

const (
	deliverySkipped deliveryResult = iota // taken by another deliverer, or not due
	deliverySent
	deliveryFailed
	deliveryDead
)

// queuedSMS is an SMS a request's transaction queued, for its first
// delivery attempt after the commit.
type queuedSMS struct {
	id          int64
	phone, text string
}

// enqueueSMS writes an SMS to the outbox in the caller's transaction, so
// that it exists exactly when the mutation it reports was committed. The
// row is written leased, its first attempt counted, for the delivery
// right after the commit (deliverAfterCommit): the lease that keeps
// another deliverer away costs no transaction of its own. Should the
// process die before it sends, the lease runs out and DeliverNotifications
// sends it.
func (i *Issuer) enqueueSMS(ctx context.Context, q sqlstore.Queryer, kind smsKind, ref, phone, text string, now time.Time) (queuedSMS, error) {
	var id int64
	if err := q.QueryRowContext(ctx, `INSERT INTO issuer_outbox (kind, ref, phone, body, state, attempts,
		next_attempt_at, lease_until, created_at) VALUES ($1, $2, $3, $4, 'pending', 1, $5, $6, $5) RETURNING id`,
		string(kind), ref, phone, text, i.t(now), i.t(now.Add(i.smsLease()))).Scan(&id); err != nil {
		return queuedSMS{}, fmt.Errorf("issuer: queue sms: %w", err)
	}
	return queuedSMS{id: id, phone: phone, text: text}, nil
}

// smsLease is how long a delivery attempt holds its SMS.
func (i *Issuer) smsLease() time.Duration { return 2 * i.notifyTimeout }

// deliverAfterCommit makes the first delivery attempt of a committed SMS
// right away, detached from the caller's cancellation, under the lease its
// transaction took; a failure stays in the outbox for
// DeliverNotifications.
func (i *Issuer) deliverAfterCommit(ctx context.Context, m queuedSMS) {
	if m.id == 0 {
		return
	}
	if _, err := i.attempt(context.WithoutCancel(ctx), m.id, m.phone, m.text, 1, true); err != nil {
		i.log.ErrorContext(ctx, "sms outbox", "outbox", m.id, "err", err)
	}
}

// DeliverNotifications attempts every pending SMS that is due (at most
// 100 per run), the longest due first. A failed attempt is retried with
// exponential backoff (30 s doubling, at most an hour) up to
// Config.NotifyMaxAttempts attempts.
func (i *Issuer) DeliverNotifications(ctx context.Context) (DeliveryReport, error) {
	var rep DeliveryReport
	if err := i.flushSent(ctx); err != nil {
		return rep, err
	}
	now := i.now()
	rows, err := i.db.QueryContext(ctx, `SELECT id FROM issuer_outbox WHERE state = 'pending'
		AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, id LIMIT 100`,
		i.t(now), i.t(now))
	if err != nil {
		return rep, fmt.Errorf("issuer: sms outbox: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return rep, fmt.Errorf("issuer: sms outbox: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("issuer: sms outbox: %w", err)
	}
	for _, id := range ids {
		res, err := i.deliver(ctx, id)
		if err != nil {
			return rep, err
		}
		switch res {
		case deliverySent:
			rep.Sent++
		case deliveryFailed:
			rep.Failed++
		case deliveryDead:
			rep.Dead++
		}
	}
	return rep, nil
}

// deliver leases one due SMS, sends it and records the outcome. The lease
// keeps two deliverers (the post-commit attempt and a retry run, or two
// replicas) from sending the same message at once.
func (i *Issuer) deliver(ctx context.Context, id int64) (deliveryResult, error) {
	now := i.now()
	lease := now.Add(i.smsLease())
	var n int64
	err := sqlstore.Retry(ctx, func() error {
		res, err := i.db.ExecContext(ctx, `UPDATE issuer_outbox SET attempts = attempts + 1, lease_until = $1
			WHERE id = $2 AND state = 'pending' AND next_attempt_at <= $3
			AND (lease_until IS NULL OR lease_until <= $4)`, i.t(lease), id, i.t(now), i.t(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("issuer: lease sms %d: %w", id, err)
	}
	if n == 0 {
		return deliverySkipped, nil
	}
	var phone, text string
	var attempts int
	if err := i.db.QueryRowContext(ctx, `SELECT phone, body, attempts FROM issuer_outbox WHERE id = $1`, id).
		Scan(&phone, &text, &attempts); err != nil {
		return 0, fmt.Errorf("issuer: read sms %d: %w", id, err)
	}
	return i.attempt(ctx, id, phone, text, attempts, false)
}

// attempt sends a leased SMS and records the outcome: a failure at once,
// in a transaction of its own; a success too, unless deferSent, when it
// rides in a later transaction (sentMarks).
func (i *Issuer) attempt(ctx context.Context, id int64, phone, text string, attempts int, deferSent bool) (deliveryResult, error) {
	sctx, cancel := context.WithTimeout(ctx, i.notifyTimeout)
	sendErr := i.notifier.Send(sctx, phone, text)
	cancel()

	done := i.now()
	if sendErr == nil && deferSent {
		i.sent.add(i, id, done)
		return deliverySent, nil
	}
	result := deliverySent
	var q string
	var args []any
	if sendErr == nil {
		q = `UPDATE issuer_outbox SET state = 'sent', sent_at = $1, lease_until = NULL, last_error = '' WHERE id = $2`
		args = []any{i.t(done), id}
	} else {
		state := "pending"
		result = deliveryFailed
		if attempts >= i.notifyMax {
			state, result = "dead", deliveryDead
		}
		msg := errorText(sendErr)
		q = `UPDATE issuer_outbox SET state = $1, next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $4`
		args = []any{state, i.t(done.Add(backoff(attempts))), msg, id}
		i.log.WarnContext(ctx, "sms delivery failed", "outbox", id, "attempts", attempts, "state", state, "err", msg)
	}
	if err := sqlstore.Retry(ctx, func() error {
		_, err := i.db.ExecContext(ctx, q, args...)
		return err
	}); err != nil {
		return 0, fmt.Errorf("issuer: record sms %d: %w", id, err)
	}
	return result, nil
}

// sentMarks are the SMS that their first attempt delivered and whose
// 'sent' state is not written yet. It rides in the next write transaction
// of the issuer (write), which a busy issuer commits anyway, so that a
// delivered SMS costs no commit of its own; an idle one writes it in a
// transaction of its own after Config.SMSRecordDelay, and before
// DeliverNotifications or Notifications read the outbox, and at Close.
// The delay is kept under a quarter of the SMS's lease, so another
// replica's deliverer never finds the lease run out while the mark waits.
// A process that dies before writing it leaves the SMS pending under its
// lease, and DeliverNotifications sends it again once the lease runs out:
// at least once, as when a crash fell between a send and its record.
type sentMarks struct {
	mu    sync.Mutex
	at    map[int64]time.Time
	timer *time.Timer
}

// add marks id sent at t and makes sure a write follows within the delay.
func (m *sentMarks) add(i *Issuer, id int64, t time.Time) {
	if i.smsDelay <= 0 {
		if err := i.writeSent(context.Background(), map[int64]time.Time{id: t}); err != nil {
			i.log.Error("sms outbox: recording a delivered sms failed; it will be sent again after its lease", "outbox", id, "err", err)
		}
		return
	}
	m.restore(i, map[int64]time.Time{id: t})
}

// arm starts the timer that writes the marks, unless it runs; m.mu held.
func (m *sentMarks) arm(i *Issuer) {
	if m.timer != nil || len(m.at) == 0 {
		return
	}
	m.timer = time.AfterFunc(i.smsDelay, func() {
		m.mu.Lock()
		m.timer = nil
		m.mu.Unlock()
		if err := i.flushSent(context.Background()); err != nil {
			i.log.Error("sms outbox: recording delivered sms failed; they will be sent again after their lease", "err", err)
		}
	})
}

// take removes and returns the marks (nil if none).
func (m *sentMarks) take() map[int64]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.at) == 0 {
		return nil
	}
	out := m.at
	m.at = nil
	return out
}

// restore adds marks (those a rolled-back transaction did not write, or
// a new one) and arms the timer.
func (m *sentMarks) restore(i *Issuer, marks map[int64]time.Time) {
	if len(marks) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at = map[int64]time.Time{}
	}
	maps.Copy(m.at, marks)
	m.arm(i)
}

// stop stops the timer (Close).
func (m *sentMarks) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// recordSent writes marks in tx.
func (i *Issuer) recordSent(ctx context.Context, tx *sql.Tx, marks map[int64]time.Time) error {
	for _, id := range slices.Sorted(maps.Keys(marks)) {
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_outbox SET state = 'sent', sent_at = $1, lease_until = NULL,
			last_error = '' WHERE id = $2 AND state = 'pending'`, i.t(marks[id]), id); err != nil {
			return fmt.Errorf("issuer: record sms %d: %w", id, err)
		}
	}
	return nil
}

// writeSent writes marks in a transaction of their own.
func (i *Issuer) writeSent(ctx context.Context, marks map[int64]time.Time) error {
	return i.db.WriteTx(ctx, func(tx *sql.Tx) error { return i.recordSent(ctx, tx, marks) })
}

// flushSent writes the waiting marks now.
func (i *Issuer) flushSent(ctx context.Context) error {
	marks := i.sent.take()
	if len(marks) == 0 {
		return nil
	}
	if err := i.writeSent(ctx, marks); err != nil {
		i.sent.restore(i, marks)
		return err
	}
	return nil
}

// backoff is the wait after the n-th failed attempt: 30 s doubling, at
// most an hour.
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
	if err == nil {
		return ""
	}
	s := ecml.RedactPANs(err.Error())
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	for len(s) > 300 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// Notifications lists the SMS outbox, newest first, at most limit (50 if
// limit ≤ 0).
func (i *Issuer) Notifications(ctx context.Context, limit int) ([]Notification, error) {
	if limit <= 0 {
		limit = 50
	}
	if err := i.flushSent(ctx); err != nil {
		return nil, err
	}
	rows, err := i.db.QueryContext(ctx, `SELECT id, kind, ref, phone, body, state, attempts, last_error,
		created_at, next_attempt_at, sent_at FROM issuer_outbox ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("issuer: list sms: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.ID, &n.Kind, &n.Ref, &n.Phone, &n.Text, &n.State, &n.Attempts, &n.LastError,
			sqlstore.ScanTime(&n.CreatedAt), sqlstore.ScanTime(&n.NextAttemptAt), sqlstore.ScanTime(&n.SentAt)); err != nil {
			return nil, fmt.Errorf("issuer: list sms: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: list sms: %w", err)
	}
	return out, nil
}
