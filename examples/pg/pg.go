package pg

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
	"net/url"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the dialects its DSN may name
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
)

// Component is the PG's name in schema_migrations.
const Component = "pg"

//go:embed migrations
var migrations embed.FS

// KST is Korea Standard Time (UTC+9, no daylight saving time), the default
// zone of business days: TIDs and the daily limit count by it.
var KST = time.FixedZone("KST", 9*60*60)

// Config configures a PG. Zero fields take the documented defaults; DSN,
// IssuerGatewayURL and DataKey are required.
type Config struct {
	// DSN names the PG's own database: sqlite:PATH (the default
	// deployment), sqlite::memory: or postgres://… (connectors/sqlstore).
	DSN string `json:"dsn"`
	// IssuerGatewayURL is the base URL of the issuer gateway, the HTTP
	// JSON endpoint through which the PG reaches card issuers (in
	// production its KECIS sidecar's local calling endpoint): the PG posts
	// to IssuerGatewayURL + "/v1/card/{approve|cancel|refund|inquire}".
	IssuerGatewayURL string `json:"issuer_gateway_url"`
	// DataKey (32 bytes) keys the encryption of buyer data and the
	// idempotency fingerprints (which cover card numbers). Keep it out of
	// the database; changing it makes stored buyer data unreadable and
	// refuses retries of earlier requests as conflicts.
	DataKey []byte `json:"-"`
	// AdminToken guards the /pg/admin endpoints as a bearer token. Empty
	// leaves them open, for a local demo only.
	AdminToken string `json:"-"`
	// GatewayTimeout bounds one call to the issuer gateway; default 30s.
	// A call that runs out is not a decline: the transaction stays
	// pending until an inquiry settles it.
	GatewayTimeout time.Duration `json:"gateway_timeout,omitempty"`
	// PendingGrace is how long an approval the issuer has no record of
	// stays pending before the PG gives it up as never processed
	// (CodeNotProcessed); default 10 minutes, at least twice
	// GatewayTimeout, so that a request still in flight is never given up.
	PendingGrace time.Duration `json:"pending_grace,omitempty"`
	// Location is the zone of business days; KST if nil.
	Location *time.Location `json:"-"`

	// HTTPClient calls the issuer gateway; if nil, a client of its own
	// that keeps up to 32 idle connections to it.
	HTTPClient *http.Client `json:"-"`
	// Logger receives the PG's logs; slog.Default() if nil.
	Logger *slog.Logger `json:"-"`
	// Now is the clock; time.Now if nil.
	Now func() time.Time `json:"-"`
	// Rand supplies every random value (API keys, nonces, gateway keys);
	// crypto/rand if nil. Tests inject a deterministic reader; production
	// must not.
	Rand io.Reader `json:"-"`
}

// PG is a simulated Korean payment gateway: merchants and their contracts,
// card transactions, and the client of the issuer gateway, on its own
// database. It is safe for concurrent use, and several PGs may share one
// database.
type PG struct {
	db *sqlstore.DB
	// group commits concurrent payments' writes together on SQLite (see
	// write); nil on PostgreSQL.
	group *sqlstore.Group
	vault *vault
	gw    *gateway
	admin string
	grace time.Duration
	loc   *time.Location
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
}

// Open validates cfg, opens and migrates the database and returns the PG.
// Close releases it.
func Open(ctx context.Context, cfg Config) (*PG, error) {
	p, err := newPG(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, errors.New("pg: config: dsn is required")
	}
	db, err := sqlstore.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	return p.use(ctx, db)
}

// OpenDB is Open on a database the caller opened (cfg.DSN is ignored):
// it migrates db and returns the PG, whose Close closes db. The tests and
// benchmarks that count what a payment writes open db through
// connectors/sqlstore/sqlprobe.
func OpenDB(ctx context.Context, db *sqlstore.DB, cfg Config) (*PG, error) {
	p, err := newPG(cfg)
	if err != nil {
		return nil, err
	}
	return p.use(ctx, db)
}

// use migrates db and makes it the PG's; on failure db is closed.
func (p *PG) use(ctx context.Context, db *sqlstore.DB) (*PG, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		db.Close()
		return nil, fmt.Errorf("pg: %w", err)
	}
	p.db, p.group = db, sqlstore.NewGroup(db, "pg")
	if p.admin == "" {
		p.log.Warn("pg: admin endpoints are open (no admin token configured)")
	}
	return p, nil
}

func newPG(cfg Config) (*PG, error) {
	p := &PG{admin: cfg.AdminToken, grace: cfg.PendingGrace, loc: cfg.Location,
		log: cfg.Logger, now: cfg.Now, rand: cfg.Rand}
	u, err := url.Parse(cfg.IssuerGatewayURL)
	if cfg.IssuerGatewayURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("pg: config: issuer_gateway_url must be an http(s) URL")
	}
	timeout := cfg.GatewayTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if timeout < 0 {
		return nil, errors.New("pg: config: gateway_timeout must be positive")
	}
	if p.grace == 0 {
		p.grace = 10 * time.Minute
	}
	if p.grace < 2*timeout {
		return nil, fmt.Errorf("pg: config: pending_grace %s must be at least twice gateway_timeout %s", p.grace, timeout)
	}
	if p.loc == nil {
		p.loc = KST
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	client := cfg.HTTPClient
	if client == nil {
		// Every call goes to the one issuer gateway, several at once:
		// keep their connections (net/http keeps 2 idle per host by
		// default, so concurrent payments dialled anew).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		client = &http.Client{Transport: tr}
	}
	p.gw = &gateway{base: strings.TrimRight(cfg.IssuerGatewayURL, "/"), client: client, timeout: timeout}
	if p.vault, err = newVault(cfg.DataKey, p.rand); err != nil {
		return nil, err
	}
	return p, nil
}

// Close stops the group's writer and closes the database.
func (p *PG) Close() error {
	p.group.Close()
	return p.db.Close()
}

// DB is the PG's database, for tools and tests that inspect it.
func (p *PG) DB() *sqlstore.DB { return p.db }

// Run resolves pending transactions every interval (default one minute)
// until ctx ends.
func (p *PG) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := p.ResolvePending(ctx); err != nil && ctx.Err() == nil {
				p.log.ErrorContext(ctx, "resolving pending transactions failed", "err", err)
			}
		}
	}
}

// write runs fn in a write transaction; fn's statements use the ctx it is
// given. A unique-key violation (two writers racing for the same
// idempotency key or order) reruns it: the rerun sees the winner's
// committed row.
//
// On SQLite, the writes of payments that wait for the database's one
// writer share its next transaction, each under a savepoint of its own
// (sqlstore.Group: one fsync per group); fn then gets ctx without its
// cancellation, so that a merchant who hangs up cannot interrupt the
// group's statements.
func (p *PG) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	var err error
	for range 3 {
		err = p.group.Write(ctx, fn)
		if !sqlstore.IsUniqueViolation(err) {
			return err
		}
	}
	return err
}

// forUpdate locks the selected rows on PostgreSQL; SQLite needs no lock
// (BEGIN IMMEDIATE serialises writers) and has no such clause.
func (p *PG) forUpdate() string {
	if p.db.Dialect == sqlstore.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (p *PG) t(t time.Time) any { return p.db.Dialect.Time(t) }

// nullTime stores the zero time as NULL.
func (p *PG) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return p.db.Dialect.Time(t)
}

// bizDate is the business day of t, YYYYMMDD in the PG's zone.
func (p *PG) bizDate(t time.Time) string { return t.In(p.loc).Format("20060102") }

// next draws the next value of a counter inside tx.
func (p *PG) next(ctx context.Context, tx *sql.Tx, name, day string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO pgw_sequences (name, day, value) VALUES ($1, $2, 1)
		ON CONFLICT (name, day) DO UPDATE SET value = pgw_sequences.value + 1 RETURNING value`,
		name, day).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("pg: sequence %s: %w", name, err)
	}
	return v, nil
}

// allDigits is the PG's own copy of ecml.AllDigits: the PG is an outside
// company that links nothing of KECIS (TestImportsNoKECIS), so it cannot
// import the ecml package.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
