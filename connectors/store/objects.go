package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ObjectRef names one of the provider's objects (KECIS §13.3): an order, an
// approval, and the objects of later services.
type ObjectRef struct {
	// Kind is the object's type, "<service group>:<object>" (card:order,
	// card:approval).
	Kind string
	// ID identifies the object.
	ID string
	// PerOwner marks an ID of the owner's own choosing (a merchant's order
	// number): two owners may use the same ID, each for an object of its
	// own. Otherwise the provider assigned the ID (an approval number) and
	// it names one object.
	PerOwner bool
}

// Objects is what one request does with the provider's objects, decided in
// one transaction (KECIS §13.3).
type Objects struct {
	// Owner is the request's caller (KECIS §13.1).
	Owner string
	// Claim lists the objects the request creates, or that its answer
	// revealed: they are recorded for Owner. One the provider assigned that
	// is recorded for another owner is refused (ErrNotFound).
	Claim []ObjectRef
	// Check lists the objects the request operates on: each must be
	// recorded for Owner.
	Check []ObjectRef
}

// IsZero reports whether o names no object.
func (o Objects) IsZero() bool { return len(o.Claim) == 0 && len(o.Check) == 0 }

// ErrNotFound refuses a request that names an object that is unknown or
// another owner's. The two are one error on purpose: a caller must not
// learn that another's object exists (KECIS §13.3); the wrapped text, for
// the log, tells which.
var ErrNotFound = errors.New("adapter store: no such object for this owner")

// errNoOwner refuses objects without an owner: an owner that is not
// recorded must never match an object that is not either.
var errNoOwner = errors.New("adapter store: objects without an owner")

// objectKey derives the key of the stored object references from the
// at-rest key.
func objectKey(atRestKey []byte) []byte {
	m := hmac.New(sha256.New, atRestKey)
	m.Write([]byte("kecis-adapter object references"))
	return m.Sum(nil)
}

// ref is the stored form of an object's ID: an HMAC, so that an ID a
// caller chose (an order number may hold anything) never reaches a row.
func (s *Store) ref(r ObjectRef) []byte {
	m := hmac.New(sha256.New, s.refKey)
	fmt.Fprintf(m, "%d:%s;%d:%s;", len(r.Kind), r.Kind, len(r.ID), r.ID)
	return m.Sum(nil)
}

func scopeOf(owner string, r ObjectRef) string {
	if r.PerOwner {
		return owner
	}
	return ""
}

// ownerOf returns the recorded owner of r as the request's owner sees it
// ("" when unknown).
func (s *Store) ownerOf(ctx context.Context, tx *sql.Tx, owner string, r ObjectRef) (string, error) {
	var got string
	err := tx.QueryRowContext(ctx, `SELECT owner FROM adapter_objects WHERE kind = $1 AND scope = $2 AND ref = $3`,
		r.Kind, scopeOf(owner, r), s.ref(r)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return got, err
}

func notFound(r ObjectRef, other string) error {
	if other == "" {
		return fmt.Errorf("%w: %s unknown", ErrNotFound, r.Kind)
	}
	return fmt.Errorf("%w: %s held by another owner", ErrNotFound, r.Kind)
}

// check verifies o.Check and the claims already recorded; missing reports
// whether a claim still has to be written.
func (s *Store) check(ctx context.Context, tx *sql.Tx, o Objects) (missing bool, err error) {
	for _, r := range o.Check {
		got, err := s.ownerOf(ctx, tx, o.Owner, r)
		if err != nil {
			return false, err
		}
		if got != o.Owner {
			return false, notFound(r, got)
		}
	}
	for _, r := range o.Claim {
		got, err := s.ownerOf(ctx, tx, o.Owner, r)
		switch {
		case err != nil:
			return false, err
		case got == "":
			missing = true
		case got != o.Owner:
			return false, notFound(r, got)
		}
	}
	return missing, nil
}

// apply checks and claims o inside a write transaction.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, o Objects, now time.Time) error {
	if o.IsZero() {
		return nil
	}
	if o.Owner == "" {
		return errNoOwner
	}
	for _, r := range o.Check {
		got, err := s.ownerOf(ctx, tx, o.Owner, r)
		if err != nil {
			return err
		}
		if got != o.Owner {
			return notFound(r, got)
		}
	}
	d := s.db.Dialect
	for _, r := range o.Claim {
		res, err := tx.ExecContext(ctx, `INSERT INTO adapter_objects (kind, scope, ref, owner, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (kind, scope, ref) DO NOTHING`, r.Kind, scopeOf(o.Owner, r), s.ref(r), o.Owner, d.Time(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 || r.PerOwner {
			// Inserted, or an ID of the owner's own: its scope is the owner.
			continue
		}
		got, err := s.ownerOf(ctx, tx, o.Owner, r)
		if err != nil {
			return err
		}
		if got != o.Owner {
			return notFound(r, got)
		}
	}
	return nil
}

// Objects decides o outside an idempotency key (a request without one, such
// as an inquire): ErrNotFound when a checked object is not the owner's or
// a claimed one is another's. It writes only when a claim is new, so the
// usual inquire costs no commit.
func (s *Store) Objects(ctx context.Context, o Objects, now time.Time) error {
	if o.IsZero() {
		return nil
	}
	if o.Owner == "" {
		return errNoOwner
	}
	var missing bool
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) (err error) {
		missing, err = s.check(ctx, tx, o)
		return err
	})
	if err != nil || !missing {
		return err
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error { return s.apply(ctx, tx, o, now) })
}
