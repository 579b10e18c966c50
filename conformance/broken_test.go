package conformance_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/conformance/broken"
)

// runKit runs the issuer plan directly against a broken provider.
func runKit(t *testing.T, k *broken.Kit) *conformance.Report {
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
	rep, err := conformance.Run(ctx, conformance.Config{Target: target, Profile: p, Tester: tester})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func summary(rep *conformance.Report) string {
	var b strings.Builder
	for _, m := range rep.Modules {
		for _, c := range m.Conditions {
			if c.Result != conformance.Passed {
				b.WriteString("  " + string(c.Result) + " " + c.ID + ": " + firstLine(c.Message) + "\n")
			}
		}
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestCorrectProviderPasses: without a flaw the provider passes every
// check of the issuer plan (the metadata is an unsigned file: a warning).
func TestCorrectProviderPasses(t *testing.T) {
	k, err := broken.NewKit(t.TempDir(), broken.None, true)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep := runKit(t, k)
	t.Logf("summary %v\n%s", rep.Summary, summary(rep))
	if failed := rep.WithResult(conformance.Failed); len(failed) > 0 {
		t.Errorf("FAILED: %v", failed)
	}
	if w := rep.WithResult(conformance.Warning); !slices.Equal(w, []string{"metadata.hub-signed"}) {
		t.Errorf("warnings %v, want only metadata.hub-signed", w)
	}
	// The authorization module ran whole: the profile gives the second
	// identity and the outsider.
	for _, m := range rep.Modules {
		for _, c := range m.Conditions {
			if m.Name == "authorization" && c.Result != conformance.Passed {
				t.Errorf("%s: %s %s", c.ID, c.Result, c.Message)
			}
		}
	}
}

// brokenFailures are the exact checks each broken provider fails.
var brokenFailures = map[broken.Flaw][]string{
	broken.SkipsSignatureVerification: {
		"security.xsw1-clone-inside-signature", "security.xsw2-clone-before-signature",
		"security.xsw-signed-request-in-extensions", "security.xsw-signature-in-extensions",
		"security.two-signatures", "security.unsigned", "security.tampered-after-signing",
		"security.reference-to-payload", "security.sha1-digest", "security.untrusted-key", "security.unknown-issuer",
	},
	broken.AcceptsCBC: {
		"security.enc-aes128-cbc", "security.enc-aes256-cbc", "security.enc-3des-cbc", "security.enc-rsa-1_5", "security.no-oracle",
	},
	broken.EchoesPAN:               {"responses.no-clear-pan"},
	broken.IgnoresReplays:          {"security.replay"},
	broken.RefundsMoreThanApproved: {"card.over-refund"},
	broken.WrongInResponseTo:       {"envelope.in-response-to", "responses.in-response-to"},
	broken.FindsWithoutOwner: {
		"authorization.other-inquire", "authorization.other-refund", "authorization.other-cancel", "authorization.owner-inquire",
	},
	broken.AdmitsAnyRole: {"authorization.caller-role"},
}

// TestBrokenProvidersFail: the suite catches each deliberately broken
// provider, with exactly the checks its flaw breaks, and nothing else.
func TestBrokenProvidersFail(t *testing.T) {
	for _, f := range broken.Flaws {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			k, err := broken.NewKit(t.TempDir(), f, false)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			rep := runKit(t, k)
			want := brokenFailures[f]
			if got := rep.WithResult(conformance.Failed); !slices.Equal(got, want) {
				t.Errorf("FAILED %q\nwant   %q\n%s", got, want, summary(rep))
			}
			if rep.Passed {
				t.Error("the report passes")
			}
			if w := rep.WithResult(conformance.Warning); !slices.Equal(w, []string{"metadata.hub-signed"}) {
				t.Errorf("warnings %v", w)
			}
			if r := rep.WithResult(conformance.Review); len(r) > 0 {
				t.Errorf("REVIEW %v", r)
			}
			// Evidence of a failure is scrubbed: the flawed provider's
			// echo of the card number is masked.
			for _, id := range want {
				c := rep.Condition(id)
				if len(c.Evidence) == 0 {
					t.Errorf("%s failed without evidence", id)
				}
				for _, e := range c.Evidence {
					if strings.Contains(e.Content, broken.TestPAN(1)) {
						t.Errorf("%s: evidence %s carries the card number", id, e.Label)
					}
				}
			}
		})
	}
}
