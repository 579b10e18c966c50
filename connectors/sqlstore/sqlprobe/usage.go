package sqlprobe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// Storage classes of the hub's tables (KECIS §12.3; the hub store's
// schema, federation/store/sqlstore — measured here, in plumbing, so that
// the tools measure the hub's file without linking the hub): the audit log and its
// dictionaries are kept for good; idempotency entries and replay records
// are pruned once past database.idempotency_retention and their expiry, so
// what they hold per approval is held only within that window. Everything
// else (the registry, routing rules, metadata snapshots) does not grow
// with traffic.
const (
	StorageRetained  = "retained"
	StorageRetention = "within retention"
	StorageOther     = "other"
)

// StorageClass is the storage class of one of the hub's tables.
func StorageClass(table string) string {
	switch table {
	case "hub_audit", "hub_audit_dicts":
		return StorageRetained
	case "hub_idempotency", "hub_replay":
		return StorageRetention
	}
	return StorageOther
}

// Usage is what a SQLite database holds, measured after a checkpoint:
// bytes of pages in use by table, each table's indexes counted with it
// (and sqlite_schema, free pages left out), and the file's size.
type Usage struct {
	Tables map[string]int64
	File   int64
}

// Class sums the tables of one storage class.
func (u *Usage) Class(class string) int64 {
	var n int64
	for t, b := range u.Tables {
		if StorageClass(t) == class {
			n += b
		}
	}
	return n
}

// Sub is what u holds more than before, table by table (tables that did
// not change are left out).
func (u *Usage) Sub(before *Usage) *Usage {
	d := &Usage{Tables: map[string]int64{}, File: u.File - before.File}
	for t, n := range u.Tables {
		if x := n - before.Tables[t]; x != 0 {
			d.Tables[t] = x
		}
	}
	for t, n := range before.Tables {
		if _, ok := u.Tables[t]; !ok {
			d.Tables[t] = -n
		}
	}
	return d
}

// checkpointTries bounds how long MeasureSQLite waits for readers that
// hold the WAL (250 ms apart).
const checkpointTries = 20

// MeasureSQLite measures the SQLite database at path, which other
// connections or processes may have open: it checkpoints it (TRUNCATE: the
// WAL is folded into the database and emptied, so that what was written
// counts once, at its place in its table, and the WAL's size, which says
// nothing of the data, not at all), then sums its pages with the dbstat
// virtual table. It is how the hub's storage per approval is counted
// (KECIS §12.3): the database after a checkpoint, by table.
func MeasureSQLite(ctx context.Context, path string) (*Usage, error) {
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for try := 0; ; try++ {
		var busy, logPages, done int
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil {
			return nil, fmt.Errorf("store: measure %s: checkpoint: %w", path, err)
		}
		if busy == 0 {
			break
		}
		if try == checkpointTries {
			return nil, fmt.Errorf("store: measure %s: checkpoint: %w", path, errors.New("the database stayed busy"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	u := &Usage{Tables: map[string]int64{}}
	err = func() error {
		rows, err := db.QueryContext(ctx, `SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize)
		FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				t string
				n int64
			)
			if err := rows.Scan(&t, &n); err != nil {
				return err
			}
			u.Tables[t] = n
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("store: measure %s: dbstat: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&u.File); err != nil {
		return nil, fmt.Errorf("store: measure %s: %w", path, err)
	}
	return u, nil
}
