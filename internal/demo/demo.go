// Package demo starts a whole KECIS federation on loopback: the hub, a
// simulated card issuer behind its KECIS adapter, a simulated mobile
// carrier delivering the issuer's texts to simulated phones, and a merchant
// (an SDK client and a JSON-facade API key), with a development PKI
// generated on first run, every participant registered and approved, on
// SQLite. `kecis demo` (make run) and the end-to-end tests use it.
package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sidecar"
	"github.com/kecis/kecis/connectors/sms"
	adapterstore "github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/issuer/kecisadapter"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Entity IDs of the demo federation.
const (
	HubID      = "https://hub.kecis.test/kecis"
	IssuerID   = "https://issuer.kecis.test/kecis"
	MerchantID = "https://shop.kecis.test/kecis"
	PGID       = "https://pg.kecis.test/kecis"
	// TesterID is the conformance suite's participant (Config.Tester).
	TesterID = "https://tester.kecis.test/kecis"
)

// Config of a demo.
type Config struct {
	// Dir keeps the state: keys, databases (created on first run).
	Dir string
	// Addresses; "127.0.0.1:0" picks free ports (tests).
	HubListen, HubOps, IssuerKECIS, IssuerNative, Telecom string
	// The PG: its own API, its sidecar's KECIS endpoint and calling endpoint.
	PGNative, PGKECIS, PGCall string
	// RelayTimeout of the hub (default 10s).
	RelayTimeout time.Duration
	// AllowClearCard enables the facade's clear-card development mode.
	AllowClearCard bool
	// IssuerNow is the issuer's business clock (settlement cut-offs).
	IssuerNow func() time.Time
	Log       *slog.Logger
	// Tester registers the conformance suite as a participant with the
	// `tester` role (keys under Dir/tester) and lets the issuer's back
	// channel admit its TLS client certificate beside the hub's (test mode).
	Tester bool
}

// TestCard is a card the demo issuer issued.
type TestCard struct {
	PAN           ecml.PAN
	Holder, Phone string
	Limit         int64
	Password      string // four digits; key-in payments send the first two
	BirthDate     string // YYMMDD
	ExpMonth      int
	ExpYear       int
	Description   string
}

// Demo is a running federation.
type Demo struct {
	HubURL, HubOps, IssuerKECIS, IssuerNative, TelecomURL string
	PGNative, PGKECIS, PGCall                             string
	HubTLSCert                                            string // PEM file of the hub's TLS certificate (curl --cacert)
	MerchantAPIKey                                        string
	Cards                                                 []TestCard

	// HubSigningCert is the PEM file of the hub's signing certificate (it
	// verifies the metadata the hub serves); TesterDir holds the tester's
	// keys (signing/, encryption/, tls/: cert.pem, key.pem) when
	// Config.Tester is set.
	HubSigningCert, TesterDir string

	Hub      *server.Server
	HubStore store.Store
	Issuer   *issuer.Issuer
	Adapter  *kecisadapter.Adapter
	Telecom  *telecom.Telecom
	PG       *pg.PG
	// PGMerchant is the PG account the federation's merchants pay through.
	PGMerchant string
	// Merchant is the merchant's SDK client for the card service.
	Merchant *card.Client

	closers []func()
}

type keyset struct {
	dir  string
	tls  tls.Certificate
	cert *x509.Certificate
}

func ensure(dir string, kind devpki.Kind, cn string) (keyset, error) {
	if _, err := devpki.Ensure(dir, kind, cn, devpki.LoopbackHosts, time.Now()); err != nil {
		return keyset{}, err
	}
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return keyset{}, err
	}
	c, err := x509.ParseCertificate(kp.Certificate[0])
	return keyset{dir: dir, tls: kp, cert: c}, err
}

func (k keyset) signer() (*saml.Signer, error) {
	return saml.NewSigner(k.tls.PrivateKey.(crypto.Signer), k.cert)
}

func fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// secret reads a random secret kept in the state directory, making it on
// first run.
func secret(path string, n int) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 2*n {
		return hex.DecodeString(string(b))
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600)
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

// Close stops everything, newest first.
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// Start brings the federation up.
func Start(ctx context.Context, cfg Config) (_ *Demo, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RelayTimeout == 0 {
		cfg.RelayTimeout = 10 * time.Second
	}
	// Absolute: the paths written into the hub's and the sidecar's
	// configurations resolve against their own directories.
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	d := &Demo{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	p := func(parts ...string) string { return filepath.Join(append([]string{cfg.Dir}, parts...)...) }
	keys := map[string]keyset{}
	for _, k := range []struct {
		name string
		kind devpki.Kind
	}{
		{"hub/signing", devpki.Signing}, {"hub/tls", devpki.TLSServer},
		{"issuer/signing", devpki.Signing}, {"issuer/encryption", devpki.Encryption}, {"issuer/tls", devpki.TLSServer},
		{"merchant/signing", devpki.Signing}, {"merchant/encryption", devpki.Encryption}, {"merchant/tls", devpki.TLSClient},
		{"pg/signing", devpki.Signing}, {"pg/encryption", devpki.Encryption}, {"pg/tls", devpki.TLSServer},
	} {
		ks, err := ensure(p(k.name), k.kind, "KECIS demo "+k.name)
		if err != nil {
			return nil, err
		}
		keys[k.name] = ks
	}
	if cfg.Tester {
		for _, k := range []struct {
			name string
			kind devpki.Kind
		}{{"tester/signing", devpki.Signing}, {"tester/encryption", devpki.Encryption}, {"tester/tls", devpki.TLSClient}} {
			ks, err := ensure(p(k.name), k.kind, "KECIS demo "+k.name)
			if err != nil {
				return nil, err
			}
			keys[k.name] = ks
		}
		d.TesterDir = p("tester")
	}
	d.HubTLSCert = p("hub", "tls", "cert.pem")
	d.HubSigningCert = p("hub", "signing", "cert.pem")

	// Listeners first: the URLs go into the metadata.
	hubL, err := listen(cfg.HubListen)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	opsL, err := listen(cfg.HubOps)
	if err != nil {
		hubL.Close()
		return nil, fmt.Errorf("hub ops: %w", err)
	}
	issL, err := listen(cfg.IssuerKECIS)
	if err != nil {
		hubL.Close()
		opsL.Close()
		return nil, fmt.Errorf("issuer: %w", err)
	}
	natL, err := listen(cfg.IssuerNative)
	if err != nil {
		return nil, fmt.Errorf("issuer native API: %w", err)
	}
	telL, err := listen(cfg.Telecom)
	if err != nil {
		return nil, fmt.Errorf("telecom: %w", err)
	}
	pgNatL, err := listen(cfg.PGNative)
	if err != nil {
		return nil, fmt.Errorf("PG: %w", err)
	}
	pgKL, err := listen(cfg.PGKECIS)
	if err != nil {
		return nil, fmt.Errorf("PG sidecar: %w", err)
	}
	pgCallL, err := listen(cfg.PGCall)
	if err != nil {
		return nil, fmt.Errorf("PG sidecar calling endpoint: %w", err)
	}
	d.PGNative, d.PGKECIS, d.PGCall = "http://"+pgNatL.Addr().String(), "https://"+pgKL.Addr().String(), "http://"+pgCallL.Addr().String()
	d.HubURL, d.HubOps = "https://"+hubL.Addr().String(), "http://"+opsL.Addr().String()
	d.IssuerKECIS, d.IssuerNative, d.TelecomURL = "https://"+issL.Addr().String(), "http://"+natL.Addr().String(), "http://"+telL.Addr().String()

	// The telecom and its simulated phones.
	if err := os.MkdirAll(p("telecom"), 0o700); err != nil {
		return nil, err
	}
	tel, err := telecom.Open(ctx, telecom.Config{DSN: "sqlite:" + p("telecom", "telecom.db"), Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("telecom: %w", err)
	}
	d.Telecom = tel
	d.closers = append(d.closers, func() { tel.Close() })
	d.serve(telL, tel.Handler(), nil)
	smsKey, err := secret(p("telecom", "issuer-api-key"), 16)
	if err != nil {
		return nil, err
	}
	if err := tel.AddSender(ctx, telecom.SenderAccount{ID: "kecis-card", Name: "KECIS Card", APIKey: hex.EncodeToString(smsKey), Numbers: []string{"15880000"}}); err != nil && !alreadyThere(err) {
		return nil, fmt.Errorf("telecom sender: %w", err)
	}

	// The issuer, texting through the telecom's HTTP gateway.
	gw, err := sms.NewHTTPGateway(sms.GatewayConfig{Logger: cfg.Log, URL: d.TelecomURL + "/api/sms", APIKey: hex.EncodeToString(smsKey), MessageIDField: "message_id", DefaultFrom: "15880000"})
	if err != nil {
		return nil, err
	}
	dataKey, err := secret(p("issuer", "data-key"), 32)
	if err != nil {
		return nil, err
	}
	pepper, err := secret(p("issuer", "pepper"), 32)
	if err != nil {
		return nil, err
	}
	iss, err := issuer.Open(ctx, issuer.Config{DSN: "sqlite:" + p("issuer", "issuer.db"), Brand: "KECIS Card", DataKey: dataKey, Pepper: pepper,
		Notifier: issuer.NotifierFunc(func(ctx context.Context, phone, text string) error {
			_, err := gw.Send(ctx, sms.Message{To: phone, Text: text})
			return err
		}), Logger: cfg.Log, Now: cfg.IssuerNow})
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	d.Issuer = iss
	d.closers = append(d.closers, func() { iss.Close() })
	d.serve(natL, iss.Handler(), nil)
	if err := d.issueCards(ctx); err != nil {
		return nil, err
	}

	// The hub.
	hubCfg := fmt.Sprintf(`entity_id: %s
listen: %s
public_url: %s
ops_listen: %s
tls: {cert: tls/cert.pem, key: tls/key.pem}
signing: {cert: signing/cert.pem, key: signing/key.pem}
database: {dsn: "sqlite:hub.db"}
limits: {relay_timeout: %s}
log: {level: info}
facade:
  allow_clear_card: %t
  api_keys:
    - {entity_id: %q, key_sha256: %s}
`, HubID, hubL.Addr(), d.HubURL, opsL.Addr(), cfg.RelayTimeout, cfg.AllowClearCard, MerchantID, "%s")
	apiKey, err := secret(p("merchant", "api-key"), 16)
	if err != nil {
		return nil, err
	}
	d.MerchantAPIKey = "sk_demo_" + hex.EncodeToString(apiKey)
	sum := sha256.Sum256([]byte(d.MerchantAPIKey))
	hubCfg = fmt.Sprintf(hubCfg, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(p("hub", "hub.yaml"), []byte(hubCfg), 0o600); err != nil {
		return nil, err
	}
	hc, err := server.LoadConfig(p("hub", "hub.yaml"), nil)
	if err != nil {
		return nil, err
	}
	st, err := sqlstore.Open(ctx, hc.SQLiteDSN())
	if err != nil {
		return nil, err
	}
	d.HubStore = st
	d.closers = append(d.closers, func() { st.Close() })
	hub, err := server.New(hc, st, nil, server.Describe, cfg.Log)
	if err != nil {
		return nil, err
	}
	hub.Publisher = hub.DefaultPublisher()
	d.Hub = hub
	hctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Serve(hctx, hubL, opsL) }()
	d.closers = append(d.closers, func() { cancel(); <-done })

	// Register and approve the participants.
	issuerEndpoint := d.IssuerKECIS + "/kecis/soap"
	if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: IssuerID, DisplayName: "KECIS Card (demo issuer)", Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["issuer/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["issuer/encryption"].cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: keys["issuer/tls"].cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: issuerEndpoint}},
		Services:  issuerServices(),
	}); err != nil {
		return nil, err
	}
	if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: MerchantID, DisplayName: "Demo shop", Roles: []metadata.Role{metadata.RoleMerchant},
		Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["merchant/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["merchant/encryption"].cert}},
		TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: keys["merchant/tls"].cert}},
	}); err != nil {
		return nil, err
	}

	backChannel := []string{fingerprint(keys["hub/tls"].cert)}
	if cfg.Tester {
		if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: TesterID, DisplayName: "KECIS conformance suite", Roles: []metadata.Role{metadata.RoleTester},
			Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["tester/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["tester/encryption"].cert}},
			TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: keys["tester/tls"].cert}},
		}); err != nil {
			return nil, err
		}
		backChannel = append(backChannel, fingerprint(keys["tester/tls"].cert))
	}

	// The issuer's KECIS adapter: the SDK's Handler over the issuer.
	hubSigner := keys["hub/signing"].cert
	hubTLS := keys["hub/tls"].cert
	mdHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, []*x509.Certificate{hubTLS})}}
	issuerDir := &metadata.Client{HubURL: d.HubURL, HubCerts: []*x509.Certificate{hubSigner}, HTTP: mdHTTP}
	idemKey, err := secret(p("issuer", "idempotency-key"), 32)
	if err != nil {
		return nil, err
	}
	atRest, err := secret(p("issuer", "at-rest-key"), 32)
	if err != nil {
		return nil, err
	}
	astore, err := adapterstore.Open(ctx, "sqlite:"+p("issuer", "kecis.db"), atRest)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { astore.Close() })
	issSigner, err := keys["issuer/signing"].signer()
	if err != nil {
		return nil, err
	}
	d.Adapter = &kecisadapter.Adapter{Issuer: iss, MerchantNames: map[string]string{MerchantID: "Demo shop"}}
	h, err := connectors.NewHandler(connectors.HandlerConfig{
		EntityID: IssuerID, Signer: issSigner, Endpoints: []string{issuerEndpoint}, Directory: issuerDir, HubEntityID: HubID,
		Decryption:  []saml.DecryptionKey{{Cert: keys["issuer/encryption"].cert, Key: keys["issuer/encryption"].tls.PrivateKey.(crypto.Decrypter)}},
		BackChannel: backChannel, Services: card.Services(d.Adapter), Store: astore, IdemKey: idemKey, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", h)
	d.serve(issL, mux, &tls.Config{Certificates: []tls.Certificate{keys["issuer/tls"].tls}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})

	// The merchant's SDK client.
	mSigner, err := keys["merchant/signing"].signer()
	if err != nil {
		return nil, err
	}
	merchantDir := &metadata.Client{HubURL: d.HubURL, HubCerts: []*x509.Certificate{hubSigner}, HTTP: mdHTTP}
	mc, err := connectors.NewClient(connectors.ClientConfig{EntityID: MerchantID, Signer: mSigner, Directory: merchantDir,
		Decryption:  []saml.DecryptionKey{{Cert: keys["merchant/encryption"].cert, Key: keys["merchant/encryption"].tls.PrivateKey.(crypto.Decrypter)}},
		HubEntityID: HubID, HubURL: d.HubURL, TLSClient: keys["merchant/tls"].tls, HubTLS: []*x509.Certificate{hubTLS},
		Attempts: 1, Timeout: cfg.RelayTimeout + 10*time.Second})
	if err != nil {
		return nil, err
	}
	d.Merchant = &card.Client{C: mc}
	if err := d.startPG(ctx, cfg, keys, pgNatL, pgKL, pgCallL); err != nil {
		return nil, err
	}
	return d, nil
}

// issuerServices are the issuer's card services, for its own cards' BINs.
func issuerServices() []metadata.OfferedService {
	var bins metadata.BINList
	for _, b := range []string{issuer.DefaultBINs[issuer.Credit], issuer.DefaultBINs[issuer.Check], issuer.DefaultBINs[issuer.Prepaid]} {
		bins = append(bins, metadata.BINRange{From: b, To: b})
	}
	var out []metadata.OfferedService
	for _, s := range []string{card.ServiceApprove, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire} {
		out = append(out, metadata.OfferedService{Service: s, BINs: bins})
	}
	return out
}

// startPG starts the PG with its own API and joins it to the federation
// through the sidecar and its mapping file alone. The demo's merchants
// contract with the PG: a routing rule sends the facade's card payments to
// it, and the PG reaches the issuer through its sidecar's calling endpoint.
func (d *Demo) startPG(ctx context.Context, cfg Config, keys map[string]keyset, natL, kL, callL net.Listener) error {
	p := func(parts ...string) string { return filepath.Join(append([]string{cfg.Dir}, parts...)...) }
	dataKey, err := secret(p("pg", "data-key"), 32)
	if err != nil {
		return err
	}
	adminTok, err := secret(p("pg", "admin-token"), 16)
	if err != nil {
		return err
	}
	g, err := pg.Open(ctx, pg.Config{DSN: "sqlite:" + p("pg", "pg.db"), IssuerGatewayURL: d.PGCall, DataKey: dataKey,
		AdminToken: hex.EncodeToString(adminTok), Logger: cfg.Log, GatewayTimeout: cfg.RelayTimeout + 15*time.Second})
	if err != nil {
		return fmt.Errorf("PG: %w", err)
	}
	d.PG = g
	d.closers = append(d.closers, func() { g.Close() })
	// The PG's resolver: pending transactions are inquired at the issuer
	// (a lookup also inquires its own at once).
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = g.Run(rctx, 10*time.Second) }()
	d.closers = append(d.closers, func() { rcancel(); <-rdone })
	d.serve(natL, g.Handler(), nil)
	// The PG account the sidecar uses for the federation's merchants.
	keyFile := p("pg", "sidecar-account-key")
	pgKey, err := os.ReadFile(keyFile)
	if err != nil {
		m, err := g.CreateMerchant(ctx, pg.NewMerchant{MID: "M900001", Name: "KECIS federation merchants",
			Contract: pg.Contract{BINPrefixes: []string{"9490"}, FeeBPS: 250, MaxAmount: 10_000_000, DailyLimit: 100_000_000}})
		if err != nil {
			return fmt.Errorf("PG account: %w", err)
		}
		pgKey = []byte(m.APIKey)
		if err := os.WriteFile(keyFile, pgKey, 0o600); err != nil {
			return err
		}
	}
	d.PGMerchant = "M900001"
	// The sidecar, from the PG's mapping file.
	env := map[string]string{
		"PG_ENTITY_ID": PGID, "PG_KECIS_LISTEN": kL.Addr().String(), "PG_KECIS_URL": d.PGKECIS, "PG_CALL_LISTEN": callL.Addr().String(),
		"HUB_URL": d.HubURL, "HUB_ENTITY_ID": HubID, "KEYS": cfg.Dir, "STATE": p("pg"),
		"PG_NATIVE_URL": d.PGNative, "PG_SIDECAR_KEY": string(pgKey),
	}
	sc, err := sidecar.Parse(pg.KECISMapping, "examples/pg/adapter.yaml", cfg.Dir, func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	if cfg.Tester {
		// Test mode: the registered tester may send attacks directly.
		sc.Testers = append(sc.Testers, fingerprint(keys["tester/tls"].cert))
	}
	side, err := sidecar.New(ctx, sc, cfg.Log)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- side.Serve(sctx, kL, callL) }()
	d.closers = append(d.closers, func() { cancel(); <-done })
	// Register the PG and route the demo merchant's card payments to it.
	var pgServices []metadata.OfferedService
	for _, s := range []string{card.ServiceApprove, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire} {
		pgServices = append(pgServices, metadata.OfferedService{Service: s, Limits: []metadata.Limit{{Currency: "KRW", Min: 100, Max: 10_000_000}}})
	}
	if err := register(ctx, d.HubStore, &metadata.EntityDescriptor{EntityID: PGID, DisplayName: "KECIS Pay (demo PG)", Roles: []metadata.Role{metadata.RolePG},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["pg/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["pg/encryption"].cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: keys["pg/tls"].cert}, {Use: metadata.UseTLSClient, Certificate: keys["pg/tls"].cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: d.PGKECIS + "/kecis/soap"}},
		Services:  pgServices,
	}); err != nil {
		return err
	}
	err = d.HubStore.PutRoutingRule(ctx, &store.RoutingRule{ID: "demo-card-via-pg", Priority: 10, Service: "urn:kecis:service:card:",
		Merchant: MerchantID, Target: PGID, CreatedAt: time.Now().UTC()})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	d.Hub.RegistryChanged()
	return nil
}

func alreadyThere(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "exists") || strings.Contains(err.Error(), "already"))
}

// register stores a participant as active (the operator's approval is
// implied in the demo), or updates it when its metadata changed.
func register(ctx context.Context, st store.Store, ed *metadata.EntityDescriptor) error {
	md, err := metadata.Marshal(ed)
	if err != nil {
		return err
	}
	return server.SeedActive(ctx, st, md, time.Now())
}

// serve runs an HTTP(S) server on l until Close.
func (d *Demo) serve(l net.Listener, h http.Handler, tc *tls.Config) {
	srv := &http.Server{Handler: h, TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if tc != nil {
			_ = srv.ServeTLS(l, "", "")
		} else {
			_ = srv.Serve(l)
		}
	}()
	d.closers = append(d.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

// issueCards issues the demo's test cards (idempotently: the same cards on
// every run) and gives their holders phones at the telecom.
func (d *Demo) issueCards(ctx context.Context) error {
	specs := []TestCard{
		{Holder: "Hong Gildong", Phone: "010-1234-5678", Limit: 3_000_000, Password: "1234", BirthDate: "900101", Description: "a credit card with a 3,000,000 KRW limit"},
		{Holder: "Kim Minji", Phone: "010-2222-3333", Limit: 50_000, Password: "4321", BirthDate: "851231", Description: "a credit card with a 50,000 KRW limit (for declines)"},
	}
	for i, c := range specs {
		born, err := time.Parse("060102", c.BirthDate)
		if err != nil {
			return err
		}
		if born.Year() > time.Now().Year() {
			born = born.AddDate(-100, 0, 0)
		}
		if err := d.Telecom.AddSubscriber(ctx, telecom.Subscriber{Phone: c.Phone, HolderName: c.Holder, BirthDate: born}); err != nil && !alreadyThere(err) {
			return fmt.Errorf("telecom subscriber: %w", err)
		}
		ic, err := d.Issuer.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: c.Holder, HolderPhone: c.Phone,
			BirthDate: ecml.Secret(c.BirthDate), Password: ecml.Secret(c.Password), Limit: c.Limit, IdempotencyKey: fmt.Sprintf("demo-card-%d", i+1)})
		if err != nil {
			return fmt.Errorf("issuing a test card: %w", err)
		}
		c.PAN, c.ExpMonth, c.ExpYear = ic.PAN, ic.ExpMonth, ic.ExpYear
		d.Cards = append(d.Cards, c)
	}
	return nil
}
