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

// runPlan runs plan (only modules, when given) directly against a kit.
func runPlan(t *testing.T, k *broken.Kit, plan string, modules ...string) *conformance.Report {
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
	if rep.Plan != plan {
		t.Fatalf("plan %s, want %s", rep.Plan, plan)
	}
	return rep
}

// assertModulesPass: every check of the plan's modules PASSED.
func assertModulesPass(t *testing.T, rep *conformance.Report, plan string, modules ...string) {
	t.Helper()
	p, err := conformance.PlanByName(plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range modules {
		for _, cond := range p.Module(m).Conditions {
			if c := rep.Condition(cond.ID); c == nil || c.Result != conformance.Passed {
				t.Errorf("%s: %s %s", cond.ID, c.Result, c.Message)
				for _, e := range c.Evidence {
					t.Logf("  %s: %.800s", e.Label, e.Content)
				}
			}
		}
	}
}

// assertNoSecrets: no report of the run shows the strings.
func assertNoSecrets(t *testing.T, rep *conformance.Report, secrets ...string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.json", "junit.xml", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s shows %q", name, s)
			}
		}
	}
}

// TestBankCorrectPasses: the whole bank plan passes against the broken
// package's bank without a flaw, every transfer, account, twoway and
// escrow check among them.
func TestBankCorrectPasses(t *testing.T) {
	t.Parallel()
	k, err := broken.NewBankKit(t.TempDir(), broken.None)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep := runPlan(t, k, "bank")
	t.Logf("summary %v\n%s", rep.Summary, summary(rep))
	if failed := rep.WithResult(conformance.Failed); len(failed) > 0 {
		t.Errorf("FAILED: %v", failed)
	}
	if r := rep.WithResult(conformance.Review); len(r) > 0 {
		t.Errorf("REVIEW: %v", r)
	}
	assertModulesPass(t, rep, "bank", "transfer", "account", "twoway", "escrow")
	// The escrow's accounts travel encrypted and are answered masked at
	// most: no report names them.
	assertNoSecrets(t, rep, broken.KitPassword, broken.KitBuyerAccount, broken.KitSettlementAccount)
}

// TestTelecomCorrectPasses: the whole telecom plan passes against the
// broken package's telecom, every phone check among them.
func TestTelecomCorrectPasses(t *testing.T) {
	t.Parallel()
	k, err := broken.NewTelecomKit(t.TempDir(), broken.None)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep := runPlan(t, k, "telecom")
	t.Logf("summary %v\n%s", rep.Summary, summary(rep))
	if failed := rep.WithResult(conformance.Failed); len(failed) > 0 {
		t.Errorf("FAILED: %v", failed)
	}
	if r := rep.WithResult(conformance.Review); len(r) > 0 {
		t.Errorf("REVIEW: %v", r)
	}
	assertModulesPass(t, rep, "telecom", "phone")
}

// bankFailures are the exact checks each broken bank fails.
var bankFailures = map[broken.Flaw][]string{
	broken.ExecutesBeforeConfirmation: {"twoway.no-money-before-reply"},
	broken.CodeNotBoundToAmount:       {"twoway.code-bound"},
	broken.RevealsHolderToNonBank:     {"account.non-bank-refused"},
	// Released on the shipment: the answer says confirmed, and the
	// settlement account moved before the buyer confirmed.
	broken.ReleasesWithoutConfirmation: {"escrow.ship", "escrow.held"},
}

// TestBrokenBanksFail: the transfer, account, twoway and escrow modules
// catch each broken bank with exactly the checks its flaw breaks.
func TestBrokenBanksFail(t *testing.T) {
	for _, f := range broken.BankFlaws {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			k, err := broken.NewBankKit(t.TempDir(), f)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			rep := runPlan(t, k, "bank", "transfer", "account", "twoway", "escrow")
			want := bankFailures[f]
			if got := rep.WithResult(conformance.Failed); !slices.Equal(got, want) {
				t.Errorf("FAILED %q\nwant   %q\n%s", got, want, summary(rep))
			}
			if r := rep.WithResult(conformance.Review); len(r) > 0 {
				t.Errorf("REVIEW %v\n%s", r, summary(rep))
			}
			for _, id := range want {
				if c := rep.Condition(id); len(c.Evidence) == 0 {
					t.Errorf("%s failed without evidence", id)
				}
			}
			if f == broken.ReleasesWithoutConfirmation {
				for _, id := range want {
					if m := rep.Condition(id).Message; !strings.Contains(m, "funds released without the buyer's confirmation") {
						t.Errorf("%s: %q does not say the funds were released without the buyer's confirmation", id, m)
					}
				}
			}
			assertNoSecrets(t, rep, broken.KitPassword)
		})
	}
}
