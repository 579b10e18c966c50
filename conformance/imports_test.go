package conformance_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

// TestImportsNoHub: the suite tests black boxes (docs/conformance.md). What
// it links — the suite and its broken providers, tests aside — holds
// nothing of the hub (federation/: server, registry, router, store,
// facade), no store (connectors/store, connectors/sqlstore) and none of the
// examples; its own hub is `kecis serve`, a process, which it drives
// through the hub's API. From go list -deps, as the build sees it; the
// suite's link to saml shows that the query sees the project's packages.
func TestImportsNoHub(t *testing.T) {
	goTool := testutil.RequireTool(t, "go", "golang-go")
	const module = "github.com/kecis/kecis/"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", module+"conformance/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./conformance/...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"saml") {
		t.Fatalf("go list -deps ./conformance/... does not list saml: the query is wrong\n%s", out)
	}
	for _, p := range deps {
		for _, banned := range []string{"federation/", "examples/", "connectors/store", "connectors/sqlstore"} {
			if strings.HasPrefix(p, module+banned) {
				t.Errorf("the conformance suite links %s", p)
			}
		}
	}
}
