package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/conformance/broken"
)

// runPG runs the PG plan (only modules, when given) directly against a
// broken PG.
func runPG(t *testing.T, k *broken.Kit, modules ...string) *conformance.Report {
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
	if rep.Plan != "pg" {
		t.Fatalf("plan %s, want pg", rep.Plan)
	}
	return rep
}

// amountAuthIDs are the checks of the amountauth module, in run order.
func amountAuthIDs(t *testing.T) []string {
	t.Helper()
	p, err := conformance.PlanByName("pg")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range p.Module("amountauth").Conditions {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestAmountAuthCorrectPGPasses: the whole PG plan passes against the
// broken package's PG without a flaw, every check of the amountauth module
// among them (the profile gives the hook, the attempts, the timeout and
// the second identity), and its voided verification approvals are
// cancelled in the PG's ledger.
func TestAmountAuthCorrectPGPasses(t *testing.T) {
	t.Parallel()
	k, err := broken.NewPGKit(t.TempDir(), broken.None, true)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep := runPG(t, k)
	t.Logf("summary %v\n%s", rep.Summary, summary(rep))
	if failed := rep.WithResult(conformance.Failed); len(failed) > 0 {
		t.Errorf("FAILED: %v", failed)
	}
	if w := rep.WithResult(conformance.Warning); !slices.Equal(w, []string{"metadata.hub-signed"}) {
		t.Errorf("warnings %v, want only metadata.hub-signed", w)
	}
	for _, id := range amountAuthIDs(t) {
		if c := rep.Condition(id); c == nil || c.Result != conformance.Passed {
			t.Errorf("%s: %s %s", id, c.Result, c.Message)
		}
	}
	// Three sessions: matched, timed out, failed.
	if n := len(k.Provider.Challenges()); n != 3 {
		t.Errorf("%d sessions, want 3", n)
	}
	assertNoChallenge(t, rep, k)
}

// pgFailures are the exact checks each broken PG fails.
var pgFailures = map[broken.Flaw][]string{
	broken.NeverVoids:      {"amountauth.voided-after-match", "amountauth.voided-after-timeout", "amountauth.voided-after-limit"},
	broken.EchoesChallenge: {"amountauth.wrong-amount", "amountauth.attempt-limit", "amountauth.no-challenge"},
}

// TestAmountAuthBrokenPGsFail: the amountauth module catches each broken
// PG with exactly the checks its flaw breaks, and the report shows no
// challenge even where the PG echoed it.
func TestAmountAuthBrokenPGsFail(t *testing.T) {
	for _, f := range broken.PGFlaws {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			k, err := broken.NewPGKit(t.TempDir(), f, false)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			rep := runPG(t, k, "amountauth")
			want := pgFailures[f]
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
			assertNoChallenge(t, rep, k)
			if f == broken.EchoesChallenge {
				// The echo is in the evidence, redacted.
				echo := false
				for _, e := range rep.Condition("amountauth.wrong-amount").Evidence {
					echo = echo || strings.Contains(e.Content, "[REDACTED] KRW was typed, [REDACTED] KRW was approved")
				}
				if !echo {
					t.Error("the wrong amount's evidence does not show the echo redacted")
				}
			}
		})
	}
}

// assertNoChallenge checks that no challenge of the PG's sessions stands
// as a number in any check's message or evidence, nor in the written
// reports next to the echo's words.
func assertNoChallenge(t *testing.T, rep *conformance.Report, k *broken.Kit) {
	t.Helper()
	chs := k.Provider.Challenges()
	if len(chs) == 0 {
		t.Fatal("the PG made no session")
	}
	for _, ch := range chs {
		re := regexp.MustCompile(`(^|[^0-9])` + regexp.QuoteMeta(ch) + `([^0-9]|$)`)
		for _, m := range rep.Modules {
			for _, c := range m.Conditions {
				if re.MatchString(c.Message) {
					t.Errorf("%s: the message shows a challenge", c.ID)
				}
				for _, e := range c.Evidence {
					if re.MatchString(e.Content) {
						t.Errorf("%s: evidence %s shows a challenge", c.ID, e.Label)
					}
				}
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	echo := regexp.MustCompile(`[0-9] KRW was (typed|approved)`)
	for _, name := range []string{"report.json", "junit.xml", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if echo.Match(b) {
			t.Errorf("%s shows an echoed amount", name)
		}
	}
}

// TestAmountAuthSkipsWithoutHook: with neither the amountauth hook nor
// the PG's attempts and timeout in the profile, the checks that need them
// are SKIPPED, each saying what is missing; start and the scan of the
// answers still run.
func TestAmountAuthSkipsWithoutHook(t *testing.T) {
	t.Parallel()
	k, err := broken.NewPGKit(t.TempDir(), broken.None, false)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	b, err := os.ReadFile(k.ProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "amountauth: {url") && !strings.HasPrefix(l, "  attempts:") && !strings.HasPrefix(l, "  timeout:") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(k.ProfilePath, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runPG(t, k, "amountauth")
	want := map[string]string{
		"amountauth.start":                 "",
		"amountauth.verification-approval": "hooks.amountauth",
		"amountauth.confirm":               "needs amountauth.verification-approval",
		"amountauth.result":                "needs amountauth.confirm",
		"amountauth.status":                "needs amountauth.confirm",
		"amountauth.voided-after-match":    "needs amountauth.confirm",
		"amountauth.wrong-amount":          "hooks.amountauth",
		"amountauth.other-merchant":        "started no session",
		"amountauth.timeout":               "amountauth.timeout",
		"amountauth.voided-after-timeout":  "needs amountauth.timeout",
		"amountauth.attempt-limit":         "amountauth.attempts",
		"amountauth.voided-after-limit":    "needs amountauth.attempt-limit",
		"amountauth.no-challenge":          "",
	}
	for _, id := range amountAuthIDs(t) {
		c := rep.Condition(id)
		switch why, ok := want[id]; {
		case !ok:
			t.Errorf("%s: not expected", id)
		case why == "" && c.Result != conformance.Passed:
			t.Errorf("%s: %s %s", id, c.Result, c.Message)
		case why != "" && (c.Result != conformance.Skipped || !strings.Contains(c.Message, why)):
			t.Errorf("%s: %s %q, want SKIPPED naming %q", id, c.Result, c.Message, why)
		}
	}
}
