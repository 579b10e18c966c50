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
	"strconv"
	"strings"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/httpserver"
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
	// Merchant2ID is the second shop: two merchants of the same PG, each
	// with its own keys and API key, must never see each other's payments.
	Merchant2ID = "https://shop2.kecis.test/kecis"
	PGID        = "https://pg.kecis.test/kecis"
	// TesterID is the conformance suite's participant (Config.Tester).
	TesterID = "https://tester.kecis.test/kecis"
	// SecondTesterID is the suite's second identity (Config.Tester): a
	// participant of the tester's standing, with keys of its own, that must
	// not reach the tester's payments (KECIS §13.3).
	SecondTesterID = "https://tester2.kecis.test/kecis"
)

// Display names of the demo's participants (the merchants' are in
// merchants).
const (
	hubName    = "KECIS hub (demo)"
	issuerName = "KECIS Card (demo issuer)"
	pgName     = "KECIS Pay (demo PG)"
	testerName = "KECIS conformance suite"
	// secondTesterName is the suite's second identity's.
	secondTesterName = "KECIS conformance suite (second identity)"
)

// merchants are the demo's shops: entityID, display name and the
// directory of their keys under Config.Dir.
var merchants = []struct{ id, name, dir string }{
	{MerchantID, "Demo shop", "merchant"},
	{Merchant2ID, "Demo shop 2", "merchant2"},
}

// Merchant is one of the demo's shops, registered and active at the hub.
type Merchant struct {
	EntityID string
	Name     string // its display name
	// Dir holds its keys: signing/, encryption/, tls/ (cert.pem, key.pem).
	Dir string
	// APIKey authenticates it on the hub's JSON facade (Bearer).
	APIKey string
	// Client is its SDK client for the card service.
	Client *card.Client
}

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
	// `tester` role (keys under Dir/tester), and its second identity
	// (SecondTesterID, keys under Dir/tester2), and lets the issuer's back
	// channel admit the tester's TLS client certificate beside the hub's
	// (test mode).
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
	// Outcome is what the card is for: OutcomeApproved, or
	// OutcomeLimitExceeded for a payment above its small Limit.
	Outcome string
}

// Demo is a running federation.
type Demo struct {
	HubURL, HubOps, IssuerKECIS, IssuerNative, TelecomURL string
	PGNative, PGKECIS, PGCall                             string
	HubTLSCert                                            string // PEM file of the hub's TLS certificate (curl --cacert)
	Cards                                                 []TestCard
	// Merchants are the demo's shops, in a stable order (MerchantID first).
	Merchants []*Merchant
	// Manifest is the path of demo.json (ManifestFile), written once the
	// demo is up and removed by Close.
	Manifest string

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
	// PGMerchants are the PG merchant accounts (MIDs) the federation's
	// merchants pay through, one each, by entityID (the tester's too in
	// test mode).
	PGMerchants map[string]string

	// hubSigning and hubTLS are the hub's certificates an SDK client
	// trusts; clientTimeout bounds its calls.
	hubSigning, hubTLS *x509.Certificate
	clientTimeout      time.Duration
	closers            []func()
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
	return load(dir)
}

// load reads the key pair in dir (cert.pem, key.pem).
func load(dir string) (keyset, error) {
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

// reachable is the host:port a client dials for a bound listener: a
// wildcard address (":0", "0.0.0.0:8443") is reached on loopback, which the
// demo's TLS certificates name.
func reachable(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || !t.IP.IsUnspecified() {
		return a.String()
	}
	ip := net.IPv6loopback
	if t.IP.To4() != nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(t.Port))
}

// Close stops everything, newest first; a second Close does nothing.
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
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
	// demo.json exists while the demo runs: a stale one goes first.
	d.Manifest = p(ManifestFile)
	if err := os.Remove(d.Manifest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	keys := map[string]keyset{}
	for _, k := range []struct {
		name string
		kind devpki.Kind
	}{
		{"hub/signing", devpki.Signing}, {"hub/tls", devpki.TLSServer},
		{"issuer/signing", devpki.Signing}, {"issuer/encryption", devpki.Encryption}, {"issuer/tls", devpki.TLSServer},
		{"pg/signing", devpki.Signing}, {"pg/encryption", devpki.Encryption}, {"pg/tls", devpki.TLSServer},
	} {
		ks, err := ensure(p(k.name), k.kind, "KECIS demo "+k.name)
		if err != nil {
			return nil, err
		}
		keys[k.name] = ks
	}
	// Each merchant its own keys, its own TLS client certificate.
	for _, m := range merchants {
		for _, k := range []struct {
			name string
			kind devpki.Kind
		}{{"signing", devpki.Signing}, {"encryption", devpki.Encryption}, {"tls", devpki.TLSClient}} {
			ks, err := ensure(p(m.dir, k.name), k.kind, "KECIS demo "+m.dir+"/"+k.name)
			if err != nil {
				return nil, err
			}
			keys[m.dir+"/"+k.name] = ks
		}
		d.Merchants = append(d.Merchants, &Merchant{EntityID: m.id, Name: m.name, Dir: p(m.dir)})
	}
	if cfg.Tester {
		for _, k := range []struct {
			name string
			kind devpki.Kind
		}{{"tester/signing", devpki.Signing}, {"tester/encryption", devpki.Encryption}, {"tester/tls", devpki.TLSClient},
			{"tester2/signing", devpki.Signing}, {"tester2/encryption", devpki.Encryption}, {"tester2/tls", devpki.TLSClient}} {
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

	// Listeners first: the hub's public URL, every participant's metadata
	// and every configuration carry the addresses actually bound (port 0
	// picks a free one, so that several demos run side by side).
	var hubL, opsL, issL, natL, telL, pgNatL, pgKL, pgCallL net.Listener
	for _, l := range []struct {
		addr, what, scheme string
		l                  *net.Listener
		url                *string
	}{
		{cfg.HubListen, "hub", "https", &hubL, &d.HubURL}, {cfg.HubOps, "hub ops", "http", &opsL, &d.HubOps},
		{cfg.IssuerKECIS, "issuer", "https", &issL, &d.IssuerKECIS}, {cfg.IssuerNative, "issuer native API", "http", &natL, &d.IssuerNative},
		{cfg.Telecom, "telecom", "http", &telL, &d.TelecomURL}, {cfg.PGNative, "PG", "http", &pgNatL, &d.PGNative},
		{cfg.PGKECIS, "PG sidecar", "https", &pgKL, &d.PGKECIS}, {cfg.PGCall, "PG sidecar calling endpoint", "http", &pgCallL, &d.PGCall},
	} {
		ln, err := listen(l.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.what, err)
		}
		d.closers = append(d.closers, func() { ln.Close() })
		*l.l, *l.url = ln, l.scheme+"://"+reachable(ln.Addr())
	}

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
`, HubID, hubL.Addr(), d.HubURL, opsL.Addr(), cfg.RelayTimeout, cfg.AllowClearCard)
	for _, m := range d.Merchants {
		apiKey, err := secret(filepath.Join(m.Dir, "api-key"), 16)
		if err != nil {
			return nil, err
		}
		m.APIKey = "sk_demo_" + hex.EncodeToString(apiKey)
		sum := sha256.Sum256([]byte(m.APIKey))
		hubCfg += fmt.Sprintf("    - {entity_id: %q, key_sha256: %s}\n", m.EntityID, hex.EncodeToString(sum[:]))
	}
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
	if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: IssuerID, DisplayName: issuerName, Roles: []metadata.Role{metadata.RoleIssuer},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["issuer/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["issuer/encryption"].cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: keys["issuer/tls"].cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: issuerEndpoint}},
		Services:  issuerServices(cfg),
	}); err != nil {
		return nil, err
	}
	for i, m := range d.Merchants {
		k := merchants[i].dir + "/"
		if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: m.EntityID, DisplayName: m.Name, Roles: []metadata.Role{metadata.RoleMerchant},
			Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys[k+"signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys[k+"encryption"].cert}},
			TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: keys[k+"tls"].cert}},
		}); err != nil {
			return nil, err
		}
	}

	backChannel := []string{fingerprint(keys["hub/tls"].cert)}
	if cfg.Tester {
		if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: TesterID, DisplayName: testerName, Roles: []metadata.Role{metadata.RoleTester},
			Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["tester/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["tester/encryption"].cert}},
			TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: keys["tester/tls"].cert}},
		}); err != nil {
			return nil, err
		}
		backChannel = append(backChannel, fingerprint(keys["tester/tls"].cert))
		if err := register(ctx, st, &metadata.EntityDescriptor{EntityID: SecondTesterID, DisplayName: secondTesterName, Roles: []metadata.Role{metadata.RoleTester},
			Keys:    []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["tester2/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["tester2/encryption"].cert}},
			TLSKeys: []metadata.KeyDescriptor{{Use: metadata.UseTLSClient, Certificate: keys["tester2/tls"].cert}},
		}); err != nil {
			return nil, err
		}
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
	// The cardholder's text names whom the issuer approved for: its
	// acquirer, the PG (merchants do not call the issuer).
	d.Adapter = &kecisadapter.Adapter{Issuer: iss, MerchantNames: map[string]string{PGID: "KECIS Pay"}}
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

	// The merchants' SDK clients.
	d.hubSigning, d.hubTLS, d.clientTimeout = hubSigner, hubTLS, cfg.RelayTimeout+10*time.Second
	for _, m := range d.Merchants {
		if m.Client, err = d.cardClient(m.EntityID, m.Dir); err != nil {
			return nil, err
		}
	}
	if err := d.startPG(ctx, cfg, keys, pgNatL, pgKL, pgCallL); err != nil {
		return nil, err
	}
	// demo.json last: once it exists, everything it names is up.
	if err := writeManifest(cfg.Dir, d.manifest(cfg)); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { os.Remove(d.Manifest) })
	return d, nil
}

// cardServices are the card service's operations.
var cardServices = []string{card.ServiceApprove, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire}

// callers is who may call a demo provider's services (KECIS §13.2): the
// role of its contracted callers, narrowed to those participants, and the
// conformance suite (the tester role, narrowed to the demo's tester and its
// second identity) when Config.Tester registers them. A service without
// callers admits nobody.
func callers(cfg Config, role metadata.Role, entities ...string) ([]metadata.Role, []string) {
	roles := []metadata.Role{role, metadata.RoleTester}
	ids := append([]string{}, entities...)
	if cfg.Tester {
		ids = append(ids, TesterID, SecondTesterID)
	}
	return roles, ids
}

// cardClient is an SDK client for the card service, calling through the
// hub as the participant whose keys are in dir (signing/, encryption/,
// tls/).
func (d *Demo) cardClient(entityID, dir string) (*card.Client, error) {
	var ks [3]keyset
	for i, k := range []string{"signing", "encryption", "tls"} {
		var err error
		if ks[i], err = load(filepath.Join(dir, k)); err != nil {
			return nil, err
		}
	}
	signer, err := ks[0].signer()
	if err != nil {
		return nil, err
	}
	mdHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, []*x509.Certificate{d.hubTLS})}}
	c, err := connectors.NewClient(connectors.ClientConfig{EntityID: entityID, Signer: signer,
		Directory:   &metadata.Client{HubURL: d.HubURL, HubCerts: []*x509.Certificate{d.hubSigning}, HTTP: mdHTTP},
		Decryption:  []saml.DecryptionKey{{Cert: ks[1].cert, Key: ks[1].tls.PrivateKey.(crypto.Decrypter)}},
		HubEntityID: HubID, HubURL: d.HubURL, TLSClient: ks[2].tls, HubTLS: []*x509.Certificate{d.hubTLS},
		Attempts: 1, Timeout: d.clientTimeout})
	if err != nil {
		return nil, err
	}
	return &card.Client{C: c}, nil
}

// issuerServices are the issuer's card services, for its own cards' BINs.
// The issuer takes card:* from its acquirer, the demo PG, never from a
// merchant (KECIS §13.2), and from the conformance suite.
func issuerServices(cfg Config) []metadata.OfferedService {
	var bins metadata.BINList
	for _, b := range []string{issuer.DefaultBINs[issuer.Credit], issuer.DefaultBINs[issuer.Check], issuer.DefaultBINs[issuer.Prepaid]} {
		bins = append(bins, metadata.BINRange{From: b, To: b})
	}
	roles, ids := callers(cfg, metadata.RolePG, PGID)
	var out []metadata.OfferedService
	for _, s := range cardServices {
		out = append(out, metadata.OfferedService{Service: s, BINs: bins, Callers: roles, CallerEntities: ids})
	}
	return out
}

// pgServices are the PG's card services, within its contract's amounts.
// The PG takes card:* from the demo's merchants (its contracts) and from
// the conformance suite.
func (d *Demo) pgServices(cfg Config) []metadata.OfferedService {
	var shops []string
	for _, m := range d.Merchants {
		shops = append(shops, m.EntityID)
	}
	roles, ids := callers(cfg, metadata.RoleMerchant, shops...)
	var out []metadata.OfferedService
	for _, s := range cardServices {
		out = append(out, metadata.OfferedService{Service: s, Limits: []metadata.Limit{{Currency: "KRW", Min: 100, Max: 10_000_000}},
			Callers: roles, CallerEntities: ids})
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
	// The sidecar, from the PG's mapping file.
	env := map[string]string{
		"PG_ENTITY_ID": PGID, "PG_KECIS_LISTEN": kL.Addr().String(), "PG_KECIS_URL": d.PGKECIS, "PG_CALL_LISTEN": callL.Addr().String(),
		"HUB_URL": d.HubURL, "HUB_ENTITY_ID": HubID, "KEYS": cfg.Dir, "STATE": p("pg"),
		"PG_NATIVE_URL": d.PGNative, "PG_MERCHANTS_FILE": p("pg", "merchants.yaml"),
	}
	// Each federation merchant pays through a PG merchant account of its
	// own (KECIS §13.3), and so does the conformance suite, a caller like
	// any other: the sidecar's merchants table maps each to its account's
	// API key, which the environment carries.
	type account struct{ id, name string }
	var accounts []account
	for _, m := range d.Merchants {
		accounts = append(accounts, account{m.EntityID, m.Name})
	}
	if cfg.Tester {
		accounts = append(accounts, account{TesterID, testerName}, account{SecondTesterID, secondTesterName})
	}
	d.PGMerchants = map[string]string{}
	table := "# The PG merchant account of each federation merchant, written by the demo.\nmerchants:\n"
	for _, c := range accounts {
		mid, key, err := pgAccount(ctx, g, p("pg", "accounts"), c.id, c.name)
		if err != nil {
			return err
		}
		d.PGMerchants[c.id] = mid
		env["PG_KEY_"+mid] = key
		table += fmt.Sprintf("  %q: {id: %s, headers: {X-PG-Key: \"${PG_KEY_%s}\"}}\n", c.id, mid, mid)
	}
	if err := os.WriteFile(env["PG_MERCHANTS_FILE"], []byte(table), 0o600); err != nil {
		return err
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
	if err := register(ctx, d.HubStore, &metadata.EntityDescriptor{EntityID: PGID, DisplayName: pgName, Roles: []metadata.Role{metadata.RolePG},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: keys["pg/signing"].cert}, {Use: metadata.UseEncryption, Certificate: keys["pg/encryption"].cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: keys["pg/tls"].cert}, {Use: metadata.UseTLSClient, Certificate: keys["pg/tls"].cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: d.PGKECIS + "/kecis/soap"}},
		Services:  d.pgServices(cfg),
	}); err != nil {
		return err
	}
	for i, m := range d.Merchants {
		id := "demo-card-via-pg"
		if i > 0 {
			id += fmt.Sprintf("-%d", i+1)
		}
		err = d.HubStore.PutRoutingRule(ctx, &store.RoutingRule{ID: id, Priority: 10, Service: "urn:kecis:service:card:",
			Merchant: m.EntityID, Target: PGID, CreatedAt: time.Now().UTC()})
		if err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	d.Hub.RegistryChanged()
	return nil
}

// pgAccount returns the PG merchant account of a federation participant:
// its MID, derived from the entityID, and its API key, kept in dir (the PG
// keeps only the key's hash), opening the account on first use.
func pgAccount(ctx context.Context, g *pg.PG, dir, entityID, name string) (mid, key string, err error) {
	sum := sha256.Sum256([]byte(entityID))
	mid = "K" + strings.ToUpper(hex.EncodeToString(sum[:6]))
	keyFile := filepath.Join(dir, mid)
	if b, err := os.ReadFile(keyFile); err == nil {
		return mid, strings.TrimSpace(string(b)), nil
	}
	m, err := g.CreateMerchant(ctx, pg.NewMerchant{MID: mid, Name: name,
		Contract: pg.Contract{BINPrefixes: []string{"9490"}, FeeBPS: 250, MaxAmount: 10_000_000, DailyLimit: 100_000_000}})
	if err != nil {
		return "", "", fmt.Errorf("PG account of %s: %w", entityID, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	return mid, m.APIKey, os.WriteFile(keyFile, []byte(m.APIKey), 0o600)
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

// serve runs an HTTP(S) server on l until Close, under the limits of a
// SOAP endpoint: the issuer's KECIS endpoint is one, and they also cover
// the native APIs (the PG's calls the issuer for up to its gateway timeout)
// and the phone pages.
func (d *Demo) serve(l net.Listener, h http.Handler, tc *tls.Config) {
	srv := httpserver.New(h, httpserver.Limits{WriteTimeout: httpserver.SOAPWriteTimeout, MaxBodyBytes: httpserver.SOAPMaxBodyBytes}, nil)
	srv.TLSConfig = tc
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
		{Holder: "Hong Gildong", Phone: "010-1234-5678", Limit: 3_000_000, Password: "1234", BirthDate: "900101", Description: "a credit card with a 3,000,000 KRW limit", Outcome: OutcomeApproved},
		{Holder: "Kim Minji", Phone: "010-2222-3333", Limit: 50_000, Password: "4321", BirthDate: "851231", Description: "a credit card with a 50,000 KRW limit (for declines)", Outcome: OutcomeLimitExceeded},
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
