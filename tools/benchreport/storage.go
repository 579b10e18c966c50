package main

import (
	"sort"

	"github.com/kecis/kecis/connectors/sqlstore/sqlprobe"
)

// HubStorage is what the demo hub's database grew by per approval over the
// history run, measured on the database after a checkpoint (the WAL folded
// in and truncated, so its size says nothing), by table with its indexes
// (sqlprobe.MeasureSQLite, as the hub store's own bound test measures it).
type HubStorage struct {
	// Tables: bytes per approval by table, its indexes' pages included.
	Tables map[string]float64 `json:"tables"`
	// FileBytes: the database file's growth per approval (pages in use and
	// free pages alike).
	FileBytes float64 `json:"file_bytes"`
}

// Storage classes of the hub's tables (KECIS §12.3, sqlprobe.StorageClass):
// the audit log is kept for good; idempotency entries and replay records
// only within their retention.
const (
	storageRetained  = sqlprobe.StorageRetained
	storageRetention = sqlprobe.StorageRetention
	storageOther     = sqlprobe.StorageOther
)

// Class sums the tables of one storage class.
func (h *HubStorage) Class(class string) float64 {
	var n float64
	for t, b := range h.Tables {
		if sqlprobe.StorageClass(t) == class {
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

// perApproval is what the database grew by from a to b, per approval.
func perApproval(a, b *sqlprobe.Usage, approvals int) *HubStorage {
	d := b.Sub(a)
	h := &HubStorage{Tables: map[string]float64{}, FileBytes: float64(d.File) / float64(approvals)}
	for t, n := range d.Tables {
		h.Tables[t] = float64(n) / float64(approvals)
	}
	return h
}
