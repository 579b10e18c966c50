package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

// TestWalkthrough: --walkthrough accepts the honest message, refuses the
// tampered one and the replay, and shows no card number in clear.
func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	for run := 0; run < 2; run++ { // first run generates keys, the second loads them
		var out bytes.Buffer
		if err := runWalkthrough(context.Background(), &out, dir, testutil.NewClock(testutil.FixedNow).Now); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out.String())
		}
		s := out.String()
		for _, want := range []string{"accepted from", "refused (signature, before-verification)", "refused (replay, after-verification)", "411111******1111"} {
			if !strings.Contains(s, want) {
				t.Errorf("run %d: output lacks %q:\n%s", run, want, s)
			}
		}
		if ecml.ContainsPAN(s) {
			t.Fatalf("demo output shows a card number in clear:\n%s", s)
		}
	}
}
