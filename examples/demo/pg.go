package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/sidecar"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// startPG starts the PG with its own API and joins it to the federation
// through the sidecar and its mapping file alone. The demo's merchants
// contract with the PG: routing rules send the facade's card payments and
// amount authentications to it, and the PG reaches the issuer through its
// sidecar's calling endpoint. The sidecar runs amount authentication
// (KECIS §15.3) with the cardholder's page on a listener of the demo's.
func (d *Demo) startPG(ctx context.Context) error {
	k, err := d.keys("pg", true, devpki.TLSServer)
	if err != nil {
		return err
	}
	native, err := d.listen("native API", d.cfg.PGNative, "http", &d.PGNative)
	if err != nil {
		return err
	}
	kecis, err := d.listen("sidecar's KECIS endpoint", d.cfg.PGKECIS, "https", &d.PGKECIS)
	if err != nil {
		return err
	}
	call, err := d.listen("sidecar's calling endpoint", d.cfg.PGCall, "http", &d.PGCall)
	if err != nil {
		return err
	}
	page, err := d.listen("amount-authentication page", d.cfg.PGPage, "http", &d.PGPage)
	if err != nil {
		return err
	}
	if err := d.openPG(ctx, native); err != nil {
		return err
	}
	sc, err := d.sidecarConfig(ctx, kecis, call, page)
	if err != nil {
		return err
	}
	side, err := sidecar.New(ctx, sc, d.cfg.Log)
	if err != nil {
		return err
	}
	side.PageListener = page
	d.background(func(ctx context.Context) error { return side.Serve(ctx, kecis, call) })
	// The sidecar's endpoints: its SOAP endpoint, and the cardholder's
	// page with the HTTP-POST binding, where a merchant's checkout sends
	// the browser (KECIS §10.2, §15.3.2).
	if err := d.register(ctx, &metadata.EntityDescriptor{EntityID: PGID, DisplayName: pgName, Roles: []metadata.Role{metadata.RolePG},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: k.signing.cert}, {Use: metadata.UseEncryption, Certificate: k.encryption.cert}},
		TLSKeys:   []metadata.KeyDescriptor{{Use: metadata.UseTLSServer, Certificate: k.tls.cert}, {Use: metadata.UseTLSClient, Certificate: k.tls.cert}},
		Endpoints: sc.Endpoints(),
		Services:  d.pgServices(d.cfg),
	}); err != nil {
		return err
	}
	d.amountAuth = d.manifestAmountAuth(sc)
	return d.routeToPG(ctx)
}

// openPG opens the PG, serves its own API on l and runs its resolver:
// pending transactions are inquired at the issuer (a lookup also inquires
// its own at once).
func (d *Demo) openPG(ctx context.Context, l net.Listener) error {
	dataKey, err := secret(d.path("pg", "data-key"), 32)
	if err != nil {
		return err
	}
	adminTok, err := secret(d.path("pg", "admin-token"), 16)
	if err != nil {
		return err
	}
	g, err := pg.Open(ctx, pg.Config{DSN: "sqlite:" + d.path("pg", "pg.db"), IssuerGatewayURL: d.PGCall, DataKey: dataKey,
		AdminToken: hex.EncodeToString(adminTok), Logger: d.cfg.Log, GatewayTimeout: d.cfg.RelayTimeout + 15*time.Second})
	if err != nil {
		return err
	}
	d.PG = g
	d.onClose(func() { g.Close() })
	d.background(func(ctx context.Context) error { return g.Run(ctx, 10*time.Second) })
	d.serve(l, g.Handler(), nil)
	return nil
}

// sidecarConfig is the PG sidecar's configuration: the PG's mapping file
// (examples/pg/adapter.yaml) with the environment it names. Each
// federation merchant pays through a PG merchant account of its own
// (KECIS §13.3), and so does the conformance suite, a caller like any
// other: the merchants file maps each to its account, whose API key the
// environment carries, with its amount-authentication options
// (aaOverrides). Amount authentication is on, its page served on page.
func (d *Demo) sidecarConfig(ctx context.Context, kecis, call, page net.Listener) (*sidecar.Config, error) {
	env := map[string]string{
		"PG_ENTITY_ID": PGID, "PG_KECIS_LISTEN": kecis.Addr().String(), "PG_KECIS_URL": d.PGKECIS, "PG_CALL_LISTEN": call.Addr().String(),
		"HUB_URL": d.HubURL, "HUB_ENTITY_ID": HubID, "KEYS": d.cfg.Dir, "STATE": d.path("pg"),
		"PG_NATIVE_URL": d.PGNative, "PG_MERCHANTS_FILE": d.path("pg", "merchants.yaml"),
		"PG_AMOUNTAUTH": "true", "PG_AA_PAGE_LISTEN": page.Addr().String(), "PG_AA_PAGE_URL": d.PGPage + AmountAuthPagePath,
		"PG_AA_METHOD": d.cfg.AmountAuthMethod,
	}
	type account struct{ id, name string }
	var accounts []account
	for _, m := range d.Merchants {
		accounts = append(accounts, account{m.EntityID, m.Name})
	}
	if d.cfg.Tester {
		for _, t := range testers {
			accounts = append(accounts, account{t.id, t.name})
		}
	}
	d.PGMerchants = map[string]string{}
	var file struct {
		Merchants map[string]*sidecar.Merchant `yaml:"merchants"`
	}
	file.Merchants = map[string]*sidecar.Merchant{}
	for _, a := range accounts {
		// The account is named as the hub's registry names the merchant
		// (its metadata's display name): the PG passes that name to the
		// issuer with every payment, so that the cardholder's text names
		// the shop (Ecom_Merchant).
		if p, err := d.HubStore.GetParticipant(ctx, a.id); err == nil && p.DisplayName != "" {
			a.name = p.DisplayName
		}
		mid, key, err := pgAccount(ctx, d.PG, d.path("pg", "accounts"), a.id, a.name, d.pgContract())
		if err != nil {
			return nil, err
		}
		d.PGMerchants[a.id] = mid
		env["PG_KEY_"+mid] = key
		file.Merchants[a.id] = &sidecar.Merchant{ID: mid, Headers: map[string]string{"X-PG-Key": "${PG_KEY_" + mid + "}"},
			AmountAuth: d.aaOverrides(a.id, a.name)}
	}
	b, err := yaml.MarshalWithOptions(&file, yaml.CustomMarshaler[time.Duration](func(t time.Duration) ([]byte, error) {
		return []byte(t.String()), nil
	}))
	if err != nil {
		return nil, err
	}
	b = append([]byte("# The PG merchant account of each federation merchant, and its amount-authentication options, written by the demo.\n"), b...)
	if err := os.WriteFile(env["PG_MERCHANTS_FILE"], b, 0o600); err != nil {
		return nil, err
	}
	sc, err := sidecar.Parse(pg.KECISMapping, "examples/pg/adapter.yaml", d.cfg.Dir, func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	if !sc.AmountAuthEnabled() {
		return nil, errors.New("examples/pg/adapter.yaml does not enable amount authentication with PG_AMOUNTAUTH=true")
	}
	sc.AmountAuth.Limits = demoAALimits
	if d.testerTLS != nil {
		// Test mode: the registered tester may send attacks directly.
		sc.Testers = append(sc.Testers, saml.Fingerprint(d.testerTLS))
	}
	return sc, nil
}

// AmountAuthPagePath is the path of the PG's amount-authentication page
// under Demo.PGPage (the sidecar's amountauth.page_url).
const AmountAuthPagePath = "/amountauth"

// testerAATimeout is the conformance suite's session timeout at the PG
// (the profile's amountauth.timeout): the amountauth module waits it out.
const testerAATimeout = 10 * time.Second

// testerAAAttempts is the suite's attempt limit at the PG (the profile's
// amountauth.attempts), the PG's default written out.
const testerAAAttempts = 3

// demoAALimits are the PG's amount-authentication limits in the demo: a
// test card may start 60 sessions an hour (burst 20) and fail 50 a day —
// the engine's defaults are 3, 3 and 3 (docs/amountauth.md, "The guessing
// bound") — so that people, the tests and repeated `make conformance`
// runs can share the demo's few test cards. The other limits are the
// engine's.
var demoAALimits = sidecar.AALimits{CardPerHour: 60, CardBurst: 20, CardFailuresPerDay: 50}

// aaOverrides are a federation participant's amount-authentication
// options in the PG's merchants table (KECIS §15.3.4): the name the
// cardholder's text shows; the demo shop's return URL, its checkout's
// (KECIS §15.3.2); for the conformance suite a short timeout and the
// amount method whatever Config.AmountAuthMethod says (its amountauth
// module types the amount the issuer approved).
func (d *Demo) aaOverrides(id, name string) *sidecar.MerchantAA {
	o := &sidecar.MerchantAA{Name: name}
	switch id {
	case MerchantID:
		o.ReturnURL = d.ShopURL + shopReturnPath
	case TesterID:
		timeout, attempts := testerAATimeout, testerAAAttempts
		o.Timeout, o.Attempts, o.Method = &timeout, &attempts, string(amountauth.ByAmount)
	}
	return o
}

// pgServices are the PG's card services and its amount authentication
// (KECIS §15.3), within its contract's amounts. The PG takes both from the
// demo's merchants (its contracts) and from the conformance suite.
func (d *Demo) pgServices(cfg Config) []metadata.OfferedService {
	var shops []string
	for _, m := range d.Merchants {
		shops = append(shops, m.EntityID)
	}
	roles, ids := callers(cfg, metadata.RoleMerchant, shops...)
	var out []metadata.OfferedService
	for _, s := range append(slices.Clone(cardServices), amountAuthServices...) {
		out = append(out, metadata.OfferedService{Service: s, Limits: []metadata.Limit{{Currency: "KRW", Min: 100, Max: 10_000_000}},
			Callers: roles, CallerEntities: ids})
	}
	return out
}

// routeToPG routes each demo merchant's card payments and amount
// authentications to the PG: the routing rules demo-card-via-pg,
// demo-card-via-pg-2, … and demo-amountauth-via-pg, … (KECIS §13.4).
func (d *Demo) routeToPG(ctx context.Context) error {
	for _, g := range []struct{ rule, group string }{{"demo-card-via-pg", "card"}, {"demo-amountauth-via-pg", "amountauth"}} {
		for i, m := range d.Merchants {
			id := g.rule
			if i > 0 {
				id += fmt.Sprintf("-%d", i+1)
			}
			err := d.HubStore.PutRoutingRule(ctx, &store.RoutingRule{ID: id, Priority: 10, Service: saml.ServicePrefix + g.group + ":",
				Merchant: m.EntityID, Target: PGID, CreatedAt: time.Now().UTC()})
			if err != nil && !errors.Is(err, store.ErrExists) {
				return err
			}
		}
	}
	d.Hub.RegistryChanged()
	return nil
}

// pgAccount returns the PG merchant account of a federation participant:
// its MID, derived from the entityID, and its API key, kept in dir (the PG
// keeps only the key's hash), opening the account on first use.
func pgAccount(ctx context.Context, g *pg.PG, dir, entityID, name string, contract pg.Contract) (mid, key string, err error) {
	sum := sha256.Sum256([]byte(entityID))
	mid = "K" + strings.ToUpper(hex.EncodeToString(sum[:6]))
	keyFile := filepath.Join(dir, mid)
	if b, err := os.ReadFile(keyFile); err == nil {
		// An account opened by an earlier run: its contract as this run's
		// (a directory made before the virtual BINs gets them).
		if m, err := g.Merchant(ctx, mid); err == nil && !slices.Equal(m.Contract.BINPrefixes, contract.BINPrefixes) {
			if _, err := g.UpdateContract(ctx, mid, contract); err != nil {
				return "", "", fmt.Errorf("PG contract of %s: %w", entityID, err)
			}
		}
		return mid, strings.TrimSpace(string(b)), nil
	}
	m, err := g.CreateMerchant(ctx, pg.NewMerchant{MID: mid, Name: name, Contract: contract})
	if err != nil {
		return "", "", fmt.Errorf("PG account of %s: %w", entityID, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	return mid, m.APIKey, os.WriteFile(keyFile, []byte(m.APIKey), 0o600)
}

// pgContract is each demo merchant's contract at the PG: the issuer's
// cards (BINs 9490xx) and its virtual numbers (KECIS §15.4: a payment
// with a virtual number is the issuer's to de-tokenise), a 2.5 % fee, at
// most 10,000,000 KRW a payment and demoDailyLimit a day.
func (d *Demo) pgContract() pg.Contract {
	bins := []string{"9490"}
	bins = append(bins, slices.Sorted(maps.Values(d.Issuer.VirtualBINs()))...)
	return pg.Contract{BINPrefixes: bins, FeeBPS: 250, MaxAmount: 10_000_000, DailyLimit: demoDailyLimit}
}

// demoDailyLimit is each demo merchant's daily limit at the PG (KRW): a
// large merchant's, so that a kecis loadtest of 100,000 approvals in one
// business day (docs/loadtest.md) stays under it.
const demoDailyLimit = 1_000_000_000
