package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/testutil"
)

// serverProblems is every problem the hub's own endpoints answer, with the
// wire form each must keep (clients and the CLI read the type and status).
var serverProblems = []struct {
	name   string
	p      *httpserver.Problem
	status int
	typ    string
}{
	{"ProblemNotFound", ProblemNotFound, 404, "not-found"},
	{"ProblemMetadataUnavailable", ProblemMetadataUnavailable, 503, "metadata-unavailable"},
	{"ProblemUnknownEntity", ProblemUnknownEntity, 404, "unknown-entity"},
	{"httpserver.ProblemTooLarge", httpserver.ProblemTooLarge, 413, "too-large"},
	{"httpserver.ProblemUnreadable", httpserver.ProblemUnreadable, 400, "unreadable"},
	{"ProblemRegistrationClosed", ProblemRegistrationClosed, 403, "registration-closed"},
	{"ProblemNotAnOperator", ProblemNotAnOperator, 403, "not-an-operator"},
	{"ProblemInvalidMetadata", ProblemInvalidMetadata, 400, "invalid-metadata"},
	{"ProblemNotOwner", ProblemNotOwner, 403, "not-owner"},
	{"ProblemInvalidReport", ProblemInvalidReport, 400, "invalid-report"},
	{"ProblemConformance", ProblemConformance, 409, "conformance"},
	{"ProblemTransition", ProblemTransition, 409, "transition"},
	{"ProblemOverlap", ProblemOverlap, 409, "overlap"},
	{"ProblemStaleChange", ProblemStaleChange, 409, "stale-change"},
	{"httpserver.ProblemBadRequest", httpserver.ProblemBadRequest, 400, "bad-request"},
	{"ProblemExists", ProblemExists, 409, "exists"},
	{"ProblemConcurrentUpdate", ProblemConcurrentUpdate, 409, "concurrent-update"},
	{"ProblemInternal", httpserver.ProblemInternal, 500, "internal"},
	{"httpserver.ProblemRateLimited", httpserver.ProblemRateLimited, 429, "rate-limited"},
}

// declaredProblems lists the Problem… variables problems.go declares.
func declaredProblems(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "problems.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, sp := range g.Specs {
			for _, n := range sp.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "Problem") {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// answer runs fail on a bare gin engine and returns the response and what
// was logged.
func answer(t *testing.T, err error) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var logs testutil.SyncBuffer
	s := &Server{Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/x", func(c *gin.Context) { s.fail(c, err) })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	return w, logs.String()
}

// TestServerProblems: every problem the server declares is in the table,
// and each is answered as an RFC 9457 document with its status, type and
// title; its private cause is logged, card numbers redacted, and never
// sent.
func TestServerProblems(t *testing.T) {
	inTable := map[string]bool{}
	for _, c := range serverProblems {
		inTable[c.name] = true
	}
	for _, n := range declaredProblems(t) {
		if !inTable[n] {
			t.Errorf("%s is declared in problems.go but not tested here", n)
		}
	}
	const secret = "dsn=postgres://hub:pa55word@db card 4111111111111111"
	for _, c := range serverProblems {
		t.Run(c.typ+"/"+c.name, func(t *testing.T) {
			if c.p.Status != c.status || c.p.Type != c.typ {
				t.Fatalf("declared %d %s, want %d %s", c.p.Status, c.p.Type, c.status, c.typ)
			}
			w, logs := answer(t, c.p.WithCause(errors.New(secret)))
			if w.Code != c.status {
				t.Errorf("status %d, want %d", w.Code, c.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var doc map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("not JSON: %s", w.Body)
			}
			want := map[string]any{"type": "urn:kecis:problem:" + c.typ, "title": c.p.Title, "status": float64(c.status)}
			if fmt.Sprint(doc) != fmt.Sprint(want) {
				t.Errorf("answered %v, want %v", doc, want)
			}
			if strings.Contains(w.Body.String(), "pa55word") || strings.Contains(w.Body.String(), "4111") {
				t.Errorf("the cause was sent: %s", w.Body)
			}
			if !strings.Contains(logs, "pa55word") || strings.Contains(logs, "4111111111111111") || !strings.Contains(logs, `"problem":"`+c.typ+`"`) {
				t.Errorf("the log should hold the cause, its card number redacted, and the type: %s", logs)
			}
		})
	}
	// An error that is no Problem is internal: nothing of it is sent.
	w, logs := answer(t, errors.New(secret))
	if w.Code != 500 || strings.Contains(w.Body.String(), "pa55word") || !strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a plain error: %d %s / %s", w.Code, w.Body, logs)
	}
}

// TestRegistryProblem: each registry and store error maps to its problem;
// the registry's reason is the detail where it tells what to fix, and an
// unknown error (a database failure) is internal with nothing sent.
func TestRegistryProblem(t *testing.T) {
	cases := []struct {
		err    error
		want   *httpserver.Problem
		detail bool
	}{
		{fmt.Errorf("%w: the metadata names %q", registry.ErrInvalidMetadata, "https://x.example"), ProblemInvalidMetadata, true},
		{registry.ErrNotOwner, ProblemNotOwner, false},
		{fmt.Errorf("%w: report.json: bad", registry.ErrInvalidReport), ProblemInvalidReport, true},
		{fmt.Errorf("%w: the issuer plan did not pass (2 FAILED)", registry.ErrConformance), ProblemConformance, true},
		{fmt.Errorf("%w: approve a participant that is active", registry.ErrTransition), ProblemTransition, true},
		{fmt.Errorf("%w with b; approve with --allow-overlap", registry.ErrOverlap), ProblemOverlap, true},
		{fmt.Errorf("%w: change 2 is pending now, not 1", registry.ErrStaleChange), ProblemStaleChange, true},
		{fmt.Errorf("%w: an overlap is allowed only with a reason", registry.ErrDecision), httpserver.ProblemBadRequest, true},
		{fmt.Errorf("insert: %w", store.ErrExists), ProblemExists, false},
		{store.ErrNotFound, ProblemUnknownEntity, false},
		{fmt.Errorf("update: %w", store.ErrConflict), ProblemConcurrentUpdate, false},
		{errors.New("database is locked"), httpserver.ProblemInternal, false},
	}
	mapped := map[error]bool{}
	for _, c := range cases {
		p := registryProblem(c.err)
		if p.Type != c.want.Type || p.Status != c.want.Status || p.Title != c.want.Title {
			t.Errorf("%v: %s %d, want %s %d", c.err, p.Type, p.Status, c.want.Type, c.want.Status)
		}
		if !errors.Is(p, c.want) || !errors.Is(p.Cause(), c.err) {
			t.Errorf("%v: the problem is not %s caused by the error", c.err, c.want.Type)
		}
		if got := p.Detail() != ""; got != c.detail {
			t.Errorf("%v: detail %q", c.err, p.Detail())
		} else if c.detail && p.Detail() != c.err.Error() {
			t.Errorf("%v: detail %q, want the registry's reason", c.err, p.Detail())
		}
		for _, m := range registryProblems {
			if errors.Is(c.err, m.err) {
				mapped[m.err] = true
			}
		}
	}
	for _, m := range registryProblems {
		if !mapped[m.err] {
			t.Errorf("%v is mapped but not tested", m.err)
		}
	}
}

// TestOneTitlePerType: the hub answers one vocabulary — its own endpoints'
// problems, the JSON facade's and connectors/httpserver's: each type has
// one status and one title wherever it is answered.
func TestOneTitlePerType(t *testing.T) {
	all := append([]*httpserver.Problem{}, facade.Problems...)
	for _, c := range serverProblems {
		all = append(all, c.p)
	}
	seen := map[string]*httpserver.Problem{}
	for _, p := range all {
		if q, ok := seen[p.Type]; ok && (q.Title != p.Title || q.Status != p.Status) {
			t.Errorf("%s: %d %q and %d %q", p.Type, q.Status, q.Title, p.Status, p.Title)
		}
		seen[p.Type] = p
	}
	if len(seen) < len(serverProblems) {
		t.Errorf("only %d types", len(seen))
	}
}

// TestDatabaseUnavailableIs503: an error of a database that cannot answer
// for now — connection lost, failover — is 503 with Retry-After from the
// registration and operator endpoints too, never an internal error
// (KECIS §12.8).
func TestDatabaseUnavailableIs503(t *testing.T) {
	down := &sqlstore.UnavailableError{Err: errors.New("connection refused")}
	for name, err := range map[string]error{"bare": down, "wrapped": fmt.Errorf("list entities: %w", down)} {
		p := registryProblem(err)
		if p.Status != http.StatusServiceUnavailable || p.Type != httpserver.ProblemUnavailable.Type {
			t.Errorf("%s: %d %s", name, p.Status, p.Type)
		}
		w := httptest.NewRecorder()
		p.Write(w)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: answered %d, Retry-After %q", name, w.Code, w.Header().Get("Retry-After"))
		}
	}
	if p := registryProblem(errors.New("disk I/O error")); p.Status != http.StatusInternalServerError {
		t.Errorf("another error: %d", p.Status)
	}
}
