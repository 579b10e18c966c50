package testutil

import (
	"bytes"
	"database/sql"
	"sync"
	"testing"

	"github.com/kecis/kecis/ecml"

	_ "modernc.org/sqlite" // the "sqlite" driver for ScanSQLite
)

// SyncBuffer collects log output from concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// AssertNoPANInSQLite reads every text and blob value of every table of a
// SQLite database and fails the test for each Luhn-valid 13–19 digit run
// (KECIS §9.11: no card number in clear in a stored row). Integer columns are
// skipped: times stored as 16-digit microseconds are Luhn-valid one time in
// ten. It returns how many values it read.
func AssertNoPANInSQLite(t testing.TB, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	read := 0
	for _, tb := range tables {
		r, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch x := v.(type) {
				case string:
					s = x
				case []byte:
					s = string(x)
				default:
					continue
				}
				read++
				if ecml.ContainsPAN(s) {
					t.Errorf("%s: a card number in clear in %s.%s", path, tb, cols[i])
				}
			}
		}
		r.Close()
	}
	return read
}
