package javaxsd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

// require skips t without a JDK (fails it under CI=true, where .ci/run
// installs one).
func require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if testutil.CI() {
			t.Fatalf("%v (CI=true: .ci/run must install it)", err)
		}
		t.Skipf("%v", err)
	}
}

// testValidator validates against testdata/test.xsd, which imports the
// SAML protocol schema by its OASIS location through testdata/catalog.xml.
func testValidator(t testing.TB) *Validator {
	t.Helper()
	require(t)
	for _, f := range []string{"/usr/share/xml/opensaml/saml-schema-protocol-2.0.xsd", "/usr/share/xml/xmltooling/xmldsig-core-schema.xsd"} {
		if _, err := os.Stat(f); err != nil {
			if testutil.CI() {
				t.Fatalf("%v (CI=true: .ci/run must install opensaml-schemas and xmltooling-schemas)", err)
			}
			t.Skipf("%v: install the Debian packages opensaml-schemas xmltooling-schemas", err)
		}
	}
	return &Validator{Schema: filepath.Join("testdata", "test.xsd"), Catalog: filepath.Join("testdata", "catalog.xml")}
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit returns doc with old replaced by new, failing t when old is absent.
func edit(t testing.TB, doc, old, new string) string {
	t.Helper()
	if !strings.Contains(doc, old) {
		t.Fatalf("edit: %q not in the document", old)
	}
	return strings.Replace(doc, old, new, 1)
}

// TestValidateTypes: the valid document passes; each edit that breaks a
// type fails with the problem's line and Xerces's constraint, and the
// offending value is never in the message (it is quoted as [value]). All
// in one JVM.
func TestValidateTypes(t *testing.T) {
	v := testValidator(t)
	valid := readTestdata(t, "valid.xml")
	const pan = "4111111111111111x"
	cases := []struct {
		name, doc string
		line      int
		want      string // a constraint Xerces names
	}{
		{"valid", valid, 0, ""},
		{"bad-amount", edit(t, valid, "<t:Amount>150000</t:Amount>", "<t:Amount>"+pan+"</t:Amount>"), 5, "cvc-pattern-valid: Value '[value]'"},
		{"decimal-amount", edit(t, valid, "<t:Amount>150000</t:Amount>", "<t:Amount>1500.00</t:Amount>"), 5, "cvc-pattern-valid"},
		{"spaced-amount", edit(t, valid, "<t:Amount>150000</t:Amount>", "<t:Amount> 12 34 </t:Amount>"), 5, "cvc-pattern-valid: Value '[value]'"},
		{"multiline-amount", edit(t, valid, "<t:Amount>150000</t:Amount>", "<t:Amount>12&#xD;\n34</t:Amount>"), 6, "cvc-pattern-valid: Value '[value]'"},
		{"wrong-enumeration", edit(t, valid, "<t:Kind>card</t:Kind>", "<t:Kind>cash</t:Kind>"), 6, "cvc-enumeration-valid"},
		{"missing-element", edit(t, valid, "<t:Kind>card</t:Kind>", ""), 7, "cvc-complex-type.2.4.b"},
		{"unknown-child", edit(t, valid, "<t:Kind>card</t:Kind>", "<t:Kind>card</t:Kind><t:Note>hi</t:Note>"), 6, "cvc-complex-type.2.4.d"},
		{"bad-attribute", edit(t, valid, `Version="2.0"`, `Version="2.0" Secret="`+pan+`"`), 3, "cvc-complex-type.3.2.2"},
		{"bad-instant", edit(t, valid, `IssueInstant="2026-11-22T10:00:00Z"`, `IssueInstant="`+pan+`"`), 3, "cvc-datatype-valid.1.2.1: '[value]'"},
		{"not-well-formed", edit(t, valid, "</t:Request>", ""), 8, "XML document structures must start and end"},
		{"duplicate-unique", `<t:Limits xmlns:t="urn:kecis:test:javaxsd"><t:Limit Currency="cash"/><t:Limit Currency="cash"/></t:Limits>`, 1, "Duplicate unique value [value] declared"},
	}
	dir := t.TempDir()
	paths := make([]string, len(cases))
	for i, tc := range cases {
		paths[i] = filepath.Join(dir, tc.name+".xml")
		if err := os.WriteFile(paths[i], []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := v.Validate(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		ps := got[paths[i]]
		if tc.want == "" {
			if ps != nil {
				t.Errorf("%s: valid document refused: %v", tc.name, ps)
			}
			continue
		}
		found := false
		for _, p := range ps {
			for _, value := range []string{pan, "1500.00", "12 34", "12\r\n34", "12 34", "cash"} {
				if strings.Contains(p.Message, value) {
					t.Errorf("%s: the message holds the value: %s", tc.name, p)
				}
			}
			if strings.Contains(p.Message, tc.want) && p.Line == tc.line && p.Column > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want %q at line %d, got %v", tc.name, tc.want, tc.line, ps)
		}
	}
}

// listener counts connections to a local address, to show that nothing
// is fetched.
func listener(t *testing.T) (addr string, hits *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hits = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), hits
}

// TestRefusesDoctype: a document with a DOCTYPE — an external DTD, an
// external entity, an entity expansion — is refused at its DOCTYPE, and
// nothing is fetched.
func TestRefusesDoctype(t *testing.T) {
	v := testValidator(t)
	addr, hits := listener(t)
	valid := readTestdata(t, "valid.xml")
	root := "<t:Request "
	docs := map[string]string{
		"external-dtd": edit(t, valid, root, `<!DOCTYPE t:Request SYSTEM "http://`+addr+`/kecis.dtd">`+"\n"+root),
		"external-entity": edit(t, edit(t, valid, root, `<!DOCTYPE t:Request [<!ENTITY x SYSTEM "http://`+addr+`/x">]>`+"\n"+root),
			"urn:kecis:test:merchant<", "&x;<"),
		"file-entity": edit(t, edit(t, valid, root, `<!DOCTYPE t:Request [<!ENTITY x SYSTEM "file:///etc/passwd">]>`+"\n"+root),
			"urn:kecis:test:merchant<", "&x;<"),
		"billion-laughs": edit(t, edit(t, valid, root, `<!DOCTYPE t:Request [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>`+"\n"+root),
			"urn:kecis:test:merchant<", "&b;<"),
	}
	dir := t.TempDir()
	var paths []string
	for name, doc := range docs {
		p := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	got, err := v.Validate(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		ps := got[p]
		if len(ps) != 1 || !strings.Contains(ps[0].Message, "DOCTYPE is disallowed") || ps[0].Line != 2 {
			t.Errorf("%s: want one problem, the DOCTYPE at line 2: %v", filepath.Base(p), ps)
		}
		for _, pr := range ps {
			if strings.Contains(pr.Message, "root:") {
				t.Errorf("%s: /etc/passwd leaked: %s", filepath.Base(p), pr)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the validator connected to %s %d times", addr, n)
	}
}

// TestSchemaImportsOffline: an import the catalog does not map is refused
// with its location named, before any connection; so is a catalog that
// maps a location to http.
func TestSchemaImportsOffline(t *testing.T) {
	v := testValidator(t)
	addr, hits := listener(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	schema := readTestdata(t, "test.xsd")
	write("test-types.xsd", readTestdata(t, "test-types.xsd"))
	loc := "http://docs.oasis-open.org/security/saml/v2.0/saml-schema-protocol-2.0.xsd"
	unmapped := write("unmapped.xsd", edit(t, schema, loc, "http://"+addr+"/protocol.xsd"))
	catalog := readTestdata(t, "catalog.xml")
	httpCatalog := write("http-catalog.xml", edit(t, catalog, "file:///usr/share/xml/opensaml/saml-schema-protocol-2.0.xsd", "http://"+addr+"/protocol.xsd"))
	doc := write("doc.xml", readTestdata(t, "valid.xml"))
	for _, tc := range []struct{ name, schema, catalog, want string }{
		{"not-in-catalog", unmapped, v.Catalog, "http://" + addr + "/protocol.xsd (namespace urn:oasis:names:tc:SAML:2.0:protocol) is not in the catalog"},
		{"catalog-maps-to-http", write("test.xsd", schema), httpCatalog, "not a file: refusing to fetch it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Validator{Schema: tc.schema, Catalog: tc.catalog}).Validate(context.Background(), []string{doc})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want the schemas refused with %q, got %v", tc.want, err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the validator connected to %s %d times", addr, n)
	}
}

// TestBatch: a thousand documents, valid and invalid mixed, in one JVM;
// each invalid one is reported under its own path, a valid one not at
// all, and a path holding a colon survives the output's format.
func TestBatch(t *testing.T) {
	v := testValidator(t)
	valid := readTestdata(t, "valid.xml")
	invalid := edit(t, valid, "<t:Kind>card</t:Kind>", "<t:Kind>cash</t:Kind>")
	dir := filepath.Join(t.TempDir(), "a:1:2")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	paths := make([]string, n)
	for i := range paths {
		doc := valid
		if i%7 == 0 {
			doc = invalid
		}
		paths[i] = filepath.Join(dir, fmt.Sprintf("doc-%04d.xml", i))
		if err := os.WriteFile(paths[i], []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var runs []string
	v.Stats = func(line string) { runs = append(runs, line) }
	start := time.Now()
	got, err := v.Validate(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(runs) != 1 {
		t.Fatalf("want one JVM for %d files, got %d runs: %v", n, len(runs), runs)
	}
	t.Logf("%d files in one JVM in %v (%s)", n, took.Round(time.Millisecond), runs[0])
	for i, p := range paths {
		ps, bad := got[p]
		if bad != (i%7 == 0) {
			t.Fatalf("%s: invalid=%v, want %v: %v", p, bad, i%7 == 0, ps)
		}
		// Xerces names the facet, then the element's type: two problems.
		if bad && (len(ps) != 2 || ps[0].Line != 6 || !strings.Contains(ps[0].Message, "cvc-enumeration-valid")) {
			t.Fatalf("%s: %v", p, ps)
		}
	}
	if len(got) != (n+6)/7 {
		t.Fatalf("%d invalid, want %d", len(got), (n+6)/7)
	}

	// The first 100 in batches of 60: two JVMs, the same answer.
	runs = nil
	v.BatchSize = 60
	got2, err := v.Validate(context.Background(), paths[:100])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths[:100] {
		if len(got2[p]) != len(got[p]) {
			t.Errorf("%s: %v in batches, %v at once", p, got2[p], got[p])
		}
	}
	if len(runs) != 2 || len(got2) != (100+6)/7 {
		t.Fatalf("batches of 60: %d runs, %d invalid (want 2, %d)", len(runs), len(got2), (100+6)/7)
	}
}

// TestValidateErrors: what stops validation is an error, not a problem.
func TestValidateErrors(t *testing.T) {
	v := testValidator(t)
	if _, err := v.Validate(context.Background(), []string{filepath.Join(t.TempDir(), "missing.xml")}); err == nil {
		t.Error("a missing file: no error")
	}
	for _, name := range []string{"a\nb.xml", "a\xffb.xml", ""} {
		if _, err := v.Validate(context.Background(), []string{name}); err == nil || !strings.Contains(err.Error(), "unusable file name") {
			t.Errorf("the name %q: %v", name, err)
		}
	}
	got, err := v.Validate(context.Background(), nil)
	if err != nil || len(got) != 0 {
		t.Errorf("no files: %v, %v", got, err)
	}
	bad := &Validator{Schema: filepath.Join(t.TempDir(), "none.xsd"), Catalog: v.Catalog}
	if _, err := bad.ValidateDoc(context.Background(), []byte(readTestdata(t, "valid.xml"))); err == nil || !strings.Contains(err.Error(), "schema:") {
		t.Errorf("a missing schema: %v", err)
	}
}

// TestParse: the output's lines map to their files, the longest path
// that fits first.
func TestParse(t *testing.T) {
	paths := []string{"/x/a.xml", "/x/a.xml:3:4"}
	got, err := parse([]byte("/x/a.xml:3:4:5:6: m1\n/x/a.xml:1:2: m: 2\n"), paths)
	if err != nil {
		t.Fatal(err)
	}
	if p := got["/x/a.xml:3:4"]; len(p) != 1 || p[0] != (Problem{Line: 5, Column: 6, Message: "m1"}) {
		t.Errorf("colon path: %v", p)
	}
	if p := got["/x/a.xml"]; len(p) != 1 || p[0] != (Problem{Line: 1, Column: 2, Message: "m: 2"}) {
		t.Errorf("plain path: %v", p)
	}
	if _, err := parse([]byte("/y.xml:1:1: m\n"), paths); err == nil {
		t.Error("an unknown path: no error")
	}
}
