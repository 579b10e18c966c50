package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
)

// Migration is one versioned schema change of one component.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Checksum identifies the migration's text; an applied migration whose
// file later changed is reported, not silently skipped.
func (m Migration) Checksum() string {
	sum := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(sum[:])
}

var migrationName = regexp.MustCompile(`^([0-9]+)_([A-Za-z0-9_-]+)\.sql$`)

// LoadMigrations reads the migrations in dir of fsys: files named
// NNNN_name.sql (the number is the version), ordered by version. Other
// files are an error, so that a misnamed migration is not silently
// ignored.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations %s: %w", dir, err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: migration file %s/%s: want NNNN_name.sql", dir, e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration file %s/%s: bad version", dir, e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlstore: migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// MigrateFS loads the migrations for db's dialect from root/<dialect> in
// fsys (root/sqlite or root/postgres) and applies them (see Migrate).
func (db *DB) MigrateFS(ctx context.Context, component string, fsys fs.FS, root string) (int, error) {
	ms, err := LoadMigrations(fsys, path.Join(root, string(db.Dialect)))
	if err != nil {
		return 0, err
	}
	return db.Migrate(ctx, component, ms)
}

// Migrate applies, in version order, the migrations of component that the
// schema_migrations table does not list yet, each in its own transaction
// together with its row in schema_migrations, and returns how many it
// applied. component ("hub", "adapter", …) keeps the version sequences of
// different owners of one database apart.
//
// Safe when several processes start at once: on PostgreSQL the whole run
// holds a session advisory lock keyed by the current schema (other schemas
// migrate in parallel); on SQLite each migration's BEGIN IMMEDIATE
// serialises the runners and the migration is re-checked inside the
// transaction. A migration already applied with a different checksum is an
// error: migrations are append-only. Versions applied by a newer binary
// that this one does not know are left alone, so that an older replica
// keeps starting during a rolling upgrade — whether it can still write
// depends on the migration: the hub's 0005 and 0006 move replay and audit
// rows to new tables, so replicas older than them refuse their writes
// (HubUnavailable) and must be stopped before the upgrade (docs/hub.md).
func (db *DB) Migrate(ctx context.Context, component string, migrations []Migration) (int, error) {
	if component == "" {
		return 0, errors.New("sqlstore: migrate: empty component")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrate %s: %w", component, err)
	}
	defer conn.Close()

	if db.Dialect == Postgres {
		var schema string
		if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return 0, fmt.Errorf("sqlstore: migrate %s: current schema: %w", component, err)
		}
		h := fnv.New64a()
		h.Write([]byte("kecis/schema_migrations/" + schema))
		key := int64(h.Sum64())
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return 0, fmt.Errorf("sqlstore: migrate %s: advisory lock: %w", component, err)
		}
		defer func() {
			// The lock ends with the session anyway; unlock so that the
			// pooled connection does not keep it.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
		}()
	}

	createTable := `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	checksum   TEXT    NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (component, version)
)`
	if err := Retry(ctx, func() error {
		_, err := conn.ExecContext(ctx, createTable)
		return err
	}); err != nil {
		return 0, fmt.Errorf("sqlstore: migrate %s: create schema_migrations: %w", component, err)
	}

	applied := 0
	for i, m := range migrations {
		if i > 0 && m.Version <= migrations[i-1].Version {
			return applied, fmt.Errorf("sqlstore: migrate %s: migrations not in increasing version order at %d", component, m.Version)
		}
		var did bool
		err := Retry(ctx, func() error {
			var err error
			did, err = applyOne(ctx, conn, db.Dialect, component, m)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("sqlstore: migrate %s to version %d (%s): %w", component, m.Version, m.Name, err)
		}
		if did {
			applied++
		}
	}
	return applied, nil
}

// applyOne applies m unless schema_migrations lists it, in one transaction.
func applyOne(ctx context.Context, conn *sql.Conn, d Dialect, component string, m Migration) (bool, error) {
	var opts *sql.TxOptions // SQLite: BEGIN IMMEDIATE (see sqliteDefaults)
	if d == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() // a no-op after Commit

	var sum string
	err = tx.QueryRowContext(ctx,
		`SELECT checksum FROM schema_migrations WHERE component = $1 AND version = $2`,
		component, m.Version).Scan(&sum)
	switch {
	case err == nil:
		if sum != m.Checksum() {
			return false, fmt.Errorf("already applied with checksum %s, but the migration now has %s: never edit an applied migration, add a new one", sum, m.Checksum())
		}
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)`,
		component, m.Version, m.Name, m.Checksum()); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

// AppliedVersions returns the versions of component that schema_migrations
// lists, in order (for diagnostics and tests).
func (db *DB) AppliedVersions(ctx context.Context, component string) ([]int, error) {
	rows, err := db.QueryContext(ctx,
		`SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version`, component)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: applied versions of %s: %w", component, err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlstore: applied versions of %s: %w", component, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: applied versions of %s: %w", component, err)
	}
	return vs, nil
}
