package facade_test

import (
	"testing"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/federation/facade"
)

// TestHubDatabaseUnavailable: while the hub's database refuses writes the
// facade answers 503 with Retry-After — the CallResponse HubUnavailable,
// nothing relayed —, while it is down 503 unavailable (a problem) on both
// endpoints, never 500; once it takes writes again the same key is
// approved once (KECIS §12.8).
func TestHubDatabaseUnavailable(t *testing.T) {
	db := &dbState{}
	env := newEnv(t, options{db: db})
	body := jsonBody(t, map[string]any{"fields": approveFields("WEB-RO", "15000"),
		"encrypted": map[string]string{"card": browserCard(t, env.issuer, issuerID, "4111111111111111")}})
	retryAfter := httpserver.RetryAfterSeconds(facade.RetryAfterUnavailable)

	db.readOnly.Store(true)
	a := env.do(t, request{path: approve, key: "k-ro", body: body})
	if a.status != 503 || a.json["outcome"] != "unavailable" || a.json["sub_status"] != "HubUnavailable" || a.header.Get("Retry-After") != retryAfter {
		t.Fatalf("approve while the database refuses writes: %d %s (Retry-After %q), want 503 HubUnavailable with Retry-After %s",
			a.status, a.raw, a.header.Get("Retry-After"), retryAfter)
	}
	if got, _ := env.issuer.received(); len(got) != 0 {
		t.Fatalf("the issuer received %d requests the hub could not record", len(got))
	}

	db.down.Store(true)
	for _, r := range []request{{path: approve, key: "k-ro", body: body}, {path: "/v1/routes", body: `{"service":"urn:kecis:service:card:approve"}`}} {
		a := env.do(t, r)
		checkProblem(t, a, 503, "unavailable", "")
		if a.header.Get("Retry-After") != retryAfter {
			t.Errorf("%s while the database is down: Retry-After %q, want %s", r.path, a.header.Get("Retry-After"), retryAfter)
		}
	}

	db.down.Store(false)
	db.readOnly.Store(false)
	a = env.do(t, request{path: approve, key: "k-ro", body: body})
	if a.status != 200 || a.json["outcome"] != "answered" || a.header.Get("Retry-After") != "" {
		t.Fatalf("approve once the database takes writes: %d %s", a.status, a.raw)
	}
	if got, _ := env.issuer.received(); len(got) != 1 {
		t.Fatalf("the issuer received %d requests, want 1", len(got))
	}
}
