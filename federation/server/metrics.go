package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the hub's Prometheus metrics, on a registry of their own so
// that several hubs (tests) can live in one process.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests   *prometheus.CounterVec   // by route, code
	HTTPDuration   *prometheus.HistogramVec // by route
	Refusals       *prometheus.CounterVec   // by reason, stage
	RegistryEvents *prometheus.CounterVec   // by action
	Participants   *prometheus.GaugeVec     // by status
	MetadataBuilds *prometheus.HistogramVec // by kind (entity, aggregate)
	RateLimited    *prometheus.CounterVec   // by endpoint
}

// NewMetrics registers the hub's metrics and the Go and process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "refusals_total",
			Help: "Refused messages by reason and pipeline stage.",
		}, []string{"reason", "stage"}),
		RegistryEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "registry_events_total",
			Help: "Registry lifecycle events by action.",
		}, []string{"action"}),
		Participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "participants",
			Help: "Participants by status (as of the last metadata build).",
		}, []string{"status"}),
		MetadataBuilds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "metadata_build_seconds",
			Help: "Time to build and sign metadata, by kind.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"kind"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kecis", Subsystem: "hub", Name: "rate_limited_total",
			Help: "Requests refused 429 for a client over its rate limit, by endpoint (registration, facade).",
		}, []string{"endpoint"}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.Refusals, m.RegistryEvents, m.Participants, m.MetadataBuilds, m.RateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
