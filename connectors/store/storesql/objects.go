package storesql

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kecis/kecis/connectors/store"
)

// objectKey derives the key of the stored object references from the
// at-rest key.
func objectKey(atRestKey []byte) []byte {
	m := hmac.New(sha256.New, atRestKey)
	m.Write([]byte("kecis-adapter object references"))
	return m.Sum(nil)
}

// ref is the stored form of an object's ID: an HMAC, so that an ID a
// caller chose (an order number may hold anything) never reaches a row.
func (s *Store) ref(r store.ObjectRef) []byte {
	m := hmac.New(sha256.New, s.refKey)
	b := make([]byte, 0, 48+len(r.Kind)+len(r.ID))
	b = strconv.AppendInt(b, int64(len(r.Kind)), 10)
	b = append(append(append(b, ':'), r.Kind...), ';')
	b = strconv.AppendInt(b, int64(len(r.ID)), 10)
	b = append(append(append(b, ':'), r.ID...), ';')
	m.Write(b)
	return m.Sum(nil)
}

// objectRefs are the stored forms of an Objects' Check and Claim, in
// their order: computed before a write takes the database's one writer
// (sqlstore.Group), which then runs statements only.
type objectRefs struct{ check, claim [][]byte }

func (s *Store) refs(o store.Objects) objectRefs {
	var r objectRefs
	for _, c := range o.Check {
		r.check = append(r.check, s.ref(c))
	}
	for _, c := range o.Claim {
		r.claim = append(r.claim, s.ref(c))
	}
	return r
}

func scopeOf(owner string, r store.ObjectRef) string {
	if r.PerOwner {
		return owner
	}
	return ""
}

// ownerOf returns the recorded owner of r as the request's owner sees it
// ("" when unknown).
func (s *Store) ownerOf(ctx context.Context, tx *sql.Tx, owner string, r store.ObjectRef, ref []byte) (string, error) {
	var got string
	err := tx.QueryRowContext(ctx, `SELECT owner FROM adapter_objects WHERE kind = $1 AND scope = $2 AND ref = $3`,
		r.Kind, scopeOf(owner, r), ref).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return got, err
}

func notFound(r store.ObjectRef, other string) error {
	if other == "" {
		return fmt.Errorf("%w: %s unknown", store.ErrNotFound, r.Kind)
	}
	return fmt.Errorf("%w: %s held by another owner", store.ErrNotFound, r.Kind)
}

// check verifies o.Check and the claims already recorded; missing reports
// whether a claim still has to be written.
func (s *Store) check(ctx context.Context, tx *sql.Tx, o store.Objects, refs objectRefs) (missing bool, err error) {
	for k, r := range o.Check {
		got, err := s.ownerOf(ctx, tx, o.Owner, r, refs.check[k])
		if err != nil {
			return false, err
		}
		if got != o.Owner {
			return false, notFound(r, got)
		}
	}
	for k, r := range o.Claim {
		got, err := s.ownerOf(ctx, tx, o.Owner, r, refs.claim[k])
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

// apply checks and claims o (refs: s.refs(o)) inside a write transaction.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, o store.Objects, refs objectRefs, now time.Time) error {
	if o.IsZero() {
		return nil
	}
	if o.Owner == "" {
		return store.ErrNoOwner
	}
	for k, r := range o.Check {
		got, err := s.ownerOf(ctx, tx, o.Owner, r, refs.check[k])
		if err != nil {
			return err
		}
		if got != o.Owner {
			return notFound(r, got)
		}
	}
	d := s.db.Dialect
	for k, r := range o.Claim {
		res, err := tx.ExecContext(ctx, `INSERT INTO adapter_objects (kind, scope, ref, owner, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (kind, scope, ref) DO NOTHING`, r.Kind, scopeOf(o.Owner, r), refs.claim[k], o.Owner, d.Time(now))
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
		got, err := s.ownerOf(ctx, tx, o.Owner, r, refs.claim[k])
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
// as an inquire): store.ErrNotFound when a checked object is not the owner's or
// a claimed one is another's. It writes only when a claim is new, so the
// usual inquire costs no commit.
func (s *Store) Objects(ctx context.Context, o store.Objects, now time.Time) error {
	if o.IsZero() {
		return nil
	}
	if o.Owner == "" {
		return store.ErrNoOwner
	}
	refs := s.refs(o)
	var missing bool
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) (err error) {
		missing, err = s.check(ctx, tx, o, refs)
		return err
	})
	if err != nil || !missing {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.apply(ctx, tx, o, refs, now) })
}
