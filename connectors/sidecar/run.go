package sidecar

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/connectors/ratelimit"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/store/pgstore"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Sidecar is a running adapter.
type Sidecar struct {
	Config  *Config
	Handler *connectors.Handler
	Caller  *Caller
	// OpsListener serves the operations endpoints (OpsHandler); nil:
	// Serve listens on Config.OpsListen when it is set.
	OpsListener net.Listener
	// PageListener serves the cardholder's amount-authentication page
	// when amountauth is enabled; nil: Serve listens on
	// amountauth.page_listen.
	PageListener net.Listener

	store   *storesql.Store
	aa      *amountAuth // nil: amountauth not enabled
	dir     *metadata.Client
	engine  *Engine
	metrics *Metrics
	tls     tls.Certificate
	certs   struct{ signing, encryption, tls *x509.Certificate }
	now     func() time.Time
	log     *slog.Logger
	// limits bound both endpoints (KECIS §9.10); zero fields take the
	// endpoint's defaults (tests shorten them).
	limits httpserver.Limits
	// limiter limits each caller of the KECIS endpoint (rate_limits,
	// KECIS §12.7) on s.now; nil when off.
	limiter *ratelimit.Limiter
}

// callWriteTimeout exceeds the calling endpoint's longest handler: the
// Client's default worst case, three attempts of 30 s with their backoff
// (KECIS §9.10).
const callWriteTimeout = 2 * time.Minute

// endpointLimits are s.limits with the endpoint's write timeout and body
// cap where s.limits leaves them zero.
func (s *Sidecar) endpointLimits(write time.Duration, body int64) httpserver.Limits {
	l := s.limits
	if l.WriteTimeout == 0 {
		l.WriteTimeout = write
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = body
	}
	return l
}

// New builds the sidecar from a loaded configuration: keys, the
// federation's metadata (through the hub, pinned), the adapter's store, the
// mapping engine, the serving handler and the caller; with amountauth
// enabled, the amount-authentication engine (KECIS §15.3) whose services
// the handler serves beside the mapped ones, on the issuer's card service
// through the hub and the native approve (nativeApprove).
func New(ctx context.Context, cfg *Config, log *slog.Logger) (*Sidecar, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	signer, err := saml.LoadSigner(cfg.Path(cfg.Keys.Signing.Key), cfg.Path(cfg.Keys.Signing.Cert))
	if err != nil {
		return nil, fmt.Errorf("keys.signing: %w", err)
	}
	dec, err := saml.LoadDecryptionKey(cfg.Path(cfg.Keys.Encryption.Key), cfg.Path(cfg.Keys.Encryption.Cert))
	if err != nil {
		return nil, fmt.Errorf("keys.encryption: %w", err)
	}
	tlsKP, err := tls.LoadX509KeyPair(cfg.Path(cfg.Keys.TLS.Cert), cfg.Path(cfg.Keys.TLS.Key))
	if err != nil {
		return nil, fmt.Errorf("keys.tls: %w", err)
	}
	hubSig, err := saml.LoadCertificates(cfg.Path(cfg.Hub.SigningCert))
	if err != nil {
		return nil, fmt.Errorf("hub.signing_cert: %w", err)
	}
	hubTLS, err := saml.LoadCertificates(cfg.Path(cfg.Hub.TLSCert))
	if err != nil {
		return nil, fmt.Errorf("hub.tls_cert: %w", err)
	}
	atRest, err := secretFile(cfg.Path(cfg.State.AtRestKeyFile))
	if err != nil {
		return nil, fmt.Errorf("state.at_rest_key_file: %w", err)
	}
	idem, err := secretFile(cfg.Path(cfg.State.IdempotencyKeyFile))
	if err != nil {
		return nil, fmt.Errorf("state.idempotency_key_file: %w", err)
	}
	dsn := cfg.State.DSN
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok && rest != ":memory:" {
		dsn = "sqlite:" + cfg.Path(rest)
	}
	db, st, err := openStore(ctx, dsn, atRest)
	if err != nil {
		return nil, fmt.Errorf("state.dsn: %w", err)
	}
	mdHTTP := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, hubTLS)}}
	dir := &metadata.Client{HubURL: cfg.Hub.URL, HubCerts: hubSig, HTTP: mdHTTP, Logger: log} // warns when it serves a cached copy (the hub down)
	backChannel := append([]string{}, cfg.Testers...)
	for _, c := range hubTLS {
		backChannel = append(backChannel, saml.Fingerprint(c))
	}
	eng := NewEngine(cfg, nil, log)
	eng.metrics = NewMetrics()
	cl, err := connectors.NewClient(connectors.ClientConfig{EntityID: cfg.EntityID, Signer: signer, Decryption: []saml.DecryptionKey{dec},
		Directory: dir, HubEntityID: cfg.Hub.EntityID, HubURL: cfg.Hub.URL, TLSClient: tlsKP, HubTLS: hubTLS})
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Sidecar{Config: cfg, store: st, dir: dir, engine: eng, metrics: eng.metrics, tls: tlsKP, now: time.Now, log: log,
		Caller: &Caller{Client: cl, Resolver: &connectors.Resolver{Metadata: dir, Self: cfg.EntityID}, Log: log}}
	services := eng.Services()
	if cfg.AmountAuthEnabled() {
		s.aa, err = newAmountAuth(ctx, cfg, aaDeps{signer: signer, db: db, atRest: atRest, issuer: &card.Client{C: cl},
			route:    issuerRoute(s.Caller.Resolver),
			acquirer: &nativeApprove{engine: eng, service: cfg.Services[card.ServiceApprove], objects: st, now: func() time.Time { return s.now() }},
			log:      log})
		if err != nil {
			st.Close()
			return nil, err
		}
		maps.Copy(services, s.aa.services(eng))
	}
	s.Handler, err = connectors.NewHandler(connectors.HandlerConfig{
		EntityID: cfg.EntityID, Signer: signer, Decryption: []saml.DecryptionKey{dec},
		Endpoints: []string{strings.TrimRight(cfg.PublicURL, "/") + "/kecis/soap"}, Directory: dir, HubEntityID: cfg.Hub.EntityID,
		BackChannel: backChannel, Services: services, Store: st, IdemKey: idem, Log: log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.certs.signing, s.certs.encryption, s.certs.tls = signer.Cert, dec.Cert, tlsKP.Leaf
	if rl, ok := cfg.RateLimits.Limit(); ok {
		s.limiter = ratelimit.New(rl, func() time.Time { return s.now() })
	}
	return s, nil
}

// Serve runs the KECIS endpoint (HTTPS, on kecis), the local calling
// endpoint (HTTP, on call; nil to disable) and the operations endpoints
// (HTTP, on OpsListener or Config.OpsListen; neither: none) until ctx
// ends; with amountauth enabled, also the cardholder's page (on
// PageListener or amountauth.page_listen; HTTPS with keys.tls when
// page_tls) and the recovery run, at once and every recover_every. On
// shutdown the servers stop, then the recovery run, then the store.
func (s *Sidecar) Serve(ctx context.Context, kecis, call net.Listener) error {
	ops := s.OpsListener
	if ops == nil && s.Config.OpsListen != "" {
		var err error
		if ops, err = net.Listen("tcp", s.Config.OpsListen); err != nil {
			s.store.Close()
			return fmt.Errorf("ops_listen: %w", err)
		}
	}
	page := s.PageListener
	if s.aa != nil && page == nil {
		var err error
		if page, err = net.Listen("tcp", s.Config.AmountAuth.PageListen); err != nil {
			if ops != nil {
				ops.Close()
			}
			s.store.Close()
			return fmt.Errorf("amountauth.page_listen: %w", err)
		}
	}
	srv := httpserver.New(s.kecisHandler(), s.endpointLimits(httpserver.SOAPWriteTimeout, httpserver.SOAPMaxBodyBytes), s.log)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.tls}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	errc := make(chan error, 4)
	go func() { errc <- srv.ServeTLS(kecis, "", "") }()
	var csrv, osrv, psrv *http.Server
	if call != nil {
		csrv = httpserver.New(s.metrics.instrument("call", s.Caller), s.endpointLimits(callWriteTimeout, 0), s.log)
		go func() { errc <- csrv.Serve(call) }()
	}
	attrs := []any{"entity_id", s.Config.EntityID, "kecis", kecis.Addr().String()}
	if ops != nil {
		osrv = httpserver.New(s.OpsHandler(), httpserver.Limits{}, s.log)
		go func() { errc <- osrv.Serve(ops) }()
		attrs = append(attrs, "ops", ops.Addr().String())
	}
	recovered := make(chan struct{})
	rctx, stopRecovery := context.WithCancel(context.WithoutCancel(ctx))
	if s.aa != nil {
		// An entry that matches voids and approves through the hub before
		// the page answers: the calling endpoint's write timeout.
		psrv = httpserver.New(s.metrics.instrument("amountauth", s.aa.page), s.endpointLimits(callWriteTimeout, 0), s.log)
		if s.Config.AmountAuth.PageTLS.On() {
			psrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.tls}, MinVersion: tls.VersionTLS12}
			go func() { errc <- psrv.ServeTLS(page, "", "") }()
		} else {
			go func() { errc <- psrv.Serve(page) }()
		}
		go func() { defer close(recovered); s.aa.run(rctx) }()
		attrs = append(attrs, "amountauth_page", page.Addr().String())
	} else {
		close(recovered)
	}
	s.log.Info("kecis adapter serving", attrs...)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	for _, o := range []*http.Server{csrv, osrv, psrv} {
		if o != nil {
			_ = o.Shutdown(sctx)
		}
	}
	stopRecovery()
	<-recovered
	s.store.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// kecisHandler serves the KECIS endpoint: POST /kecis/soap, each caller
// under the rate limit (a refusal is 429 with Retry-After and a SOAP
// fault, before the request is read: ratelimit.SOAP), and GET /healthz;
// every answer counted in kecis_adapter_http_requests_total{endpoint=kecis}.
func (s *Sidecar) kecisHandler() http.Handler {
	var soap http.Handler = s.Handler
	if s.limiter != nil {
		soap = s.limiter.SOAP(soap, func(r *http.Request, retryAfter time.Duration) {
			s.log.WarnContext(r.Context(), "KECIS endpoint: caller over its rate limit", "client", ratelimit.ClientKey(r, ""),
				"retry_after", retryAfter)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", soap)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return s.metrics.instrument("kecis", mux)
}

// openStore opens the adapter's database state.dsn names and the adapter
// store in it: the sidecar links both databases, and the DSN's dialect
// chooses (a program embedding the SDK imports the one it uses,
// sqlitestore or pgstore). The amountauth store shares the database (one
// pool; the store's Close closes it).
func openStore(ctx context.Context, dsn string, atRest []byte) (*sqlstore.DB, *storesql.Store, error) {
	cfg, err := sqlstore.ParseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	open := sqlitestore.New
	if cfg.Dialect == sqlstore.Postgres {
		open = pgstore.New
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	st, err := open(ctx, db, atRest)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, st, nil
}

// secretFile reads a hex secret (made on first run when missing).
func secretFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("a path is required")
	}
	if b, err := os.ReadFile(path); err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600)
}
