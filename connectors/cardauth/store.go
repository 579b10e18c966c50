package cardauth

import (
	"context"
	"embed"

	"github.com/kecis/kecis/connectors/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Component is the package's name in schema_migrations.
const Component = "kecis-cardauth"

type sqlStore struct {
	db *sqlstore.DB
}

func newSQLStore(ctx context.Context, db *sqlstore.DB) (*sqlStore, error) {
	if _, err := db.MigrateFS(ctx, Component, migrations, "migrations"); err != nil {
		return nil, err
	}
	return &sqlStore{db: db}, nil
}
