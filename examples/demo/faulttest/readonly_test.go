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
// ones take it) while replicas serve. Each request is refused at once
// with 503 and Retry-After (KECIS §12.8) — HubUnavailable, the hub could
// not record it, or the problem unavailable — never 500 internal (a
// pooled session the change ended is run again on a new one) nor
// ProviderUnavailable, and nothing reaches the issuer: a hub that cannot
// record a request does not relay it. Both replicas' /readyz fail naming
// database-writes, and pass again once the database takes writes; the
// same keys retried then finish with one outcome each, and the issuer's
// ledger reconciles.
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
		if !ans.hubUnavailable() {
			t.Errorf("request %s at replica %s while the database is read-only: %v (Retry-After %q), want 503 HubUnavailable or unavailable with Retry-After",
				rq.key, r.name, ans, ans.retryAfter)
		}
		seen[ans.String()]++
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("requests while the database is read-only: %v, the slowest answered in %v", seen, slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("a refusal took %v: a database that refuses writes must be answered at once", slowest)
	}
	for _, r := range []*replica{a, b} {
		took := r.waitReadyz(t, http.StatusServiceUnavailable, 10*time.Second)
		code, body := r.readyz()
		t.Logf("replica %s's /readyz while the database is read-only (%v): %d %s", r.name, took.Round(time.Millisecond), code, strings.ReplaceAll(strings.TrimSpace(body), "\n", "; "))
		if !strings.Contains(body, "database: ok") || !strings.Contains(body, "database-writes: the database refuses writes") {
			t.Errorf("replica %s's /readyz does not say the database refuses writes:\n%s", r.name, body)
		}
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
	for _, r := range []*replica{a, b} {
		t.Logf("replica %s ready %v after the database takes writes again", r.name, r.waitReadyz(t, http.StatusOK, 20*time.Second).Round(time.Millisecond))
	}
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
