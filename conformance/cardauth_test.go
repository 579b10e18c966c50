package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/conformance/broken"
)

// runIssuer runs the issuer plan (only modules, when given) directly
// against a broken issuer.
func runIssuer(t *testing.T, k *broken.Kit, modules ...string) *conformance.Report {
	t.Helper()
	ctx := context.Background()
	p, err := conformance.LoadProfile(k.ProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	tester, err := p.LoadTester("", "")
	if err != nil {
		t.Fatal(err)
	}
	target, err := conformance.LoadTarget(ctx, k.MetadataPath, nil, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := conformance.Run(ctx, conformance.Config{Target: target, Profile: p, Tester: tester, Modules: modules})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Plan != "issuer" {
		t.Fatalf("plan %s, want issuer", rep.Plan)
	}
	return rep
}

// moduleIDs are the checks of an issuer-plan module, in run order.
func moduleIDs(t *testing.T, module string) []string {
	t.Helper()
	p, err := conformance.PlanByName("issuer")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range p.Module(module).Conditions {
		ids = append(ids, c.ID)
	}
	return ids
}

// assertCardAuthScrubbed: no report of the run shows the card password,
// the TOTP seed or a card number in clear.
func assertCardAuthScrubbed(t *testing.T, rep *conformance.Report, k *broken.Kit) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	p, err := conformance.LoadProfile(k.ProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.json", "junit.xml", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{p.CardAuth.Password, p.CardAuth.TOTPSeed, broken.TestPAN(1)} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s shows a secret or a card number", name)
			}
		}
	}
}

// TestCardAuthCorrectIssuerPasses: the whole issuer plan passes against
// the broken package's issuer without a flaw, every check of the cardauth
// and vcn modules among them.
func TestCardAuthCorrectIssuerPasses(t *testing.T) {
	t.Parallel()
	k, err := broken.NewIssuerKit(t.TempDir(), broken.None)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep := runIssuer(t, k)
	t.Logf("summary %v\n%s", rep.Summary, summary(rep))
	if failed := rep.WithResult(conformance.Failed); len(failed) > 0 {
		t.Errorf("FAILED: %v", failed)
	}
	if w := rep.WithResult(conformance.Warning); !slices.Equal(w, []string{"metadata.hub-signed"}) {
		t.Errorf("warnings %v, want only metadata.hub-signed", w)
	}
	for _, m := range []string{"cardauth", "vcn"} {
		for _, id := range moduleIDs(t, m) {
			if c := rep.Condition(id); c == nil || c.Result != conformance.Passed {
				t.Errorf("%s: %s %s", id, c.Result, c.Message)
				for _, e := range c.Evidence {
					t.Logf("  %s: %.800s", e.Label, e.Content)
				}
			}
		}
	}
	assertCardAuthScrubbed(t, rep, k)
}

// cardAuthFailures are the exact checks each broken issuer fails.
var cardAuthFailures = map[broken.Flaw][]string{
	broken.AcceptsAAVForAnotherAmount: {"cardauth.aav-other-amount"},
	broken.ReusesSingleUseNumber:      {"vcn.single-use"},
}

// TestCardAuthBrokenIssuersFail: the cardauth and vcn modules catch each
// broken issuer with exactly the check its flaw breaks.
func TestCardAuthBrokenIssuersFail(t *testing.T) {
	for _, f := range broken.CardAuthFlaws {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			k, err := broken.NewIssuerKit(t.TempDir(), f)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			rep := runIssuer(t, k, "cardauth", "vcn")
			want := cardAuthFailures[f]
			if got := rep.WithResult(conformance.Failed); !slices.Equal(got, want) {
				t.Errorf("FAILED %q\nwant   %q\n%s", got, want, summary(rep))
			}
			if rep.Passed {
				t.Error("the report passes")
			}
			if r := rep.WithResult(conformance.Review); len(r) > 0 {
				t.Errorf("REVIEW %v\n%s", r, summary(rep))
			}
			for _, id := range want {
				if c := rep.Condition(id); len(c.Evidence) == 0 {
					t.Errorf("%s failed without evidence", id)
				}
			}
			assertCardAuthScrubbed(t, rep, k)
		})
	}
}
