// Package pgstore is the adapter store (connectors/store.Store) in a
// PostgreSQL database (pgx): the choice of a provider whose adapter runs
// as several replicas sharing one database. A program that imports it
// links the PostgreSQL driver and not SQLite's
// (connectors/store/sqlitestore is the other choice).
package pgstore

import (
	"context"
	"fmt"

	"github.com/kecis/kecis/connectors/sqlstore"
	_ "github.com/kecis/kecis/connectors/sqlstore/postgres" // the PostgreSQL driver
	"github.com/kecis/kecis/connectors/store/storesql"
)

// Open opens (and migrates) the adapter store in the PostgreSQL database
// at dsn (postgres://… or postgresql://…). atRestKey (32 bytes) seals
// stored outcomes.
func Open(ctx context.Context, dsn string, atRestKey []byte) (*storesql.Store, error) {
	if err := check(dsn); err != nil {
		return nil, err
	}
	return storesql.Open(ctx, dsn, atRestKey)
}

// New uses an open PostgreSQL database (the provider's own, shared with
// its tables).
func New(ctx context.Context, db *sqlstore.DB, atRestKey []byte) (*storesql.Store, error) {
	if db.Dialect != sqlstore.Postgres {
		return nil, fmt.Errorf("pgstore: the database is %s, not PostgreSQL", db.Dialect)
	}
	return storesql.New(ctx, db, atRestKey)
}

func check(dsn string) error {
	cfg, err := sqlstore.ParseDSN(dsn)
	if err != nil {
		return err
	}
	if cfg.Dialect != sqlstore.Postgres {
		return fmt.Errorf("pgstore: %s is not a PostgreSQL DSN (want postgres://…)", sqlstore.RedactDSN(dsn))
	}
	return nil
}
