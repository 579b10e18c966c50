package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/goccy/go-yaml"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/server"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/internal/devpki"
)

// startHub starts the hub: `kecis serve`'s server, on the configuration
// hubConfig writes, over its store (SQLite, or PostgreSQL with
// Config.Postgres), serving until Close.
func (d *Demo) startHub(ctx context.Context) error {
	k, err := d.keys("hub", false, devpki.TLSServer)
	if err != nil {
		return err
	}
	if d.hubDSN, err = d.hubDatabase(ctx); err != nil {
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
		Database: server.DatabaseConfig{DSN: d.hubDSN},
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

// PostgresSchema is the schema of the hub's tables when Config.Postgres
// names no search_path: kecis_demo_ and 16 hex digits of the SHA-256 of
// the demo's absolute directory, one schema per directory. Start afresh
// with DROP SCHEMA <it> CASCADE (docs/demo.md).
func PostgresSchema(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "kecis_demo_" + hex.EncodeToString(sum[:8])
}

// hubDatabase is the DSN of the hub's store: SQLite's hub.db (relative to
// hub.yaml) unless Config.Postgres names a PostgreSQL database; then the
// schema is its search_path's or, when it names none, PostgresSchema of
// the demo's directory, created now if it does not exist. hub.yaml (0600)
// holds the DSN as given, a password too: a replica started on it
// (`kecis serve --config DIR/hub/hub.yaml`) reaches the same database.
func (d *Demo) hubDatabase(ctx context.Context) (string, error) {
	dsn := d.cfg.Postgres
	if dsn == "" {
		return "sqlite:hub.db", nil
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the hub's database: want a postgres:// DSN, got %s", sqldb.RedactDSN(dsn))
	}
	q := u.Query()
	if q.Get("search_path") != "" {
		return dsn, nil
	}
	schema := PostgresSchema(d.cfg.Dir)
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		return "", fmt.Errorf("create schema %s in %s: %w", schema, sqldb.RedactDSN(dsn), err)
	}
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
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
