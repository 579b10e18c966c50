// Package telecom is a simulated Korean mobile carrier for KECIS demos and
// tests: subscribers with their phones, an HTTP SMS gateway that
// participants reach through [sms.HTTPGateway], phone inboxes a person can
// read and answer in a browser, replies forwarded to the sending
// participant's signed webhook, delivery reports, and the phone-holder
// check that the two-way transfer service needs (KECIS §15.5, "twoway";
// [Telecom.HolderCheck], KECIS §15.10, served over KECIS by the package
// kecisadapter).
//
// State lives in its own SQL database (SQLite by default, PostgreSQL too),
// migrated with embedded migrations; time comes from an injected clock, so
// that a simulated delivery delay is driven by the test's clock and never
// by a real sleep.
//
// # HTTP endpoints ([Telecom.Handler])
//
// Gateway, for participants (API key in X-API-Key or Authorization: Bearer):
//
//	POST /api/sms                          submit {"from","to","text","ref","type"}; Idempotency-Key header = ref
//	GET  /api/messages/{id}                a message and its delivery status
//
// Phones, for people, tests and conformance hooks:
//
//	GET  /phones                           HTML list of phones
//	GET  /phones/{number}                  HTML inbox, newest first, with reply forms (no JavaScript)
//	POST /phones/{number}/reply            form: text, in_reply_to
//	GET  /api/phones/{number}/messages     JSON inbox, newest first; ?since={message id} returns only newer
//	                                       messages, &wait=10s long-polls until one arrives
//	POST /api/phones/{number}/replies      JSON {"text","in_reply_to"}
//
// Administration (Authorization: Bearer Config.AdminToken; absent without one):
//
//	POST /api/admin/subscribers            {"phone","holder_name","birth_date":"2006-01-02","status"}
//	POST /api/admin/senders                {"id","name","api_key","numbers":[…],"webhook_url","webhook_secret"}
package telecom

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kecis/kecis/connectors/sms"
	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the dialects its DSN may name
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/ecml"
)

//go:embed migrations
var migrations embed.FS

// component names the telecom's migrations in schema_migrations.
const component = "telecom"

// Config configures [Open]. DSN is required.
type Config struct {
	// DSN names the database (sqlstore DSN: sqlite:PATH, postgres://…).
	DSN string
	// Now is the clock (time.Now by default).
	Now func() time.Time
	// DeliveryDelay is how long a message stays queued before it reaches
	// the phone, measured on Now. Zero delivers at once. Queued messages
	// are delivered whenever the telecom is asked about messages after
	// the delay passed, by [Telecom.DeliverDue], and every DeliveryPoll.
	DeliveryDelay time.Duration
	// DeliveryPoll, when positive, runs DeliverDue on a real-time ticker
	// (for demos with the real clock).
	DeliveryPoll time.Duration
	// AdminToken enables the /api/admin endpoints (at least 16 bytes).
	AdminToken string
	// HTTPClient forwards replies to webhooks (10 s timeout by default).
	HTTPClient *http.Client
	// Logger (slog.Default() by default). The telecom logs numbers masked
	// and texts by length only.
	Logger *slog.Logger
	// Rand is the source of message ids (crypto/rand by default).
	Rand io.Reader
}

// Errors. HTTP handlers map them to status codes.
var (
	ErrInvalid             = errors.New("telecom: invalid request")
	ErrNotFound            = errors.New("telecom: not found")
	ErrExists              = errors.New("telecom: already exists")
	ErrUnauthorized        = errors.New("telecom: unknown API key")
	ErrCallerNotRegistered = errors.New("telecom: caller number not registered for this sender")
	ErrIdempotencyConflict = errors.New("telecom: ref already used for a different message")
	ErrNotSubscriber       = errors.New("telecom: not an active subscriber")
	ErrNoWebhook           = errors.New("telecom: sender has no reply webhook")
	ErrWebhookFailed       = errors.New("telecom: reply webhook failed")
)

// SubscriberStatus is the state of a subscription.
type SubscriberStatus string

const (
	SubscriberActive     SubscriberStatus = "active"
	SubscriberSuspended  SubscriberStatus = "suspended"
	SubscriberTerminated SubscriberStatus = "terminated"
)

func (s SubscriberStatus) valid() bool {
	return s == SubscriberActive || s == SubscriberSuspended || s == SubscriberTerminated
}

// Subscriber is a phone line and its holder.
type Subscriber struct {
	// Phone in any form sms.NormalizePhone accepts; stored in E.164.
	Phone      string
	HolderName string
	// BirthDate: only its calendar date counts. It is stored as an HMAC,
	// never in clear.
	BirthDate time.Time
	// Status (SubscriberActive when empty).
	Status SubscriberStatus
}

// PhoneSummary describes a phone for the phone list.
type PhoneSummary struct {
	Phone    string           `json:"phone"`
	Status   SubscriberStatus `json:"status"`
	Messages int              `json:"messages"`
}

// SenderAccount is a participant allowed to send through the gateway.
type SenderAccount struct {
	// ID names the account ("bank-a").
	ID   string
	Name string
	// APIKey authenticates the account's requests (at least 16 bytes);
	// stored hashed.
	APIKey string
	// Numbers are the caller numbers registered for the account (at least
	// one); the first is used for messages without From.
	Numbers []string
	// WebhookURL receives replies, signed with WebhookSecret (at least
	// sms.MinSecretLen bytes). Without a URL replies are kept but not
	// forwarded.
	WebhookURL    string
	WebhookSecret []byte
}

// Status is a message's delivery status.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
)

// Message is a text the gateway accepted, and its delivery report.
type Message struct {
	ID            string    `json:"id"`
	SenderID      string    `json:"sender_id"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	Text          string    `json:"text"`
	Type          sms.Kind  `json:"type"`
	Bytes         int       `json:"bytes"`
	Ref           string    `json:"ref,omitempty"`
	Status        Status    `json:"status"`
	FailureReason string    `json:"failure_reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	// InboxSeq orders the phone's inbox (delivery order).
	InboxSeq int64 `json:"inbox_seq,omitempty"`
}

// WebhookStatus says whether a reply reached its sender's webhook.
type WebhookStatus string

const (
	WebhookPending   WebhookStatus = "pending"
	WebhookDelivered WebhookStatus = "delivered"
	WebhookFailed    WebhookStatus = "failed"
	WebhookNone      WebhookStatus = "no_webhook"
)

// PhoneReply is a reply a phone sent, and what became of it.
type PhoneReply struct {
	ID            string        `json:"id"`
	From          string        `json:"from"`
	To            string        `json:"to"`
	SenderID      string        `json:"sender_id"`
	InReplyTo     string        `json:"in_reply_to"`
	Text          string        `json:"text"`
	ReceivedAt    time.Time     `json:"received_at"`
	WebhookStatus WebhookStatus `json:"webhook_status"`
	WebhookError  string        `json:"webhook_error,omitempty"`
}

// Telecom is the simulated carrier. It is safe for concurrent use.
type Telecom struct {
	cfg      Config
	db       *sqlstore.DB
	group    *sqlstore.Group // SQLite: the writes' group commit (see write)
	log      *slog.Logger
	birthKey []byte

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when an inbox changes

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens (and migrates) the telecom's database.
func Open(ctx context.Context, cfg Config) (*Telecom, error) {
	if cfg.DSN == "" {
		return nil, errors.New("telecom: Config.DSN is required")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	db, err := sqlstore.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("telecom: %w", err)
	}
	return open(ctx, db, cfg)
}

// OpenDB is Open on a database the caller opened (cfg.DSN is ignored):
// it migrates db and returns the telecom, whose Close closes db. The
// tests and benchmarks that count what a message writes open db through
// connectors/sqlstore/sqlprobe.
func OpenDB(ctx context.Context, db *sqlstore.DB, cfg Config) (*Telecom, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return open(ctx, db, cfg)
}

// check validates cfg and fills its defaults.
func (cfg *Config) check() error {
	if cfg.AdminToken != "" && len(cfg.AdminToken) < 16 {
		return errors.New("telecom: Config.AdminToken must be at least 16 bytes")
	}
	if cfg.DeliveryDelay < 0 {
		return errors.New("telecom: negative DeliveryDelay")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return nil
}

// open migrates db and starts the telecom on it; on failure db is closed.
func open(ctx context.Context, db *sqlstore.DB, cfg Config) (*Telecom, error) {
	if _, err := db.MigrateFS(ctx, component, migrations, "migrations"); err != nil {
		db.Close()
		return nil, fmt.Errorf("telecom: %w", err)
	}
	t := &Telecom{
		cfg:     cfg,
		db:      db,
		log:     cfg.Logger.With("component", "telecom"),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		group:   sqlstore.NewGroup(db, "telecom"),
	}
	var err error
	if t.birthKey, err = t.setting(ctx, "birth_date_key", 32); err != nil {
		t.group.Close()
		db.Close()
		return nil, err
	}
	if cfg.DeliveryPoll > 0 && cfg.DeliveryDelay > 0 {
		t.wg.Add(1)
		go t.pollDeliveries()
	}
	return t, nil
}

// Close stops the delivery poller and the group's writer (once the writes
// it took are answered) and closes the database.
func (t *Telecom) Close() error {
	t.closeOnce.Do(func() {
		close(t.stop)
		t.wg.Wait()
		t.group.Close()
		t.closeErr = t.db.Close()
	})
	return t.closeErr
}

// write runs fn in a write transaction; fn's statements use the ctx it is
// given. Like sqlstore.DB.WriteTx, fn may run more than once.
//
// On SQLite, the writes that wait for the database's one writer (the
// messages of concurrent senders, above all: one per card approval when
// an issuer's outbox sends its SMS) share its next transaction, each under
// a savepoint of its own (sqlstore.Group: one fsync per group, every
// caller answered after the commit, synchronous=FULL). fn then gets ctx
// without its cancellation, so that a sender who hangs up cannot
// interrupt the group's statements. PostgreSQL commits concurrent
// transactions together itself: there it is WriteTx.
func (t *Telecom) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return t.group.Write(ctx, fn)
}

func (t *Telecom) pollDeliveries() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.DeliveryPoll)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			if _, err := t.DeliverDue(context.Background()); err != nil {
				t.log.Error("telecom: delivery poll failed", "error", err)
			}
		}
	}
}

// changedChan returns the channel that the next inbox change closes.
func (t *Telecom) changedChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// notify wakes everyone waiting for an inbox change.
func (t *Telecom) notify() {
	t.mu.Lock()
	defer t.mu.Unlock()
	close(t.changed)
	t.changed = make(chan struct{})
}

// newID returns prefix and 20 random hex digits that never look like a
// card number (ecml.RandomHex).
func (t *Telecom) newID(prefix string) (string, error) {
	h, err := ecml.RandomHex(t.cfg.Rand, 10)
	if err != nil {
		return "", fmt.Errorf("telecom: random id: %w", err)
	}
	return prefix + h, nil
}

// Sender returns an in-process [sms.Sender] for the account senderID, for
// tests and demos that need no HTTP hop. It behaves as POST /api/sms.
func (t *Telecom) Sender(senderID string) sms.Sender {
	return sms.SenderFunc(func(ctx context.Context, m sms.Message) (string, error) {
		msg, err := t.Submit(ctx, senderID, m)
		return msg.ID, err
	})
}

// WaitForMessage returns the newest delivered message in phone's inbox that
// pred accepts (nil accepts any), waiting until one is delivered or ctx is
// done. To wait for a message that is not there yet rather than an older
// one, match on something that identifies it, such as [WithRef].
func (t *Telecom) WaitForMessage(ctx context.Context, phone string, pred func(Message) bool) (Message, error) {
	for {
		ch := t.changedChan()
		msgs, err := t.Inbox(ctx, phone)
		if err != nil {
			return Message{}, err
		}
		for _, m := range msgs {
			if pred == nil || pred(m) {
				return m, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// WithRef is a WaitForMessage predicate: the message the sender submitted
// with this ref.
func WithRef(ref string) func(Message) bool {
	return func(m Message) bool { return m.Ref == ref }
}

// FromNumber is a WaitForMessage predicate: a message from this caller
// number (in any form sms.NormalizeCallerID accepts).
func FromNumber(number string) func(Message) bool {
	n, err := sms.NormalizeCallerID(number)
	return func(m Message) bool { return err == nil && m.From == n }
}

// Newer is a WaitForMessage predicate: a message delivered after m.
func Newer(m Message) func(Message) bool {
	return func(x Message) bool { return x.InboxSeq > m.InboxSeq }
}
