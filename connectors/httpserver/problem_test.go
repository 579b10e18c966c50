package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProblem(t *testing.T) {
	kind := NewProblem("no-route", http.StatusUnprocessableEntity, "no provider can take this request")
	cause := errors.New("private: issuer x refused")
	p := kind.WithDetail("Ecom_Payment_Card_Number").WithCause(cause)
	if kind.Detail() != "" || kind.Cause() != nil {
		t.Fatal("WithDetail/WithCause changed the declared kind")
	}
	if !errors.Is(p, kind) || errors.Is(p, ProblemInternal) {
		t.Error("Is must match by type only")
	}
	if !errors.Is(p, cause) {
		t.Error("the cause must unwrap")
	}
	if got := AsProblem(fmt.Errorf("wrapped: %w", p)); got != p {
		t.Errorf("AsProblem of a wrapped problem = %v", got)
	}
	if got := AsProblem(cause); got.Type != "internal" || got.Cause() != cause {
		t.Errorf("AsProblem of a plain error = %v", got)
	}
	w := httptest.NewRecorder()
	p.Write(w)
	if w.Code != http.StatusUnprocessableEntity || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(w.Body.String(), "private") {
		t.Errorf("the cause was sent: %s", w.Body)
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "urn:kecis:problem:no-route", "title": "no provider can take this request",
		"status": float64(422), "detail": "Ecom_Payment_Card_Number"}
	if len(doc) != len(want) {
		t.Errorf("document %v, want %v", doc, want)
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
}

// TestBodyProblem: a body over the limit is too-large (413), any other
// read failure unreadable (400); the error is the cause.
func TestBodyProblem(t *testing.T) {
	over := &http.MaxBytesError{Limit: 10}
	if p := BodyProblem(fmt.Errorf("read: %w", over)); p.Type != "too-large" || p.Status != 413 || !errors.Is(p.Cause(), over) {
		t.Errorf("too large: %s %d %v", p.Type, p.Status, p.Cause())
	}
	if p := BodyProblem(errors.New("connection reset")); p.Type != "unreadable" || p.Status != 400 {
		t.Errorf("unreadable: %s %d", p.Type, p.Status)
	}
}

// TestOneDeclarationPerType: a type declared again with its status and
// title is the first declaration; with another status or title the
// program panics as it declares it; Declared lists every type once, in
// order.
func TestOneDeclarationPerType(t *testing.T) {
	first := NewProblem("test-declared-once", http.StatusBadRequest, "a test problem")
	if again := NewProblem("test-declared-once", http.StatusBadRequest, "a test problem"); again != first {
		t.Error("a second identical declaration is not the first")
	}
	for _, c := range []struct {
		status int
		title  string
	}{{http.StatusBadRequest, "another title"}, {http.StatusConflict, "a test problem"}} {
		func() {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, `"test-declared-once" declared as 400 "a test problem"`) {
					t.Errorf("declared again as %d %q: recovered %v; want a panic naming both declarations", c.status, c.title, r)
				}
			}()
			NewProblem("test-declared-once", c.status, c.title)
		}()
	}
	all := Declared()
	seen := map[string]bool{}
	for i, p := range all {
		if seen[p.Type] || (i > 0 && all[i-1].Type > p.Type) {
			t.Errorf("Declared: %s twice or out of order", p.Type)
		}
		seen[p.Type] = true
	}
	for _, p := range []*Problem{first, ProblemBadRequest, ProblemTooLarge, ProblemUnreadable, ProblemMetadataUnavailable, ProblemRateLimited, ProblemInternal} {
		if !seen[p.Type] {
			t.Errorf("Declared lacks %s", p.Type)
		}
	}
}

// TestFail: Fail sends the problem with its detail's card numbers redacted,
// never its cause, and logs type, status, detail and cause, redacted too,
// at the level the status calls for.
func TestFail(t *testing.T) {
	const pan = "4111111111111111"
	for _, c := range []struct {
		p     *Problem
		level string
	}{
		{ProblemBadRequest, "INFO"},
		{NewProblem("test-forbidden", http.StatusForbidden, "not yours"), "WARN"},
		{ProblemInternal, "ERROR"},
	} {
		var log bytes.Buffer
		w := httptest.NewRecorder()
		err := c.p.WithDetail("card " + pan + " refused").WithCause(errors.New("cause with " + pan))
		Fail(context.Background(), w, slog.New(slog.NewTextHandler(&log, nil)), "refused", err, slog.String("who", "tester"))
		if w.Code != c.p.Status || strings.Contains(w.Body.String(), pan) || strings.Contains(w.Body.String(), "cause with") {
			t.Errorf("%s: sent %d %s", c.p.Type, w.Code, w.Body.String())
		}
		l := log.String()
		if strings.Contains(l, pan) || !strings.Contains(l, "level="+c.level) || !strings.Contains(l, "cause=") ||
			!strings.Contains(l, "who=tester") || !strings.Contains(l, "problem="+c.p.Type) {
			t.Errorf("%s: logged %s", c.p.Type, l)
		}
	}
}
