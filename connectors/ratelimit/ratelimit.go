// Package ratelimit limits the rate of requests per client (KECIS §12.7):
// a token bucket (golang.org/x/time/rate) per key — a merchant's API key,
// a TLS client certificate's fingerprint, a remote IP — in bounded memory,
// and the 429 answer with Retry-After the refused client gets
// (httpserver.ProblemRateLimited).
//
// It lives in the SDK so that the hub (registration API, JSON facade) and
// a provider's KECIS endpoint (connectors.Handler) limit clients the same
// way. Every decision takes the time from an injected clock, so tests
// move time instead of sleeping.
package ratelimit

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/saml"
)

// The defaults of Config.
const (
	// DefaultMaxKeys bounds the buckets a Limiter keeps.
	DefaultMaxKeys = 10000
	// DefaultIdle is how long an unused key's bucket is kept (at least the
	// time the bucket takes to fill, after which forgetting it changes
	// nothing).
	DefaultIdle = 10 * time.Minute
)

// Config of a Limiter: each key may make PerSecond requests a second on
// average, Burst at once.
type Config struct {
	// PerSecond is the sustained rate of each key (requests a second; 0.1
	// is one every ten seconds). It must be positive.
	PerSecond float64
	// Burst is how many requests a key may make at once (at least 1).
	Burst int
	// MaxKeys bounds the keys remembered (default DefaultMaxKeys); past
	// it the least recently seen key is forgotten (it starts again with a
	// full bucket).
	MaxKeys int
	// Idle forgets a key unused that long (default DefaultIdle, never less
	// than the time a bucket takes to fill).
	Idle time.Duration
}

// Limiter is a token bucket per key, safe for concurrent use.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration
	now     func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *bucket
	order *list.List               // most recently seen first
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// New makes a Limiter; now is its clock (time.Now when nil).
func New(cfg Config, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	burst := max(cfg.Burst, 1)
	limit := rate.Limit(cfg.PerSecond)
	if !(cfg.PerSecond > 0) {
		limit = 0 // fail closed: the burst, then nothing
	}
	maxKeys := cfg.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	idle := cfg.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	if limit > 0 {
		// A bucket unused for the time it takes to fill is full: forgetting
		// it then changes nothing.
		if fill := float64(burst) / float64(limit); fill < float64(math.MaxInt64/int64(time.Second)) {
			idle = max(idle, time.Duration(math.Ceil(fill))*time.Second)
		}
	}
	return &Limiter{limit: limit, burst: burst, maxKeys: maxKeys, idle: idle, now: now,
		keys: map[string]*list.Element{}, order: list.New()}
}

// Allow takes one request's token from key's bucket. When the bucket is
// empty it takes nothing and returns false and how long until a token is
// there: the answer's Retry-After.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, l.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request costs no future token
		return false, d
	}
	return true, 0
}

// bucket returns key's bucket, made if need be, and forgets idle keys and
// the least recently seen past MaxKeys. l.mu is held.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	for e := l.order.Back(); e != nil; e = l.order.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.seen) < l.idle || b.key == key {
			break
		}
		l.forget(e)
	}
	if e, ok := l.keys[key]; ok {
		b := e.Value.(*bucket)
		b.seen = now
		l.order.MoveToFront(e)
		return b
	}
	for l.order.Len() >= l.maxKeys {
		l.forget(l.order.Back())
	}
	b := &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst), seen: now}
	l.keys[key] = l.order.PushFront(b)
	return b
}

func (l *Limiter) forget(e *list.Element) {
	delete(l.keys, e.Value.(*bucket).key)
	l.order.Remove(e)
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// Check is Allow as an error: nil, or httpserver.ProblemRateLimited with
// its Retry-After. The key is not in it: it may be a secret (an API key).
func (l *Limiter) Check(key string) error {
	if ok, d := l.Allow(key); !ok {
		return httpserver.ProblemRateLimited.WithRetryAfter(d)
	}
	return nil
}

// ClientKey is the key of a request's client: "cert:" and the SHA-256
// fingerprint of its TLS client certificate when it presented one, else
// "ip:" and remoteIP — the caller's idea of the client's address (the
// hub's believes only trusted proxies) —, or the connection's when
// remoteIP is empty.
func ClientKey(r *http.Request, remoteIP string) string {
	if fp := saml.ClientCertFingerprint(r); fp != "" {
		return "cert:" + fp
	}
	if remoteIP == "" {
		remoteIP = r.RemoteAddr
		if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			remoteIP = h
		}
	}
	return "ip:" + remoteIP
}

// Middleware limits each client (ClientKey, by the connection's address)
// of next: a refused request is answered ProblemRateLimited, 429 with
// Retry-After, and reported to onLimited when it is not nil (a metric, a
// log line).
func (l *Limiter) Middleware(next http.Handler, onLimited func(r *http.Request, retryAfter time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, d := l.Allow(ClientKey(r, "")); !ok {
			if onLimited != nil {
				onLimited(r, d)
			}
			httpserver.ProblemRateLimited.WithRetryAfter(d).Write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SOAP limits each caller of a KECIS SOAP endpoint (KECIS §12.7) — by its
// TLS client certificate, or its connection's address when it presented
// none (ClientKey) — in front of next (a connectors.Handler, the sidecar's
// endpoint). A refused request is answered before anything of its body is
// read or parsed: HTTP 429 Too Many Requests with Retry-After, and a SOAP
// fault (soap:Server: retry later) as the body, so that a SOAP client
// reads a fault and the hub's relay, which sees the 429, neither delivers
// the request nor counts it against the provider's breaker (KECIS
// §12.1.1). onLimited, when not nil, is told of each refusal (a metric, a
// log line).
func (l *Limiter) SOAP(next http.Handler, onLimited func(r *http.Request, retryAfter time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, d := l.Allow(ClientKey(r, ""))
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if onLimited != nil {
			onLimited(r, d)
		}
		WriteSOAPRateLimited(w, d)
	})
}

// WriteSOAPRateLimited answers a SOAP request refused by a rate limit:
// 429, Retry-After (httpserver.RetryAfterSeconds) and a soap:Server fault
// that says when to retry.
func WriteSOAPRateLimited(w http.ResponseWriter, retryAfter time.Duration) {
	secs := httpserver.RetryAfterSeconds(retryAfter)
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Retry-After", secs)
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(saml.FaultBody(&saml.Fault{Code: "soap:Server", String: "rate limited: retry after " + secs + " s"}))
}
