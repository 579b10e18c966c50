// Package sqlitestore is the adapter store (connectors/store.Store) in a
// SQLite database (modernc.org/sqlite, pure Go): the choice of a provider
// whose adapter runs as one process next to a file. A program that
// imports it links the SQLite driver and not PostgreSQL's
// (connectors/store/pgstore is the other choice).
package sqlitestore

import (
	"context"
	"fmt"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/sqlite" // the SQLite driver
	"github.com/kecis/kecis/connectors/store/storesql"
)

// Open opens (and migrates) the adapter store in the SQLite database at
// dsn: sqlite:PATH (created if missing) or sqlite::memory:. atRestKey (32
// bytes) seals stored outcomes.
func Open(ctx context.Context, dsn string, atRestKey []byte) (*storesql.Store, error) {
	if err := check(dsn); err != nil {
		return nil, err
	}
	return storesql.Open(ctx, dsn, atRestKey)
}

// New uses an open SQLite database (the provider's own, shared with its
// tables).
func New(ctx context.Context, db *sqlstore.DB, atRestKey []byte) (*storesql.Store, error) {
	if db.Dialect != sqlstore.SQLite {
		return nil, fmt.Errorf("sqlitestore: the database is %s, not SQLite", db.Dialect)
	}
	return storesql.New(ctx, db, atRestKey)
}

func check(dsn string) error {
	cfg, err := sqlstore.ParseDSN(dsn)
	if err != nil {
		return err
	}
	if cfg.Dialect != sqlstore.SQLite {
		return fmt.Errorf("sqlitestore: %s is not a SQLite DSN (want sqlite:PATH or sqlite::memory:)", sqlstore.RedactDSN(dsn))
	}
	return nil
}
