package sidecar

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kecis/kecis/connectors/httpserver"
)

// The operations endpoints, on a listener of their own (ops_listen, plain
// HTTP; none when unset) for the orchestrator and Prometheus, as the hub
// has: /healthz (the process answers), /readyz (the named checks of
// ReadyChecks, 503 when one fails) and /metrics.

// Metrics are the sidecar's Prometheus metrics, on a registry of their
// own (with the Go and process collectors), so that several sidecars
// (tests) can live in one process.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests   *prometheus.CounterVec   // by endpoint (kecis, call), code
	HTTPDuration   *prometheus.HistogramVec // by endpoint
	NativeCalls    *prometheus.CounterVec   // by service, call (main, lookup), result
	NativeDuration *prometheus.HistogramVec // by service, call
	ReadyChecks    *prometheus.GaugeVec     // by check: 1 passing, 0 failing, at the last /readyz
}

// NewMetrics registers the sidecar's metrics.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "adapter", Name: "http_requests_total",
			Help: "HTTP requests by endpoint (kecis: the SOAP endpoint the hub calls; call: the local calling endpoint; amountauth: the cardholder's page) and status code.",
		}, []string{"endpoint", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kecis", Subsystem: "adapter", Name: "http_request_duration_seconds",
			Help: "HTTP request latency by endpoint.", Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		NativeCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "adapter", Name: "native_calls_total",
			Help: "Calls of the provider's native API by KECIS service, call (main or lookup) and result (the HTTP status, unreachable or unreadable).",
		}, []string{"service", "call", "result"}),
		NativeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kecis", Subsystem: "adapter", Name: "native_call_duration_seconds",
			Help: "Latency of the native API's answers by KECIS service and call.", Buckets: prometheus.DefBuckets,
		}, []string{"service", "call"}),
		ReadyChecks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kecis", Subsystem: "adapter", Name: "ready",
			Help: "Readiness checks at the last /readyz: 1 passing, 0 failing.",
		}, []string{"check"}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.NativeCalls, m.NativeDuration, m.ReadyChecks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument counts and times the requests of one endpoint.
func (m *Metrics) instrument(endpoint string, h http.Handler) http.Handler {
	l := prometheus.Labels{"endpoint": endpoint}
	return promhttp.InstrumentHandlerDuration(m.HTTPDuration.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(m.HTTPRequests.MustCurryWith(l), h))
}

// nativeCall records one native call; result is the HTTP status, or
// "unreachable".
func (m *Metrics) nativeCall(service, call, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.NativeCalls.WithLabelValues(service, call, result).Inc()
	if result != "unreachable" {
		m.NativeDuration.WithLabelValues(service, call).Observe(took.Seconds())
	}
}

// ReadyCheckNames are the readiness checks, in the order /readyz lists
// them:
//   - keys: the signing, encryption and TLS certificates are loaded and
//     valid now;
//   - metadata: the hub gives a verified descriptor of this adapter —
//     refreshed within its cacheDuration (at most an hour), or a cached copy
//     still inside its validUntil while the hub is unreachable — and it
//     publishes the signing and encryption certificates the sidecar holds;
//   - native: the provider's native API answers at native.base_url (any
//     HTTP answer; no account's credentials are sent);
//   - store: the adapter store's database answers.
//
// With amountauth enabled, one more: ReadyCheckAmountAuth.
var ReadyCheckNames = []string{"keys", "metadata", "native", "store"}

// ReadyCheckAmountAuth is the readiness check of amount authentication,
// when it is enabled: its sessions' store answers.
const ReadyCheckAmountAuth = "amountauth"

// readyCheckNames are the sidecar's readiness checks, in order.
func (s *Sidecar) readyCheckNames() []string {
	if s.aa == nil {
		return ReadyCheckNames
	}
	return append(slices.Clip(ReadyCheckNames), ReadyCheckAmountAuth)
}

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// Ready runs the readiness checks (ReadyCheckNames, and
// ReadyCheckAmountAuth when amountauth is enabled): nil for one that
// passes.
func (s *Sidecar) Ready(ctx context.Context) map[string]error {
	now := s.now()
	out := map[string]error{}
	out["keys"] = s.checkKeys(now)
	mctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	out["metadata"] = s.checkMetadata(mctx)
	nctx, cancel2 := context.WithTimeout(ctx, readyTimeout)
	defer cancel2()
	out["native"] = s.checkNative(nctx)
	sctx, cancel3 := context.WithTimeout(ctx, readyTimeout)
	defer cancel3()
	out["store"] = s.store.Ping(sctx)
	if s.aa != nil {
		actx, cancel4 := context.WithTimeout(ctx, readyTimeout)
		defer cancel4()
		out[ReadyCheckAmountAuth] = s.aa.ready(actx)
	}
	return out
}

func (s *Sidecar) checkKeys(now time.Time) error {
	for _, k := range []struct {
		name string
		cert *x509.Certificate
	}{{"keys.signing", s.certs.signing}, {"keys.encryption", s.certs.encryption}, {"keys.tls", s.certs.tls}} {
		switch {
		case k.cert == nil:
			return fmt.Errorf("%s: no certificate loaded", k.name)
		case now.Before(k.cert.NotBefore):
			return fmt.Errorf("%s: the certificate is not valid before %s", k.name, k.cert.NotBefore.UTC().Format(time.RFC3339))
		case now.After(k.cert.NotAfter):
			return fmt.Errorf("%s: the certificate expired at %s", k.name, k.cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func (s *Sidecar) checkMetadata(ctx context.Context) error {
	ed, err := s.dir.Lookup(ctx, s.Config.EntityID)
	if err != nil {
		return fmt.Errorf("no verified descriptor of %s from the hub: %w", s.Config.EntityID, err)
	}
	if !ed.ValidUntil.IsZero() && !s.now().Before(ed.ValidUntil) {
		return fmt.Errorf("the descriptor of %s expired at %s", s.Config.EntityID, ed.ValidUntil.UTC().Format(time.RFC3339))
	}
	has := func(list []*x509.Certificate, c *x509.Certificate) bool {
		return slices.ContainsFunc(list, func(x *x509.Certificate) bool { return x.Equal(c) })
	}
	if !has(ed.SigningCertificates(), s.certs.signing) {
		return errors.New("the published descriptor does not list keys.signing's certificate: the hub would refuse this adapter's signatures")
	}
	if !has(ed.EncryptionCertificates(), s.certs.encryption) {
		return errors.New("the published descriptor does not list keys.encryption's certificate: senders encrypt for a key this adapter does not hold")
	}
	return nil
}

func (s *Sidecar) checkNative(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.Config.Native.BaseURL, nil)
	if err != nil {
		return err
	}
	resp, err := s.engine.http.Do(req)
	if err != nil {
		return fmt.Errorf("the native API does not answer: %w", err)
	}
	resp.Body.Close()
	return nil
}

// OpsHandler serves /healthz, /readyz (readyCheckNames, each one's result
// in the ReadyChecks gauge) and /metrics: httpserver.Ops, as the hub's.
func (s *Sidecar) OpsHandler() http.Handler {
	return httpserver.Ops{
		Checks: s.readyCheckNames(),
		Ready:  s.Ready,
		OnCheck: func(name string, ok bool) {
			v := 0.0
			if ok {
				v = 1
			}
			s.metrics.ReadyChecks.WithLabelValues(name).Set(v)
		},
		Metrics: promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{Registry: s.metrics.Registry}),
	}.Handler()
}
