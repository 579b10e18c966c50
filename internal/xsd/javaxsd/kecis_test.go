package javaxsd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/testutil"
)

// moduleRoot is the module's root, from this package's directory.
var moduleRoot = filepath.Join("..", "..", "..")

// corpus are the checked-in KECIS documents both processors read: the
// golden messages, the attack documents (well-formed or not), the ECML
// test documents and the signed records' goldens.
var corpus = []string{
	"saml/testdata/golden/*.xml",
	"saml/testdata/attacks/*.xml",
	"saml/testdata/bench/*.xml",
	"ecml/testdata/*.xml",
	"ecml/testdata/golden/*.xml",
	"connectors/*/testdata/*.xml",
}

// mustBeValid are the golden files every processor accepts.
var mustBeValid = []string{"saml/testdata/golden/*.xml"}

func glob(t testing.TB, patterns []string) []string {
	t.Helper()
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(moduleRoot, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("%s matches no file", p)
		}
		out = append(out, m...)
	}
	return out
}

// kecisValidator validates against docs/spec/schema with the JDK; it
// skips without a JDK or Debian's schemas (fails under CI=true).
func kecisValidator(t testing.TB) *Validator {
	t.Helper()
	testValidator(t) // the JDK and Debian's schema packages
	schema, catalog, err := DefaultFiles()
	if err != nil {
		t.Fatal(err)
	}
	return &Validator{Schema: schema, Catalog: catalog}
}

// xmllintVerdicts validates paths with xmllint (libxml2) against the same
// schema and catalog, offline, in one run, and reports which are valid.
func xmllintVerdicts(t testing.TB, v *Validator, paths []string) map[string]bool {
	t.Helper()
	xmllint := testutil.RequireTool(t, "xmllint", "libxml2-utils")
	cmd := exec.Command(xmllint, append([]string{"--nonet", "--noout", "--schema", v.Schema}, paths...)...)
	cmd.Env = append(os.Environ(), "XML_CATALOG_FILES="+v.Catalog)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 && code != 3 && code != 4 {
		t.Fatalf("xmllint: %v\n%s", err, stderr.String())
	}
	valid := map[string]bool{}
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if p, ok := strings.CutSuffix(sc.Text(), " validates"); ok {
			valid[p] = true
		}
		if strings.Contains(sc.Text(), "failed to compile") {
			t.Fatalf("xmllint: %s\n%s", sc.Text(), stderr.String())
		}
	}
	return valid
}

// brokenEdits each break one type of the golden request; both processors
// must refuse every one.
var brokenEdits = []struct{ name, old, new string }{
	{"bad-amount", `Amount="15000"`, `Amount="15,000"`},
	{"negative-amount", `Amount="15000"`, `Amount="-15000"`},
	{"missing-issuer", `<saml:Issuer>https://merchant.example/kecis</saml:Issuer>`, ``},
	{"unknown-child", `</kecis:IdempotencyKey>`, `</kecis:IdempotencyKey><kecis:Unknown/>`},
	{"wrong-enumeration", `Type="credit"`, `Type="refund"`},
	{"unknown-attribute", `<kecis:Routing `, `<kecis:Routing Color="red" `},
	{"bad-instant", `IssueInstant="2026-11-22T10:00:00.000Z"`, `IssueInstant="yesterday"`},
	{"bad-version", `Version="2.0"`, `Version="3.0"`},
	{"missing-payload", `<kecis:Payload>`, `<kecis:Ignored>`},
}

// TestAgreesWithXmllint: over the checked-in corpus and the broken edits,
// the JDK's Xerces and libxml2 give every document the same verdict
// against docs/spec/schema; the golden messages are valid, every broken
// edit invalid, under both. A disagreement is a schema construct the two
// read differently: docs/spec/schema must avoid it.
func TestAgreesWithXmllint(t *testing.T) {
	v := kecisValidator(t)
	paths := glob(t, corpus)

	golden, err := os.ReadFile(filepath.Join(moduleRoot, "saml", "testdata", "golden", "request-rsa.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var broken []string
	for _, e := range brokenEdits {
		doc := edit(t, string(golden), e.old, e.new)
		if e.name == "missing-payload" {
			doc = edit(t, doc, `</kecis:Payload>`, `</kecis:Ignored>`)
		}
		p := filepath.Join(dir, e.name+".xml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		broken = append(broken, p)
	}
	paths = append(paths, broken...)

	start := time.Now()
	java, err := v.Validate(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Java: %d files in %v, %d invalid", len(paths), time.Since(start).Round(time.Millisecond), len(java))
	lint := xmllintVerdicts(t, v, paths)

	for _, p := range paths {
		jv, xv := java[p] == nil, lint[p]
		if jv != xv {
			t.Errorf("%s: Java says valid=%v, xmllint valid=%v; Java's problems: %v", p, jv, xv, java[p])
		}
	}
	for _, p := range glob(t, mustBeValid) {
		if ps := java[p]; ps != nil {
			t.Errorf("golden %s is invalid under Java: %v", p, ps)
		}
	}
	for _, p := range broken {
		if java[p] == nil || lint[p] {
			t.Errorf("%s: Java valid=%v, xmllint valid=%v; want both to refuse it", filepath.Base(p), java[p] == nil, lint[p])
		}
		for _, pr := range java[p] {
			for _, value := range []string{"15,000", "-15000", "refund", "red", "yesterday"} {
				if strings.Contains(pr.Message, "'"+value+"'") {
					t.Errorf("%s: the message holds the value %q: %s", filepath.Base(p), value, pr)
				}
			}
		}
	}
}

// TestKecisBatch: a thousand KECIS messages (the golden ones, each written
// 200 times) in one JVM against docs/spec/schema; the time is logged.
func TestKecisBatch(t *testing.T) {
	v := kecisValidator(t)
	goldens := glob(t, mustBeValid)
	dir := t.TempDir()
	var paths []string
	for i := 0; len(paths) < 1000; i++ {
		b, err := os.ReadFile(goldens[i%len(goldens)])
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%04d-%s", i, filepath.Base(goldens[i%len(goldens)])))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var runs []string
	v.Stats = func(line string) { runs = append(runs, line) }
	start := time.Now()
	got, err := v.Validate(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		first := slices.Sorted(func(yield func(string) bool) {
			for p := range got {
				if !yield(p) {
					return
				}
			}
		})[0]
		t.Fatalf("%d of %d golden copies invalid, e.g. %s: %v", len(got), len(paths), first, got[first])
	}
	if len(runs) != 1 {
		t.Fatalf("want one JVM, got %v", runs)
	}
	t.Logf("%d KECIS messages in one JVM in %v (%s)", len(paths), time.Since(start).Round(time.Millisecond), runs[0])
}
