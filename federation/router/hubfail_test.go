package router_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// refusingStore is a store whose Commit fails while refuse is set, as a
// database that refuses writes (read-only, full) or is down.
type refusingStore struct {
	store.Store
	refuse atomic.Bool
}

var errReadOnly = &sqldb.UnavailableError{Err: errors.New("cannot execute INSERT in a read-only transaction")}

func (s *refusingStore) Commit(ctx context.Context, w *store.Writes) (*store.Committed, error) {
	if s.refuse.Load() {
		return nil, errReadOnly
	}
	return s.Store.Commit(ctx, w)
}

// TestRelayHubStoreRefuses: when the hub's own database refuses the
// request's commit, the hub forwards nothing and answers HubUnavailable —
// not ProviderUnavailable, the provider is fine — and the provider's
// breaker is untouched: more refusals than the breaker's threshold, then
// the database takes writes again and the next request is forwarded at
// once (KECIS §12.8).
func TestRelayHubStoreRefuses(t *testing.T) {
	st := &refusingStore{Store: openStore(t)}
	f := newFixtureOn(t, st, 2*time.Second)
	p := newProvider(t, f.providerTLS, f.issuer, answerOK)
	dest := f.addRecipient(t, issuerID, p.url)

	st.refuse.Store(true)
	for i := range router.DefaultBreakerFailures + 2 {
		req, msg := f.request(t, "k-ro", "15000", p.url)
		res := f.relay(req, dest, msg)
		wantOutcome(t, "the hub's database refuses the write", res, router.OutcomeUnavailable, saml.CodeHubUnavailable)
		if res.Status.Code != saml.StatusResponder || res.Body != nil {
			t.Fatalf("request %d: %+v, want Responder/HubUnavailable and no body", i, res.Status)
		}
	}
	if n := len(p.received()); n != 0 {
		t.Fatalf("the provider received %d requests the hub could not record", n)
	}

	st.refuse.Store(false)
	req, msg := f.request(t, "k-ro", "15000", p.url)
	res := f.relay(req, dest, msg)
	wantOutcome(t, "the same key once the database takes writes", res, router.OutcomeAnswered, "")
	if n := len(p.received()); n != 1 {
		t.Fatalf("the provider received %d requests, want the retry's alone", n)
	}
}
