package httpserver

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Helpers of the pages a participant shows a person (the PG's amount
// authentication page, KECIS §15.3.2; the issuer's cardholder
// authentication page, KECIS §15.7): who the client is, and the headers
// every such page is sent with.

// ClientAddr is the client's address: the connection's, or, from a
// trusted proxy, the right-most X-Forwarded-For address that is not a
// trusted proxy (the left of it is the client's to forge).
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(a) {
		return a
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // a malformed hop: believe no further
		}
		a = h.Unmap()
		if !isTrusted(a) {
			return a
		}
	}
	return a
}

// ClientKey is the rate-limit key of a page request's client: its address
// (ClientAddr), an IPv6 address by its /64, which one subscriber usually
// holds whole.
func ClientKey(r *http.Request, trusted []netip.Prefix) string {
	a := ClientAddr(r, trusted)
	if !a.IsValid() {
		return "remote:" + r.RemoteAddr
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// CrossSite reports a form post the browser says came from another site
// (Sec-Fetch-Site cross-site or same-site): browsers send the header with
// or without JavaScript; one that sends none is served.
func CrossSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "cross-site" || site == "same-site"
}

// PageNonce is a fresh CSP nonce: 128 bits of random, base64url.
func PageNonce(random io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("httpserver: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SetPageHeaders sets the headers of a person's page: no-store,
// no-referrer, never framed, never sniffed, and a CSP whose style and
// script take nonce and whose forms post to 'self' and the formOrigins.
func SetPageHeaders(h http.Header, nonce string, formOrigins ...string) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	formAction := "'self'"
	for _, o := range formOrigins {
		if o != "" {
			formAction += " " + o
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+
		"'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
}

// SetBareHeaders sets the headers of an error answer without a page
// (nothing may run, nothing may frame it).
func SetBareHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}
