package router

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kecis/kecis/saml"
)

// Metrics the router records.
type Metrics struct {
	Requests     *prometheus.CounterVec   // service, status
	Refusals     *prometheus.CounterVec   // reason, stage
	RelayLatency *prometheus.HistogramVec // provider
	IdemHits     *prometheus.CounterVec   // result
	// PolicyDecisions counts, for each rule that matched a request, whether
	// it allowed or refused it (KECIS §12.9).
	PolicyDecisions *prometheus.CounterVec // rule, decision
	InFlight        prometheus.GaugeFunc

	// reg is where New registers the router's circuit breakers
	// (kecis_hub_breaker_state{provider,endpoint}).
	reg prometheus.Registerer
}

// NewMetrics registers the router's metrics on reg.
func NewMetrics(reg prometheus.Registerer, inFlight func() float64) *Metrics {
	m := &Metrics{
		reg: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "requests_total",
			Help: "Relayed requests by service and final status (second-level code, or the top-level one)."}, []string{"service", "status"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "refusals_total",
			Help: "Requests the hub refused, by reason and pipeline stage."}, []string{"reason", "stage"}),
		RelayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "kecis", Subsystem: "router", Name: "relay_seconds",
			Help: "Time from forwarding a request to receiving the provider's answer, by provider.", Buckets: prometheus.DefBuckets}, []string{"provider"}),
		IdemHits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "router", Name: "idempotency_total",
			Help: "Idempotency guard outcomes: acquired, reacquired (a retry), in_flight, mismatch."}, []string{"result"}),
	}
	m.PolicyDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kecis", Subsystem: "hub", Name: "policy_decisions_total",
		Help: "Payment policy rules that matched a request, by rule and decision: allowed (the rule held) or refused."}, []string{"rule", "decision"})
	m.InFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kecis", Subsystem: "router", Name: "idempotency_leases_in_flight",
		Help: "Unexpired idempotency leases (all replicas)."}, inFlight)
	reg.MustRegister(m.Requests, m.Refusals, m.RelayLatency, m.IdemHits, m.PolicyDecisions, m.InFlight)
	return m
}
func (rt *Router) count(service string, st *saml.Status) {
	if rt.metrics == nil || st == nil {
		return
	}
	label := st.Sub()
	if label == "" {
		label = st.Top()
	}
	if service == "" {
		service = "unknown"
	}
	rt.metrics.Requests.WithLabelValues(service, label).Inc()
}
