package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestOps: /healthz answers ok; /readyz lists every named check in order
// and is 503 as soon as one fails (a named one, or one Ready answers that
// is not named), telling OnCheck each named result; /metrics is the
// handler given, or nothing.
func TestOps(t *testing.T) {
	failing := map[string]error{}
	var told []string
	o := Ops{
		Checks: []string{"database", "keys", "metadata"},
		Ready: func(context.Context) map[string]error {
			out := map[string]error{"database": nil, "keys": nil}
			for k, v := range failing {
				out[k] = v
			}
			return out
		},
		OnCheck: func(name string, ok bool) { told = append(told, fmt.Sprintf("%s=%v", name, ok)) },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "kecis_up 1\n") }),
	}
	h := o.Handler()
	get := func(method, path string) (int, string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
	}
	if code, ctype, body := get("GET", "/healthz"); code != 200 || ctype != "text/plain; charset=utf-8" || body != "ok\n" {
		t.Errorf("healthz: %d %q %q", code, ctype, body)
	}
	for _, c := range []struct {
		name    string
		failing map[string]error
		code    int
		body    string
		told    []string
	}{
		{"all pass", nil, 200, "database: ok\nkeys: ok\nmetadata: ok\n",
			[]string{"database=true", "keys=true", "metadata=true"}},
		{"one fails", map[string]error{"keys": errors.New("the signing certificate has expired")}, 503,
			"database: ok\nkeys: the signing certificate has expired\nmetadata: ok\n",
			[]string{"database=true", "keys=false", "metadata=true"}},
		{"two fail", map[string]error{"database": errors.New("down"), "metadata": errors.New("database unavailable")}, 503,
			"database: down\nkeys: ok\nmetadata: database unavailable\n",
			[]string{"database=false", "keys=true", "metadata=false"}},
		{"an unnamed check fails", map[string]error{"other": errors.New("x")}, 503, "database: ok\nkeys: ok\nmetadata: ok\n",
			[]string{"database=true", "keys=true", "metadata=true"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			failing, told = c.failing, nil
			code, ctype, body := get("GET", "/readyz")
			if code != c.code || ctype != "text/plain; charset=utf-8" || body != c.body {
				t.Errorf("readyz: %d %q\n%s\nwant %d\n%s", code, ctype, body, c.code, c.body)
			}
			if !slices.Equal(told, c.told) {
				t.Errorf("OnCheck told %v; want %v", told, c.told)
			}
		})
	}
	if code, _, body := get("GET", "/metrics"); code != 200 || body != "kecis_up 1\n" {
		t.Errorf("metrics: %d %q", code, body)
	}
	if code, _, _ := get("POST", "/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", code)
	}
	if code, _, _ := get("GET", "/other"); code != http.StatusNotFound {
		t.Errorf("GET /other: %d", code)
	}
	bare := Ops{}.Handler()
	for path, want := range map[string]int{"/readyz": 200, "/metrics": 404, "/healthz": 200} {
		rec := httptest.NewRecorder()
		bare.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("without checks or metrics, %s: %d; want %d", path, rec.Code, want)
		}
	}
}
