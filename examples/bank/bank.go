package bank

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the dialects its DSN may name
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/passwordhash"
)

// Component is the bank's name in schema_migrations.
const Component = "bank"

//go:embed migrations
var migrations embed.FS

// KST is Korea Standard Time, the zone of SMS texts and pages.
var KST = time.FixedZone("KST", 9*60*60)

// Currency is the only currency the simulated bank keeps.
const Currency = "KRW"

// Config configures a Bank. Zero fields take the documented defaults;
// BankCode, DataKey and Pepper are required.
type Config struct {
	// BankCode is the bank's three-digit KFTC code (kx:BankAccount/@BankCode).
	BankCode string `json:"bank_code"`
	// Name opens every SMS, "[KECIS Bank] 입금 …"; default "KECIS Bank".
	Name string `json:"name,omitempty"`
	// DSN names the bank's own database: sqlite:PATH, sqlite::memory: or
	// postgres://… (connectors/sqlstore). One bank per database.
	DSN string `json:"dsn"`
	// DataKey is the AES-256 key (32 bytes) that seals account numbers.
	DataKey []byte `json:"data_key"`
	// Pepper (at least 32 bytes) keys the account-number index, the
	// fingerprints, the login passwords and the page sessions.
	Pepper []byte `json:"pepper"`
	// PasswordHashing are the argon2id parameters of login passwords.
	PasswordHashing passwordhash.Params `json:"password_hashing,omitempty"`
	// MaxLoginFailures consecutive wrong passwords lock a customer's login
	// until UnlockCustomer; default 5.
	MaxLoginFailures int `json:"max_login_failures,omitempty"`
	// DefaultTransferLimit is a new account's per-transfer limit in won;
	// default 5,000,000.
	DefaultTransferLimit int64 `json:"default_transfer_limit,omitempty"`
	// MaxCredit is the largest credit from another bank the bank takes in
	// one transfer (KECIS §15.8 LimitExceeded); default 100,000,000 won.
	MaxCredit int64 `json:"max_credit,omitempty"`
	// AdminToken guards the administrative HTTP API and page (bearer token
	// or the Basic auth password). Empty leaves them open: a local demo only.
	AdminToken string `json:"admin_token,omitempty"`
	// SessionTTL is how long a customer's page login lasts; default 15 min.
	SessionTTL time.Duration `json:"session_ttl,omitempty"`
	// NotifyTimeout bounds one SMS attempt; default 5s. NotifyMaxAttempts
	// failed attempts give an SMS up ("dead"); default 10.
	NotifyTimeout     time.Duration `json:"notify_timeout,omitempty"`
	NotifyMaxAttempts int           `json:"notify_max_attempts,omitempty"`
	// Location is the zone of SMS times and pages; KST if nil.
	Location *time.Location `json:"-"`

	// Notifier sends the customers' SMS; nil logs them (without text).
	Notifier Notifier `json:"-"`
	// Logger receives the bank's logs; slog.Default() if nil.
	Logger *slog.Logger `json:"-"`
	// Now is the clock; time.Now if nil.
	Now func() time.Time `json:"-"`
	// Rand supplies every random value (ids, numbers, nonces, salts);
	// crypto/rand if nil. Tests inject a deterministic reader.
	Rand io.Reader `json:"-"`
}

// Bank is a simulated Korean bank on its own database. It is safe for
// concurrent use; several Banks (replicas) may share one database.
type Bank struct {
	db        *sqlstore.DB
	vault     *vault
	passwords *passwordhash.Hasher
	code      string
	name      string
	maxFail   int
	defLimit  int64
	maxCredit int64
	admin     string
	session   time.Duration
	loc       *time.Location

	notifier      Notifier
	notifyTimeout time.Duration
	notifyMax     int

	log  *slog.Logger
	now  func() time.Time
	rand io.Reader
}

// Open validates cfg, opens and migrates the database and returns the
// bank. Close releases it.
func Open(ctx context.Context, cfg Config) (*Bank, error) {
	b, err := newBank(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, errors.New("bank: config: dsn is required")
	}
	db, err := sqlstore.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	return b.use(ctx, db)
}

// OpenDB is Open on a database the caller opened (cfg.DSN is ignored);
// Close closes db.
func OpenDB(ctx context.Context, db *sqlstore.DB, cfg Config) (*Bank, error) {
	b, err := newBank(cfg)
	if err != nil {
		return nil, err
	}
	return b.use(ctx, db)
}

func (b *Bank) use(ctx context.Context, db *sqlstore.DB) (*Bank, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		db.Close()
		return nil, fmt.Errorf("bank: %w", err)
	}
	b.db = db
	if b.admin == "" {
		b.log.Warn("bank: admin endpoints are open (no admin token configured)", "bank", b.code)
	}
	return b, nil
}

func newBank(cfg Config) (*Bank, error) {
	b := &Bank{code: cfg.BankCode, name: cfg.Name, maxFail: cfg.MaxLoginFailures, defLimit: cfg.DefaultTransferLimit,
		maxCredit: cfg.MaxCredit, admin: cfg.AdminToken, session: cfg.SessionTTL, loc: cfg.Location,
		notifier: cfg.Notifier, notifyTimeout: cfg.NotifyTimeout, notifyMax: cfg.NotifyMaxAttempts,
		log: cfg.Logger, now: cfg.Now, rand: cfg.Rand}
	if !validBankCode(b.code) {
		return nil, fmt.Errorf("bank: config: bank_code must be three digits, got %q", b.code)
	}
	if b.name == "" {
		b.name = "KECIS Bank"
	}
	if strings.ContainsAny(b.name, "\r\n") {
		return nil, errors.New("bank: config: name must be one line")
	}
	if b.maxFail == 0 {
		b.maxFail = 5
	}
	if b.maxFail < 1 {
		return nil, errors.New("bank: config: max_login_failures must be positive")
	}
	if b.defLimit == 0 {
		b.defLimit = 5_000_000
	}
	if b.maxCredit == 0 {
		b.maxCredit = 100_000_000
	}
	if b.defLimit < 0 || b.maxCredit < 0 {
		return nil, errors.New("bank: config: limits must be positive")
	}
	if b.session <= 0 {
		b.session = 15 * time.Minute
	}
	if b.loc == nil {
		b.loc = KST
	}
	if b.notifyTimeout <= 0 {
		b.notifyTimeout = 5 * time.Second
	}
	if b.notifyMax <= 0 {
		b.notifyMax = 10
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("bank", b.code)
	if b.now == nil {
		b.now = time.Now
	}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.notifier == nil {
		b.notifier = LogNotifier{Logger: b.log}
	}
	v, err := newVault(cfg.DataKey, cfg.Pepper, b.rand)
	if err != nil {
		return nil, err
	}
	b.vault = v
	if b.passwords, err = passwordhash.New(cfg.PasswordHashing, v.pwKey, b.rand); err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	return b, nil
}

// Close closes the database.
func (b *Bank) Close() error { return b.db.Close() }

// DB is the bank's database, for tools and tests that inspect it.
func (b *Bank) DB() *sqlstore.DB { return b.db }

// Code is the bank's three-digit code.
func (b *Bank) Code() string { return b.code }

// Name is the bank's name.
func (b *Bank) Name() string { return b.name }

// write runs fn in a write transaction; a unique-key violation (two
// writers racing for one key or one random id) reruns it, and the rerun
// sees the winner's row.
func (b *Bank) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range 3 {
		err = b.db.WriteTx(ctx, fn)
		if !sqlstore.IsUniqueViolation(err) {
			break
		}
	}
	return err
}

// forUpdate locks the selected rows on PostgreSQL; SQLite serialises
// writers and has no such clause.
func (b *Bank) forUpdate() string {
	if b.db.Dialect == sqlstore.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (b *Bank) t(t time.Time) any { return b.db.Dialect.Time(t) }

func validBankCode(s string) bool { return len(s) == 3 && ecml.AllDigits(s) }

// checkKey validates an idempotency key.
func checkKey(k string) *Error {
	if k == "" || len(k) > 128 || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("an idempotency key of 1 to 128 printable characters is required")
	}
	return nil
}

// checkText validates a one-line public text field.
func checkText(what, s string, max int, required bool) *Error {
	switch {
	case s == "" && required:
		return invalid(what + " is required")
	case len([]rune(s)) > max:
		return invalid(fmt.Sprintf("%s is longer than %d characters", what, max))
	case strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return invalid(what + " has control characters")
	case ecml.ContainsPAN(s):
		return invalid(what + " looks like a card number")
	}
	return nil
}

// checkMoney validates an amount: positive won.
func checkMoney(m ecml.Money) *Error {
	if m.Currency != Currency {
		return invalid("the bank keeps KRW only")
	}
	if m.Minor <= 0 {
		return invalid("the amount must be positive")
	}
	return nil
}
