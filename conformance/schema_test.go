package conformance_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kecis/kecis/conformance"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/internal/xsd"
)

// schemaClause is a schema check's clause: "schema/FILE prefix:Type".
var schemaClause = regexp.MustCompile(`^schema/([a-z0-9-]+\.xsd) [a-z]+:([A-Za-z]+)$`)

// TestSchemaClausesExist: every check citing a schema names a file of
// docs/spec/schema that defines the type it names, and the envelope and
// metadata modules check each message they receive or fetch.
func TestSchemaClausesExist(t *testing.T) {
	ids := map[string]bool{}
	for _, p := range conformance.Plans() {
		for _, m := range p.Modules {
			for _, c := range m.Conditions {
				for _, cl := range c.Clauses {
					if !strings.HasPrefix(cl, "schema/") || ids[c.ID] {
						continue
					}
					ids[c.ID] = true
					mm := schemaClause.FindStringSubmatch(cl)
					if mm == nil {
						t.Errorf("%s cites %q: want schema/FILE prefix:Type", c.ID, cl)
						continue
					}
					b, err := os.ReadFile(filepath.Join("..", "docs", "spec", "schema", mm[1]))
					if err != nil {
						t.Errorf("%s cites %q: %v", c.ID, cl, err)
						continue
					}
					if !strings.Contains(string(b), `<xs:complexType name="`+mm[2]+`"`) {
						t.Errorf("%s cites %q: %s defines no complex type %s", c.ID, cl, mm[1], mm[2])
					}
				}
			}
		}
	}
	for _, id := range []string{"metadata.schema", "envelope.schema", "envelope.unknown-service-schema"} {
		if !ids[id] {
			t.Errorf("no schema check %s", id)
		}
	}
}

// schemaSkips are the schema checks of rep a test may accept SKIPPED:
// none where xmllint and the schema files are installed, and none under
// CI=true, where a missing one fails the test (.ci/run installs them).
func schemaSkips(t *testing.T, rep *conformance.Report) []string {
	t.Helper()
	err := xsd.Available()
	if err == nil {
		return nil
	}
	if testutil.CI() {
		t.Errorf("the schema checks cannot run under CI=true: %v", err)
		return nil
	}
	var ids []string
	for _, m := range rep.Modules {
		for _, c := range m.Conditions {
			for _, cl := range c.Clauses {
				if strings.HasPrefix(cl, "schema/") && c.Result == conformance.Skipped {
					ids = append(ids, c.ID)
					break
				}
			}
		}
	}
	t.Logf("schema checks SKIPPED (%v): %v", err, ids)
	return ids
}
