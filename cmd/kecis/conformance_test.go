package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/conformance/broken"
	"github.com/kecis/kecis/federation/registry"
	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/federation/store/sqlstore"
	"github.com/kecis/kecis/saml"
)

func TestConformanceList(t *testing.T) {
	code, out, stderr := kecis(t, nil, "conformance", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"issuer", "pg", "bank", "merchant", "hub", "security", "card", "responses"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = kecis(t, nil, "conformance", "list", "--plan", "issuer")
	if code != 0 || !strings.Contains(out, "security.xsw1-clone-inside-signature") || !strings.Contains(out, "KECIS §9.1") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, _, _ := kecis(t, nil, "conformance", "list", "--plan", "nope"); code != 2 {
		t.Fatalf("an unknown plan: exit %d", code)
	}
}

// TestConformanceRun runs the CLI against a correct provider (exit 0) and
// one that echoes card numbers (exit 1, the failing check named), and
// reads the reports it writes.
func TestConformanceRun(t *testing.T) {
	good, err := broken.NewKit(t.TempDir(), broken.None, false)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	out := filepath.Join(t.TempDir(), "report")
	code, stdout, stderr := kecis(t, nil, "conformance", "run", "--target-metadata", good.MetadataPath, "--profile", good.ProfilePath, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"plan issuer", "PASSED   security.replay", "WARNING  metadata.hub-signed", "PASS: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("progress lacks %q:\n%s", want, stdout)
		}
	}
	var rep conformance.Report
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || !rep.Passed || rep.Participant != good.Provider.EntityID {
		t.Fatalf("report.json: %v %+v", err, rep.Summary)
	}
	var ju struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	b, _ = os.ReadFile(filepath.Join(out, "junit.xml"))
	if err := xml.Unmarshal(b, &ju); err != nil || ju.Tests != len(rep.Modules[0].Conditions)+countOthers(&rep) || ju.Failures != 0 {
		t.Fatalf("junit.xml: %v %+v", err, ju)
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(html), "PASS — nothing failed") || strings.Contains(string(html), "<script") || strings.Contains(string(html), "http://") && strings.Contains(string(html), "<link") {
		t.Fatalf("report.html is not a self-contained passing report")
	}

	bad, err := broken.NewKit(t.TempDir(), broken.EchoesPAN, false)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	out = filepath.Join(t.TempDir(), "report")
	code, stdout, stderr = kecis(t, nil, "conformance", "run", "-q", "--target-metadata", bad.MetadataPath, "--profile", bad.ProfilePath, "--out", out,
		"--client-cert", filepath.Join(bad.Tester.Dir, "tls", "cert.pem"), "--client-key", filepath.Join(bad.Tester.Dir, "tls", "key.pem"))
	if code != 1 || !strings.Contains(stderr, "1 check(s) FAILED") || !strings.Contains(stdout, "FAILED   responses.no-clear-pan") || strings.Contains(stdout, "PASSED ") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	b, _ = os.ReadFile(filepath.Join(out, "junit.xml"))
	if !strings.Contains(string(b), `<failure message="approve: a Luhn-valid card number`) && !strings.Contains(string(b), `type="FAILED"`) {
		t.Fatalf("junit.xml names no failure:\n%s", b)
	}
	for _, name := range []string{"report.json", "junit.xml", "report.html"} {
		b, _ := os.ReadFile(filepath.Join(out, name))
		if strings.Contains(string(b), broken.TestPAN(1)) {
			t.Errorf("%s carries the echoed card number in clear", name)
		}
	}
	if !slices.Contains(rep.Roles, "issuer") {
		t.Errorf("roles %v", rep.Roles)
	}

	// Usage errors exit 2.
	if code, _, _ := kecis(t, nil, "conformance", "run", "--profile", bad.ProfilePath); code != 2 {
		t.Fatalf("no target: exit %d", code)
	}
	if code, _, _ := kecis(t, nil, "conformance", "run", "--target-metadata", bad.MetadataPath, "--profile", bad.ProfilePath, "--plan", "nope"); code != 2 {
		t.Fatalf("unknown plan: exit %d", code)
	}
}

func countOthers(r *conformance.Report) int {
	n := 0
	for _, m := range r.Modules[1:] {
		n += len(m.Conditions)
	}
	return n
}

// TestMain lets the test binary stand in for kecis when a test starts it
// as a process (the suite's own hub runs `kecis serve`).
func TestMain(m *testing.M) {
	if os.Getenv("RUN_AS_KECIS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestConformanceOwnHub: for a participant without a sandbox hub, the
// suite runs `kecis serve` as a process, registers the participant and
// itself in it, and goes through it; the participant trusts the hub's two
// certificates, created beforehand with --keys-only.
func TestConformanceOwnHub(t *testing.T) {
	dir := t.TempDir()
	hubDir := filepath.Join(dir, "hub")
	code, out, stderr := kecis(t, nil, "conformance", "run", "--own-hub", hubDir, "--keys-only")
	if code != 0 || !strings.Contains(out, filepath.Join(hubDir, "signing", "cert.pem")) {
		t.Fatalf("--keys-only: exit %d: %s\n%s", code, stderr, out)
	}
	sig, err := saml.LoadCertificates(filepath.Join(hubDir, "signing", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tlsCert, err := saml.LoadCertificates(filepath.Join(hubDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kit, err := broken.NewKit(filepath.Join(dir, "kit"), broken.None, false,
		broken.Peer{EntityID: conformance.OwnHubEntityID, Signing: sig, TLSClient: tlsCert[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	t.Setenv("RUN_AS_KECIS_MAIN", "1") // the hub process is this test binary
	// The caller's KECIS_* overrides do not reach the suite's hub.
	t.Setenv("KECIS_DATABASE_DSN", "postgres://nowhere.invalid/kecis")
	report := filepath.Join(dir, "report")
	code, out, stderr = kecis(t, nil, "conformance", "run", "-q", "--own-hub", hubDir, "--target-metadata", kit.MetadataPath,
		"--profile", kit.ProfilePath, "--out", report)
	if code != 0 {
		log, _ := os.ReadFile(filepath.Join(hubDir, "hub.log"))
		t.Fatalf("exit %d: %s\n%s\nhub log:\n%.4000s", code, stderr, out, log)
	}
	if !strings.Contains(out, "own hub "+conformance.OwnHubEntityID) || !strings.Contains(out, "through https://127.0.0.1:") {
		t.Errorf("progress:\n%s", out)
	}
	var rep conformance.Report
	b, err := os.ReadFile(filepath.Join(report, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || !rep.Passed || rep.Hub == "" {
		t.Fatalf("report.json: %v %+v", err, rep.Summary)
	}
	// Through its own hub the participant's metadata is hub-signed.
	if c := rep.Condition("metadata.hub-signed"); c == nil || c.Result != conformance.Passed {
		t.Errorf("metadata.hub-signed: %+v", c)
	}
	// The hub process is gone, and its log says it relayed.
	log, _ := os.ReadFile(filepath.Join(hubDir, "hub.log"))
	if !strings.Contains(string(log), "relay") && !strings.Contains(string(log), "soap") {
		t.Errorf("the hub log shows no relayed request:\n%.2000s", log)
	}
	// Registered through the hub's API and approved by its operator: the
	// participant, the tester, the second identity and the outsider are
	// active with their metadata exactly as given (no registration key of
	// the suite's left in them), and the audit log holds each step.
	checkOwnHubRegistry(t, filepath.Join(hubDir, "hub.db"), kit)

	// A second run in the same directory starts from an empty database and
	// registers everyone again.
	code, out, stderr = kecis(t, nil, "conformance", "run", "-q", "--own-hub", hubDir, "--target-metadata", kit.MetadataPath,
		"--profile", kit.ProfilePath, "--out", "")
	if code != 0 {
		log, _ := os.ReadFile(filepath.Join(hubDir, "hub.log"))
		t.Fatalf("second run: exit %d: %s\n%s\nhub log:\n%.4000s", code, stderr, out, log)
	}
	checkOwnHubRegistry(t, filepath.Join(hubDir, "hub.db"), kit)
}

// checkOwnHubRegistry reads the own hub's database after a run.
func checkOwnHubRegistry(t *testing.T, dbPath string, kit *broken.Kit) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps, err := st.ListParticipants(ctx, store.ParticipantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	given, err := os.ReadFile(kit.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*store.Participant{}
	for _, p := range ps {
		got[p.EntityID] = p
	}
	for _, id := range []string{kit.Provider.EntityID, broken.TesterID, broken.SecondID, broken.OutsiderID} {
		p := got[id]
		if p == nil || p.Status != store.StatusActive || p.Pending != nil {
			t.Errorf("%s is not active at the own hub: %+v", id, p)
			continue
		}
		for _, k := range p.Keys {
			if k.Use == store.KeyTLSClient && id != broken.TesterID && id != kit.Provider.EntityID {
				t.Errorf("%s publishes a TLS client certificate (%s): the suite's registration key stayed", id, k.Fingerprint)
			}
		}
	}
	if p := got[kit.Provider.EntityID]; p != nil && string(p.Metadata) != string(given) {
		t.Errorf("the participant's metadata at the own hub is not its file:\n%s", p.Metadata)
	}
	if len(ps) != 4 {
		t.Errorf("%d participants at the own hub, want 4", len(ps))
	}
	for _, id := range []string{kit.Provider.EntityID, broken.TesterID, broken.SecondID, broken.OutsiderID} {
		events, err := st.ListAudit(ctx, store.AuditFilter{EntityID: id})
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, e := range events {
			steps = append(steps, e.Kind+" by "+e.Actor)
		}
		for _, want := range []string{registry.KindRegister + " by " + id, "participant.approve by kecis conformance run"} {
			if !slices.Contains(steps, want) {
				t.Errorf("%s: the own hub's audit log has no %q: %v", id, want, steps)
			}
		}
	}
}
