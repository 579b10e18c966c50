package sqlstore

import (
	"context"
	"database/sql"
)

// Execer runs a statement: a *sql.Tx, a *sql.DB or a *DB.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ExecOne runs an UPDATE or DELETE that must change exactly one row — the
// compare-and-swap of a state machine's row on its version (`… WHERE id = $n
// AND version = $m`) —, and returns conflict when it changed none or more
// (another writer moved the row first, or it is gone): the caller reads
// the row again and re-judges.
func ExecOne(ctx context.Context, x Execer, conflict error, query string, args ...any) error {
	res, err := x.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return conflict
	}
	return nil
}
