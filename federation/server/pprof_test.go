package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestPProfOperatorsOnly: with debug.pprof the Go runtime's profiles are
// served under the operator API — an operator's TLS client certificate
// gets a heap profile; no certificate, or a participant's, gets the
// not-an-operator problem and no profile; the command line is never
// served. Without debug.pprof, not even an operator gets one.
func TestPProfOperatorsOnly(t *testing.T) {
	h := startHubFull(t, "", 0, "debug: {pprof: true}\n")
	_, stranger := participant(t, "https://stranger.test/kecis")
	const heap = "/kecis/admin/debug/pprof/heap"
	for _, c := range []struct {
		name string
		path string
		who  string
	}{
		{"no certificate", heap, "none"},
		{"no certificate, CPU profile", "/kecis/admin/debug/pprof/profile?seconds=1", "none"},
		{"no certificate, index", "/kecis/admin/debug/pprof/", "none"},
		{"a participant's certificate", heap, "stranger"},
		{"a participant's certificate, goroutines", "/kecis/admin/debug/pprof/goroutine?debug=2", "stranger"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert := &stranger
			if c.who == "none" {
				cert = nil
			}
			code, body := h.do(cert, http.MethodGet, c.path, nil)
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil || code != http.StatusForbidden || doc["type"] != "urn:kecis:problem:not-an-operator" {
				t.Fatalf("%d %.200q", code, body)
			}
			if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) || strings.Contains(string(body), "goroutine") {
				t.Fatalf("a profile was sent: %.200q", body)
			}
		})
	}
	code, body := h.do(&h.operator, http.MethodGet, heap, nil)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Fatalf("the operator's heap profile: %d %.100q", code, body)
	}
	if code, body := h.do(&h.operator, http.MethodGet, "/kecis/admin/debug/pprof/", nil); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("the operator's index: %d %.200q", code, body)
	}
	if code, _ := h.do(&h.operator, http.MethodGet, "/kecis/admin/debug/pprof/cmdline", nil); code != http.StatusNotFound {
		t.Fatalf("the command line: %d", code)
	}

	off := startHub(t, "")
	if code, body := off.do(&off.operator, http.MethodGet, heap, nil); code != http.StatusNotFound {
		t.Fatalf("debug.pprof off, the operator: %d %.100q", code, body)
	}
}
