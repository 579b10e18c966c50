package xsd

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestMaterialise: the schemas are written once to a directory named by
// their hash and shared; a copy someone changed is not used.
func TestMaterialise(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	fsys := fstest.MapFS{
		Driver:          {Data: []byte("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>")},
		Catalog:         {Data: []byte(`<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog"><uri name="a" uri="file:///usr/share/xml/x.xsd"/><uri name="b" uri="local.xsd"/></catalog>`)},
		"sub/other.xsd": {Data: []byte("<x/>")},
	}
	a, err := materialise(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.external) != 1 || a.catalog == "" || a.external[0] != "/usr/share/xml/x.xsd" {
		t.Fatalf("external: %v", a.external)
	}
	if b, err := os.ReadFile(filepath.Join(a.dir, "sub", "other.xsd")); err != nil || string(b) != "<x/>" {
		t.Fatalf("sub/other.xsd: %q, %v", b, err)
	}
	b, err := materialise(fsys)
	if err != nil || b.dir != a.dir {
		t.Fatalf("second: %v, %v (first %s)", b, err, a.dir)
	}
	if err := os.WriteFile(filepath.Join(a.dir, Driver), []byte("<changed/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := materialise(fsys)
	if err != nil || c.dir == a.dir {
		t.Fatalf("a changed copy was used: %v, %v", c, err)
	}
	if got, _ := os.ReadFile(c.driver); string(got) != string(fsys[Driver].Data) {
		t.Fatalf("driver: %q", got)
	}
	if entries, _ := filepath.Glob(filepath.Join(os.TempDir(), "kecis-xsd-tmp-*")); len(entries) != 1 {
		t.Fatalf("private copies: %v (want the one for the changed copy)", entries)
	}
}
