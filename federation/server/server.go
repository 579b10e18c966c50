// Package server is the KECIS hub's HTTP server: the participant-facing
// HTTPS endpoints (metadata, registration, the operator API; the router
// joins them later) and the operations endpoints (/healthz, /readyz,
// /metrics), with TLS 1.2+, client certificates, body limits, explicit
// trusted proxies and graceful shutdown.
package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	rpprof "runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/federation/facade"
	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/webcrypto"
	"github.com/kecis/kecis/saml"
)

// Publisher signs the metadata the hub serves: each participant's
// descriptor on its own (MDQ) and the aggregate. Implemented over
// saml/metadata.
type Publisher interface {
	Entity(p *store.Participant, validUntil time.Time, cacheDuration time.Duration) ([]byte, error)
	Aggregate(ps []*store.Participant, validUntil time.Time, cacheDuration time.Duration) ([]byte, error)
	// DecodeID turns an MDQ path segment into an entityID ({sha1} form needs
	// the candidates).
	DecodeID(segment string, candidates func() ([]string, error)) (string, error)
}

// Server is one hub replica.
type Server struct {
	Config    *Config
	Store     store.Store
	Registry  *registry.Registry
	Publisher Publisher
	Signer    *saml.Signer
	Metrics   *Metrics
	Log       *slog.Logger
	Now       func() time.Time

	// Router relays POST /kecis/soap; Directory is its view of the registry.
	Router    *router.Router
	Directory *router.Directory
	Facade    *facade.Facade

	// RegistrationLimiter limits the registration API per client (KECIS
	// §12.7); FacadeLimiter is the facade's, per merchant credential. Nil
	// when disabled; each request reads the field, so a test may replace
	// it.
	RegistrationLimiter *ratelimit.Limiter
	FacadeLimiter       *ratelimit.Limiter

	tlsCert    tls.Certificate
	clientCert tls.Certificate
	operators  map[string]string // fingerprint → name

	mdMu      sync.Mutex
	aggregate cachedDoc
	entities  map[string]cachedDoc
}

type cachedDoc struct {
	body       []byte
	key        string
	validUntil time.Time
	builtAt    time.Time
}

// New builds a server from its configuration and store; it loads the keys.
func New(cfg *Config, st store.Store, pub Publisher, describe registry.Describer, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	signer, err := saml.LoadSigner(cfg.Path(cfg.Signing.Key), cfg.Path(cfg.Signing.Cert))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.Cert), cfg.Path(cfg.TLS.Key))
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	s := &Server{
		Config: cfg, Store: st, Publisher: pub, Signer: signer, Metrics: NewMetrics(), Log: log,
		tlsCert: cert, operators: map[string]string{}, entities: map[string]cachedDoc{},
	}
	for _, o := range cfg.Operators {
		s.operators[o.CertSHA256] = o.Name
	}
	s.Registry = &registry.Registry{Store: st, Describe: describe, Now: s.now, Log: log,
		OnEvent: func(a string) { s.Metrics.RegistryEvents.WithLabelValues(a).Inc() },
		Gate:    registry.ConformanceGate{Required: cfg.Conformance.Required, MaxAge: time.Duration(cfg.Conformance.MaxAge)}}
	clientCert := cert
	if cfg.TLS.ClientCert != "" {
		if clientCert, err = tls.LoadX509KeyPair(cfg.Path(cfg.TLS.ClientCert), cfg.Path(cfg.TLS.ClientKey)); err != nil {
			return nil, fmt.Errorf("TLS client key: %w", err)
		}
	}
	idemKey, err := deriveKey(signer, "kecis hub idempotency fingerprint v1")
	if err != nil {
		return nil, err
	}
	pol, err := policy.Compile(cfg.Policy)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	s.clientCert = clientCert
	s.Directory = &router.Directory{Store: st, Now: s.now, Log: log}
	rm := router.NewMetrics(s.Metrics.Registry, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := st.CountInFlight(ctx, s.now())
		return float64(n)
	})
	s.Router = router.New(router.Config{
		HubEntityID: cfg.EntityID, Signer: signer, ClientCert: clientCert, IdemKey: idemKey,
		ReplicaID: fmt.Sprintf("%s/%d", host, os.Getpid()), Limits: saml.Limits{MaxBytes: int(cfg.Limits.MaxBodyBytes)},
		Timeout:       cfg.Limits.RelayTimeout.D(),
		IdemRetention: cfg.Database.IdempotencyRetention.D(), PruneLimit: cfg.Database.PruneLimit,
		Breaker: router.BreakerConfig{Failures: uint32(max(cfg.Breaker.Failures, 1)), OpenFor: cfg.Breaker.OpenFor.D(), Disabled: cfg.Breaker.Disabled},
		Policy:  pol,
	}, st, s.Directory, rm, log, s.now)
	log.Info("payment policy", "preset", pol.Preset(), "rules", pol.RuleIDs())
	s.RegistrationLimiter = s.limiter(cfg.RateLimits.Registration)
	s.FacadeLimiter = s.limiter(cfg.RateLimits.Facade)
	keys := make([]facade.APIKey, len(cfg.Facade.APIKeys))
	for i, k := range cfg.Facade.APIKeys {
		keys[i] = facade.APIKey{EntityID: k.EntityID, KeySHA256: k.KeySHA256}
	}
	s.Facade = facade.New(facade.Config{HubEntityID: cfg.EntityID, AllowClearCard: cfg.Facade.AllowClearCard, APIKeys: keys,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		RateLimit:    func(credential string) error { return s.admit("facade", s.FacadeLimiter, credential) },
	}, st, s.Directory, s.Router, signer, log, s.now)
	if cfg.Facade.AllowClearCard {
		log.Warn("the JSON facade accepts card data in clear (facade.allow_clear_card): development only, or a hub in card-data scope")
	}
	return s, nil
}

// limiter builds a per-client limiter of the configuration's bounds, on
// the server's clock; nil when r is disabled.
func (s *Server) limiter(r RateConfig) *ratelimit.Limiter {
	if r.Disabled {
		return nil
	}
	rl := s.Config.RateLimits
	return ratelimit.New(ratelimit.Config{PerSecond: r.PerSecond, Burst: r.Burst, MaxKeys: rl.MaxKeys, Idle: rl.IdleAfter.D()}, s.now)
}

// rateLimit refuses a request over l's limit, 429 with Retry-After (KECIS
// §12.7), counted as kecis_hub_rate_limited_total{endpoint}. A client is
// its TLS client certificate when it presented one, else its remote
// address (gin's ClientIP: only trusted proxies are believed).
func (s *Server) rateLimit(endpoint string, l func() *ratelimit.Limiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		lim := l()
		if lim == nil {
			c.Next()
			return
		}
		if err := s.admit(endpoint, lim, ratelimit.ClientKey(c.Request, c.ClientIP())); err != nil {
			s.fail(c, err)
			return
		}
		c.Next()
	}
}

// admit takes a token of key's bucket in lim (nil: no limit), or refuses
// the request with httpserver.ProblemRateLimited, counted in
// kecis_hub_rate_limited_total{endpoint} (KECIS §12.7).
func (s *Server) admit(endpoint string, lim *ratelimit.Limiter, key string) error {
	if lim == nil {
		return nil
	}
	if err := lim.Check(key); err != nil {
		s.Metrics.RateLimited.WithLabelValues(endpoint).Inc()
		return err
	}
	return nil
}

// DefaultPublisher publishes over saml/metadata, with the hub's own
// descriptor first in the aggregate.
func (s *Server) DefaultPublisher() *MetadataPublisher {
	leaf := func(c tls.Certificate) *x509.Certificate {
		if c.Leaf != nil {
			return c.Leaf
		}
		x, _ := x509.ParseCertificate(c.Certificate[0])
		return x
	}
	return &MetadataPublisher{Signer: s.Signer, Name: s.Config.Metadata.Name,
		Hub: HubDescriptor(s.Config.EntityID, s.Config.PublicURL, s.Signer.Cert, leaf(s.tlsCert), leaf(s.clientCert))}
}

// deriveKey derives a secret from the hub's signing key with HKDF-SHA256:
// every replica holds the same key, so every replica derives the same
// secret, and nothing more needs distributing.
func deriveKey(signer *saml.Signer, label string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(signer.Key)
	if err != nil {
		// A key in an HSM: derive from its certificate and a fixed label;
		// configure a dedicated secret for production (not yet supported).
		der = signer.Cert.Raw
	}
	return hkdf.Key(sha256.New, der, nil, label, 32)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// TLSConfig is the participant-facing TLS configuration: TLS 1.2 or later,
// a client certificate requested (not required: metadata is public) and
// checked by fingerprint against the registry, never against a CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{s.tlsCert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// Handler is the participant-facing HTTP handler.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// gin trusts every proxy by default; the hub trusts only the configured.
	if err := r.SetTrustedProxies(s.Config.TrustedProxies); err != nil {
		s.Log.Error("trusted proxies", "err", err)
	}
	r.UseRawPath = true
	r.UnescapePathValues = false
	r.Use(s.recover(), s.observe(), s.limitBody())
	r.GET("/kecis/metadata", s.getAggregate)
	r.GET("/kecis/metadata/entities/*id", s.getEntity)
	r.POST("/kecis/soap", gin.WrapH(s.Router))
	s.Facade.Mount(r)
	// The browser script that encrypts the card for the provider (KECIS
	// §12.4.1): public, versioned, immutable.
	r.GET(webcrypto.Path, gin.WrapF(webcrypto.ServeHTTP))
	r.HEAD(webcrypto.Path, gin.WrapF(webcrypto.ServeHTTP))
	limitRegistration := s.rateLimit("registration", func() *ratelimit.Limiter { return s.RegistrationLimiter })
	r.POST("/kecis/federation/participants", limitRegistration, s.register)
	r.PUT("/kecis/federation/participants", limitRegistration, s.updateOwnMetadata)
	admin := r.Group("/kecis/admin", s.requireOperator())
	admin.GET("/participants", s.listParticipants)
	admin.GET("/participant", s.showParticipant)
	admin.POST(strings.TrimPrefix(reportPath, "/kecis/admin"), s.recordConformance)
	for _, a := range registry.Actions {
		admin.POST("/participants/"+a, s.transition(a))
	}
	if s.Config.Debug.PProf {
		mountPProf(admin.Group("/debug/pprof"))
	}
	r.NoRoute(func(c *gin.Context) { s.fail(c, ProblemNotFound) })
	return r
}

// ReadyCheckNames are the hub's readiness checks, in the order /readyz
// lists them (Ready).
var ReadyCheckNames = []string{"database", "database-writes", "keys", "metadata"}

// OpsHandler serves /healthz, /readyz (ReadyCheckNames) and /metrics:
// httpserver.Ops, as the adapter sidecar's.
func (s *Server) OpsHandler() http.Handler {
	return httpserver.Ops{Checks: ReadyCheckNames, Ready: s.Ready,
		Metrics: promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{Registry: s.Metrics.Registry})}.Handler()
}

// Ready runs the readiness checks: the database answers and takes writes
// (a replica whose database refuses them can record no request, KECIS
// §12.8), the keys are loaded and valid, and the metadata the hub serves
// can be built and is fresh.
func (s *Server) Ready(ctx context.Context) map[string]error {
	out := map[string]error{}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out["database"] = s.Store.Ping(pctx)
	if out["database"] == nil {
		out["database-writes"] = s.Store.Writable(pctx)
	} else {
		out["database-writes"] = errors.New("database unavailable")
	}
	now := s.now()
	switch {
	case s.Signer == nil:
		out["keys"] = errors.New("no signing key")
	case now.After(s.Signer.Cert.NotAfter):
		out["keys"] = errors.New("the signing certificate has expired")
	default:
		out["keys"] = nil
	}
	if out["database"] == nil {
		_, validUntil, err := s.aggregateDoc(ctx)
		switch {
		case err != nil:
			out["metadata"] = err
		case !now.Before(validUntil):
			out["metadata"] = errors.New("the metadata aggregate is stale")
		default:
			out["metadata"] = nil
		}
	} else {
		out["metadata"] = errors.New("database unavailable")
	}
	return out
}

// Run serves until ctx ends, then shuts down gracefully: listeners close,
// requests in flight get ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context) error {
	pl, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return err
	}
	ol, err := net.Listen("tcp", s.Config.OpsListen)
	if err != nil {
		pl.Close()
		return err
	}
	return s.Serve(ctx, pl, ol)
}

// Serve is Run on listeners the caller opened (tests, socket activation).
func (s *Server) Serve(ctx context.Context, public, opsL net.Listener) error {
	pub, ops := s.httpServers()
	return s.serve(ctx, pub, public, ops, opsL)
}

// httpServers builds the public server under the configured limits, its
// body cap high enough for a conformance report (limitBody caps every
// other route at MaxBodyBytes), and the operations server under the
// defaults (KECIS §9.10).
func (s *Server) httpServers() (pub, ops *http.Server) {
	l := s.Config.Limits
	pub = httpserver.New(s.Handler(), httpserver.Limits{ReadTimeout: l.ReadTimeout.D(), WriteTimeout: l.WriteTimeout.D(),
		MaxBodyBytes: max(l.MaxBodyBytes, maxReportBytes)}, s.Log)
	pub.TLSConfig = s.TLSConfig()
	return pub, httpserver.New(s.OpsHandler(), httpserver.Limits{}, s.Log)
}

func (s *Server) serve(ctx context.Context, pub *http.Server, pl net.Listener, ops *http.Server, ol net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- pub.ServeTLS(pl, "", "") }()
	go func() { errc <- ops.Serve(ol) }()
	s.Log.Info("kecis hub serving", "entity_id", s.Config.EntityID, "listen", pl.Addr().String(), "ops", ol.Addr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	s.Log.Info("kecis hub shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.Limits.ShutdownTimeout.D())
	defer cancel()
	e1 := pub.Shutdown(sctx)
	e2 := ops.Shutdown(sctx)
	if err == nil {
		err = errors.Join(e1, e2)
	}
	s.Log.Info("kecis hub stopped")
	return err
}

// mountPProf serves the Go runtime's profiles (net/http/pprof) under g —
// the operator API, so only an operator's TLS client certificate gets one
// (debug.pprof). The command line is not served: nothing of the process's
// start-up is sent. A CPU profile or trace is cut at the listener's
// limits.write_timeout (pprof refuses a longer one).
func mountPProf(g *gin.RouterGroup) {
	g.GET("/", gin.WrapF(pprof.Index))
	g.GET("/profile", gin.WrapF(pprof.Profile))
	g.GET("/trace", gin.WrapF(pprof.Trace))
	g.GET("/symbol", gin.WrapF(pprof.Symbol))
	g.POST("/symbol", gin.WrapF(pprof.Symbol))
	for _, p := range rpprof.Profiles() {
		g.GET("/"+p.Name(), gin.WrapH(pprof.Handler(p.Name())))
	}
}

func (s *Server) requireOperator() gin.HandlerFunc {
	return func(c *gin.Context) {
		fp := saml.ClientCertFingerprint(c.Request)
		name, ok := s.operators[fp]
		if !ok {
			cause := errors.New("no TLS client certificate")
			if fp != "" {
				cause = fmt.Errorf("the TLS client certificate sha256 %s is no operator's", fp)
			}
			s.fail(c, ProblemNotAnOperator.WithCause(cause))
			return
		}
		c.Set("operator", name)
		c.Next()
	}
}

// reportPath takes conformance reports, larger than messages (their
// evidence holds every exchange of a run). The limit is set before the
// operator check, but only an operator's request is ever read.
const reportPath = "/kecis/admin/participants/conformance"

// maxReportBytes bounds a conformance report (a full issuer run is about
// 420 KB).
const maxReportBytes = 16 << 20

func (s *Server) limitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := s.Config.Limits.MaxBodyBytes
		if c.Request.URL.Path == reportPath {
			limit = max(limit, maxReportBytes)
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

func (s *Server) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		s.Metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
		s.Metrics.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.Log.LogAttrs(c.Request.Context(), slog.LevelInfo, "http", slog.String("method", c.Request.Method), slog.String("route", route),
			slog.Int("status", c.Writer.Status()), slog.Duration("took", time.Since(start)))
	}
}

func (s *Server) recover() gin.HandlerFunc {
	return gin.CustomRecovery(func(c *gin.Context, err any) {
		s.fail(c, httpserver.ProblemInternal.WithCause(fmt.Errorf("panic in handler %s: %v", c.FullPath(), err)))
	})
}

// NewLogger builds the hub's slog logger.
func NewLogger(c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
