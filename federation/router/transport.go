package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kecis/kecis/saml"
)

// client returns the HTTP client for a recipient: the hub's TLS client
// certificate, and the recipient's server certificates as published in its
// metadata pinned — no CA, no hostname: the federation is the trust anchor.
func (rt *Router) client(dest *Entry) *http.Client {
	key := fmt.Sprintf("%s@%d", dest.P.EntityID, dest.P.Version)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c, ok := rt.clients[key]; ok {
		return c
	}
	var tr http.RoundTripper
	if rt.Transport != nil {
		tr = rt.Transport(dest.D.TLSServerCertificates())
	} else {
		tr = &http.Transport{
			TLSClientConfig:       saml.PinnedTLS(rt.cfg.ClientCert, dest.D.TLSServerCertificates()),
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: rt.cfg.Timeout,
			ForceAttemptHTTP2:     true,
		}
	}
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rt.clients[key] = c
	return c
}

// undelivered reports a failure before the request was written: the
// connection or the TLS handshake failed (a pin mismatch included). Only
// then may the router try another endpoint of the same participant.
func undelivered(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, saml.ErrPinMismatch) {
		return true
	}
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &rh) || errors.As(err, &cv)
}
