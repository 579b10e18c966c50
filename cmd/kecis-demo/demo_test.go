package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/testutil"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDemoCurlApproves: what `make run` starts comes up on a fresh
// directory, and the curl line it prints approves a card payment through the
// JSON facade; the cardholder's phone gets the issuer's text.
func TestDemoCurlApproves(t *testing.T) {
	testutil.RequireTool(t, "curl", "curl")
	dir := t.TempDir()
	d, out := startFederationDemo(t, dir)
	checkSQLiteWriters(t, dir, demoOptions{tester: true})
	guide := out.String()
	start := strings.Index(guide, "  T=$(date")
	end := strings.Index(guide, "\n\nThen open")
	if start < 0 || end < start {
		t.Fatalf("no curl line in the guide:\n%s", guide)
	}
	if !strings.Contains(guide, "accepts card numbers in clear") {
		t.Fatal("the demo must say that the facade's clear-card mode is on")
	}
	aa := d.AmountAuth()
	for _, want := range []string{demo.MerchantID, demo.Merchant2ID, "Demo shop 2", "demo.json", aa.CheckoutURL, aa.PageURL, aa.StartURL,
		"Pay with amount authentication", d.TelecomURL + "/phones/" + strings.ReplaceAll(d.Cards[0].Phone, "-", ""), d.Cards[0].PAN.Masked(),
		"Escrow (docs/escrow.md)", d.Escrow().PagesURL, d.Escrow().SettlementAccount} {
		if !strings.Contains(guide, want) {
			t.Errorf("the guide does not name %q:\n%s", want, guide)
		}
	}
	// The checkout the guide names is up, with the button it names.
	shop, err := http.Get(aa.CheckoutURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(shop.Body)
	shop.Body.Close()
	if shop.StatusCode != http.StatusOK || !strings.Contains(string(page), "Pay with amount authentication") || ecml.ContainsPAN(string(page)) {
		t.Fatalf("the demo shop's checkout: %s\n%s", shop.Status, page)
	}
	line := guide[start:end]
	res, err := exec.Command("sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("the printed curl line failed: %v\n%s", err, res)
	}
	var body map[string]any
	if err := json.Unmarshal(res, &body); err != nil || body["status"] != "Success" || body["outcome"] != "answered" {
		t.Fatalf("the printed curl line did not approve: %s", res)
	}
	phone := d.Cards[0].Phone
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := d.Telecom.WaitForMessage(wctx, phone, func(m telecom.Message) bool { return strings.Contains(m.Text, "15,000") }); err != nil {
		t.Fatalf("no approval text: %v", err)
	}
	// The hub's answer to the merchant holds no card number.
	if ecml.ContainsPAN(string(res)) {
		t.Fatal("the facade's answer holds a card number")
	}
}

// startFederationDemo runs `kecis-demo` in dir with every address flag at
// port 0, until the test ends; it returns the demo once it is up and what
// it printed.
func startFederationDemo(t *testing.T, dir string) (*demo.Demo, *lockedBuf) {
	t.Helper()
	return startFederationDemoWith(t, dir, demoOptions{tester: true})
}

// startFederationDemoWith is startFederationDemo with the demo's other
// flags.
func startFederationDemoWith(t *testing.T, dir string, o demoOptions) (*demo.Demo, *lockedBuf) {
	t.Helper()
	out := &lockedBuf{}
	ready := make(chan *demo.Demo, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runFederationDemo(ctx, out, dir, demoAddrs{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}, o, ready)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case d := <-ready:
		return d, out
	case err := <-done:
		t.Fatalf("demo did not start: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not start in time")
	}
	return nil, nil
}

// TestDemosSideBySide: two `kecis-demo` runs on port 0 in different
// directories — the first relative, as `make run` passes .kecis-dev — each
// approve payments of both merchants through the hub's JSON facade, driven
// only by what their demo.json says (one merchant by API key, the other by
// its TLS client certificate); each hub publishes the addresses it bound.
func TestDemosSideBySide(t *testing.T) {
	t.Chdir(t.TempDir())
	dirs := []string{".kecis-dev", t.TempDir()}
	hubs := map[string]bool{}
	for _, dir := range dirs {
		startFederationDemo(t, dir)
		fi, err := os.Stat(filepath.Join(dir, demo.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("demo.json is %v, want 0600: it holds API keys", fi.Mode().Perm())
		}
		raw, err := os.ReadFile(filepath.Join(dir, demo.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), `"/`) {
			t.Errorf("demo.json holds an absolute path: paths are relative to its directory\n%s", raw)
		}
		m, err := demo.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		if hubs[m.HubURL] {
			t.Fatalf("two demos on one hub address %s", m.HubURL)
		}
		hubs[m.HubURL] = true
		payThroughFacade(t, m)
	}
}

// payThroughFacade approves a payment for each merchant of m on the card
// that approves, and declines one on the card for declines, as a script
// would: with m's addresses, CA, API keys and certificates.
func payThroughFacade(t *testing.T, m *demo.Manifest) {
	t.Helper()
	if len(m.Merchants) < 2 || len(m.Participants) < 5 || m.Addresses.Hub != m.HubURL {
		t.Fatalf("demo.json: %d merchants, %d participants, addresses %+v", len(m.Merchants), len(m.Participants), m.Addresses)
	}
	for _, p := range m.Participants {
		for _, f := range []string{p.SigningCert, p.SigningKey, p.TLSCert, p.TLSKey} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%s: %v", p.EntityID, err)
			}
		}
	}
	ca, err := os.ReadFile(m.HubCA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("hub_ca holds no certificate")
	}
	// Each hub publishes the endpoints it bound: its metadata names this
	// demo's issuer and PG endpoints.
	res, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}).Get(m.HubURL + "/kecis/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the hub's metadata: %d %v", res.StatusCode, err)
	}
	for _, ep := range []string{m.Addresses.Issuer + "/kecis/soap", m.Addresses.PGKECIS + "/kecis/soap"} {
		if !strings.Contains(string(md), ep) {
			t.Errorf("the hub's metadata does not publish %s", ep)
		}
	}
	var good, low *demo.ManifestCard
	for i := range m.Cards {
		switch m.Cards[i].Outcome {
		case demo.OutcomeApproved:
			good = &m.Cards[i]
		case demo.OutcomeLimitExceeded:
			low = &m.Cards[i]
		}
	}
	if good == nil || low == nil {
		t.Fatalf("demo.json lacks a card for approvals or for declines: %+v", m.Cards)
	}
	for i, mer := range m.Merchants {
		tc := &tls.Config{RootCAs: roots}
		var bearer string
		if i%2 == 0 {
			bearer = mer.APIKey
		} else {
			kp, err := tls.LoadX509KeyPair(mer.TLSCert, mer.TLSKey)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		pay := func(c *demo.ManifestCard, amount int64) map[string]any {
			order := fmt.Sprintf("side-%d-%d", i, amount)
			body := fmt.Sprintf(`{"fields":{"Ecom_ConsumerOrderID":%q,"Ecom_Transaction_Amount":"%d","Ecom_Transaction_CurrencyCode":"KRW","Ecom_Transaction_Type":"credit","Ecom_Payment_Card_Number":%q,"Ecom_Payment_Card_ExpDate_Month":"%02d","Ecom_Payment_Card_ExpDate_Year":"%d"}}`,
				order, amount, c.Number, c.ExpMonth, c.ExpYear)
			req, err := http.NewRequest(http.MethodPost, m.HubURL+"/v1/card/approve", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", order)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var v map[string]any
			if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
				t.Fatalf("%s: %d: %v", mer.Name, res.StatusCode, err)
			}
			return v
		}
		if v := pay(good, 15000); v["status"] != "Success" || v["outcome"] != "answered" || v["provider"] != demo.PGID {
			t.Fatalf("%s at %s: %v", mer.Name, m.HubURL, v)
		}
		if v := pay(low, low.Limit+10000); v["status"] == "Success" || v["sub_status"] != low.Outcome {
			t.Fatalf("%s at %s, over the limit: %v", mer.Name, m.HubURL, v)
		}
	}
}

// TestDemoOnPostgres: --postgres runs the demo's hub on PostgreSQL (the
// DSN's schema), says so without a password, and keeps no hub.db.
func TestDemoOnPostgres(t *testing.T) {
	dsn := sqltest.TestPostgresDSN(t)
	dir := t.TempDir()
	d, out := startFederationDemoWith(t, dir, demoOptions{postgres: dsn, relayTimeout: 5 * time.Second})
	if d.Hub.Config.Database.DSN != dsn {
		t.Fatalf("the hub's DSN: %s, want %s", d.Hub.Config.Database.DSN, dsn)
	}
	if !strings.Contains(out.String(), "the hub's database: postgres://") {
		t.Fatalf("the guide does not name the hub's database:\n%s", out.String())
	}
	if err := d.HubStore.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub", "hub.db")); err == nil {
		t.Fatal("a hub.db beside the PostgreSQL store")
	}
	checkSQLiteWriters(t, dir, demoOptions{postgres: dsn})
}

// checkSQLiteWriters: sqliteWriters, what kecis-demo raises GOMAXPROCS
// by (sqlstore.RaiseProcs), counts the SQLite databases the running demo
// in dir has.
func checkSQLiteWriters(t *testing.T, dir string, o demoOptions) {
	t.Helper()
	var dbs []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(path, ".db") {
			dbs = append(dbs, strings.TrimPrefix(path, dir))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != sqliteWriters(o) {
		t.Errorf("the demo writes %d SQLite databases %v; sqliteWriters says %d", len(dbs), dbs, sqliteWriters(o))
	}
}
