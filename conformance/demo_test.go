package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// demoHooks serves the demo issuer's test hooks: settle (the end-of-day
// run, on the issuer's business clock moved past the cut-off) and stall
// (the issuer's next call of a service waits, so that the hub answers
// Pending).
func demoHooks(t *testing.T, d *demo.Demo, clock *testutil.Clock) *httptest.Server {
	var mu sync.Mutex
	stall := map[string]time.Duration{}
	d.Adapter.BeforeCall = func(_ context.Context, s string) {
		mu.Lock()
		dur := stall[s]
		delete(stall, s)
		mu.Unlock()
		time.Sleep(dur)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /settle", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		clock.Set(d.Issuer.CutOffAfter(clock.Now()).Add(time.Minute))
		if _, err := d.Issuer.Settle(r.Context(), clock.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /stall", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Service string  `json:"service"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		stall[v.Service] = time.Duration(v.Seconds * float64(time.Second))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestDemoIssuerPasses runs the whole issuer plan against the demo
// federation's issuer (behind connectors.Handler), through the hub as a
// registered tester, with the attacks sent directly: every check passes.
func TestDemoIssuerPasses(t *testing.T) {
	rep, d, dir := runDemoPlan(t, demo.IssuerID)
	good, low := d.Cards[0], d.Cards[1]
	assertDemoReport(t, rep, "issuer")
	if err := rep.WriteFiles(filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	assertScrubbed(t, filepath.Join(dir, "out"), good.PAN.Reveal(), low.PAN.Reveal())
}

// TestDemoPGPasses runs the PG plan against the demo PG's sidecar (the
// PG's native API behind examples/pg/adapter.yaml), which relays each card
// call through the hub to the issuer: every check passes.
func TestDemoPGPasses(t *testing.T) {
	rep, d, dir := runDemoPlan(t, demo.PGID)
	assertDemoReport(t, rep, "pg")
	if err := rep.WriteFiles(filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	assertScrubbed(t, filepath.Join(dir, "out"), d.Cards[0].PAN.Reveal(), d.Cards[1].PAN.Reveal())
	if fi, err := os.Stat(filepath.Join(dir, "out", "report.json")); err == nil {
		t.Logf("report.json: %d bytes", fi.Size())
	}
}

// runDemoPlan starts the demo federation in test mode and runs the plan
// discovered from participant's metadata, through the hub as a registered
// tester, with the attacks sent directly.
func runDemoPlan(t *testing.T, participant string) (*conformance.Report, *demo.Demo, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clock := testutil.NewClock(time.Now().UTC())
	// KECIS_TEST_LOG=1 shows the federation's logs.
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("KECIS_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, err := demo.Start(ctx, demo.Config{Dir: dir, RelayTimeout: 800 * time.Millisecond, IssuerNow: clock.Now, Tester: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hooks := demoHooks(t, d, clock)
	good, low := d.Cards[0], d.Cards[1]
	second, outsider := demoIdentities(t, d, participant)
	profile := fmt.Sprintf(`participant: %s
tester:
  entity_id: %s
  signing:    {cert: %[3]s/signing/cert.pem,    key: %[3]s/signing/key.pem}
  encryption: {cert: %[3]s/encryption/cert.pem, key: %[3]s/encryption/key.pem}
  tls:        {cert: %[3]s/tls/cert.pem,        key: %[3]s/tls/key.pem}
hub:
  url: %[4]s
  entity_id: %[5]s
  signing_certs: [%[6]s]
  tls_certs: [%[7]s]
card:
  currency: KRW
  approve: {number: "%[8]s", expiry: "%02[9]d/%[10]d", amount: "15000"}
  declines:
    - {name: over the limit, number: "%[11]s", expiry: "%02[12]d/%[13]d", amount: "60000", expect: LimitExceeded}
    - {name: expiry does not match, number: "%[8]s", expiry: "%02[9]d/%[14]d", amount: "1000", expect: InvalidCard}
  settle_before_refund: true
hooks:
  settle: {url: %[15]s/settle}
  stall: {url: %[15]s/stall}
timeouts: {request: 10s, stall: 1500ms, settle: 10s}
router: {provider: %[16]s}
second:
  entity_id: %[17]s
  signing:    {cert: %[18]s, key: %[19]s}
  encryption: {cert: %[20]s, key: %[21]s}
outsider:
  entity_id: %[22]s
  signing:    {cert: %[23]s, key: %[24]s}
`, participant, demo.TesterID, d.TesterDir, d.HubURL, demo.HubID, d.HubSigningCert, d.HubTLSCert,
		good.PAN.Reveal(), good.ExpMonth, good.ExpYear, low.PAN.Reveal(), low.ExpMonth, low.ExpYear, good.ExpYear+1, hooks.URL, demo.IssuerID,
		second.EntityID, second.SigningCert, second.SigningKey, second.EncryptionCert, second.EncryptionKey,
		outsider.EntityID, outsider.SigningCert, outsider.SigningKey)
	pp := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(pp, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := conformance.LoadProfile(pp)
	if err != nil {
		t.Fatal(err)
	}
	tester, err := p.LoadTester("", "")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := p.LoadHub("")
	if err != nil {
		t.Fatal(err)
	}
	target, err := conformance.LoadTarget(ctx, conformance.MDQURL(hub.URL, participant), hub.SigningCerts, conformance.HubMetadataClient(hub), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var events int
	rep, err := conformance.Run(ctx, conformance.Config{Target: target, Profile: p, Tester: tester, Hub: hub,
		OnEvent: func(conformance.Event) { events++ }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %v in %s, %d exchanges, %d events\n%s", rep.Plan, rep.Summary, rep.Finished.Sub(rep.Started).Round(time.Millisecond), rep.Exchanges, events, summary(rep))
	return rep, d, dir
}

// demoIdentities picks, from the running demo's demo.json, the
// authorization module's identities: the suite's second identity (a
// participant of the tester's role other than the tester), and an outsider
// — a registered participant, neither the hub nor a tester nor the
// participant under test, whom none of the participant's services admits
// (a merchant for the issuer, the issuer for the PG).
func demoIdentities(t *testing.T, d *demo.Demo, participant string) (second, outsider demo.ManifestParticipant) {
	t.Helper()
	m, err := demo.ReadManifest(filepath.Dir(d.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	hubCerts, err := saml.LoadCertificates(d.HubSigningCert)
	if err != nil {
		t.Fatal(err)
	}
	tlsCerts, err := saml.LoadCertificates(d.HubTLSCert)
	if err != nil {
		t.Fatal(err)
	}
	hub := &conformance.HubConfig{URL: d.HubURL, EntityID: demo.HubID, SigningCerts: hubCerts, TLSCerts: tlsCerts}
	target, err := conformance.LoadTarget(context.Background(), conformance.MDQURL(hub.URL, participant), hubCerts, conformance.HubMetadataClient(hub), time.Now())
	if err != nil || target.Descriptor == nil {
		t.Fatalf("the participant's metadata: %v %v", err, target)
	}
	admitted := func(p demo.ManifestParticipant) bool {
		for _, s := range target.Descriptor.Services {
			if s.AdmitsCaller(p.EntityID, p.Roles) {
				return true
			}
		}
		return false
	}
	for _, p := range m.Participants {
		tester := slices.Contains(p.Roles, metadata.RoleTester)
		switch {
		case p.EntityID == participant || p.SigningKey == "":
		case tester && p.EntityID != demo.TesterID && second.EntityID == "":
			second = p
		case !tester && !slices.Contains(p.Roles, metadata.RoleHub) && !admitted(p) && outsider.EntityID == "":
			outsider = p
		}
	}
	if second.EntityID == "" || outsider.EntityID == "" {
		t.Fatalf("demo.json names no second tester (%q) or no outsider of %s (%q)", second.EntityID, participant, outsider.EntityID)
	}
	return second, outsider
}

// assertPlanPasses holds a reference participant's report to the bar: the
// plan discovered, nothing FAILED, WARNING or REVIEW (with the evidence
// logged), exactly the checks without material SKIPPED, a passing report.
func assertPlanPasses(t *testing.T, rep *conformance.Report, plan string, skipped ...string) {
	t.Helper()
	if rep.Plan != plan {
		t.Errorf("discovered plan %q, want %s", rep.Plan, plan)
	}
	for _, r := range []conformance.Result{conformance.Failed, conformance.Warning, conformance.Review} {
		if ids := rep.WithResult(r); len(ids) > 0 {
			t.Errorf("%s: %v", r, ids)
			for _, id := range ids {
				for _, e := range rep.Condition(id).Evidence {
					t.Logf("%s evidence %s: %.600s", id, e.Label, e.Content)
				}
				t.Logf("%s: %s", id, rep.Condition(id).Message)
			}
		}
	}
	if s := rep.WithResult(conformance.Skipped); !slices.Equal(s, skipped) {
		t.Errorf("SKIPPED %v, want only %v", s, skipped)
	}
	if !rep.Passed || rep.Summary[conformance.Passed] == 0 {
		t.Errorf("the %s plan does not pass: %v", plan, rep.Summary)
	}
}

// assertDemoReport holds a card provider's report to the bar of
// assertPlanPasses, with the timeout handled the production way.
func assertDemoReport(t *testing.T, rep *conformance.Report, plan string) {
	t.Helper()
	// Answers of the card service carry nothing sensitive, so there is no
	// encrypted answer to judge.
	assertPlanPasses(t, rep, plan, "responses.encryption")
	// The timeout went the way it does in production: the hub answered
	// Pending, and inquire told the truth afterwards.
	pending := false
	for _, e := range rep.Condition("card.inquire-after-timeout").Evidence {
		pending = pending || strings.Contains(e.Content, "the hub answered Pending")
	}
	if !pending {
		t.Error("card.inquire-after-timeout passed without the hub's Pending")
	}
	// The metadata came from the hub, signed.
	if c := rep.Condition("metadata.hub-signed"); c.Result != conformance.Passed {
		t.Errorf("metadata.hub-signed: %s", c.Result)
	}
}

// TestDemoHubPasses runs the hub plan against the demo hub: its own
// descriptor, served by its Metadata Query endpoint, and its router.
func TestDemoHubPasses(t *testing.T) {
	rep, _, _ := runDemoPlan(t, demo.HubID)
	// The hub offers no service: nothing is encrypted for it.
	assertPlanPasses(t, rep, "hub", "metadata.encryption-keys")
}

// TestDemoMerchantPasses runs the merchant plan against the demo shop's
// registration (a client: its metadata and keys).
func TestDemoMerchantPasses(t *testing.T) {
	rep, _, _ := runDemoPlan(t, demo.MerchantID)
	// A client publishes no HTTPS endpoint: no TLS server to check.
	assertPlanPasses(t, rep, "merchant", "metadata.tls-server")
}
