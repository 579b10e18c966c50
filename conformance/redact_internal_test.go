package conformance

import (
	"slices"
	"testing"

	"github.com/kecis/kecis/ecml"
)

func TestAmountForms(t *testing.T) {
	for _, tc := range []struct {
		m    ecml.Money
		want []string
	}{
		{ecml.Money{Minor: 834, Currency: "KRW"}, []string{"834"}},
		{ecml.Money{Minor: 12345, Currency: "KRW"}, []string{"12345", "12,345"}},
		{ecml.Money{Minor: 1234567, Currency: "KRW"}, []string{"1234567", "1,234,567"}},
		{ecml.Money{Minor: 123450, Currency: "USD"}, []string{"1234.50", "1,234.50", "123450"}},
		{ecml.Money{Minor: 0, Currency: "KRW"}, nil},
	} {
		if got := amountForms(tc.m); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestRedactOTPs: a one-time secret learnt during a run is redacted where
// it stands as a number of its own, in every form, and only there; what
// was recorded before is redacted at the end of the run.
func TestRedactOTPs(t *testing.T) {
	e := &Env{scrubber: newScrubber([]string{"pw-1"})}
	rep := &Report{Modules: []*ModuleReport{{Conditions: []*ConditionReport{{Message: "typed 4821 of 10 attempts", Evidence: []Evidence{{Content: `<StatusMessage>4,821 KRW was approved</StatusMessage>`}}}}}}}
	e.redact(ecml.Money{Minor: 4821, Currency: "KRW"})
	for in, want := range map[string]string{
		"the amount was 4821 KRW":        "the amount was [REDACTED] KRW",
		"4,821원":                         "[REDACTED]원",
		"4821":                           "[REDACTED]",
		"approval 14821, order 48210":    "approval 14821, order 48210",
		"ID _ab4821cd":                   "ID _ab[REDACTED]cd",
		"pw-1 and card 4111111111111111": "[REDACTED] and card 411111******1111",
	} {
		if got := e.scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if !containsNumber("x 4821.", "4821") || containsNumber("x 48213", "4821") || containsNumber("", "4821") {
		t.Error("containsNumber")
	}
	e.rescrub(rep)
	c := rep.Modules[0].Conditions[0]
	if c.Message != "typed [REDACTED] of 10 attempts" || c.Evidence[0].Content != `<StatusMessage>[REDACTED] KRW was approved</StatusMessage>` {
		t.Errorf("rescrub: %q %q", c.Message, c.Evidence[0].Content)
	}
}
