package router

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// BreakerConfig configures the circuit breakers of the relay (KECIS
// §12.1.1): one per provider endpoint.
type BreakerConfig struct {
	// Failures is the number of consecutive failed exchanges with an
	// endpoint that opens its breaker (default 5).
	Failures uint32
	// OpenFor is how long an open breaker answers at once before it lets
	// one probe through (default 30 s).
	OpenFor time.Duration
	// Disabled turns the breakers off: every request is sent.
	Disabled bool
}

// The defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 30 * time.Second
)

// errExchange marks an exchange that failed the way an unavailable
// provider fails: not connected, no answer in time, a dropped connection,
// a SOAP fault or an answer that does not verify. Business refusals are
// signed answers and never reach the breaker as errors.
var errExchange = errors.New("exchange with the provider failed")

// errNotCounted marks an exchange that says nothing of the provider's
// availability — the sender went away (its context ended), or the provider
// answered 429 Too Many Requests — and is counted neither way.
var errNotCounted = errors.New("not counted by the breaker")

// endpointKey names one breaker: a provider and one of its endpoints.
type endpointKey struct{ provider, endpoint string }

// breakers holds the relay's circuit breakers, made on first use. A
// breaker counts consecutive failed exchanges with one endpoint of one
// provider; after cfg.Failures it opens: the endpoint is skipped (the
// request is not delivered there) for cfg.OpenFor, then one probe request
// is let through — its success closes the breaker, its failure opens it
// again. One breaker per endpoint, not per provider, so that a dead
// primary endpoint stops costing every request a dial while failover to
// the next endpoint of the same provider goes on.
//
// gobreaker keeps the counts, the half-open probe and the generations; it
// reads the system clock, so the open period is kept here on the router's
// clock (tests inject one): gobreaker's own open period is a nanosecond,
// and a breaker stays open while openUntil is ahead of now.
type breakers struct {
	cfg BreakerConfig
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	m  map[endpointKey]*breaker
}

// breaker is one endpoint's breaker.
type breaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu        sync.Mutex
	openUntil time.Time
}

func (br *breaker) open(now time.Time) bool {
	br.mu.Lock()
	defer br.mu.Unlock()
	return now.Before(br.openUntil)
}

// state is the breaker's state at now.
func (br *breaker) state(now time.Time) gobreaker.State {
	if br.open(now) {
		return gobreaker.StateOpen
	}
	return br.cb.State()
}

func newBreakers(cfg BreakerConfig, log *slog.Logger, now func() time.Time) *breakers {
	if cfg.Failures == 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultBreakerOpenFor
	}
	return &breakers{cfg: cfg, log: log, now: now, m: map[endpointKey]*breaker{}}
}

func (b *breakers) get(k endpointKey) *breaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.m[k]; ok {
		return br
	}
	br := &breaker{}
	failures := b.cfg.Failures
	br.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        k.provider + " " + k.endpoint,
		MaxRequests: 1, // half-open: one probe at a time
		Timeout:     time.Nanosecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNotCounted) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			lvl := slog.LevelInfo
			if to == gobreaker.StateOpen {
				lvl = slog.LevelWarn
				br.mu.Lock()
				br.openUntil = b.now().Add(b.cfg.OpenFor)
				br.mu.Unlock()
			}
			b.log.Log(context.Background(), lvl, "circuit breaker "+to.String(),
				"provider", k.provider, "url", k.endpoint, "from", from.String(), "open_for", b.cfg.OpenFor)
		},
	})
	b.m[k] = br
	return br
}

// allow asks the breaker of an endpoint whether a request may be sent;
// when it may, done must be called with the exchange's result: nil for a
// signed answer, errExchange for a failure, errNotCounted for an exchange
// that says nothing of the provider. Disabled breakers allow everything.
func (b *breakers) allow(provider, endpoint string) (done func(error), ok bool) {
	if b == nil || b.cfg.Disabled {
		return func(error) {}, true
	}
	br := b.get(endpointKey{provider, endpoint})
	if br.open(b.now()) {
		return nil, false
	}
	done, err := br.cb.Allow()
	if err != nil {
		return nil, false // half-open, its probe under way
	}
	if br.open(b.now()) {
		// Another exchange opened the breaker meanwhile.
		done(errNotCounted)
		return nil, false
	}
	return done, true
}

// stateValue is a breaker's state as the metric reports it: 0 closed, 1
// half-open, 2 open.
func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

var breakerStateDesc = prometheus.NewDesc("kecis_hub_breaker_state",
	"State of the relay's circuit breaker of a provider's endpoint: 0 closed, 1 half-open (one probe let through), 2 open (requests answered ProviderUnavailable at once, not sent).",
	[]string{"provider", "endpoint"}, nil)

// Describe implements prometheus.Collector.
func (b *breakers) Describe(ch chan<- *prometheus.Desc) { ch <- breakerStateDesc }

// Collect implements prometheus.Collector: each breaker's state when
// scraped (an open breaker whose OpenFor has passed reports half-open).
func (b *breakers) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	keys := make([]endpointKey, 0, len(b.m))
	brs := make(map[endpointKey]*breaker, len(b.m))
	for k, br := range b.m {
		keys = append(keys, k)
		brs[k] = br
	}
	b.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].provider != keys[j].provider {
			return keys[i].provider < keys[j].provider
		}
		return keys[i].endpoint < keys[j].endpoint
	})
	now := b.now()
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, stateValue(brs[k].state(now)), k.provider, k.endpoint)
	}
}

// BreakerState reports the state of the breaker of a provider's endpoint:
// "closed", "half-open" or "open" ("closed" for one never used).
func (rt *Router) BreakerState(provider, endpoint string) string {
	rt.breakers.mu.Lock()
	br, ok := rt.breakers.m[endpointKey{provider, endpoint}]
	rt.breakers.mu.Unlock()
	if !ok {
		return gobreaker.StateClosed.String()
	}
	return br.state(rt.breakers.now()).String()
}
