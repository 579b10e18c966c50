package telecom

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore"
)

// setting returns the named random secret of this database, creating it
// with n random bytes the first time.
func (t *Telecom) setting(ctx context.Context, name string, n int) ([]byte, error) {
	fresh := make([]byte, n)
	if _, err := io.ReadFull(t.cfg.Rand, fresh); err != nil {
		return nil, fmt.Errorf("telecom: random %s: %w", name, err)
	}
	var v []byte
	err := t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO telecom_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			name, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM telecom_settings WHERE name = $1`, name).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("telecom: setting %s: %w", name, err)
	}
	return v, nil
}

func (t *Telecom) now() time.Time { return t.cfg.Now().UTC() }

// dbTime converts t for a timestamp column, NULL for the zero time.
func (t *Telecom) dbTime(v time.Time) any {
	if v.IsZero() {
		return nil
	}
	return t.db.Dialect.Time(v)
}

// invalid wraps err as a caller error.
func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalid, err) }

// ---- subscribers -------------------------------------------------------

// AddSubscriber adds a phone line; it fails with ErrExists for a number
// that already has one.
func (t *Telecom) AddSubscriber(ctx context.Context, s Subscriber) error {
	phone, err := sms.NormalizePhone(s.Phone)
	if err != nil {
		return invalid(err)
	}
	name := strings.TrimSpace(s.HolderName)
	if name == "" {
		return invalid(errors.New("subscriber without holder name"))
	}
	if s.BirthDate.IsZero() {
		return invalid(errors.New("subscriber without birth date"))
	}
	if s.Status == "" {
		s.Status = SubscriberActive
	}
	if !s.Status.valid() {
		return invalid(fmt.Errorf("unknown subscriber status %q", s.Status))
	}
	now := t.now()
	var added bool
	err = t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO telecom_subscribers
			(phone, holder_name, birth_date_hash, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (phone) DO NOTHING`,
			phone, name, t.birthHash(phone, s.BirthDate), string(s.Status), t.db.Dialect.Time(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	if err != nil {
		return fmt.Errorf("telecom: add subscriber: %w", err)
	}
	if !added {
		return fmt.Errorf("%w: subscriber %s", ErrExists, sms.MaskPhone(phone))
	}
	t.log.InfoContext(ctx, "telecom: subscriber added", "phone", sms.MaskPhone(phone), "status", s.Status)
	return nil
}

// SetSubscriberStatus changes a line's status.
func (t *Telecom) SetSubscriberStatus(ctx context.Context, phone string, status SubscriberStatus) error {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return invalid(err)
	}
	if !status.valid() {
		return invalid(fmt.Errorf("unknown subscriber status %q", status))
	}
	var n int64
	err = t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE telecom_subscribers SET status = $1, updated_at = $2 WHERE phone = $3`,
			string(status), t.db.Dialect.Time(t.now()), p)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("telecom: set subscriber status: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: subscriber %s", ErrNotFound, sms.MaskPhone(p))
	}
	return nil
}

// birthHash binds a birth date to its line, keyed with this database's
// secret, so that the stored value reveals nothing without the key and
// equal dates of different subscribers do not look equal.
func (t *Telecom) birthHash(phone string, d time.Time) []byte {
	m := hmac.New(sha256.New, t.birthKey)
	m.Write([]byte("kecis-telecom/birth-date/v1\x00" + phone + "\x00" + d.Format(time.DateOnly)))
	return m.Sum(nil)
}

// subscriberStatus returns the line's status, "" when there is none.
func subscriberStatus(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, phone string) (SubscriberStatus, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT status FROM telecom_subscribers WHERE phone = $1`, phone).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return SubscriberStatus(s), err
}

// BirthDateMatches reports whether phone is an active line whose holder
// was born on birth (its calendar date).
func (t *Telecom) BirthDateMatches(ctx context.Context, phone string, birth time.Time) (bool, error) {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return false, invalid(err)
	}
	var h []byte
	var status string
	err = t.db.QueryRowContext(ctx, `SELECT birth_date_hash, status FROM telecom_subscribers WHERE phone = $1`, p).Scan(&h, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("telecom: birth date check: %w", err)
	}
	return hmac.Equal(h, t.birthHash(p, birth)) && status == string(SubscriberActive), nil
}

// Phones lists the subscribers' lines with their inbox sizes.
func (t *Telecom) Phones(ctx context.Context) ([]PhoneSummary, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT s.phone, s.status,
		(SELECT COUNT(*) FROM telecom_messages m WHERE m.to_phone = s.phone AND m.status = 'delivered')
		FROM telecom_subscribers s ORDER BY s.phone`)
	if err != nil {
		return nil, fmt.Errorf("telecom: list phones: %w", err)
	}
	defer rows.Close()
	var out []PhoneSummary
	for rows.Next() {
		var p PhoneSummary
		var status string
		if err := rows.Scan(&p.Phone, &status, &p.Messages); err != nil {
			return nil, fmt.Errorf("telecom: list phones: %w", err)
		}
		p.Status = SubscriberStatus(status)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ---- senders -----------------------------------------------------------

// AddSender registers a participant allowed to send; it fails with
// ErrExists for a known ID or API key.
func (t *Telecom) AddSender(ctx context.Context, a SenderAccount) error {
	if a.ID == "" || len(a.ID) > 64 {
		return invalid(errors.New("sender id must have 1 to 64 characters"))
	}
	if len(a.APIKey) < 16 {
		return invalid(errors.New("sender API key must be at least 16 bytes"))
	}
	if len(a.Numbers) == 0 {
		return invalid(errors.New("sender without a caller number"))
	}
	numbers := make([]string, 0, len(a.Numbers))
	for _, n := range a.Numbers {
		c, err := sms.NormalizeCallerID(n)
		if err != nil {
			return invalid(err)
		}
		numbers = append(numbers, c)
	}
	if a.WebhookURL != "" {
		u, err := url.Parse(a.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(errors.New("sender webhook URL must be an absolute http(s) URL"))
		}
		if len(a.WebhookSecret) < sms.MinSecretLen {
			return invalid(fmt.Errorf("sender webhook secret must be at least %d bytes", sms.MinSecretLen))
		}
	}
	name := a.Name
	if name == "" {
		name = a.ID
	}
	keyHash := hashAPIKey(a.APIKey)
	var added bool
	err := t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		added = false
		res, err := tx.ExecContext(ctx, `INSERT INTO telecom_senders
			(id, name, api_key_hash, webhook_url, webhook_secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			a.ID, name, keyHash, a.WebhookURL, sqlstore.Bytes(a.WebhookSecret), t.db.Dialect.Time(t.now()))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		added = true
		for i, num := range numbers {
			if _, err := tx.ExecContext(ctx, `INSERT INTO telecom_sender_numbers (sender_id, number, position)
				VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, a.ID, num, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("telecom: add sender: %w", err)
	}
	if !added {
		return fmt.Errorf("%w: sender %q or its API key", ErrExists, a.ID)
	}
	t.log.InfoContext(ctx, "telecom: sender added", "sender", a.ID, "numbers", len(numbers), "webhook", a.WebhookURL != "")
	return nil
}

// SetSenderWebhook points the sender account id's replies at url, signed
// with secret (at least sms.MinSecretLen bytes); an empty url stops
// forwarding. An operator changes it when the sender's endpoint moves (the
// demo's banks bind new ports on every run).
func (t *Telecom) SetSenderWebhook(ctx context.Context, id, webhookURL string, secret []byte) error {
	if webhookURL != "" {
		u, err := url.Parse(webhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(errors.New("sender webhook URL must be an absolute http(s) URL"))
		}
		if len(secret) < sms.MinSecretLen {
			return invalid(fmt.Errorf("sender webhook secret must be at least %d bytes", sms.MinSecretLen))
		}
	} else {
		secret = nil
	}
	var n int64
	err := t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE telecom_senders SET webhook_url = $1, webhook_secret = $2 WHERE id = $3`,
			webhookURL, sqlstore.Bytes(secret), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("telecom: set sender webhook: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: sender %q", ErrNotFound, id)
	}
	t.log.InfoContext(ctx, "telecom: sender webhook set", "sender", id, "webhook", webhookURL != "")
	return nil
}

func hashAPIKey(k string) string {
	h := sha256.Sum256([]byte("kecis-telecom/api-key/v1\x00" + k))
	return hex.EncodeToString(h[:])
}

// senderRow is a sender account as the gateway uses it.
type senderRow struct {
	id            string
	numbers       []string
	webhookURL    string
	webhookSecret []byte
}

// senderByAPIKey authenticates a gateway request.
func (t *Telecom) senderByAPIKey(ctx context.Context, key string) (senderRow, error) {
	if key == "" {
		return senderRow{}, ErrUnauthorized
	}
	s, err := t.loadSender(ctx, "s.api_key_hash", hashAPIKey(key))
	if errors.Is(err, sql.ErrNoRows) {
		return senderRow{}, ErrUnauthorized
	}
	if err != nil {
		return senderRow{}, fmt.Errorf("telecom: sender lookup: %w", err)
	}
	return s, nil
}

// sender loads an account by ID.
func (t *Telecom) sender(ctx context.Context, id string) (senderRow, error) {
	s, err := t.loadSender(ctx, "s.id", id)
	if errors.Is(err, sql.ErrNoRows) {
		return senderRow{}, fmt.Errorf("%w: sender %q", ErrNotFound, id)
	}
	if err != nil {
		return senderRow{}, fmt.Errorf("telecom: sender %q: %w", id, err)
	}
	return s, nil
}

// loadSender reads the account whose column key (s.id or s.api_key_hash,
// both unique) is v, with its caller numbers in order, in one statement:
// every SMS a participant sends looks its account up, and one statement
// needs no read transaction to be consistent. It fails with sql.ErrNoRows
// for no account.
func (t *Telecom) loadSender(ctx context.Context, key string, v any) (senderRow, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT s.id, s.webhook_url, s.webhook_secret, n.number
		FROM telecom_senders s LEFT JOIN telecom_sender_numbers n ON n.sender_id = s.id
		WHERE `+key+` = $1 ORDER BY n.position`, v)
	if err != nil {
		return senderRow{}, err
	}
	defer rows.Close()
	var s senderRow
	found := false
	for rows.Next() {
		var n sql.NullString
		if err := rows.Scan(&s.id, &s.webhookURL, &s.webhookSecret, &n); err != nil {
			return senderRow{}, err
		}
		found = true
		if n.Valid {
			s.numbers = append(s.numbers, n.String)
		}
	}
	if err := rows.Err(); err != nil {
		return senderRow{}, err
	}
	if !found {
		return senderRow{}, sql.ErrNoRows
	}
	return s, nil
}

// ---- messages ----------------------------------------------------------

const messageColumns = `id, sender_id, from_number, to_phone, body, kind, bytes, COALESCE(ref, ''),
	status, failure_reason, created_at, delivered_at, COALESCE(inbox_seq, 0)`

type scanner interface{ Scan(dest ...any) error }

func scanMessage(r scanner) (Message, error) {
	var m Message
	var kind, status string
	err := r.Scan(&m.ID, &m.SenderID, &m.From, &m.To, &m.Text, &kind, &m.Bytes, &m.Ref,
		&status, &m.FailureReason, sqlstore.ScanTime(&m.CreatedAt), sqlstore.ScanTime(&m.DeliveredAt), &m.InboxSeq)
	m.Type, m.Status = sms.Kind(kind), Status(status)
	return m, err
}

// Submit accepts a message from the account senderID, as POST /api/sms
// does: it checks the caller number against the account's registered
// numbers, normalises the recipient, measures the text, and queues the
// message (or delivers it at once without a DeliveryDelay). A message to a
// number without an active line is accepted and fails delivery, as at a
// real carrier. A repeated Ref with the same message returns the first
// submission; with a different message it fails with
// ErrIdempotencyConflict.
func (t *Telecom) Submit(ctx context.Context, senderID string, m sms.Message) (Message, error) {
	s, err := t.sender(ctx, senderID)
	if err != nil {
		return Message{}, err
	}
	msg, _, err := t.submit(ctx, s, m, "")
	return msg, err
}

func (t *Telecom) submit(ctx context.Context, s senderRow, m sms.Message, want sms.Kind) (Message, bool, error) {
	from := ""
	if m.From == "" {
		from = s.numbers[0]
	} else {
		c, err := sms.NormalizeCallerID(m.From)
		if err != nil {
			return Message{}, false, invalid(err)
		}
		if slices.Contains(s.numbers, c) {
			from = c
		}
		if from == "" {
			return Message{}, false, ErrCallerNotRegistered
		}
	}
	to, err := sms.NormalizePhone(m.To)
	if err != nil {
		return Message{}, false, invalid(err)
	}
	info, err := sms.Measure(m.Text)
	if err != nil {
		return Message{}, false, invalid(err)
	}
	kind, err := sms.CheckKind(info, want)
	if err != nil {
		return Message{}, false, invalid(err)
	}
	if len(m.Ref) > 255 {
		return Message{}, false, invalid(errors.New("ref longer than 255 characters"))
	}
	id, err := t.newID("msg_")
	if err != nil {
		return Message{}, false, err
	}
	now := t.now()
	msg := Message{
		ID: id, SenderID: s.id, From: from, To: to, Text: m.Text, Type: kind, Bytes: info.Bytes,
		Ref: m.Ref, Status: StatusQueued, CreatedAt: now,
	}
	// The message goes in with its ref's unique key as the check for a
	// repeated ref, rather than a SELECT before every INSERT: a ref is
	// new but for the sender's retries. When the ref is taken, the write
	// rolls back (its inbox position too) and the message that holds the
	// ref, committed by then, is compared with this one.
	err = t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		msg.Status, msg.FailureReason, msg.DeliveredAt, msg.InboxSeq = StatusQueued, "", time.Time{}, 0
		if t.cfg.DeliveryDelay == 0 {
			// The usual message, to an active line and delivered at
			// once: one statement checks the line and draws its inbox
			// position.
			err := tx.QueryRowContext(ctx, `UPDATE telecom_counters SET value = value + 1
				WHERE name = 'inbox' AND EXISTS
					(SELECT 1 FROM telecom_subscribers WHERE phone = $1 AND status = 'active')
				RETURNING value`, to).Scan(&msg.InboxSeq)
			switch {
			case err == nil:
				msg.Status, msg.DeliveredAt = StatusDelivered, now
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if msg.Status != StatusDelivered {
			status, err := subscriberStatus(ctx, tx, to)
			if err != nil {
				return err
			}
			switch {
			case status == "":
				msg.Status, msg.FailureReason = StatusFailed, "unknown subscriber"
			case status != SubscriberActive:
				msg.Status, msg.FailureReason = StatusFailed, "subscriber "+string(status)
			case t.cfg.DeliveryDelay == 0:
				// Activated between the two statements (PostgreSQL,
				// read committed).
				if msg.InboxSeq, err = nextInboxSeq(ctx, tx); err != nil {
					return err
				}
				msg.Status, msg.DeliveredAt = StatusDelivered, now
			}
		}
		var ref any
		if m.Ref != "" {
			ref = m.Ref
		}
		var inboxSeq any
		if msg.InboxSeq != 0 {
			inboxSeq = msg.InboxSeq
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO telecom_messages
			(id, sender_id, from_number, to_phone, body, kind, bytes, ref, status, failure_reason,
			 created_at, deliver_at, delivered_at, inbox_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (sender_id, ref) DO NOTHING`,
			msg.ID, msg.SenderID, msg.From, msg.To, msg.Text, string(msg.Type), msg.Bytes, ref,
			string(msg.Status), msg.FailureReason, t.db.Dialect.Time(now),
			t.db.Dialect.Time(now.Add(t.cfg.DeliveryDelay)), t.dbTime(msg.DeliveredAt), inboxSeq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errRefTaken
		}
		return nil
	})
	replayed := false
	if errors.Is(err, errRefTaken) {
		// The ref's message is committed now: on SQLite the writer is
		// one (Group.Write and WriteTx return after the commit); on
		// PostgreSQL the INSERT waited for the transaction that held
		// the ref to commit.
		prev, perr := scanMessage(t.db.QueryRowContext(ctx,
			`SELECT `+messageColumns+` FROM telecom_messages WHERE sender_id = $1 AND ref = $2`, s.id, m.Ref))
		switch {
		case errors.Is(perr, sql.ErrNoRows):
			// What held the ref did not commit after all (its group
			// failed): submit again.
			return t.submit(ctx, s, m, want)
		case perr != nil:
			err = perr
		case prev.From != msg.From || prev.To != msg.To || prev.Text != msg.Text:
			return Message{}, false, ErrIdempotencyConflict
		default:
			msg, replayed, err = prev, true, nil
		}
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("telecom: submit: %w", err)
	}
	if msg.Status == StatusDelivered && !replayed {
		t.notify()
	}
	t.log.InfoContext(ctx, "telecom: message accepted", "message_id", msg.ID, "sender", s.id,
		"to", sms.MaskPhone(msg.To), "ref", msg.Ref, "type", string(msg.Type), "bytes", msg.Bytes,
		"status", string(msg.Status), "replayed", replayed)
	return msg, replayed, nil
}

// errRefTaken rolls a message's write back when its sender already used
// its ref.
var errRefTaken = errors.New("telecom: ref taken")

// nextInboxSeq draws the next inbox position (the counter row's lock
// orders concurrent deliveries on PostgreSQL).
func nextInboxSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx,
		`UPDATE telecom_counters SET value = value + 1 WHERE name = 'inbox' RETURNING value`).Scan(&n)
	return n, err
}

// DeliverDue delivers the queued messages whose delivery delay has passed
// on the clock and returns how many it delivered.
func (t *Telecom) DeliverDue(ctx context.Context) (int, error) {
	if t.cfg.DeliveryDelay == 0 {
		return 0, nil
	}
	now := t.now()
	delivered := 0
	err := t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		delivered = 0
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM telecom_messages
			WHERE status = 'queued' AND deliver_at <= $1 ORDER BY seq`, t.db.Dialect.Time(now))
		if err != nil {
			return err
		}
		var seqs []int64
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, s := range seqs {
			n, err := nextInboxSeq(ctx, tx)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE telecom_messages
				SET status = 'delivered', delivered_at = deliver_at, inbox_seq = $1
				WHERE seq = $2 AND status = 'queued'`, n, s)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			delivered += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("telecom: deliver: %w", err)
	}
	if delivered > 0 {
		t.log.InfoContext(ctx, "telecom: messages delivered", "count", delivered)
		t.notify()
	}
	return delivered, nil
}

// inboxLimit bounds one inbox listing.
const inboxLimit = 200

// Inbox returns the messages delivered to phone, newest first (at most
// 200).
func (t *Telecom) Inbox(ctx context.Context, phone string) ([]Message, error) {
	return t.MessagesSince(ctx, phone, "")
}

// MessagesSince returns the messages delivered to phone after the message
// sinceID (all of them when sinceID is empty), newest first. It fails with
// ErrNotFound when sinceID is not a message delivered to phone.
func (t *Telecom) MessagesSince(ctx context.Context, phone, sinceID string) ([]Message, error) {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return nil, invalid(err)
	}
	if _, err := t.DeliverDue(ctx); err != nil {
		return nil, err
	}
	var after int64
	if sinceID != "" {
		err := t.db.QueryRowContext(ctx, `SELECT inbox_seq FROM telecom_messages
			WHERE id = $1 AND to_phone = $2 AND inbox_seq IS NOT NULL`, sinceID, p).Scan(&after)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: message %q in this inbox", ErrNotFound, sinceID)
		}
		if err != nil {
			return nil, fmt.Errorf("telecom: inbox: %w", err)
		}
	}
	rows, err := t.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM telecom_messages
		WHERE to_phone = $1 AND status = 'delivered' AND inbox_seq > $2
		ORDER BY inbox_seq DESC LIMIT $3`, p, after, inboxLimit)
	if err != nil {
		return nil, fmt.Errorf("telecom: inbox: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("telecom: inbox: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("telecom: inbox: %w", err)
	}
	return out, nil
}

// Message returns a message and its delivery status.
func (t *Telecom) Message(ctx context.Context, id string) (Message, error) {
	if _, err := t.DeliverDue(ctx); err != nil {
		return Message{}, err
	}
	m, err := scanMessage(t.db.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM telecom_messages WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("%w: message %q", ErrNotFound, id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("telecom: message: %w", err)
	}
	return m, nil
}

// ---- replies -----------------------------------------------------------

const replyColumns = `id, from_phone, to_number, sender_id, in_reply_to, body, received_at, webhook_status, webhook_error`

func scanReply(r scanner) (PhoneReply, error) {
	var p PhoneReply
	var ws string
	err := r.Scan(&p.ID, &p.From, &p.To, &p.SenderID, &p.InReplyTo, &p.Text, sqlstore.ScanTime(&p.ReceivedAt), &ws, &p.WebhookError)
	p.WebhookStatus = WebhookStatus(ws)
	return p, err
}

// Reply sends text from phone in answer to the message inReplyTo (the
// newest message in phone's inbox when empty) and forwards it, signed, to
// the webhook of the participant that sent that message, with From = phone
// and To = the caller number the message came from. The reply is stored
// whatever happens to the webhook; a webhook that is missing or does not
// answer 2xx makes Reply return the stored reply and an error wrapping
// ErrNoWebhook or ErrWebhookFailed.
func (t *Telecom) Reply(ctx context.Context, phone, text, inReplyTo string) (PhoneReply, error) {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return PhoneReply{}, invalid(err)
	}
	if _, err := sms.Measure(text); err != nil {
		return PhoneReply{}, invalid(err)
	}
	status, err := subscriberStatus(ctx, t.db, p)
	if err != nil {
		return PhoneReply{}, fmt.Errorf("telecom: reply: %w", err)
	}
	if status != SubscriberActive {
		return PhoneReply{}, ErrNotSubscriber
	}
	var orig Message
	if inReplyTo == "" {
		inbox, err := t.Inbox(ctx, p)
		if err != nil {
			return PhoneReply{}, err
		}
		if len(inbox) == 0 {
			return PhoneReply{}, fmt.Errorf("%w: no message to reply to", ErrNotFound)
		}
		orig = inbox[0]
	} else {
		orig, err = t.Message(ctx, inReplyTo)
		if err != nil {
			return PhoneReply{}, err
		}
		if orig.To != p || orig.Status != StatusDelivered {
			return PhoneReply{}, fmt.Errorf("%w: message %q in this inbox", ErrNotFound, inReplyTo)
		}
	}
	s, err := t.sender(ctx, orig.SenderID)
	if err != nil {
		return PhoneReply{}, err
	}
	id, err := t.newID("rpl_")
	if err != nil {
		return PhoneReply{}, err
	}
	r := PhoneReply{
		ID: id, From: p, To: orig.From, SenderID: s.id, InReplyTo: orig.ID, Text: text,
		ReceivedAt: t.now(), WebhookStatus: WebhookPending,
	}
	err = t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO telecom_replies
			(id, from_phone, to_number, sender_id, in_reply_to, body, received_at, webhook_status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.ID, r.From, r.To, r.SenderID, r.InReplyTo, r.Text, t.db.Dialect.Time(r.ReceivedAt), string(r.WebhookStatus))
		return err
	})
	if err != nil {
		return PhoneReply{}, fmt.Errorf("telecom: store reply: %w", err)
	}

	ferr := t.forward(ctx, s, r)
	switch {
	case ferr == nil:
		r.WebhookStatus = WebhookDelivered
	case errors.Is(ferr, ErrNoWebhook):
		r.WebhookStatus = WebhookNone
	default:
		r.WebhookStatus, r.WebhookError = WebhookFailed, ferr.Error()
	}
	err = t.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE telecom_replies SET webhook_status = $1, webhook_error = $2, forwarded_at = $3 WHERE id = $4`,
			string(r.WebhookStatus), r.WebhookError, t.db.Dialect.Time(t.now()), r.ID)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("telecom: record reply forwarding: %w", err)
	}
	t.log.InfoContext(ctx, "telecom: reply received", "reply_id", r.ID, "from", sms.MaskPhone(r.From),
		"sender", r.SenderID, "in_reply_to", r.InReplyTo, "text_len", len(r.Text), "webhook", string(r.WebhookStatus))
	return r, ferr
}

// forward posts r to the sender's webhook.
func (t *Telecom) forward(ctx context.Context, s senderRow, r PhoneReply) error {
	if s.webhookURL == "" {
		return ErrNoWebhook
	}
	req, err := sms.NewWebhookRequest(ctx, s.webhookURL, s.webhookSecret, sms.Reply{
		ID: r.ID, From: r.From, To: r.To, Text: r.Text, ReceivedAt: r.ReceivedAt, InReplyTo: r.InReplyTo,
	}, t.now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWebhookFailed, err)
	}
	resp, err := t.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWebhookFailed, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: webhook answered %s", ErrWebhookFailed, resp.Status)
	}
	return nil
}

// Replies returns the replies phone sent, newest first (at most 200).
func (t *Telecom) Replies(ctx context.Context, phone string) ([]PhoneReply, error) {
	p, err := sms.NormalizePhone(phone)
	if err != nil {
		return nil, invalid(err)
	}
	rows, err := t.db.QueryContext(ctx, `SELECT `+replyColumns+` FROM telecom_replies
		WHERE from_phone = $1 ORDER BY seq DESC LIMIT $2`, p, inboxLimit)
	if err != nil {
		return nil, fmt.Errorf("telecom: replies: %w", err)
	}
	defer rows.Close()
	var out []PhoneReply
	for rows.Next() {
		r, err := scanReply(rows)
		if err != nil {
			return nil, fmt.Errorf("telecom: replies: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// reply returns one reply by id.
func (t *Telecom) reply(ctx context.Context, id string) (PhoneReply, error) {
	r, err := scanReply(t.db.QueryRowContext(ctx, `SELECT `+replyColumns+` FROM telecom_replies WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return PhoneReply{}, fmt.Errorf("%w: reply %q", ErrNotFound, id)
	}
	return r, err
}
