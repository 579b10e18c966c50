package faulttest

import (
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestReadOnlyPostgres: the database refuses writes (ALTER DATABASE … SET
// default_transaction_read_only = on, its sessions ended so that the new
// ones take it) while replicas serve. Each request is refused at once — a
// 5xx problem document (the ended sessions) or the outcome unavailable
// (503: the hub could not record it) — and nothing reaches the issuer: a hub that cannot
// record a request does not relay it. Once the database takes writes
// again, the same keys retried finish with one outcome each, and the
// issuer's ledger reconciles.
func TestReadOnlyPostgres(t *testing.T) {
	dsn, admin := newDatabase(t)
	name := strings.TrimPrefix(mustURL(t, dsn).Path, "/")
	f := startFed(t, fedOptions{postgres: dsn})
	a, b := f.addReplica("a"), f.addReplica("b")
	for _, r := range []*replica{a, b} {
		r.waitReadyz(t, http.StatusOK, 20*time.Second)
	}
	ctx := bounded(t)
	dr := &driver{f: f, targets: func() []string { return urls(a, b) }, retryFor: 30 * time.Second}
	before := dr.run(ctx, f.requests("rw", 20, 1000), 4)

	readOnly(t, admin, name, true)
	refused := f.requests("ro", 10, 2000)
	seen := map[string]int{}
	var slowest time.Duration
	for i, rq := range refused {
		r := []*replica{a, b}[i%2]
		start := time.Now()
		ans := f.call(ctx, r.url, "approve", rq.merchant, rq.key, f.approveFields(rq.key, rq.amount))
		if !ans.refused() {
			t.Errorf("request %s at replica %s while the database is read-only: %v, want a refusal (5xx problem or unavailable)", rq.key, r.name, ans)
		}
		seen[ans.String()]++
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("requests while the database is read-only: %v, the slowest answered in %v", seen, slowest.Round(time.Millisecond))
	for _, r := range []*replica{a, b} {
		code, body := r.readyz()
		t.Logf("replica %s's /readyz while the database is read-only: %d %s", r.name, code, strings.ReplaceAll(strings.TrimSpace(body), "\n", "; "))
	}
	// Nothing of the refused requests reached the issuer.
	ledger, err := f.d.Issuer.RecentApprovals(ctx, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ap := range ledger {
		if ap.Amount.Minor >= 2000 && ap.Amount.Minor < 2010 {
			t.Errorf("the issuer approved %d KRW (%s) while the hub could not write", ap.Amount.Minor, ap.Number)
		}
	}

	readOnly(t, admin, name, false)
	after := dr.run(ctx, refused, 4)
	summarize(t, "the refused requests retried once the database takes writes", after, 0)
	f.reconcile(append(before, after...), 1000, 2010)
	f.askAgain(append(before, after...), urls(a, b))
	f.checkHubRecords(append(before, after...))
}

// readOnly sets or resets default_transaction_read_only on database name
// and ends its sessions, so that every new one has the setting.
func readOnly(t *testing.T, admin *sql.DB, name string, on bool) {
	t.Helper()
	stmt := `ALTER DATABASE ` + name + ` SET default_transaction_read_only = on`
	if !on {
		stmt = `ALTER DATABASE ` + name + ` RESET default_transaction_read_only`
	}
	if _, err := admin.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		t.Fatal(err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
