package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
)

// writeRefusing is the hub's store, except that Writable reports what the
// test sets: a database that answers but refuses writes.
type writeRefusing struct {
	store.Store
	refuse atomic.Bool
}

func (s *writeRefusing) Writable(ctx context.Context) error {
	if s.refuse.Load() {
		return errors.New("the database refuses writes (transaction_read_only is on)")
	}
	return s.Store.Writable(ctx)
}

// TestReadyDatabaseWrites: /readyz fails, naming database-writes, while
// the database answers but refuses writes, and passes again once it takes
// them (KECIS §12.8).
func TestReadyDatabaseWrites(t *testing.T) {
	h := startHub(t, "")
	c, err := server.LoadConfig(h.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &writeRefusing{Store: h.st}
	srv, err := server.New(c, st, nil, server.Describe, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Publisher = srv.DefaultPublisher()
	ready := func() (int, string) {
		w := httptest.NewRecorder()
		srv.OpsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return w.Code, w.Body.String()
	}
	if code, body := ready(); code != http.StatusOK || !strings.Contains(body, "database-writes: ok") {
		t.Fatalf("/readyz on a writable database: %d %s", code, body)
	}
	st.refuse.Store(true)
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "database-writes: the database refuses writes") ||
		!strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz while the database refuses writes: %d %s", code, body)
	}
	st.refuse.Store(false)
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("/readyz once the database takes writes again: %d %s", code, body)
	}
}
