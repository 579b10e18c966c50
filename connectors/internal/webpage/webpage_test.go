package webpage

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

// TestSessions: a session reads back until it expires; a tampered cookie,
// another domain's or another key's is no session; the token is the
// session's own.
func TestSessions(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	s := &Sessions{Key: bytes.Repeat([]byte{1}, 32), Cookie: "c", Path: "/p/", Domain: "escrow", TTL: time.Minute, Now: clock.Now}
	w := httptest.NewRecorder()
	s.Start(w, "cust-1", "홍길동")
	ck := w.Result().Cookies()[0]
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/p/" || ck.MaxAge != 60 {
		t.Fatalf("cookie %+v", ck)
	}
	read := func(s *Sessions, value string) *Session {
		r := httptest.NewRequest(http.MethodGet, "/p/", nil)
		r.AddCookie(&http.Cookie{Name: "c", Value: value})
		return s.Read(r)
	}
	got := read(s, ck.Value)
	if got == nil || got.Customer != "cust-1" || got.Name != "홍길동" {
		t.Fatalf("session %+v", got)
	}
	other := *s
	other.Domain = "twoway"
	otherKey := *s
	otherKey.Key = bytes.Repeat([]byte{2}, 32)
	for name, v := range map[string]*Session{
		"tampered":     read(s, strings.Replace(ck.Value, ".", "x.", 1)),
		"other domain": read(&other, ck.Value),
		"other key":    read(&otherKey, ck.Value),
		"garbage":      read(s, "a.b.c"),
	} {
		if v != nil {
			t.Errorf("%s: a session %+v", name, v)
		}
	}

	// The token: the session's, in the post.
	post := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/p/x", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if kind, _ := ReadPost(httptest.NewRecorder(), r, 1024); kind != "" {
			t.Fatalf("post refused: %s", kind)
		}
		return r
	}
	if !s.TokenOK(post(s.Token(got)), got) || s.TokenOK(post(other.Token(got)), got) || s.TokenOK(post(""), got) {
		t.Fatal("token check")
	}
	clock.Advance(time.Minute)
	if read(s, ck.Value) != nil {
		t.Fatal("an expired session reads")
	}
}

// TestReadPost: cross-site and same-site posts are refused; an oversized
// body is a bad request.
func TestReadPost(t *testing.T) {
	for site, want := range map[string]string{"cross-site": "forbidden", "same-site": "forbidden", "same-origin": "", "": "", "none": ""} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("a=b"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", site)
		if got, _ := ReadPost(httptest.NewRecorder(), r, 1024); got != want {
			t.Errorf("Sec-Fetch-Site %q: %q, want %q", site, got, want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("a="+strings.Repeat("b", 2000)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got, status := ReadPost(httptest.NewRecorder(), r, 1024); got != "badrequest" || status != http.StatusBadRequest {
		t.Errorf("oversized: %q %d", got, status)
	}
}

func TestOriginAndPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"https://shop.test/escrow/return?x=1": "https://shop.test",
		"https://shop.test:8443":              "https://shop.test:8443",
		"/relative":                           "",
		"":                                    "",
	} {
		if got := Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
	for p, want := range map[string]bool{"": true, "/escrow": true, "/a/b": true, "escrow": false, "/escrow/": false, "/es crow": false} {
		if ValidPrefix(p) != want {
			t.Errorf("ValidPrefix(%q) != %v", p, want)
		}
	}
}
