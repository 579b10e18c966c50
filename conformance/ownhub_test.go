package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/conformance"
)

// TestOwnHubRefusesForeignDirectory: each run of the suite's own hub
// starts from an empty database, so it refuses a directory it did not make
// — a hub.yaml it did not write, or a database without its hub.yaml —
// before touching anything there (no keys made, the database kept).
func TestOwnHubRefusesForeignDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"a hub.yaml of another", map[string]string{"hub.yaml": "entity_id: https://hub.example/kecis\n", "hub.db": "the real hub's"}, "hub.yaml the suite did not write"},
		{"a database alone", map[string]string{"hub.db": "the real hub's"}, "hub.db the suite did not make"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			h := &conformance.OwnHub{Dir: dir, Exe: "/nonexistent/kecis"}
			_, err := h.Start(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "hub.db")); string(b) != "the real hub's" {
				t.Errorf("the database was touched: %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "signing")); err == nil {
				t.Error("keys were made in a directory not the suite's")
			}
		})
	}
}
