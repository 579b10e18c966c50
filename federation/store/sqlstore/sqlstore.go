// Package sqlstore implements store.Store on SQL: SQLite (modernc.org/sqlite,
// the embedded default) and PostgreSQL (pgx), through connectors/sqlstore.
//
// Replay and idempotency are decided by the database, never by a lock in
// this process, so that hub replicas sharing one database cannot both win:
//
//   - a message ID is remembered with INSERT … ON CONFLICT DO UPDATE … WHERE
//     the old record expired; the primary key, the SHA-256 of the issuer and
//     the message ID (digest.go), refuses a live duplicate;
//   - an idempotency lease is taken with INSERT … ON CONFLICT DO UPDATE …
//     WHERE the fingerprint matches and the earlier attempt is done or its
//     lease expired; on PostgreSQL a racing writer waits for the row lock and
//     re-checks the WHERE clause on the committed row (READ COMMITTED), on
//     SQLite writers are serialised by the database lock;
//   - a participant update is UPDATE … WHERE version = $old, in one
//     transaction with its keys, endpoints and services.
//
// All times come from the caller; the store never reads the clock.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the dialects its DSN may name
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// Component is the hub store's name in schema_migrations.
const Component = "hub"

//go:embed migrations
var migrations embed.FS

// Store is the SQL implementation of store.Store.
type Store struct {
	db     *sqldb.DB
	dicts  dicts  // audit messages' dictionaries (auditcodec.go)
	scopes scopes // audit records' scopes (auditscope.go)
	// group commits concurrent Commits together on SQLite (see Commit);
	// nil on PostgreSQL.
	group *sqldb.Group
}

var _ store.Store = (*Store)(nil)

// Open opens the database named by dsn (see connectors/sqlstore for the
// formats: sqlite:PATH, sqlite::memory:, postgres://…), migrates it and
// returns the store. Close closes the database.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// New migrates db and returns a store on it; the store's Close closes db.
func New(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	return &Store{db: db, group: sqldb.NewGroup(db, "store")}, nil
}

// Migrate brings the hub's tables in db to the newest schema (safe when
// several replicas start at once).
func Migrate(ctx context.Context, db *sqldb.DB) error {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return convertLegacyReplay(ctx, db)
}

// DB returns the underlying database (for diagnostics and tests).
func (s *Store) DB() *sqldb.DB { return s.db }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", &sqldb.UnavailableError{Err: err})
	}
	return nil
}

// Writable implements store.Store, by reading the database's settings:
// on PostgreSQL, transaction_read_only (default_transaction_read_only, a
// hot standby) and pg_is_in_recovery(); on SQLite, the connection's
// query_only, and its page_count against max_page_count with no page on
// the free list (every write that needs a page fails with SQLITE_FULL).
func (s *Store) Writable(ctx context.Context) error {
	var reason string
	err := sqldb.RetryRead(ctx, func() error {
		reason = ""
		if s.db.Dialect == sqldb.Postgres {
			var readOnly string
			var recovery bool
			if err := s.db.QueryRowContext(ctx, `SELECT current_setting('transaction_read_only'), pg_is_in_recovery()`).Scan(&readOnly, &recovery); err != nil {
				return err
			}
			switch {
			case recovery:
				reason = "the database is a standby in recovery: it refuses writes"
			case readOnly == "on":
				reason = "the database refuses writes (transaction_read_only is on)"
			}
			return nil
		}
		var queryOnly bool
		var pages, maxPages, free int64
		if err := s.db.QueryRowContext(ctx, `SELECT q.query_only, p.page_count, m.max_page_count, f.freelist_count
			FROM pragma_query_only() q, pragma_page_count() p, pragma_max_page_count() m, pragma_freelist_count() f`).
			Scan(&queryOnly, &pages, &maxPages, &free); err != nil {
			return err
		}
		switch {
		case queryOnly:
			reason = "the database refuses writes (query_only)"
		case pages >= maxPages && free == 0:
			reason = fmt.Sprintf("the database is full (%d pages, max_page_count %d, none free)", pages, maxPages)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: writable: %w", err)
	}
	if reason != "" {
		return errors.New(reason)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.group.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// ts converts a time for binding.
func (s *Store) ts(t time.Time) any { return s.db.Dialect.Time(t) }

// ---------------------------------------------------------------------------
// Participants

func validateParticipant(p *store.Participant) error {
	switch {
	case p == nil:
		return errors.New("store: nil participant")
	case p.EntityID == "":
		return errors.New("store: participant without entityID")
	case p.Status == "":
		return fmt.Errorf("store: participant %q without status", p.EntityID)
	case p.Pending != nil && len(p.Pending.Metadata) == 0:
		return fmt.Errorf("store: participant %q: a pending version without metadata", p.EntityID)
	}
	return nil
}

// CreateParticipant implements store.Participants. The stored version is
// 1, and p.Version is set to it.
func (s *Store) CreateParticipant(ctx context.Context, p *store.Participant) error {
	if err := validateParticipant(p); err != nil {
		return err
	}
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		pendingMD, pendingAt := s.pending(p)
		res, err := tx.ExecContext(ctx, `INSERT INTO hub_participants
			(entity_id, display_name, status, metadata, version, created_at, updated_at, pending_metadata, pending_requested_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8)
			ON CONFLICT (entity_id) DO NOTHING`,
			p.EntityID, p.DisplayName, string(p.Status), sqldb.Bytes(p.Metadata),
			s.ts(p.CreatedAt), s.ts(p.UpdatedAt), pendingMD, pendingAt)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrExists
		}
		return s.insertChildren(ctx, tx, p)
	})
	if err != nil {
		return fmt.Errorf("store: create participant %q: %w", p.EntityID, err)
	}
	p.Version = 1
	return nil
}

// UpdateParticipant implements store.Participants. CreatedAt is kept as
// stored; on success p.Version and p.CreatedAt are set to the stored values.
func (s *Store) UpdateParticipant(ctx context.Context, p *store.Participant) error {
	if err := validateParticipant(p); err != nil {
		return err
	}
	var (
		version int64
		created time.Time
	)
	pendingMD, pendingAt := s.pending(p)
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE hub_participants
			SET display_name = $2, status = $3, metadata = $4, version = version + 1, updated_at = $5,
				pending_metadata = $7, pending_requested_at = $8
			WHERE entity_id = $1 AND version = $6
			RETURNING version, created_at`,
			p.EntityID, p.DisplayName, string(p.Status), sqldb.Bytes(p.Metadata),
			s.ts(p.UpdatedAt), p.Version, pendingMD, pendingAt).Scan(&version, sqldb.ScanTime(&created))
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM hub_participants WHERE entity_id = $1`, p.EntityID).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return store.ErrNotFound
			case err != nil:
				return err
			}
			return store.ErrConflict
		}
		if err != nil {
			return err
		}
		for _, table := range childTables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE entity_id = $1`, p.EntityID); err != nil {
				return err
			}
		}
		return s.insertChildren(ctx, tx, p)
	})
	if err != nil {
		return fmt.Errorf("store: update participant %q: %w", p.EntityID, err)
	}
	p.Version, p.CreatedAt = version, created
	return nil
}

// pending returns the pending-version columns' values: NULL for none.
func (s *Store) pending(p *store.Participant) (md, at any) {
	if p.Pending == nil {
		return nil, nil
	}
	return sqldb.Bytes(p.Pending.Metadata), s.ts(p.Pending.RequestedAt)
}

var childTables = []string{
	"hub_participant_roles", "hub_participant_keys",
	"hub_participant_endpoints", "hub_participant_services",
}

func (s *Store) insertChildren(ctx context.Context, tx *sql.Tx, p *store.Participant) error {
	for i, r := range p.Roles {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO hub_participant_roles (entity_id, ord, role) VALUES ($1, $2, $3)`,
			p.EntityID, i, string(r)); err != nil {
			return fmt.Errorf("role %q: %w", r, err)
		}
	}
	for i, k := range p.Keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_participant_keys
			(entity_id, ord, key_use, cert_der, fingerprint, not_after) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.EntityID, i, string(k.Use), sqldb.Bytes(k.CertDER), k.Fingerprint, s.ts(k.NotAfter)); err != nil {
			return fmt.Errorf("key %s: %w", k.Fingerprint, err)
		}
	}
	for i, e := range p.Endpoints {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_participant_endpoints
			(entity_id, ord, service, binding, url, priority) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.EntityID, i, e.Service, e.Binding, e.URL, e.Priority); err != nil {
			return fmt.Errorf("endpoint %s: %w", e.URL, err)
		}
	}
	for i, sv := range p.Services {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_participant_services
			(entity_id, ord, service, currencies, min_amount, max_amount, bin_ranges, bank_codes)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			p.EntityID, i, sv.Service, jsonList(sv.Currencies), sv.MinAmount, sv.MaxAmount,
			jsonList(sv.BINRanges), jsonList(sv.BankCodes)); err != nil {
			return fmt.Errorf("service %s: %w", sv.Service, err)
		}
	}
	return nil
}

// GetParticipant implements store.Participants.
func (s *Store) GetParticipant(ctx context.Context, entityID string) (*store.Participant, error) {
	ps, err := s.loadParticipants(ctx, `p.entity_id = $1`, entityID)
	if err != nil {
		return nil, fmt.Errorf("store: get participant %q: %w", entityID, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("store: get participant %q: %w", entityID, store.ErrNotFound)
	}
	return ps[0], nil
}

// ListParticipants implements store.Participants: entityID in byte order.
func (s *Store) ListParticipants(ctx context.Context, f store.ParticipantFilter) ([]*store.Participant, error) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Status) > 0 {
		ph := make([]string, len(f.Status))
		for i, st := range f.Status {
			ph[i] = arg(string(st))
		}
		conds = append(conds, `p.status IN (`+strings.Join(ph, ", ")+`)`)
	}
	if f.Role != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM hub_participant_roles r
			WHERE r.entity_id = p.entity_id AND r.role = `+arg(string(f.Role))+`)`)
	}
	where := "1 = 1"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	ps, err := s.loadParticipants(ctx, where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list participants: %w", err)
	}
	return ps, nil
}

// ParticipantByCertificate implements store.Participants. A certificate
// published by several participants that are not removed is ambiguous and
// an error (the lookup authenticates); among removed ones, or one live
// and others removed, the live one is returned.
func (s *Store) ParticipantByCertificate(ctx context.Context, use store.KeyUse, fingerprint string) (*store.Participant, error) {
	fingerprint = strings.ToLower(fingerprint)
	var live, removed []string
	err := sqldb.RetryRead(ctx, func() error {
		live, removed = nil, nil
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT p.entity_id, p.status
			FROM hub_participant_keys k JOIN hub_participants p ON p.entity_id = k.entity_id
			WHERE k.key_use = $1 AND k.fingerprint = $2
			ORDER BY p.entity_id`, string(use), fingerprint)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				return err
			}
			if store.Status(status) == store.StatusRemoved {
				removed = append(removed, id)
			} else {
				live = append(live, id)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: participant by %s certificate %s: %w", use, fingerprint, err)
	}
	var id string
	switch {
	case len(live) > 1:
		return nil, fmt.Errorf("store: %s certificate %s is published by several participants: %s",
			use, fingerprint, strings.Join(live, ", "))
	case len(live) == 1:
		id = live[0]
	case len(removed) > 0:
		id = removed[0]
	default:
		return nil, fmt.Errorf("store: participant by %s certificate %s: %w", use, fingerprint, store.ErrNotFound)
	}
	return s.GetParticipant(ctx, id)
}

// loadParticipants reads the participants matching where (over alias p)
// with their children, in one snapshot.
func (s *Store) loadParticipants(ctx context.Context, where string, args ...any) ([]*store.Participant, error) {
	var out []*store.Participant
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) error {
		out = nil
		byID := map[string]*store.Participant{}
		err := queryEach(ctx, tx, `SELECT p.entity_id, p.display_name, p.status, p.metadata, p.version, p.created_at, p.updated_at,
				p.pending_metadata, p.pending_requested_at
			FROM hub_participants p WHERE `+where+` ORDER BY p.entity_id`, args,
			func(rows *sql.Rows) error {
				p := &store.Participant{}
				var (
					status    string
					pendingMD []byte
					pendingAt time.Time
				)
				if err := rows.Scan(&p.EntityID, &p.DisplayName, &status, &p.Metadata, &p.Version,
					sqldb.ScanTime(&p.CreatedAt), sqldb.ScanTime(&p.UpdatedAt), &pendingMD, sqldb.ScanTime(&pendingAt)); err != nil {
					return err
				}
				p.Status = store.Status(status)
				if pendingMD != nil {
					p.Pending = &store.PendingVersion{Metadata: pendingMD, RequestedAt: pendingAt}
				}
				out = append(out, p)
				byID[p.EntityID] = p
				return nil
			})
		if err != nil || len(out) == 0 {
			return err
		}
		child := func(cols, table string) string {
			return `SELECT c.entity_id, ` + cols + ` FROM ` + table + ` c
				JOIN hub_participants p ON p.entity_id = c.entity_id
				WHERE ` + where + ` ORDER BY p.entity_id, c.ord`
		}
		var id string
		if err := queryEach(ctx, tx, child(`c.role`, `hub_participant_roles`), args, func(rows *sql.Rows) error {
			var role string
			if err := rows.Scan(&id, &role); err != nil {
				return err
			}
			p := byID[id]
			p.Roles = append(p.Roles, store.Role(role))
			return nil
		}); err != nil {
			return fmt.Errorf("roles: %w", err)
		}
		if err := queryEach(ctx, tx, child(`c.key_use, c.cert_der, c.fingerprint, c.not_after`, `hub_participant_keys`), args, func(rows *sql.Rows) error {
			var (
				k   store.Key
				use string
			)
			if err := rows.Scan(&id, &use, &k.CertDER, &k.Fingerprint, sqldb.ScanTime(&k.NotAfter)); err != nil {
				return err
			}
			k.Use = store.KeyUse(use)
			p := byID[id]
			p.Keys = append(p.Keys, k)
			return nil
		}); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if err := queryEach(ctx, tx, child(`c.service, c.binding, c.url, c.priority`, `hub_participant_endpoints`), args, func(rows *sql.Rows) error {
			var e store.Endpoint
			if err := rows.Scan(&id, &e.Service, &e.Binding, &e.URL, &e.Priority); err != nil {
				return err
			}
			p := byID[id]
			p.Endpoints = append(p.Endpoints, e)
			return nil
		}); err != nil {
			return fmt.Errorf("endpoints: %w", err)
		}
		if err := queryEach(ctx, tx, child(`c.service, c.currencies, c.min_amount, c.max_amount, c.bin_ranges, c.bank_codes`, `hub_participant_services`), args, func(rows *sql.Rows) error {
			var (
				sv                    store.Service
				currencies, bins, bcs string
			)
			if err := rows.Scan(&id, &sv.Service, &currencies, &sv.MinAmount, &sv.MaxAmount, &bins, &bcs); err != nil {
				return err
			}
			var err error
			if sv.Currencies, err = parseList(currencies); err != nil {
				return err
			}
			if sv.BINRanges, err = parseList(bins); err != nil {
				return err
			}
			if sv.BankCodes, err = parseList(bcs); err != nil {
				return err
			}
			p := byID[id]
			p.Services = append(p.Services, sv)
			return nil
		}); err != nil {
			return fmt.Errorf("services: %w", err)
		}
		return nil
	})
	return out, err
}

// queryEach runs query and calls fn for each row.
func queryEach(ctx context.Context, q sqldb.Queryer, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonList encodes a list of strings as a JSON array ("[]" when empty).
func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // a []string always encodes
	return string(b)
}

// parseList decodes jsonList's output; an empty list is nil.
func parseList(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("stored list %q: %w", s, err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// ---------------------------------------------------------------------------
// Replay

func checkReplay(issuer, id string, expires, now time.Time) error {
	if issuer == "" || id == "" {
		return errors.New("empty issuer or message ID")
	}
	if hasNUL(issuer) || hasNUL(id) {
		return errors.New("a NUL in the issuer or the message ID")
	}
	if !expires.After(now) {
		return fmt.Errorf("expiry %s is not after now %s", expires.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	}
	return nil
}

// remember records (issuer, id) in q, by its digest (replayDigest, which
// the caller computes before its transaction): ErrAlreadySeen when a live
// record holds it. A record is live while now < expires; an expired record
// that was not purged yet is replaced.
func (s *Store) remember(ctx context.Context, q sqldb.Queryer, e store.ReplayEntry, digest []byte, now time.Time) error {
	res, err := q.ExecContext(ctx, `INSERT INTO hub_replay (digest, expires)
		VALUES ($1, $2)
		ON CONFLICT (digest) DO UPDATE SET expires = excluded.expires
		WHERE hub_replay.expires <= $3`,
		digest, s.ts(e.Expires), s.ts(now))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("message %q of %q: %w", e.ID, e.Issuer, store.ErrAlreadySeen)
	}
	return nil
}

// RememberMessage implements store.Replay.
func (s *Store) RememberMessage(ctx context.Context, issuer, id string, expires, now time.Time) error {
	if err := checkReplay(issuer, id, expires, now); err != nil {
		return fmt.Errorf("store: remember message %q of %q: %w", id, issuer, err)
	}
	digest := replayDigest(issuer, id)
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return s.remember(ctx, tx, store.ReplayEntry{Issuer: issuer, ID: id, Expires: expires}, digest, now)
	})
	if err != nil {
		return fmt.Errorf("store: remember: %w", err)
	}
	return nil
}

// PurgeReplay implements store.Replay: records with expires <= now go.
func (s *Store) PurgeReplay(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := sqldb.Retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `DELETE FROM hub_replay WHERE expires <= $1`, s.ts(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge replay cache: %w", err)
	}
	return n, nil
}

// ---------------------------------------------------------------------------
// Idempotency

const idemColumns = `scope, idem_key, fingerprint, state, lease_owner, lease_expires, request_id, attempts, created_at, updated_at`

func scanIdem(row interface{ Scan(...any) error }) (*store.IdemEntry, int64, error) {
	var (
		e        store.IdemEntry
		state    string
		attempts int64
	)
	err := row.Scan(&e.Scope, &e.Key, &e.Fingerprint, &state, &e.LeaseOwner, sqldb.ScanTime(&e.LeaseExpires),
		&e.RequestID, &attempts, sqldb.ScanTime(&e.CreatedAt), sqldb.ScanTime(&e.UpdatedAt))
	if err != nil {
		return nil, 0, err
	}
	e.State = store.IdemState(state)
	return &e, attempts, nil
}

// maxAcquireRounds bounds acquire's loop when the entry keeps changing
// between its upsert and its read (each round is a full, atomic attempt).
const maxAcquireRounds = 8

func checkClaim(c *store.IdemClaim, now time.Time) error {
	switch {
	case c.Scope == "" || c.Key == "":
		return errors.New("empty scope or key")
	case c.Owner == "":
		return errors.New("empty lease owner")
	case len(c.Fingerprint) == 0:
		return errors.New("empty fingerprint")
	case !c.LeaseUntil.After(now):
		return errors.New("lease ends before it starts")
	}
	return nil
}

// acquire takes the lease in q in one atomic statement: insert the entry,
// or take over an entry with the same fingerprint whose attempt is done or
// whose lease expired (lease_expires <= now). When that statement changes
// nothing, the entry is read to tell IdemInFlight from IdemMismatch; if it
// became free meanwhile (outside a transaction), the statement runs again.
func (s *Store) acquire(ctx context.Context, q sqldb.Queryer, c *store.IdemClaim, now time.Time) (saml.IdemResult, *store.IdemEntry, error) {
	for range maxAcquireRounds {
		e, attempts, err := scanIdem(q.QueryRowContext(ctx, `INSERT INTO hub_idempotency (`+idemColumns+`)
			VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, 1, $7, $7)
			ON CONFLICT (scope, idem_key) DO UPDATE SET
				state = 'in_flight',
				lease_owner = excluded.lease_owner,
				lease_expires = excluded.lease_expires,
				request_id = excluded.request_id,
				attempts = hub_idempotency.attempts + 1,
				updated_at = excluded.updated_at
			WHERE hub_idempotency.fingerprint = excluded.fingerprint
				AND (hub_idempotency.state = 'done' OR hub_idempotency.lease_expires <= excluded.updated_at)
			RETURNING `+idemColumns,
			c.Scope, c.Key, c.Fingerprint, c.Owner, s.ts(c.LeaseUntil), c.RequestID, s.ts(now)))
		if err == nil {
			if attempts == 1 {
				return saml.IdemAcquired, e, nil
			}
			return saml.IdemReacquired, e, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", nil, err
		}
		e, _, err = scanIdem(q.QueryRowContext(ctx,
			`SELECT `+idemColumns+` FROM hub_idempotency WHERE scope = $1 AND idem_key = $2`, c.Scope, c.Key))
		if errors.Is(err, sql.ErrNoRows) {
			continue // removed meanwhile: insert again
		}
		if err != nil {
			return "", nil, err
		}
		if string(e.Fingerprint) != string(c.Fingerprint) {
			return saml.IdemMismatch, e, nil
		}
		if e.State == store.IdemInFlight && e.LeaseExpires.After(now) {
			return saml.IdemInFlight, e, nil
		}
		// Released or expired since the upsert: try again.
	}
	return "", nil, errors.New("the entry kept changing")
}

// AcquireIdem implements store.Idempotency (see acquire).
func (s *Store) AcquireIdem(ctx context.Context, scope, key string, fingerprint []byte, owner, requestID string, leaseUntil, now time.Time) (saml.IdemResult, *store.IdemEntry, error) {
	c := &store.IdemClaim{Scope: scope, Key: key, Fingerprint: fingerprint, Owner: owner, RequestID: requestID, LeaseUntil: leaseUntil}
	if err := checkClaim(c, now); err != nil {
		return "", nil, fmt.Errorf("store: acquire idempotency key: %w", err)
	}
	var (
		result saml.IdemResult
		entry  *store.IdemEntry
	)
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		result, entry, err = s.acquire(ctx, tx, c, now)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("store: acquire idempotency key %q in %q: %w", key, scope, err)
	}
	return result, entry, nil
}

func checkRelease(r *store.IdemRelease) error {
	if r.State != store.IdemDone && r.State != store.IdemInFlight {
		return fmt.Errorf("invalid state %q", r.State)
	}
	if r.Owner == "" {
		return fmt.Errorf("%w (empty owner)", store.ErrConflict)
	}
	return nil
}

// release ends the lease in q. The holder may release even after its
// lease expired, as long as nobody took the entry over. Either way the
// lease is cleared (lease_expires = now); state IdemInFlight leaves the
// entry retryable, IdemDone marks it answered.
func (s *Store) release(ctx context.Context, q sqldb.Queryer, r *store.IdemRelease, now time.Time) error {
	res, err := q.ExecContext(ctx, `UPDATE hub_idempotency
		SET state = $4, lease_owner = '', lease_expires = $5, updated_at = $5
		WHERE scope = $1 AND idem_key = $2 AND lease_owner = $3 AND state = 'in_flight'`,
		r.Scope, r.Key, r.Owner, string(r.State), s.ts(now))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var one int
	err = q.QueryRowContext(ctx,
		`SELECT 1 FROM hub_idempotency WHERE scope = $1 AND idem_key = $2`, r.Scope, r.Key).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return err
	}
	return store.ErrConflict
}

// ReleaseIdem implements store.Idempotency (see release).
func (s *Store) ReleaseIdem(ctx context.Context, scope, key, owner string, state store.IdemState, now time.Time) error {
	r := &store.IdemRelease{Scope: scope, Key: key, Owner: owner, State: state}
	if err := checkRelease(r); err != nil {
		return fmt.Errorf("store: release idempotency key %q: %w", key, err)
	}
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error { return s.release(ctx, tx, r, now) })
	if err != nil {
		return fmt.Errorf("store: release idempotency key %q in %q: %w", key, scope, err)
	}
	return nil
}

// GetIdem implements store.Idempotency.
func (s *Store) GetIdem(ctx context.Context, scope, key string) (*store.IdemEntry, error) {
	var e *store.IdemEntry
	err := sqldb.RetryRead(ctx, func() error {
		var err error
		e, _, err = scanIdem(s.db.QueryRowContext(ctx,
			`SELECT `+idemColumns+` FROM hub_idempotency WHERE scope = $1 AND idem_key = $2`, scope, key))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get idempotency key %q in %q: %w", key, scope, err)
	}
	return e, nil
}

// CountInFlight implements store.Idempotency.
func (s *Store) CountInFlight(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := sqldb.RetryRead(ctx, func() error {
		return s.db.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM hub_idempotency WHERE state = 'in_flight' AND lease_expires > $1`,
			s.ts(now)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: count in-flight idempotency keys: %w", err)
	}
	return n, nil
}

// ---------------------------------------------------------------------------
// Audit

// AppendAudit implements store.Audit and sets r.ID. The table refuses
// updates (a trigger); the message is stored compressed (auditcodec.go).
func (s *Store) AppendAudit(ctx context.Context, r *store.AuditRecord) error {
	if r == nil || r.Kind == "" {
		return errors.New("store: append audit record: no kind")
	}
	_, err := s.Commit(ctx, &store.Writes{Now: r.Time, Audit: []*store.AuditRecord{r}})
	if err != nil {
		return fmt.Errorf("store: append audit record %s: %w", r.Kind, err)
	}
	return nil
}

// ListAudit implements store.Audit: records in append (ID) order, Since
// inclusive, Until exclusive, at most Limit when Limit > 0; each message
// and detail as it was appended. Every filter is served by an index: the
// transaction by tx_id when the record stores it, else by the idempotency
// key and the scope's prefix (splitTx); the entity and kind by the scope;
// a time window alone by the scope and time, one range per scope.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditRecord, error) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.TxID != "" {
		tx := arg(f.TxID)
		q := `SELECT id FROM hub_audit WHERE tx_id = ` + tx + ` AND tx_id <> ''`
		if keys := txKeys(f.TxID); len(keys) > 0 {
			ph := make([]string, len(keys))
			for i, k := range keys {
				ph[i] = arg(k)
			}
			q += ` UNION ALL SELECT x.id FROM hub_audit x JOIN hub_audit_scopes y ON y.id = x.scope_id
				WHERE x.idempotency_key IN (` + strings.Join(ph, ", ") + `) AND x.idempotency_key <> ''
					AND y.tx_prefix <> '' AND y.tx_prefix || '|' || x.idempotency_key = ` + tx
		}
		conds = append(conds, `a.id IN (`+q+`)`)
	}
	if f.RequestID != "" {
		conds = append(conds, `a.request_id = `+arg(f.RequestID)+` AND a.request_id <> ''`)
	}
	if f.EntityID != "" || f.Kind != "" {
		var sc []string
		if f.EntityID != "" {
			sc = append(sc, `entity_id = `+arg(f.EntityID))
		}
		if f.Kind != "" {
			sc = append(sc, `kind = `+arg(f.Kind))
		}
		conds = append(conds, `a.scope_id IN (SELECT id FROM hub_audit_scopes WHERE `+strings.Join(sc, " AND ")+`)`)
	}
	if (!f.Since.IsZero() || !f.Until.IsZero()) && len(conds) == 0 {
		// A window alone: hub_audit_scope (scope_id, time) serves it, one
		// range per scope (migration 0007 dropped the time index that
		// every record paid for).
		conds = append(conds, `a.scope_id IN (SELECT id FROM hub_audit_scopes)`)
	}
	if !f.Since.IsZero() {
		conds = append(conds, `a.time >= `+arg(s.ts(f.Since)))
	}
	if !f.Until.IsZero() {
		conds = append(conds, `a.time < `+arg(s.ts(f.Until)))
	}
	q := `SELECT a.id, a.time, s.kind, s.actor, s.entity_id, s.tx_prefix, a.tx_id, a.request_id, a.idempotency_key,
		a.detail, a.message, a.codec, COALESCE(a.dict_id, 0)
		FROM hub_audit a JOIN hub_audit_scopes s ON s.id = a.scope_id`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	q += ` ORDER BY a.id`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	var (
		out     []*store.AuditRecord
		codecs  []int
		dictIDs []int64
	)
	err := sqldb.RetryRead(ctx, func() error {
		out, codecs, dictIDs = nil, nil, nil
		return queryEach(ctx, s.db, q, args, func(rows *sql.Rows) error {
			r := &store.AuditRecord{}
			var (
				prefix, txID string
				codec        int
				dictID       int64
			)
			if err := rows.Scan(&r.ID, sqldb.ScanTime(&r.Time), &r.Kind, &r.Actor, &r.EntityID, &prefix, &txID,
				&r.RequestID, &r.IdempotencyKey, &r.Detail, &r.Message, &codec, &dictID); err != nil {
				return err
			}
			r.TxID = joinTx(prefix, txID, r.IdempotencyKey)
			out = append(out, r)
			codecs = append(codecs, codec)
			dictIDs = append(dictIDs, dictID)
			return nil
		})
	})
	if err == nil {
		err = s.decodeMessages(ctx, out, codecs, dictIDs)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list audit records: %w", err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Commit

// Commit implements store.Batches: w's parts in one write transaction, in
// the order and with the semantics store.Writes gives. Audit messages are
// compressed before the transaction begins.
//
// On SQLite, Commits that wait while the database's one writer is busy
// share its next transaction, each under a savepoint of its own
// (connectors/sqlstore.Group): each still holds or fails whole, and returns
// once durable, but the WAL is synced, and the pages the records share (the
// tables' and time indexes' last leaves) written, once per group. Under 16
// concurrent approvals the hub's commits queued for its writer (7.5 of the
// 16 requests waited there): the hub's database was what held the demo
// below its CPU.
func (s *Store) Commit(ctx context.Context, w *store.Writes) (*store.Committed, error) {
	if w == nil {
		return nil, errors.New("store: commit: nothing to write")
	}
	// What can be computed before the transaction is: the group's one
	// writer holds the database for everyone while it runs.
	digests := make([][]byte, len(w.Remember))
	for i, e := range w.Remember {
		if err := checkReplay(e.Issuer, e.ID, e.Expires, w.Now); err != nil {
			return nil, fmt.Errorf("store: commit: remember message %q of %q: %w", e.ID, e.Issuer, err)
		}
		digests[i] = replayDigest(e.Issuer, e.ID)
	}
	if w.Claim != nil {
		if err := checkClaim(w.Claim, w.Now); err != nil {
			return nil, fmt.Errorf("store: commit: idempotency claim: %w", err)
		}
	}
	if w.Release != nil {
		if err := checkRelease(w.Release); err != nil {
			return nil, fmt.Errorf("store: commit: idempotency release: %w", err)
		}
	}
	enc := make([]*encodedAudit, len(w.Audit))
	for i, r := range w.Audit {
		if r == nil || r.Kind == "" {
			return nil, errors.New("store: commit: audit record without kind")
		}
		var err error
		if enc[i], err = s.encodeAudit(ctx, r); err != nil {
			return nil, fmt.Errorf("store: commit: %w", err)
		}
	}
	var (
		out               *store.Committed
		dictIDs, scopeIDs []int64
	)
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out, dictIDs, scopeIDs = &store.Committed{}, make([]int64, len(enc)), make([]int64, len(enc))
		for i, e := range w.Remember {
			if err := s.remember(ctx, tx, e, digests[i], w.Now); err != nil {
				return err
			}
		}
		if w.Claim != nil {
			var err error
			if out.Claim, out.Entry, err = s.acquire(ctx, tx, w.Claim, w.Now); err != nil {
				return fmt.Errorf("idempotency key %q in %q: %w", w.Claim.Key, w.Claim.Scope, err)
			}
		}
		if r := w.Release; r != nil {
			err := s.release(ctx, tx, r, w.Now)
			switch {
			case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
				out.ReleaseErr = fmt.Errorf("release idempotency key %q in %q: %w", r.Key, r.Scope, err)
			case err != nil:
				return fmt.Errorf("release idempotency key %q in %q: %w", r.Key, r.Scope, err)
			}
		}
		for i, e := range enc {
			var err error
			if dictIDs[i], scopeIDs[i], err = s.insertAudit(ctx, tx, e, w.Now); err != nil {
				return fmt.Errorf("audit record %s: %w", e.rec.Kind, err)
			}
		}
		if w.Prune != nil {
			var err error
			if out.Pruned, err = s.prune(ctx, tx, w.Prune, w.Now); err != nil {
				return fmt.Errorf("prune: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		for _, r := range w.Audit {
			r.ID = 0
		}
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	s.commitDicts(enc, dictIDs)
	s.commitScopes(enc, scopeIDs)
	return out, nil
}

// writeTx runs fn in a write transaction: the next group's on SQLite (its
// ctx without cancellation, see sqldb.Group.Write), one of its own on
// PostgreSQL.
func (s *Store) writeTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.group.Write(ctx, fn)
}

// prune deletes at most p.Limit expired replay records and at most
// p.Limit idle idempotency entries, oldest first, each by an index: the
// cost does not grow with the tables. On PostgreSQL rows another replica
// is deleting are skipped rather than waited for.
//
// Idle entries are found by two partial indexes (migration 0008): the
// answered ones (state done) by hub_idempotency_done, in the order they
// were answered; the others (in flight, whose lease expired) by
// hub_idempotency_leases, which the in-flight count reads too, in the
// order their leases expired. An entry in flight is changed when its lease
// is taken or released, and its lease never ends before that change, so an
// entry whose lease ended by IdemBefore was not changed since: what is
// taken from either index is idle. One held by a lease longer than the
// retention waits, after IdemBefore, for its lease to end by IdemBefore
// too: it is deleted later, never earlier.
func (s *Store) prune(ctx context.Context, q sqldb.Queryer, p *store.Prune, now time.Time) (int64, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	lock := ""
	if s.db.Dialect == sqldb.Postgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	var total int64
	res, err := q.ExecContext(ctx, `DELETE FROM hub_replay WHERE digest IN
		(SELECT digest FROM hub_replay WHERE expires <= $1 ORDER BY expires LIMIT $2`+lock+`)`,
		s.ts(now), p.Limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	total += n
	if p.IdemBefore.IsZero() {
		return total, nil
	}
	leaseEnded := p.IdemBefore
	if now.Before(leaseEnded) {
		leaseEnded = now
	}
	// One DELETE (a statement that writes, as the crash tests count them),
	// the two indexes' oldest entries merged.
	res, err = q.ExecContext(ctx, `DELETE FROM hub_idempotency WHERE (scope, idem_key) IN
		(SELECT scope, idem_key FROM (
			SELECT * FROM (SELECT scope, idem_key, updated_at FROM hub_idempotency
				WHERE state = 'done' AND updated_at <= $1
				ORDER BY updated_at LIMIT $3`+lock+`) done
			UNION ALL
			SELECT * FROM (SELECT scope, idem_key, updated_at FROM hub_idempotency
				WHERE state = 'in_flight' AND lease_expires <= $2 AND updated_at <= $1
				ORDER BY lease_expires LIMIT $3`+lock+`) ended
		) idle ORDER BY updated_at LIMIT $3)`,
		s.ts(p.IdemBefore), s.ts(leaseEnded), p.Limit)
	if err != nil {
		return 0, err
	}
	n, _ = res.RowsAffected()
	return total + n, nil
}

// ---------------------------------------------------------------------------
// Routing rules

// PutRoutingRule implements store.Routing: ErrExists if the ID is taken
// (delete the rule first to replace it).
func (s *Store) PutRoutingRule(ctx context.Context, r *store.RoutingRule) error {
	if r == nil || r.ID == "" {
		return errors.New("store: put routing rule: empty ID")
	}
	err := sqldb.Retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `INSERT INTO hub_routing_rules
			(id, priority, service, merchant, bin_prefix, bank_code, currency, min_amount, max_amount, target, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Priority, r.Service, r.Merchant, r.BINPrefix, r.BankCode, r.Currency,
			r.MinAmount, r.MaxAmount, r.Target, s.ts(r.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put routing rule %q: %w", r.ID, err)
	}
	return nil
}

// DeleteRoutingRule implements store.Routing.
func (s *Store) DeleteRoutingRule(ctx context.Context, id string) error {
	err := sqldb.Retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `DELETE FROM hub_routing_rules WHERE id = $1`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete routing rule %q: %w", id, err)
	}
	return nil
}

// ListRoutingRules implements store.Routing: by priority, then ID.
func (s *Store) ListRoutingRules(ctx context.Context) ([]*store.RoutingRule, error) {
	var out []*store.RoutingRule
	err := sqldb.RetryRead(ctx, func() error {
		out = nil
		return queryEach(ctx, s.db, `SELECT id, priority, service, merchant, bin_prefix, bank_code, currency,
			min_amount, max_amount, target, created_at FROM hub_routing_rules ORDER BY priority, id`, nil,
			func(rows *sql.Rows) error {
				r := &store.RoutingRule{}
				if err := rows.Scan(&r.ID, &r.Priority, &r.Service, &r.Merchant, &r.BINPrefix, &r.BankCode,
					&r.Currency, &r.MinAmount, &r.MaxAmount, &r.Target, sqldb.ScanTime(&r.CreatedAt)); err != nil {
					return err
				}
				out = append(out, r)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list routing rules: %w", err)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Metadata snapshots

// PutSnapshot implements store.Snapshots: ErrExists if (EntityID, Version)
// is taken.
func (s *Store) PutSnapshot(ctx context.Context, m *store.MetadataSnapshot) error {
	if m == nil || m.EntityID == "" {
		return errors.New("store: put metadata snapshot: empty entityID")
	}
	err := sqldb.Retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `INSERT INTO hub_metadata_snapshots (entity_id, version, valid_from, signed)
			VALUES ($1, $2, $3, $4) ON CONFLICT (entity_id, version) DO NOTHING`,
			m.EntityID, m.Version, s.ts(m.ValidFrom), sqldb.Bytes(m.Signed))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put metadata snapshot %q v%d: %w", m.EntityID, m.Version, err)
	}
	return nil
}

// SnapshotAt implements store.Snapshots: the latest ValidFrom <= t, and of
// two with the same ValidFrom the higher version.
func (s *Store) SnapshotAt(ctx context.Context, entityID string, t time.Time) (*store.MetadataSnapshot, error) {
	m := &store.MetadataSnapshot{}
	err := sqldb.RetryRead(ctx, func() error {
		return s.db.QueryRowContext(ctx, `SELECT entity_id, version, valid_from, signed
			FROM hub_metadata_snapshots WHERE entity_id = $1 AND valid_from <= $2
			ORDER BY valid_from DESC, version DESC LIMIT 1`,
			entityID, s.ts(t)).Scan(&m.EntityID, &m.Version, sqldb.ScanTime(&m.ValidFrom), &m.Signed)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: metadata snapshot of %q at %s: %w", entityID, t.Format(time.RFC3339), err)
	}
	return m, nil
}
