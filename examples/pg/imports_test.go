package pg_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/kecis/kecis"

// imports returns the import paths of the .go files in dir, test files
// or non-test files.
func imports(t *testing.T, dir string, tests bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") != tests {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			seen[p] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestImportsNoKECIS proves that the PG is an outside participant with an
// API of its own: its code, and everything of the project it links,
// imports nothing of KECIS — no ecml, saml, federation or the SDK's
// protocol packages — only the neutral SQL plumbing connectors/sqlstore,
// public so that an outside company may import it. The
// walk follows the project's packages transitively, as go list -deps
// would.
func TestImportsNoKECIS(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	allowed := map[string]bool{module + "/connectors/sqlstore": true,
		module + "/connectors/sqlstore/postgres": true, module + "/connectors/sqlstore/sqlite": true} // its drivers

	direct := imports(t, ".", false)
	if !slices.Contains(direct, module+"/connectors/sqlstore") {
		t.Errorf("the PG does not import connectors/sqlstore: %v", direct)
	}
	queue := []string{module + "/examples/pg"}
	visited := map[string]bool{}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if visited[pkg] {
			continue
		}
		visited[pkg] = true
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
		for _, imp := range imports(t, dir, false) {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if !allowed[imp] {
				t.Errorf("%s imports %s: the PG may link nothing of the project but connectors/sqlstore", pkg, imp)
				continue
			}
			queue = append(queue, imp)
		}
	}
	if len(visited) < 2 {
		t.Errorf("walked only %v", visited)
	}

	// The tests may add the test helpers, and the package itself.
	testAllowed := map[string]bool{
		module + "/examples/pg":                  true,
		module + "/connectors/sqlstore":          true,
		module + "/connectors/sqlstore/sqltest":  true,
		module + "/connectors/sqlstore/sqlprobe": true,
		module + "/internal/testutil":            true,
	}
	for _, imp := range imports(t, ".", true) {
		if strings.HasPrefix(imp, module) && !testAllowed[imp] {
			t.Errorf("a test imports %s", imp)
		}
	}
}
