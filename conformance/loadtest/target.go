package loadtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kecis/kecis/ecml"
)

// Target is what a load test drives: a hub's JSON facade, the merchants
// it pays as, and the issuer whose ledger it reconciles against.
type Target struct {
	// HubURL is the hub's base URL; the facade is under /v1/.
	HubURL string
	// HubURLs, when set, are several replicas of the hub (KECIS §12.8:
	// `kecis serve` processes on one database) that the requests go to in
	// turn, as a load balancer would send them — client-side round robin;
	// a retry goes to the next one. Empty: HubURL alone.
	HubURLs []string
	// RootCAs verify the hub's TLS certificate (nil: the system's).
	RootCAs *x509.CertPool
	// Merchants pay through the facade with their API keys; every order
	// belongs to one of them, in turn.
	Merchants []Merchant
	// SettleURL, when set, ends the issuer's business day when POSTed to
	// (the demo's settle_url): the load test settles a few approvals
	// before it starts, so that it can refund them. Without it, no
	// refunds.
	SettleURL string
	// IssuerAPI is the issuer's native API (the demo's
	// addresses.issuer_api): the load test issues its card there and reads
	// the card's ledger. Empty: Card is used and nothing is reconciled.
	IssuerAPI string
	// IssuerAdminKey is the issuer API's admin credential (Bearer), ""
	// when it has none (the demo's).
	IssuerAdminKey string
	// Card pays when there is no IssuerAPI.
	Card *Card
}

// Merchant is a shop as a client of the facade.
type Merchant struct {
	Name   string
	APIKey string
}

// Card is the card the load test pays with. Number never appears in a
// report, a log line or an error (only its mask).
type Card struct {
	ID       string // the issuer's card ID ("" when not issued by the load test)
	Number   ecml.PAN
	ExpMonth int
	ExpYear  int
}

// demoManifest is what the load test reads of a running demo's demo.json
// (docs/demo.md, a stable interface: keys are added, never renamed).
// cmd/kecis links nothing of examples/, so it reads the file itself.
type demoManifest struct {
	HubURL    string `json:"hub_url"`
	HubCA     string `json:"hub_ca"`
	SettleURL string `json:"settle_url"`
	Merchants []struct {
		Name   string `json:"name"`
		APIKey string `json:"api_key"`
	} `json:"merchants"`
	Addresses struct {
		IssuerAPI string `json:"issuer_api"`
	} `json:"addresses"`
}

// ReadDemo reads the target a running demo describes in dir/demo.json:
// its hub and CA, both merchants' API keys, its settle_url and its
// issuer's native API.
func ReadDemo(dir string) (*Target, error) {
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no demo runs in %s (no demo.json): start one with make run or kecis-demo --dir %s", dir, dir)
	}
	if err != nil {
		return nil, err
	}
	var m demoManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "demo.json"), err)
	}
	t := &Target{HubURL: m.HubURL, SettleURL: m.SettleURL, IssuerAPI: m.Addresses.IssuerAPI}
	for _, mm := range m.Merchants {
		t.Merchants = append(t.Merchants, Merchant{Name: mm.Name, APIKey: mm.APIKey})
	}
	if m.HubCA != "" {
		if t.RootCAs, err = loadPool(filepath.Join(dir, m.HubCA)); err != nil {
			return nil, err
		}
	}
	if t.HubURL == "" || len(t.Merchants) == 0 || t.IssuerAPI == "" {
		return nil, fmt.Errorf("%s lacks hub_url, merchants or addresses.issuer_api", filepath.Join(dir, "demo.json"))
	}
	return t, nil
}

// targetFile is the YAML of --target: a hub that is not a demo's.
type targetFile struct {
	HubURL    string `yaml:"hub_url"`
	HubCA     string `yaml:"hub_ca"`
	Merchants []struct {
		Name   string `yaml:"name"`
		APIKey string `yaml:"api_key"`
	} `yaml:"merchants"`
	SettleURL      string `yaml:"settle_url"`
	IssuerAPI      string `yaml:"issuer_api"`
	IssuerAdminKey string `yaml:"issuer_admin_key"`
	Card           *struct {
		Number   string `yaml:"number"`
		ExpMonth int    `yaml:"exp_month"`
		ExpYear  int    `yaml:"exp_year"`
	} `yaml:"card"`
}

// ReadTargetFile reads a --target file (docs/loadtest.md): YAML, unknown
// keys refused, ${VAR} expanded from the environment in the secrets
// (api_key, issuer_admin_key, card.number), hub_ca relative to the file.
func ReadTargetFile(path string) (*Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f targetFile
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict(), yaml.DisallowUnknownField()).Decode(&f); err != nil {
		// The first line says where and what; the parser's excerpt of the
		// file after it would show the secrets it holds.
		return nil, fmt.Errorf("%s: %s", path, strings.SplitN(err.Error(), "\n", 2)[0])
	}
	t := &Target{HubURL: f.HubURL, SettleURL: f.SettleURL, IssuerAPI: f.IssuerAPI, IssuerAdminKey: os.ExpandEnv(f.IssuerAdminKey)}
	for _, m := range f.Merchants {
		t.Merchants = append(t.Merchants, Merchant{Name: m.Name, APIKey: os.ExpandEnv(m.APIKey)})
	}
	if f.HubCA != "" {
		ca := f.HubCA
		if !filepath.IsAbs(ca) {
			ca = filepath.Join(filepath.Dir(path), ca)
		}
		if t.RootCAs, err = loadPool(ca); err != nil {
			return nil, err
		}
	}
	if f.Card != nil {
		t.Card = &Card{Number: ecml.PAN(os.ExpandEnv(f.Card.Number)), ExpMonth: f.Card.ExpMonth, ExpYear: f.Card.ExpYear}
	}
	switch {
	case t.HubURL == "":
		return nil, fmt.Errorf("%s: hub_url is required", path)
	case len(t.Merchants) == 0:
		return nil, fmt.Errorf("%s: merchants is required (name and api_key of at least one)", path)
	case t.IssuerAPI == "" && t.Card == nil:
		return nil, fmt.Errorf("%s: give issuer_api (the load test issues its card there and reconciles) or a card", path)
	}
	for i, m := range t.Merchants {
		if m.APIKey == "" {
			return nil, fmt.Errorf("%s: merchants[%d] (%s) has no api_key", path, i, m.Name)
		}
	}
	if t.Card != nil && (!ecml.LuhnValid(t.Card.Number.Reveal()) || t.Card.ExpMonth < 1 || t.Card.ExpMonth > 12 || t.Card.ExpYear < 2000) {
		return nil, fmt.Errorf("%s: card needs a number that passes the Luhn check, exp_month and a four-digit exp_year", path)
	}
	return t, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// Hubs are the base URLs the requests go to, in turn: HubURLs, else
// HubURL.
func (t *Target) Hubs() []string {
	if len(t.HubURLs) > 0 {
		return t.HubURLs
	}
	return []string{t.HubURL}
}

// ErrHostRefused is wrapped by Check's refusals.
var ErrHostRefused = errors.New("refused")

// Check refuses a target any of whose URLs — the hub's, the settle URL,
// the issuer's API — is not http(s) or names a host that is neither
// loopback (localhost, 127.0.0.0/8, ::1) nor one of allowed (host names or
// IP addresses, compared without port, case-insensitive).
func (t *Target) Check(allowed []string) error {
	urls := []struct{ name, url string }{{"hub", t.HubURL}, {"settle URL", t.SettleURL}, {"issuer API", t.IssuerAPI}}
	for _, h := range t.HubURLs {
		urls = append(urls, struct{ name, url string }{"hub", h})
	}
	for _, u := range urls {
		if u.url == "" {
			continue
		}
		p, err := url.Parse(u.url)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fmt.Errorf("%w: the %s is not an http(s) URL: %q", ErrHostRefused, u.name, u.url)
		}
		if p.User != nil {
			return fmt.Errorf("%w: the %s URL carries credentials: give them in the target file, not in a URL", ErrHostRefused, u.name)
		}
		host := strings.ToLower(p.Hostname())
		if loopback(host) || slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(strings.Trim(a, "[]"), host) }) {
			continue
		}
		return fmt.Errorf("%w: the %s %s is not a loopback host: a load test reaches loopback only, or a host --allow-host names", ErrHostRefused, u.name, host)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient is the load test's client: the target's CA, a connection per
// worker kept alive, no redirect followed (a redirect could lead off the
// hosts Check allowed).
func (t *Target) httpClient(conns int) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: t.RootCAs, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
