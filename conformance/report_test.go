package conformance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// assertScrubbed checks that the report files exist and carry none of the
// secrets.
func assertScrubbed(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	for _, name := range []string{"report.json", "junit.xml", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s carries the secret %q…", name, s[:4])
			}
		}
	}
}
