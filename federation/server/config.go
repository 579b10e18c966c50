package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/kecis/kecis/federation/policy"
	"github.com/kecis/kecis/federation/router"
)

// Config is the hub's configuration: a YAML file (kecis serve --config),
// then environment variables KECIS_* over it (12-factor deployments), then
// defaults. Unknown YAML keys are an error, not a silent typo.
type Config struct {
	// EntityID is the hub's entityID, the Issuer of what it signs.
	EntityID string `yaml:"entity_id" env:"ENTITY_ID"`
	// Listen is the participant-facing HTTPS address (TLS 1.2+, client
	// certificates requested).
	Listen string `yaml:"listen" env:"LISTEN"`
	// OpsListen serves /healthz, /readyz and /metrics over plain HTTP for
	// the orchestrator and Prometheus; keep it on a private interface.
	OpsListen string `yaml:"ops_listen" env:"OPS_LISTEN"`
	// PublicURL is how participants reach Listen (metadata links).
	PublicURL string `yaml:"public_url" env:"PUBLIC_URL"`

	TLS      TLSConfig      `yaml:"tls" envPrefix:"TLS_"`
	Signing  KeyPair        `yaml:"signing" envPrefix:"SIGNING_"`
	Database DatabaseConfig `yaml:"database" envPrefix:"DATABASE_"`
	Metadata MetadataConfig `yaml:"metadata" envPrefix:"METADATA_"`
	Limits   LimitsConfig   `yaml:"limits" envPrefix:"LIMITS_"`
	Log      LogConfig      `yaml:"log" envPrefix:"LOG_"`

	// Operators may run the registry's operator commands; each is named by
	// the SHA-256 fingerprint of its TLS client certificate.
	Operators []Operator `yaml:"operators"`
	// TrustedProxies are the proxies whose X-Forwarded-For gin believes;
	// empty (the default) trusts none.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES"`
	// Facade configures the JSON API for merchants (/v1/...).
	Facade FacadeConfig `yaml:"facade" envPrefix:"FACADE_"`
	// OpenRegistration lets any client whose TLS certificate is in the
	// metadata it submits register as a pending participant.
	OpenRegistration bool `yaml:"open_registration" env:"OPEN_REGISTRATION"`
	// Conformance is the registration gate.
	Conformance ConformanceConfig `yaml:"conformance" envPrefix:"CONFORMANCE_"`
	// Breaker configures the relay's circuit breakers (KECIS §12.1.1).
	Breaker BreakerConfig `yaml:"breaker" envPrefix:"BREAKER_"`
	// RateLimits bound each client's request rate (KECIS §12.7).
	RateLimits RateLimitsConfig `yaml:"rate_limits" envPrefix:"RATE_LIMITS_"`
	// Debug enables diagnostics for operators.
	Debug DebugConfig `yaml:"debug" envPrefix:"DEBUG_"`
	// Policy is the hub's payment policy (KECIS §12.9, docs/policy.md):
	// a preset (kr-2006 by default, KECIS_POLICY_PRESET), the operator's
	// rules and service classes. A policy that does not compile stops the
	// hub at start-up.
	Policy policy.Config `yaml:"policy" envPrefix:"POLICY_"`

	// dir is the directory of the config file; relative paths resolve
	// against it.
	dir string
}

// ConformanceConfig is the registration gate: with Required, an operator
// may approve a participant only after recording (kecis federation
// conformance) a passing conformance report of it, made with the keys it
// registered, no older than MaxAge (default 90 days).
type ConformanceConfig struct {
	Required bool     `yaml:"required" env:"REQUIRED"`
	MaxAge   Duration `yaml:"max_age" env:"MAX_AGE"`
}

// BreakerConfig configures the circuit breaker of each provider endpoint
// the hub relays to (KECIS §12.1.1): after Failures failed exchanges in a
// row (not connected, no answer in time, garbage, a SOAP fault, an answer
// that does not verify — a signed refusal is a healthy provider) the
// endpoint is skipped for OpenFor, its requests answered
// ProviderUnavailable at once; then one probe request is sent.
type BreakerConfig struct {
	// Failures in a row that open a breaker (default 5).
	Failures int `yaml:"failures" env:"FAILURES"`
	// OpenFor is how long a breaker stays open (default 30s).
	OpenFor Duration `yaml:"open_for" env:"OPEN_FOR"`
	// Disabled sends every request, whatever the endpoint's record.
	Disabled bool `yaml:"disabled" env:"DISABLED"`
}

// DebugConfig enables diagnostics, off by default.
type DebugConfig struct {
	// PProf serves the Go runtime's profiles (net/http/pprof) under
	// /kecis/admin/debug/pprof/ on the participant-facing listener, to
	// operators only (their TLS client certificate, as the rest of the
	// operator API).
	PProf bool `yaml:"pprof" env:"PPROF"`
}

// RateLimitsConfig bounds how fast each client may call the hub (KECIS
// §12.7): a token bucket per client, answered 429 with Retry-After past it.
type RateLimitsConfig struct {
	// Registration limits the registration API (POST and PUT
	// /kecis/federation/participants) per TLS client certificate and per
	// remote address (default 0.2/s, burst 10).
	Registration RateConfig `yaml:"registration" envPrefix:"REGISTRATION_"`
	// Facade limits the JSON facade per merchant API key or certificate
	// (default 200/s, burst 400).
	Facade RateConfig `yaml:"facade" envPrefix:"FACADE_"`
	// MaxKeys bounds the clients each limiter remembers (default 10000);
	// IdleAfter forgets a client unseen that long (default 10m).
	MaxKeys   int      `yaml:"max_keys" env:"MAX_KEYS"`
	IdleAfter Duration `yaml:"idle_after" env:"IDLE_AFTER"`
}

// RateConfig is one limit: PerSecond requests a second on average, Burst
// at once; Disabled lifts it.
type RateConfig struct {
	PerSecond float64 `yaml:"per_second" env:"PER_SECOND"`
	Burst     int     `yaml:"burst" env:"BURST"`
	Disabled  bool    `yaml:"disabled" env:"DISABLED"`
}

// withDefaults fills a zero rate and burst.
func (r RateConfig) withDefaults(perSecond float64, burst int) RateConfig {
	if r.PerSecond == 0 {
		r.PerSecond = perSecond
	}
	if r.Burst == 0 {
		r.Burst = burst
	}
	return r
}

// TLSConfig is the hub's TLS server certificate.
type TLSConfig struct {
	Cert string `yaml:"cert" env:"CERT"`
	Key  string `yaml:"key" env:"KEY"`
	// ClientCert and ClientKey are what the hub presents when it calls
	// participants (the router, later).
	ClientCert string `yaml:"client_cert" env:"CLIENT_CERT"`
	ClientKey  string `yaml:"client_key" env:"CLIENT_KEY"`
}

// FacadeConfig configures the merchants' JSON facade.
type FacadeConfig struct {
	// AllowClearCard accepts card data in clear over TLS (encrypted by the
	// hub at once). Development only, or a hub that accepts card-data scope:
	// card numbers then pass through the hub's memory.
	AllowClearCard bool `yaml:"allow_clear_card" env:"ALLOW_CLEAR_CARD"`
	// APIKeys bind API keys (by SHA-256, hex) to merchants' entities.
	APIKeys []FacadeAPIKey `yaml:"api_keys"`
}

// FacadeAPIKey is one merchant API key.
type FacadeAPIKey struct {
	EntityID  string `yaml:"entity_id"`
	KeySHA256 string `yaml:"key_sha256"`
}

// KeyPair names a PEM key and certificate.
type KeyPair struct {
	Cert string `yaml:"cert" env:"CERT"`
	Key  string `yaml:"key" env:"KEY"`
}

// DatabaseConfig selects the store: "sqlite:PATH" (embedded, the default)
// or "postgres://…" (several replicas on one database).
type DatabaseConfig struct {
	DSN string `yaml:"dsn" env:"DSN"`
	// IdempotencyRetention is how long a finished idempotency key is kept
	// (retries within it get the recorded answer; default 24h); PruneLimit
	// bounds the expired rows each answer's commit deletes from each table
	// (default 16), so that the tables stay bounded at a bounded cost per
	// request (KECIS §12.3).
	IdempotencyRetention Duration `yaml:"idempotency_retention" env:"IDEMPOTENCY_RETENTION"`
	PruneLimit           int      `yaml:"prune_limit" env:"PRUNE_LIMIT"`
}

// MetadataConfig sets what the hub publishes.
type MetadataConfig struct {
	// Validity is how long a signed descriptor or aggregate is valid
	// (validUntil = now + Validity).
	Validity Duration `yaml:"validity" env:"VALIDITY"`
	// CacheDuration is the advertised cacheDuration.
	CacheDuration Duration `yaml:"cache_duration" env:"CACHE_DURATION"`
	// Name of the aggregate (md:EntitiesDescriptor/@Name).
	Name string `yaml:"name" env:"NAME"`
}

// LimitsConfig bounds what a client can make the hub do.
type LimitsConfig struct {
	MaxBodyBytes    int64    `yaml:"max_body_bytes" env:"MAX_BODY_BYTES"`
	ReadTimeout     Duration `yaml:"read_timeout" env:"READ_TIMEOUT"`
	WriteTimeout    Duration `yaml:"write_timeout" env:"WRITE_TIMEOUT"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT"`
	// RelayTimeout bounds one relayed exchange; past it the sender gets a
	// hub-signed Pending.
	RelayTimeout Duration `yaml:"relay_timeout" env:"RELAY_TIMEOUT"`
}

// LogConfig configures slog.
type LogConfig struct {
	Level  string `yaml:"level" env:"LEVEL"`   // debug, info, warn, error
	Format string `yaml:"format" env:"FORMAT"` // json or text
}

// Operator is one registry operator.
type Operator struct {
	Name       string `yaml:"name"`
	CertSHA256 string `yaml:"cert_sha256"`
}

// Duration is a time.Duration written as "90s", "1h" in YAML and env.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler (YAML and env).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return errors.New("duration must not be negative")
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadConfig reads a YAML file, applies KECIS_* environment overrides from
// environ (os.Environ() in production), fills defaults and validates.
func LoadConfig(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	if err := policy.DecodeYAML(data, c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	envMap := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	if err := env.ParseWithOptions(c, env.Options{Prefix: "KECIS_", Environment: envMap}); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	c.dir = filepath.Dir(path)
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if c.OpsListen == "" {
		c.OpsListen = "127.0.0.1:9090"
	}
	if c.Database.DSN == "" {
		c.Database.DSN = "sqlite:hub.db"
	}
	if c.Metadata.Validity == 0 {
		c.Metadata.Validity = Duration(7 * 24 * time.Hour)
	}
	if c.Metadata.CacheDuration == 0 {
		c.Metadata.CacheDuration = Duration(time.Hour)
	}
	if c.Metadata.Name == "" {
		c.Metadata.Name = c.EntityID
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = 1 << 20
	}
	if c.Limits.ReadTimeout == 0 {
		c.Limits.ReadTimeout = Duration(10 * time.Second)
	}
	if c.Limits.WriteTimeout == 0 {
		c.Limits.WriteTimeout = Duration(30 * time.Second)
	}
	if c.Limits.ShutdownTimeout == 0 {
		c.Limits.ShutdownTimeout = Duration(20 * time.Second)
	}
	if c.Limits.RelayTimeout == 0 {
		c.Limits.RelayTimeout = Duration(20 * time.Second)
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Database.IdempotencyRetention == 0 {
		c.Database.IdempotencyRetention = Duration(router.DefaultIdemRetention)
	}
	if c.Database.PruneLimit == 0 {
		c.Database.PruneLimit = router.DefaultPruneLimit
	}
	if c.Breaker.OpenFor == 0 {
		c.Breaker.OpenFor = Duration(30 * time.Second)
	}
	c.RateLimits.Registration = c.RateLimits.Registration.withDefaults(0.2, 10)
	c.RateLimits.Facade = c.RateLimits.Facade.withDefaults(200, 400)
	if c.RateLimits.MaxKeys == 0 {
		c.RateLimits.MaxKeys = 10000
	}
	if c.RateLimits.IdleAfter == 0 {
		c.RateLimits.IdleAfter = Duration(10 * time.Minute)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.PublicURL == "" {
		c.PublicURL = "https://" + c.Listen
	}
}

// Validate reports every configuration problem at once.
func (c *Config) Validate() error {
	var errs []error
	need := func(v, name string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	need(c.EntityID, "entity_id")
	need(c.TLS.Cert, "tls.cert")
	need(c.TLS.Key, "tls.key")
	need(c.Signing.Cert, "signing.cert")
	need(c.Signing.Key, "signing.key")
	if !strings.HasPrefix(c.Database.DSN, "sqlite:") && !strings.HasPrefix(c.Database.DSN, "postgres://") && !strings.HasPrefix(c.Database.DSN, "postgresql://") {
		errs = append(errs, fmt.Errorf("database.dsn must start with sqlite: or postgres://"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: use json or text", c.Log.Format))
	}
	for i, o := range c.Operators {
		fp := strings.ToLower(strings.ReplaceAll(o.CertSHA256, ":", ""))
		if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
			errs = append(errs, fmt.Errorf("operators[%d].cert_sha256 must be a SHA-256 fingerprint (64 hex digits)", i))
		}
		c.Operators[i].CertSHA256 = fp
	}
	if c.Limits.WriteTimeout <= c.Limits.RelayTimeout {
		// A relayed exchange answers Pending after the relay timeout: the
		// answer must still be writable then (KECIS §9.10).
		errs = append(errs, fmt.Errorf("limits.write_timeout (%v) must exceed limits.relay_timeout (%v)", c.Limits.WriteTimeout.D(), c.Limits.RelayTimeout.D()))
	}
	if c.Database.IdempotencyRetention < 0 || c.Database.PruneLimit < 0 {
		errs = append(errs, fmt.Errorf("database.idempotency_retention and database.prune_limit must not be negative"))
	}
	if c.Breaker.Failures < 1 {
		errs = append(errs, fmt.Errorf("breaker.failures must be at least 1 (breaker.disabled turns the breakers off)"))
	}
	for _, r := range []struct {
		name string
		RateConfig
	}{{"registration", c.RateLimits.Registration}, {"facade", c.RateLimits.Facade}} {
		if !(r.PerSecond > 0) || r.Burst < 1 {
			errs = append(errs, fmt.Errorf("rate_limits.%s: per_second must be positive and burst at least 1 (disabled: true lifts the limit)", r.name))
		}
	}
	if c.RateLimits.MaxKeys < 1 {
		errs = append(errs, fmt.Errorf("rate_limits.max_keys must be at least 1"))
	}
	if c.Metadata.CacheDuration > c.Metadata.Validity {
		errs = append(errs, fmt.Errorf("metadata.cache_duration must not exceed metadata.validity"))
	}
	if _, err := policy.Compile(c.Policy); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Path resolves a configured path against the config file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// SQLiteDSN rewrites a relative sqlite: path against the config directory.
func (c *Config) SQLiteDSN() string {
	if rest, ok := strings.CutPrefix(c.Database.DSN, "sqlite:"); ok && rest != ":memory:" && !strings.HasPrefix(rest, "file:") {
		return "sqlite:" + c.Path(rest)
	}
	return c.Database.DSN
}
