package testutil

import (
	"bytes"
	"database/sql"
	"sync"
	"testing"

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
// (KECIS §9.11: no card number in clear in a stored row; see
// AssertNoSecretsInRows). It returns how many values it read.
func AssertNoPANInSQLite(t testing.TB, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Logf("reading %s", path)
	return AssertNoSecretsInRows(t, db, nil)
}
