// Package router is the hub's verifying router (KECIS §12.1): POST
// /kecis/soap verifies the sender — its TLS
// client certificate and its signature, the whole receive pipeline but
// decryption —, checks that the sender may call the service and that
// Destination is an active participant offering it, applies the
// idempotency guard, and forwards the HTTP body it received, unchanged,
// over mutual TLS to the recipient, pinning the recipient's published
// server certificate. The recipient's signed answer is verified and
// forwarded unchanged. The hub signs only what it originates: refusals
// after verification, Pending, ProviderUnavailable, HubUnavailable.
package router

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// Config of a router.
type Config struct {
	// HubEntityID is the hub's entityID (Issuer of what it signs).
	HubEntityID string
	// Signer signs the hub's own statuses.
	Signer *saml.Signer
	// ClientCert is the hub's TLS client certificate towards providers.
	ClientCert tls.Certificate
	// Timeout bounds one forwarded exchange; then the sender gets Pending.
	Timeout time.Duration
	// LeaseGrace is added to Timeout for the idempotency lease.
	LeaseGrace time.Duration
	// IdemKey is the HMAC key of idempotency fingerprints.
	IdemKey []byte
	// ReplicaID names this replica in lease owners.
	ReplicaID string
	Limits    saml.Limits
	ClockSkew time.Duration
	// IdemRetention is how long an idempotency entry that is done (or
	// whose lease expired) is kept after its last change; older ones are
	// pruned (KECIS §12.3). Default 24 hours, the IETF Idempotency-Key
	// draft's suggestion: a retry after that is forwarded as a new key, and
	// the provider, the authority, still answers it with the original
	// outcome.
	IdemRetention time.Duration
	// PruneLimit bounds how many expired replay records and how many idle
	// idempotency entries each answer's commit deletes (default 16; a
	// negative value disables pruning). An approval adds two replay
	// records and one entry, so the tables stay bounded by what the
	// retention keeps.
	PruneLimit int
	// Breaker configures the circuit breaker of each provider endpoint
	// (KECIS §12.1.1).
	Breaker BreakerConfig
	// Policy is the hub's payment policy (KECIS §12.9), evaluated by Relay
	// on every request; nil evaluates none.
	Policy *policy.Policy
}

// Defaults of Config's pruning (KECIS §12.3).
const (
	DefaultIdemRetention = 24 * time.Hour
	DefaultPruneLimit    = 16
)

// Router relays KECIS messages.
type Router struct {
	cfg     Config
	st      store.Store
	dir     *Directory
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	ids     saml.IDSource

	breakers *breakers

	// Transport, when set, replaces the pinned-TLS transport (tests).
	Transport func(pins []*x509.Certificate) http.RoundTripper

	mu        sync.Mutex
	clients   map[string]*http.Client // by recipient entityID and version
	snapshots map[string]bool         // entity@version snapshots stored
}

// New builds a router.
func New(cfg Config, st store.Store, dir *Directory, m *Metrics, log *slog.Logger, now func() time.Time) *Router {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.LeaseGrace == 0 {
		cfg.LeaseGrace = 10 * time.Second
	}
	if cfg.IdemRetention <= 0 {
		cfg.IdemRetention = DefaultIdemRetention
	}
	if cfg.PruneLimit == 0 {
		cfg.PruneLimit = DefaultPruneLimit
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt := &Router{cfg: cfg, st: st, dir: dir, metrics: m, log: log, now: now, clients: map[string]*http.Client{},
		breakers: newBreakers(cfg.Breaker, log, now)}
	if m != nil && m.reg != nil {
		if err := m.reg.Register(rt.breakers); err != nil {
			log.Warn("router: the circuit breakers' metric is not registered", "err", err)
		}
	}
	return rt
}
func (rt *Router) limits() saml.Limits { return rt.cfg.Limits }
