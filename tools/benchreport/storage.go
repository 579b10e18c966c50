package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// HubStorage is what the demo hub's database grew by per approval over the
// history run, measured on the database after a checkpoint (the WAL folded
// in and truncated, so its size says nothing), by table with its indexes.
type HubStorage struct {
	// Tables: bytes per approval by table, its indexes' pages included.
	Tables map[string]float64 `json:"tables"`
	// FileBytes: the database file's growth per approval (pages in use and
	// free pages alike).
	FileBytes float64 `json:"file_bytes"`
}

// Storage classes of the hub's tables (KECIS §12.3): the audit log is kept
// for good; idempotency entries and replay records are pruned once past
// database.idempotency_retention and their expiry, so what they hold per
// approval is held only within that window.
const (
	storageRetained  = "retained"
	storageRetention = "within retention"
	storageOther     = "other"
)

func storageClass(table string) string {
	switch table {
	case "hub_audit", "hub_audit_dicts":
		return storageRetained
	case "hub_idempotency", "hub_replay":
		return storageRetention
	}
	return storageOther
}

// Class sums the tables of one storage class.
func (h *HubStorage) Class(class string) float64 {
	var n float64
	for t, b := range h.Tables {
		if storageClass(t) == class {
			n += b
		}
	}
	return n
}

// sortedTables lists the tables largest first (ties by name).
func (h *HubStorage) sortedTables() []string {
	ts := make([]string, 0, len(h.Tables))
	for t := range h.Tables {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if h.Tables[ts[i]] != h.Tables[ts[j]] {
			return h.Tables[ts[i]] > h.Tables[ts[j]]
		}
		return ts[i] < ts[j]
	})
	return ts
}

// dbSize is one measurement of a SQLite database: bytes in use by table
// (indexes counted with their table) and the file's size.
type dbSize struct {
	tables map[string]int64
	file   int64
}

// measureDB checkpoints the SQLite database at path (TRUNCATE: the WAL is
// folded into the database and emptied; another process may have it open)
// and measures its pages with the dbstat virtual table.
func measureDB(ctx context.Context, path string) (*dbSize, error) {
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for try := 0; ; try++ {
		var busy, logPages, done int
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			break
		}
		if try == 20 {
			return nil, errors.New("checkpoint: the database stayed busy")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	s := &dbSize{tables: map[string]int64{}}
	rows, err := db.QueryContext(ctx, `SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize)
		FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("dbstat: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t string
			n int64
		)
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		s.tables[t] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&s.file); err != nil {
		return nil, err
	}
	return s, nil
}

// perApproval is what the database grew by from a to b, per approval.
func perApproval(a, b *dbSize, approvals int) *HubStorage {
	h := &HubStorage{Tables: map[string]float64{}, FileBytes: float64(b.file-a.file) / float64(approvals)}
	for t, n := range b.tables {
		if d := n - a.tables[t]; d != 0 {
			h.Tables[t] = float64(d) / float64(approvals)
		}
	}
	return h
}
