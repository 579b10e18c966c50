package issuer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the dialects its DSN may name
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/passwordhash"
)

// Component is the issuer's name in schema_migrations.
const Component = "issuer"

//go:embed migrations
var migrations embed.FS

// KST is Korea Standard Time (UTC+9, no daylight saving time), the default
// zone of the settlement cut-off and of the SMS texts.
var KST = time.FixedZone("KST", 9*60*60)

// DefaultBINs are the issuer identification numbers of the simulated
// cards, one per product (ISO/IEC 7812 major industry identifier 9:
// national use, so they clash with no real issuer).
var DefaultBINs = map[CardType]string{
	Credit:  "949010",
	Check:   "949020",
	Prepaid: "949030",
}

// Config configures an Issuer. Zero fields take the documented defaults;
// DataKey and Pepper are required.
type Config struct {
	// DSN names the issuer's own database: sqlite:PATH (the default
	// deployment), sqlite::memory: or postgres://… (connectors/sqlstore).
	DSN string `json:"dsn"`
	// Brand opens every SMS, "[KECIS Card] 승인 …". Default "KECIS Card".
	Brand string `json:"brand,omitempty"`
	// DataKey is the AES-256 key (32 bytes) that encrypts card numbers.
	DataKey []byte `json:"data_key"`
	// Pepper (at least 32 bytes) keys the card-number index and the hashes
	// of cardholder secrets.
	Pepper []byte `json:"pepper"`
	// BINs are the six-digit prefixes of issued cards; DefaultBINs if nil.
	BINs map[CardType]string `json:"bins,omitempty"`
	// CutOff is the daily settlement cut-off, "HH:MM" in Location: an
	// approval can be cancelled until the first cut-off after it, and is
	// settled (refundable) from then on. Default "23:00".
	CutOff string `json:"cut_off,omitempty"`
	// Location is the zone of CutOff and of SMS times; KST if nil.
	Location *time.Location `json:"-"`
	// CardValidityYears is how long a new card is valid; default 5.
	CardValidityYears int `json:"card_validity_years,omitempty"`
	// MaxKeyInFailures is how many consecutive wrong key-in attempts block
	// a card; default 5.
	MaxKeyInFailures int `json:"max_keyin_failures,omitempty"`
	// MaxVerificationAmount is the largest verification approval
	// (ApproveVerification, KECIS §15.3) per currency, in minor units;
	// default {"KRW": 50000}. A currency it does not name has none
	// (LIMIT_EXCEEDED).
	MaxVerificationAmount map[string]int64 `json:"max_verification_amount,omitempty"`
	// AdminToken guards the administrative HTTP endpoints (issuing cards,
	// running settlement, the admin page) as a bearer token or the Basic
	// auth password. Empty leaves them open, for a local demo only.
	AdminToken string `json:"admin_token,omitempty"`
	// NotifyTimeout bounds one SMS delivery attempt; default 5s.
	NotifyTimeout time.Duration `json:"notify_timeout,omitempty"`
	// NotifyMaxAttempts is after how many failed attempts an SMS is given
	// up ("dead"); default 10.
	NotifyMaxAttempts int `json:"notify_max_attempts,omitempty"`
	// SMSRecordDelay is how long the 'sent' state of an SMS delivered
	// right after its request may wait for the issuer's next write
	// transaction to carry it before it is written on its own; default
	// 200ms, at most a quarter of the SMS lease (2 × NotifyTimeout).
	// Negative writes it at once, in a transaction of its own.
	SMSRecordDelay time.Duration `json:"sms_record_delay,omitempty"`

	// MaxAuthFailures is how many failures of the authentication password
	// and the TOTP code together lock a card's cardholder authentication
	// until UnlockAuth (KECIS §15.7.2); default 5.
	MaxAuthFailures int `json:"max_auth_failures,omitempty"`
	// PasswordHashing are the argon2id parameters of authentication
	// passwords; defaults as Argon2Params says.
	PasswordHashing Argon2Params `json:"password_hashing,omitempty"`
	// CACert and CAKey (PEM: a certificate and its ECDSA P-256 PKCS#8 or
	// SEC 1 key) are the issuer's cardholder CA, which issues the
	// cardholders' TLS client certificates; GenerateCA makes a pair for
	// the caller to keep. Without them the CA's methods answer NO_CA.
	CACert []byte `json:"ca_cert,omitempty"`
	CAKey  []byte `json:"ca_key,omitempty"`
	// ClientCertValidity is how long a client certificate is valid (never
	// past the card's expiry or the CA's); default 365 days.
	ClientCertValidity time.Duration `json:"client_cert_validity,omitempty"`
	// CRLValidity is the CRL's NextUpdate after its ThisUpdate; it is
	// signed again when half of it has passed or a certificate is revoked.
	// Default 10 minutes.
	CRLValidity time.Duration `json:"crl_validity,omitempty"`
	// Virtual configures virtual card numbers (KECIS §15.4).
	Virtual VirtualConfig `json:"virtual,omitempty"`

	// AuthValues checks the authentication values (AAV) approvals carry
	// (KECIS §15.7.3); nil declines every approval that carries one.
	AuthValues AuthValues `json:"-"`
	// Notifier sends the cardholder SMS; nil logs them instead.
	Notifier Notifier `json:"-"`
	// Logger receives the issuer's logs; slog.Default() if nil.
	Logger *slog.Logger `json:"-"`
	// Now is the issuer's business clock — approvals, the cut-off,
	// settlement, SMS, card expiry; time.Now if nil.
	Now func() time.Time `json:"-"`
	// AuthNow is the authentication clock; Now if nil. Everything that
	// must follow real time rather than the business day runs on it: TOTP
	// steps (RFC 6238: the cardholder's authenticator app reads the real
	// time) and the last step used, the authentication failure records,
	// client certificates' validity and the CRL's ThisUpdate/NextUpdate
	// (browsers and TLS peers check them against real time), the expiry
	// of the authentication values (AAV) approvals carry (the page mints
	// them on its own clock, KECIS §15.7.3) and the virtual numbers'
	// issuance day and expiry (connectors/vcn, KECIS §15.4). Two clocks
	// because a business clock may be moved: the demo's --settle skips to
	// the next cut-off, and an authenticator's code, a certificate or an
	// AAV must not move with it.
	AuthNow func() time.Time `json:"-"`
	// Rand supplies every random value, GCM nonces included; crypto/rand
	// if nil. Tests inject a deterministic reader; production must not.
	Rand io.Reader `json:"-"`
}

// Issuer is a simulated Korean card company: its cards, its approvals
// ledger, settlement and cardholder SMS, on its own database. It is safe
// for concurrent use, and several Issuers may share one database.
type Issuer struct {
	db *sqlstore.DB
	// group commits concurrent requests' writes together on SQLite (see
	// write); nil on PostgreSQL.
	group    *sqlstore.Group
	vault    *vault
	brand    string
	bins     map[CardType]string
	cutH     int
	cutM     int
	loc      *time.Location
	validity int
	maxFail  int
	maxVerif map[string]int64
	admin    string

	maxAuthFail int
	passwords   *passwordhash.Hasher
	authValues  AuthValues
	ca          *certAuthority
	virtualCfg  VirtualConfig
	vcn         *vcn.Service

	notifier      Notifier
	notifyTimeout time.Duration
	notifyMax     int
	smsDelay      time.Duration
	sent          sentMarks

	log     *slog.Logger
	now     func() time.Time
	authNow func() time.Time
	rand    io.Reader
}

// Open validates cfg, opens and migrates the database and returns the
// issuer. Close releases it.
func Open(ctx context.Context, cfg Config) (*Issuer, error) {
	i, err := newIssuer(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, errors.New("issuer: config: dsn is required")
	}
	db, err := sqlstore.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	return i.use(ctx, db)
}

// OpenDB is Open on a database the caller opened (cfg.DSN is ignored):
// it migrates db and returns the issuer, whose Close closes db. The tests
// and benchmarks that count what an approval writes open db through
// connectors/sqlstore/sqlprobe.
func OpenDB(ctx context.Context, db *sqlstore.DB, cfg Config) (*Issuer, error) {
	i, err := newIssuer(cfg)
	if err != nil {
		return nil, err
	}
	return i.use(ctx, db)
}

// use migrates db and makes it the issuer's; on failure db is closed.
func (i *Issuer) use(ctx context.Context, db *sqlstore.DB) (*Issuer, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		db.Close()
		return nil, fmt.Errorf("issuer: %w", err)
	}
	i.db = db
	if err := i.openVirtual(ctx); err != nil {
		db.Close()
		return nil, err
	}
	i.group = sqlstore.NewGroup(db, "issuer")
	if i.admin == "" {
		i.log.Warn("issuer: admin endpoints are open (no admin token configured)")
	}
	return i, nil
}

func newIssuer(cfg Config) (*Issuer, error) {
	i := &Issuer{
		brand:         cfg.Brand,
		bins:          cfg.BINs,
		loc:           cfg.Location,
		validity:      cfg.CardValidityYears,
		maxFail:       cfg.MaxKeyInFailures,
		admin:         cfg.AdminToken,
		maxAuthFail:   cfg.MaxAuthFailures,
		authValues:    cfg.AuthValues,
		virtualCfg:    cfg.Virtual,
		notifier:      cfg.Notifier,
		notifyTimeout: cfg.NotifyTimeout,
		notifyMax:     cfg.NotifyMaxAttempts,
		smsDelay:      cfg.SMSRecordDelay,
		log:           cfg.Logger,
		now:           cfg.Now,
		authNow:       cfg.AuthNow,
		rand:          cfg.Rand,
	}
	if i.brand == "" {
		i.brand = "KECIS Card"
	}
	if strings.ContainsAny(i.brand, "\r\n") {
		return nil, errors.New("issuer: config: brand must be one line")
	}
	if i.bins == nil {
		i.bins = DefaultBINs
	}
	for _, t := range []CardType{Credit, Check, Prepaid} {
		if b := i.bins[t]; len(b) != 6 || !ecml.AllDigits(b) {
			return nil, fmt.Errorf("issuer: config: BIN for %s cards must be six digits, got %q", t, b)
		}
	}
	cut := cfg.CutOff
	if cut == "" {
		cut = "23:00"
	}
	h, m, ok := parseHHMM(cut)
	if !ok {
		return nil, fmt.Errorf("issuer: config: cut_off %q: want HH:MM", cut)
	}
	i.cutH, i.cutM = h, m
	if i.loc == nil {
		i.loc = KST
	}
	if i.validity == 0 {
		i.validity = 5
	}
	if i.validity < 1 || i.validity > 20 {
		return nil, fmt.Errorf("issuer: config: card_validity_years %d out of range 1–20", i.validity)
	}
	if i.maxFail == 0 {
		i.maxFail = 5
	}
	if i.maxFail < 1 {
		return nil, errors.New("issuer: config: max_keyin_failures must be positive")
	}
	if i.maxAuthFail == 0 {
		i.maxAuthFail = 5
	}
	if i.maxAuthFail < 1 {
		return nil, errors.New("issuer: config: max_auth_failures must be positive")
	}
	i.maxVerif = maps.Clone(cfg.MaxVerificationAmount)
	if i.maxVerif == nil {
		i.maxVerif = map[string]int64{"KRW": 50_000}
	}
	for cur, n := range i.maxVerif {
		if _, ok := ecml.MinorUnits(cur); !ok || n <= 0 {
			return nil, fmt.Errorf("issuer: config: max_verification_amount %q: want a positive amount in a known currency", cur)
		}
	}
	if i.notifyTimeout <= 0 {
		i.notifyTimeout = 5 * time.Second
	}
	if i.notifyMax <= 0 {
		i.notifyMax = 10
	}
	if i.smsDelay == 0 {
		i.smsDelay = 200 * time.Millisecond
	}
	if i.smsDelay > 0 {
		i.smsDelay = min(i.smsDelay, i.smsLease()/4)
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.authNow == nil {
		i.authNow = i.now
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	if i.notifier == nil {
		i.notifier = LogNotifier{Logger: i.log}
	}
	v, err := newVault(cfg.DataKey, cfg.Pepper, i.rand)
	if err != nil {
		return nil, err
	}
	i.vault = v
	if i.passwords, err = passwordhash.New(cfg.PasswordHashing, v.authKey, i.rand); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if i.ca, err = newCertAuthority(cfg); err != nil {
		return nil, err
	}
	return i, nil
}

// Close writes the 'sent' state of the SMS delivered since the last
// write (sentMarks) and closes the database.
func (i *Issuer) Close() error {
	i.sent.stop()
	if err := i.flushSent(context.Background()); err != nil {
		i.log.Error("sms outbox: recording delivered sms at close failed; they will be sent again after their lease", "err", err)
	}
	i.group.Close()
	return i.db.Close()
}

// DB is the issuer's database, for tools and tests that inspect it, and
// for the issuer's adapter store (connectors/store/storesql), whose
// adapter_* tables may live in it beside the issuer's (see Group).
func (i *Issuer) DB() *sqlstore.DB { return i.db }

// Group is the group commit of the issuer's writes on its database (on
// PostgreSQL, whose own group commit serves, a transaction each). The issuer's
// in-process adapter store joins it (storesql.Shared), so that one
// database has one writer and the claim, the approval and the outcome of
// concurrent requests share commits (fsyncs). Close stops it: close the
// adapter store first.
func (i *Issuer) Group() *sqlstore.Group { return i.group }

// CutOffAfter returns the first settlement cut-off strictly after t: an
// approval made at t can be cancelled until then.
func (i *Issuer) CutOffAfter(t time.Time) time.Time {
	l := t.In(i.loc)
	c := time.Date(l.Year(), l.Month(), l.Day(), i.cutH, i.cutM, 0, 0, i.loc)
	if !c.After(l) {
		c = time.Date(l.Year(), l.Month(), l.Day()+1, i.cutH, i.cutM, 0, 0, i.loc)
	}
	return c.UTC()
}

// expired reports whether a card valid through expMonth/expYear has
// expired at now: it is valid until the end of that month in i.loc.
func (i *Issuer) expired(expMonth, expYear int, now time.Time) bool {
	end := time.Date(expYear, time.Month(expMonth)+1, 1, 0, 0, 0, 0, i.loc)
	return !now.Before(end)
}

// write runs fn in a write transaction; fn's statements use the ctx it is
// given. A unique-key violation (two writers racing for the same
// idempotency key, order or random number) reruns it: the rerun sees the
// winner's committed row.
//
// The transaction also carries the 'sent' state of the SMS delivered
// since the last one (sentMarks), so that a busy issuer commits once per
// request; marks it did not write (it rolled back) wait for the next.
//
// On SQLite, the writes of requests that wait for the database's one
// writer share its next transaction, each under a savepoint of its own
// (sqlstore.Group: one fsync per group); fn then gets ctx without its
// cancellation, so that a caller who hangs up cannot interrupt the
// group's statements.
func (i *Issuer) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	marks := i.sent.take()
	run := func(ctx context.Context, tx *sql.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return i.recordSent(ctx, tx, marks)
	}
	var err error
	for range 3 {
		err = i.group.Write(ctx, run)
		if !sqlstore.IsUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		i.sent.restore(i, marks)
	}
	return err
}

// forUpdate locks the selected rows on PostgreSQL; SQLite needs no lock
// (BEGIN IMMEDIATE serialises writers) and has no such clause.
func (i *Issuer) forUpdate(of string) string {
	if i.db.Dialect == sqlstore.Postgres {
		if of != "" {
			return " FOR UPDATE OF " + of
		}
		return " FOR UPDATE"
	}
	return ""
}

func (i *Issuer) t(t time.Time) any { return i.db.Dialect.Time(t) }

func parseHHMM(s string) (h, m int, ok bool) {
	hs, ms, found := strings.Cut(s, ":")
	if !found || len(hs) != 2 || len(ms) != 2 || !ecml.AllDigits(hs) || !ecml.AllDigits(ms) {
		return 0, 0, false
	}
	h, _ = strconv.Atoi(hs)
	m, _ = strconv.Atoi(ms)
	return h, m, h < 24 && m < 60
}
