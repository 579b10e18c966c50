package faulttest

import (
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSQLiteFull: the demo's hub on SQLite, and beside it two replicas on
// the same hub.db: one whose connections stop at the database's size
// (PRAGMA max_page_count, so that every write needing a page fails with
// SQLITE_FULL), one without a limit. The full replica's /readyz fails
// naming database-writes (KECIS §12.8) while the healthy one's passes.
// Approvals round robin over both: the full replica refuses each request
// it cannot record — at once, 503 with Retry-After, HubUnavailable or the
// problem unavailable, never 500 — or, when it recorded and relayed a request but cannot
// record its outcome, answers Pending; the client's retry with the same
// key at the other replica (once the lease of the first attempt ended)
// finishes it with one outcome. Nothing is approved twice or lost, and
// each finished request has one done idempotency record and its audit.
func TestSQLiteFull(t *testing.T) {
	f := startFed(t, fedOptions{})
	hubDB := filepath.Join(f.dir, "hub", "hub.db")
	pages := pageCount(t, hubDB)
	full := f.addReplica("full", fmt.Sprintf("KECIS_DATABASE_DSN=sqlite:%s?_pragma=max_page_count(%d)", hubDB, pages))
	ok := f.addReplica("ok")
	ok.waitReadyz(t, http.StatusOK, 20*time.Second)
	// The full replica is not ready: at its max_page_count, with no free
	// page, every write that needs a page fails.
	took := full.waitReadyz(t, http.StatusServiceUnavailable, 20*time.Second)
	waitFor(t, "the full replica's /readyz naming database-writes", 20*time.Second, func() bool {
		_, body := full.readyz()
		return strings.Contains(body, "database: ok") && (strings.Contains(body, "database-writes: the database is full") || freePages(t, hubDB) > 0)
	})
	code, body := full.readyz()
	t.Logf("the full replica's /readyz after %v (%d free pages): %d %s", took.Round(time.Millisecond), freePages(t, hubDB), code,
		strings.ReplaceAll(strings.TrimSpace(body), "\n", "; "))
	ctx := bounded(t)
	refusals := map[string]int{}
	mu := make(chan struct{}, 1)
	dr := &driver{f: f, targets: func() []string { return urls(full, ok) }, retryFor: 30 * time.Second,
		onAnswer: func(target string, a answer) {
			if target == full.url && !a.final() {
				mu <- struct{}{}
				refusals[a.String()]++
				<-mu
				// A refusal; Pending when the request was recorded and
				// relayed but its outcome could not be; in flight for the
				// retries of such a key until its lease ends.
				if !a.hubUnavailable() && a.status != http.StatusAccepted && a.status != http.StatusConflict {
					t.Errorf("the full replica answered %v (Retry-After %q): want 503 unavailable with Retry-After, Pending or in flight", a, a.retryAfter)
				}
			}
		}}
	start := time.Now()
	outs := dr.run(ctx, f.requests("full", 40, 1000), 4)
	summarize(t, "40 approvals over a full and a healthy replica", outs, time.Since(start))
	t.Logf("hub.db at %d pages when the full replica started, %d at the end; the full replica's refusals: %v", pages, pageCount(t, hubDB), refusals)
	if len(refusals) == 0 {
		t.Error("the full replica refused nothing: the fault was not injected")
	}
	f.reconcile(outs, 1000, 1040)
	f.askAgain(outs, urls(ok))
	f.checkHubRecords(outs)
}

// freePages is the number of pages on the free list of the SQLite
// database at path: pages a connection at its max_page_count can still
// write into.
func freePages(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`PRAGMA freelist_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pageCount is the number of pages of the SQLite database at path.
func pageCount(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
