package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
)

// startHub starts the hub: `kecis serve`'s server, on the configuration
// hubConfig writes, over its SQLite store, serving until Close.
func (d *Demo) startHub(ctx context.Context) error {
	k, err := d.keys("hub", false, devpki.TLSServer)
	if err != nil {
		return err
	}
	d.hubSigning, d.hubTLS = k.signing.cert, k.tls.cert
	pub, err := d.listen("public endpoint", d.cfg.HubListen, "https", &d.HubURL)
	if err != nil {
		return err
	}
	ops, err := d.listen("ops endpoint", d.cfg.HubOps, "http", &d.HubOps)
	if err != nil {
		return err
	}
	hc, err := d.hubConfig(pub, ops)
	if err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, hc.SQLiteDSN())
	if err != nil {
		return err
	}
	d.HubStore = st
	d.onClose(func() { st.Close() })
	hub, err := server.New(hc, st, nil, server.Describe, d.cfg.Log)
	if err != nil {
		return err
	}
	hub.Publisher = hub.DefaultPublisher()
	d.Hub = hub
	d.background(func(ctx context.Context) error { return hub.Serve(ctx, pub, ops) })
	return nil
}

// hubConfig is the hub's configuration, built as a value and written as
// hub/hub.yaml (what `kecis serve --config` reads; key paths relative to
// it), then loaded as `kecis serve` loads it: validated, defaults filled.
// The facade knows each merchant by the API key issued to it (apiKeys).
func (d *Demo) hubConfig(pub, ops net.Listener) (*server.Config, error) {
	keys, err := d.apiKeys()
	if err != nil {
		return nil, err
	}
	c := &server.Config{
		EntityID: HubID, Listen: pub.Addr().String(), PublicURL: d.HubURL, OpsListen: ops.Addr().String(),
		TLS:      server.TLSConfig{Cert: "tls/cert.pem", Key: "tls/key.pem"},
		Signing:  server.KeyPair{Cert: "signing/cert.pem", Key: "signing/key.pem"},
		Database: server.DatabaseConfig{DSN: "sqlite:hub.db"},
		Limits:   server.LimitsConfig{RelayTimeout: server.Duration(d.cfg.RelayTimeout)},
		Log:      server.LogConfig{Level: "info"},
		Facade:   server.FacadeConfig{AllowClearCard: d.cfg.AllowClearCard, APIKeys: keys},
	}
	// Zero values are left out: the file says what the demo sets, and
	// LoadConfig fills the rest with the hub's own defaults.
	b, err := yaml.MarshalWithOptions(c, yaml.OmitZero())
	if err != nil {
		return nil, err
	}
	path := d.path("hub", "hub.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return server.LoadConfig(path, nil)
}

// apiKeys issues each merchant its facade API key, as a hub operator
// would: the merchant keeps the key (api-key in its directory, made on
// first run), the hub's configuration only its SHA-256.
func (d *Demo) apiKeys() ([]server.FacadeAPIKey, error) {
	var keys []server.FacadeAPIKey
	for _, m := range d.Merchants {
		b, err := secret(filepath.Join(m.Dir, "api-key"), 16)
		if err != nil {
			return nil, err
		}
		m.APIKey = "sk_demo_" + hex.EncodeToString(b)
		sum := sha256.Sum256([]byte(m.APIKey))
		keys = append(keys, server.FacadeAPIKey{EntityID: m.EntityID, KeySHA256: hex.EncodeToString(sum[:])})
	}
	return keys, nil
}
