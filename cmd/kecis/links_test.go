package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

// deps are the packages of the module that the named command links.
func deps(t *testing.T, goTool, cmd string) []string {
	t.Helper()
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", "github.com/kecis/kecis/cmd/"+cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", cmd, err, out)
	}
	var ours []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/kecis/kecis/") {
			ours = append(ours, p)
		}
	}
	return ours
}

// TestLinksNoExamples: the production binary links none of examples/ —
// the simulated issuer, PG and telecom and the demo that wires them are
// kecis-demo's (docs/demo.md). kecis-demo linking examples/demo shows
// that the query sees them.
func TestLinksNoExamples(t *testing.T) {
	goTool := testutil.RequireTool(t, "go", "golang-go")
	const examples = "github.com/kecis/kecis/examples/"
	for _, p := range deps(t, goTool, "kecis") {
		if strings.HasPrefix(p, examples) {
			t.Errorf("kecis links %s", p)
		}
	}
	found := false
	for _, p := range deps(t, goTool, "kecis-demo") {
		found = found || p == examples+"demo"
	}
	if !found {
		t.Fatal("kecis-demo does not link examples/demo: the query is wrong")
	}
}
