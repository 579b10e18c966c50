package webcrypto

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPublishedIntegrity: docs/hub.md publishes the Subresource Integrity
// hash of the served script, in its table and in the checkout page's
// script tag, and the hash is the served bytes'.
func TestPublishedIntegrity(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hub.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := Integrity()
	row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(Path) + "` \\| `(sha384-[A-Za-z0-9+/=]+)` \\|$").FindSubmatch(doc)
	if row == nil {
		t.Fatalf("docs/hub.md has no table row | `%s` | `sha384-…` |", Path)
	}
	if string(row[1]) != want {
		t.Errorf("docs/hub.md publishes %s for %s; the served script's is %s", row[1], Name, want)
	}
	tag := regexp.MustCompile(`<script src="[^"]*` + regexp.QuoteMeta(Path) + `"\s+integrity="([^"]+)" crossorigin="anonymous">`).FindSubmatch(doc)
	if tag == nil {
		t.Fatalf("docs/hub.md has no script tag for %s with integrity and crossorigin", Path)
	}
	if string(tag[1]) != want {
		t.Errorf("the checkout page's script tag says %s; the served script's is %s", tag[1], want)
	}
	if !strings.Contains(string(Script), "kecis-encrypt "+Version) || !strings.Contains(string(Script), `VERSION = "`+Version+`"`) {
		t.Errorf("the script does not state its version %s", Version)
	}
}

// TestServe: JavaScript, immutable for a year, readable cross-origin (a
// script tag with integrity needs CORS), not sniffed; a revalidation with
// the ETag is 304 without a body; HEAD has no body.
func TestServe(t *testing.T) {
	w := httptest.NewRecorder()
	ServeHTTP(w, httptest.NewRequest(http.MethodGet, Path, nil))
	h := w.Header()
	for k, v := range map[string]string{
		"Content-Type":                 "text/javascript; charset=utf-8",
		"Cache-Control":                "public, max-age=31536000, immutable",
		"Access-Control-Allow-Origin":  "*",
		"Cross-Origin-Resource-Policy": "cross-origin",
		"X-Content-Type-Options":       "nosniff",
	} {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	if w.Code != 200 || w.Body.String() != string(Script) {
		t.Fatalf("GET: %d, %d bytes", w.Code, w.Body.Len())
	}
	r := httptest.NewRequest(http.MethodGet, Path, nil)
	r.Header.Set("If-None-Match", h.Get("ETag"))
	w = httptest.NewRecorder()
	ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d, %d bytes", w.Code, w.Body.Len())
	}
	w = httptest.NewRecorder()
	ServeHTTP(w, httptest.NewRequest(http.MethodHead, Path, nil))
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}
