// Package storesql is the one SQL implementation of the adapter store
// (connectors/store.Store), in the provider's own database through the
// project's neutral SQL plumbing (connectors/sqlstore): the replay cache
// and the idempotency records that make the adapter the idempotency
// authority (KECIS §7.1), and the owners of the provider's objects
// (KECIS §13.3). Outcomes are sealed with AES-GCM under the provider's
// at-rest key before they are stored; object IDs are stored as HMACs under
// a key derived from it.
//
// On SQLite the writes of concurrent requests share commits: one writer
// runs what waits in one transaction, each request under a savepoint of
// its own, and answers each once the transaction committed (group commit;
// one request alone waits for nothing). On PostgreSQL each write is a
// transaction of its own. A provider whose own writes go to the same
// SQLite database through a group of their own passes it to New (Shared):
// the adapter's writes and the provider's then share the database's one
// writer and its fsyncs, where two groups on one file would take turns,
// each syncing on its own.
//
// It links no database driver: a program opens it through
// connectors/store/sqlitestore or connectors/store/pgstore, which link
// theirs, or passes New a database it opened itself. Both dialects run the
// conformance suite in connectors/store/conformance.
package storesql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/saml"
)

//go:embed migrations
var migrations embed.FS

// Component is this package's name in schema_migrations.
const Component = "kecis-adapter"

// Store is the adapter's state in a SQL database.
type Store struct {
	db     *sqlstore.DB
	group  *sqlstore.Group // concurrent requests' writes share commits on SQLite (a transaction each on PostgreSQL)
	sealer *store.Sealer
	refKey []byte
	// guest: db (and group, when given to Shared) belong to the caller,
	// who closes them after the store; Close closes only what New made.
	guest    bool
	ownGroup bool
}

// Option configures New.
type Option func(*options)

type options struct {
	shared bool
	group  *sqlstore.Group
}

// Shared makes the store a guest in a database the provider owns and
// writes itself: its writes join g, the group commit of the provider's
// own writes on that database (on SQLite one group per database, so that
// the adapter's claim and outcome and the provider's transaction of
// concurrent requests share one commit and one fsync), and Close closes
// neither g nor the database — their owner closes them, after the store.
// g must be a group of the database given to New; nil runs the store's
// writes as without Shared (a group of its own on SQLite, which Close
// stops; a transaction each on PostgreSQL), still leaving the database
// open at Close.
func Shared(g *sqlstore.Group) Option {
	return func(o *options) { o.shared, o.group = true, g }
}

var _ store.Store = (*Store)(nil)

// Open opens (and migrates) the adapter's tables in the database at dsn,
// whose dialect's driver the program links (see sqlstore.Driver).
// atRestKey (32 bytes) seals stored outcomes.
func Open(ctx context.Context, dsn string, atRestKey []byte) (*Store, error) {
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, db, atRestKey)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// New uses an open database (the provider's own, shared with its tables:
// the store's tables are adapter_*, its migrations named Component in
// schema_migrations). Close closes db, unless Shared says whose it is.
func New(ctx context.Context, db *sqlstore.DB, atRestKey []byte, opts ...Option) (*Store, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	sealer, err := store.NewSealer(atRestKey, nil)
	if err != nil {
		return nil, err
	}
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	st := &Store{db: db, sealer: sealer, refKey: objectKey(atRestKey), guest: o.shared, group: o.group}
	if st.group == nil {
		st.group, st.ownGroup = sqlstore.NewGroup(db, "adapter store"), true
	}
	return st, nil
}

// Close stops the store's own writer and closes the database; a store
// made Shared leaves the group and the database it was given to their
// owner.
func (s *Store) Close() error {
	if s.ownGroup {
		s.group.Close()
	}
	if s.guest {
		return nil
	}
	return s.db.Close()
}

// write runs fn in a write transaction: the next group's on SQLite (see
// sqlstore.Group), one of its own elsewhere.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.group.Write(ctx, fn)
}

// exec runs one writing statement: in the group on SQLite, alone
// (autocommit) elsewhere.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.db.Dialect != sqlstore.SQLite {
		return s.db.ExecContext(ctx, query, args...)
	}
	var res sql.Result
	err := s.group.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// Ping checks that the database answers (a readiness check).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Replay returns the replay cache on the clock now.
func (s *Store) Replay(now func() time.Time) saml.ReplayCache { return replay{s, now} }

type replay struct {
	s   *Store
	now func() time.Time
}

// rememberSQL records a message ID unless it is recorded and live.
const rememberSQL = `INSERT INTO adapter_replay (issuer, msg_id, expires) VALUES ($1, $2, $3)
	ON CONFLICT (issuer, msg_id) DO UPDATE SET expires = excluded.expires WHERE adapter_replay.expires <= $4`

// Remember implements saml.ReplayCache with one atomic statement.
func (r replay) Remember(ctx context.Context, issuer, id string, expires time.Time) error {
	now := r.now()
	d := r.s.db.Dialect
	res, err := r.s.exec(ctx, rememberSQL, issuer, id, d.Time(expires), d.Time(now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return saml.ErrAlreadySeen
	}
	return nil
}

// remember records seen in tx; a live one is saml.ErrAlreadySeen.
func (s *Store) remember(ctx context.Context, tx *sql.Tx, seen []store.ReplayEntry, now time.Time) error {
	d := s.db.Dialect
	for _, e := range seen {
		res, err := tx.ExecContext(ctx, rememberSQL, e.Issuer, e.ID, d.Time(e.Expires), d.Time(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return saml.ErrAlreadySeen
		}
	}
	return nil
}

// Begin takes the key for a new attempt and says what it found, in the
// vocabulary the hub's guard speaks too (saml.IdemResult, KECIS §7.1):
// IdemAcquired for a new key and IdemReacquired for one whose attempt
// crashed (its lease ran out) — the caller holds the key and runs the
// service; IdemDone with the stored outcome when the key finished with the
// same fingerprint; IdemInFlight while another attempt holds an unexpired
// lease; IdemMismatch when the key was used with another fingerprint. The
// error is for failures only.
func (s *Store) Begin(ctx context.Context, scope, key string, fingerprint []byte, lease time.Duration, now time.Time) (saml.IdemResult, *store.Outcome, error) {
	return s.BeginObjects(ctx, scope, key, fingerprint, lease, now, store.Objects{})
}

// BeginObjects is Begin for a request that creates or names objects
// (KECIS §13.3): when it takes the key, it also checks and claims obj in
// the same transaction (one commit), and a refusal (ErrNotFound) leaves the
// key untaken. A finished key answers its outcome without looking at obj:
// its scope already holds the owner.
func (s *Store) BeginObjects(ctx context.Context, scope, key string, fingerprint []byte, lease time.Duration, now time.Time, obj store.Objects) (saml.IdemResult, *store.Outcome, error) {
	return s.BeginRemembered(ctx, nil, scope, key, fingerprint, lease, now, obj)
}

// BeginRemembered is BeginObjects that also records the message IDs the
// request arrived with, in the same transaction (see store.Store): a live
// one refuses the request with saml.ErrAlreadySeen and nothing is written.
func (s *Store) BeginRemembered(ctx context.Context, seen []store.ReplayEntry, scope, key string, fingerprint []byte, lease time.Duration, now time.Time, obj store.Objects) (saml.IdemResult, *store.Outcome, error) {
	d := s.db.Dialect
	var (
		res saml.IdemResult
		out *store.Outcome
	)
	refs := s.refs(obj) // the HMACs, before the writer is held
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, out = "", nil // a retried transaction starts over
		if err := s.remember(ctx, tx, seen, now); err != nil {
			return err
		}
		// A new key, the usual case, is taken by this one statement; only
		// a key that exists is read (KECIS §7.1). Under PostgreSQL's READ
		// COMMITTED a concurrent attempt's INSERT of the same key waits
		// for this one's commit and then inserts nothing.
		ins, err := tx.ExecContext(ctx, `INSERT INTO adapter_idempotency (scope, idem_key, fingerprint, state, lease_expires, created_at, updated_at)
			VALUES ($1, $2, $3, 'in_flight', $4, $5, $5) ON CONFLICT (scope, idem_key) DO NOTHING`,
			scope, key, fingerprint, d.Time(now.Add(lease)), d.Time(now))
		if err != nil {
			return err
		}
		if n, err := ins.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			res = saml.IdemAcquired
			return s.apply(ctx, tx, obj, refs, now)
		}
		var fp, sealed []byte
		var state string
		var exp time.Time
		err = tx.QueryRowContext(ctx, `SELECT fingerprint, state, lease_expires, outcome FROM adapter_idempotency WHERE scope = $1 AND idem_key = $2`,
			scope, key).Scan(&fp, &state, sqlstore.ScanTime(&exp), &sealed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Abandoned between the two statements (PostgreSQL): busy
			// for now; the caller's retry takes it.
			return refusal(saml.IdemInFlight)
		case err != nil:
			return err
		}
		if string(fp) != string(fingerprint) {
			return refusal(saml.IdemMismatch)
		}
		if state == "done" {
			o, err := s.open(sealed, scope, key)
			if err != nil {
				return err
			}
			res, out = saml.IdemDone, o
			return nil
		}
		if now.Before(exp) {
			return refusal(saml.IdemInFlight)
		}
		// An attempt that crashed: take the key again — only if the row is
		// still the expired lease read above. Under PostgreSQL's READ
		// COMMITTED two retries can both read it; the second UPDATE
		// re-checks this WHERE against the first one's new lease and
		// changes nothing, so only one of them runs the service.
		upd, err := tx.ExecContext(ctx, `UPDATE adapter_idempotency SET lease_expires = $3, updated_at = $4
			WHERE scope = $1 AND idem_key = $2 AND state = 'in_flight' AND lease_expires <= $4`,
			scope, key, d.Time(now.Add(lease)), d.Time(now))
		if err != nil {
			return err
		}
		if n, err := upd.RowsAffected(); err != nil || n != 1 {
			return refusal(saml.IdemInFlight)
		}
		res = saml.IdemReacquired
		return s.apply(ctx, tx, obj, refs, now)
	})
	var r refusal
	if errors.As(err, &r) {
		return saml.IdemResult(r), nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	return res, out, nil
}

// refusal ends a Begin transaction that takes no key: it is rolled back
// (under PostgreSQL a failed INSERT leaves nothing to commit) and Begin
// answers the result.
type refusal saml.IdemResult

func (r refusal) Error() string { return "adapter store: idempotency key " + string(r) }

// Finish records the outcome of the attempt that holds the key.
func (s *Store) Finish(ctx context.Context, scope, key string, o *store.Outcome, now time.Time) error {
	return s.FinishObjects(ctx, scope, key, o, store.Objects{}, now)
}

// FinishObjects is Finish for an outcome that reveals objects (the approval
// number a card:approve created): obj is checked and claimed in the
// transaction that records the outcome. On ErrNotFound nothing is written.
func (s *Store) FinishObjects(ctx context.Context, scope, key string, o *store.Outcome, obj store.Objects, now time.Time) error {
	sealed, err := s.seal(o, scope, key)
	if err != nil {
		return err
	}
	d := s.db.Dialect
	const done = `UPDATE adapter_idempotency SET state = 'done', outcome = $3, updated_at = $4 WHERE scope = $1 AND idem_key = $2`
	if obj.IsZero() {
		_, err = s.exec(ctx, done, scope, key, sealed, d.Time(now))
		return err
	}
	refs := s.refs(obj)
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := s.apply(ctx, tx, obj, refs, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, done, scope, key, sealed, d.Time(now))
		return err
	})
}

// Abandon releases a key whose attempt failed without an outcome (a crash
// of the provider's function): the next retry runs it again.
func (s *Store) Abandon(ctx context.Context, scope, key string, now time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM adapter_idempotency WHERE scope = $1 AND idem_key = $2 AND state = 'in_flight'`, scope, key)
	return err
}

func (s *Store) seal(o *store.Outcome, scope, key string) ([]byte, error) {
	plain := []byte(o.Status.Code + "\x00" + o.Status.SubCode + "\x00" + o.Status.Message + "\x00" + string(o.Payload))
	return s.sealer.Seal(plain, []byte(scope+"\x00"+key))
}

func (s *Store) open(sealed []byte, scope, key string) (*store.Outcome, error) {
	plain, err := s.sealer.Open(sealed, []byte(scope+"\x00"+key))
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(string(plain), "\x00", 4)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	return &store.Outcome{Status: saml.Status{Code: parts[0], SubCode: parts[1], Message: parts[2]}, Payload: []byte(parts[3])}, nil
}
