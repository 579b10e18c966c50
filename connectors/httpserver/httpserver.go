// Package httpserver builds every HTTP server the project runs — the hub's
// public and operations listeners, the adapter's KECIS and calling
// endpoints, the example providers' native APIs and phone pages, the demo's
// listeners — with bounds on slow and idle clients and on request bodies
// (KECIS §9.10): a client that sends its headers or body slowly, reads the
// answer slowly or keeps an idle connection is cut off after a bounded
// time, and no body larger than the server's cap is read.
//
// It lives in the SDK so that a provider that mounts connectors.Handler on
// a server of its own can use it too. It imports only the standard library;
// the hub, the SDK, the sidecar, the examples, the demo and the conformance
// suite all build their servers with New. Ops serves the operations
// endpoints (/healthz, /readyz, /metrics) of the hub and of the adapter
// sidecar.
package httpserver

import (
	"log/slog"
	"net/http"
	"time"
)

// The defaults of New, for a Limits field left zero.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included.
	DefaultReadTimeout = 15 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to
	// the end of its answer, so it must exceed the longest handler.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout bounds a keep-alive connection between requests.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes caps a request's headers.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxBodyBytes caps a request body.
	DefaultMaxBodyBytes = 1 << 20
)

// The limits of a KECIS SOAP endpoint (KECIS §10.1) that differ from the
// defaults.
const (
	// SOAPMaxBodyBytes is above what the SOAP binding reads itself (a
	// 1 MiB message, KECIS §5.1 step 1, in its envelope), which refuses a
	// larger message with its own fault.
	SOAPMaxBodyBytes = 2 << 20
	// SOAPWriteTimeout is above the 60 s a connectors.Handler gives one
	// attempt of a service (its default lease).
	SOAPWriteTimeout = 75 * time.Second
)

// Limits bound one server's connections and requests. A field left zero (or
// negative) takes its default; there is no way to switch a bound off.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxBodyBytes caps every request body; a handler may cap a route
	// lower with http.MaxBytesReader. Past the cap, reading the body fails
	// with *http.MaxBytesError and the connection is closed after the answer.
	MaxBodyBytes int64
}

// WithDefaults returns l with every zero or negative field set to its
// default.
func (l Limits) WithDefaults() Limits {
	orDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	orDur(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	orDur(&l.ReadTimeout, DefaultReadTimeout)
	orDur(&l.WriteTimeout, DefaultWriteTimeout)
	orDur(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// New returns a server for h under lim (defaults for zero fields): the four
// timeouts, the header cap, the body cap (h is wrapped in
// http.MaxBytesHandler) and the server's own errors (TLS handshakes,
// panics, accept failures) logged through log at warning level (nil:
// slog.Default()). The caller sets TLSConfig or Addr and serves it.
func New(h http.Handler, lim Limits, log *slog.Logger) *http.Server {
	lim = lim.WithDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, lim.MaxBodyBytes),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
