package connectors_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
)

// Database drivers and what they are recognised by in go list -deps.
var databaseDrivers = map[string]string{
	"SQLite":     "modernc.org/sqlite",
	"PostgreSQL": "github.com/jackc/pgx/v5",
}

// deps returns the packages pkg links (go list -deps).
func deps(t *testing.T, goTool, pkg string) []string {
	t.Helper()
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// links reports which database drivers a package list holds.
func links(list []string) []string {
	var got []string
	for name, prefix := range databaseDrivers {
		if slices.ContainsFunc(list, func(p string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }) {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	return got
}

// TestLinksNoDatabase keeps the SDK light: the SDK's packages link no
// database driver, and a provider embedding it links the one of the
// adapter store it chose (connectors/internal/minprovider: SQLite).
func TestLinksNoDatabase(t *testing.T) {
	goTool := testutil.RequireTool(t, "go", "golang-go")
	for pkg, want := range map[string][]string{
		"github.com/kecis/kecis/connectors":                      nil,
		"github.com/kecis/kecis/connectors/card":                 nil,
		"github.com/kecis/kecis/connectors/store":                nil,
		"github.com/kecis/kecis/connectors/store/storesql":       nil,
		"github.com/kecis/kecis/connectors/sqlstore":             nil,
		"github.com/kecis/kecis/connectors/store/sqlitestore":    {"SQLite"},
		"github.com/kecis/kecis/connectors/store/pgstore":        {"PostgreSQL"},
		"github.com/kecis/kecis/connectors/internal/minprovider": {"SQLite"},
	} {
		list := deps(t, goTool, pkg)
		if got := links(list); !slices.Equal(got, want) {
			t.Errorf("%s links the database drivers %v, want %v", pkg, got, want)
		}
	}
	// The SDK proper holds no SQL at all: the store is an interface.
	for _, pkg := range []string{"github.com/kecis/kecis/connectors", "github.com/kecis/kecis/connectors/card", "github.com/kecis/kecis/connectors/store"} {
		if slices.Contains(deps(t, goTool, pkg), "database/sql") {
			t.Errorf("%s links database/sql", pkg)
		}
	}
}
