package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/xsd/xsdtest"
)

// TestValidateCommands: kecis envelope validate and kecis metadata
// validate pass the documents kecis itself writes, list each problem of an
// edited one as FILE:LINE (exit 1) without the values it holds, send a
// document of the other kind to the other command, and exit 2 on a usage
// error and where xmllint is missing.
func TestValidateCommands(t *testing.T) {
	xsdtest.Require(t)
	dir := t.TempDir()
	envelopeFixture(t, dir)
	metadataFixture(t, dir)
	file := func(name string) string { return filepath.Join(dir, name) }
	read := func(name string) []byte {
		b, err := os.ReadFile(file(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	for _, c := range [][]string{
		{"envelope", "validate", file("signed.xml")},
		{"envelope", "validate", file("archived.xml")},
		{"metadata", "validate", file("pg.xml")},
		{"metadata", "validate", file("federation.xml")},
	} {
		if code, out, errOut := kecis(t, nil, c...); code != 0 || out != "" || errOut != "" {
			t.Errorf("kecis %s: exit %d\n%s%s", strings.Join(c, " "), code, out, errOut)
		}
	}
	if code, out, errOut := kecis(t, read("signed.xml"), "envelope", "validate"); code != 0 || out != "" {
		t.Errorf("from stdin: exit %d\n%s%s", code, out, errOut)
	}

	// An edited request: a version the schema does not know on the root's
	// line, the card number made longer than ECML allows.
	signed := string(read("signed.xml"))
	edited := strings.Replace(signed, `Version="2.0"`, `Version="2.1"`, 1)
	const pan = "4111111111111111"
	edited = strings.Replace(edited, pan, pan+"4111111111111111111", 1)
	if edited == signed || !strings.Contains(signed, pan) {
		t.Fatal("the fixture changed: nothing edited")
	}
	writeFixture(t, dir, "edited.xml", []byte(edited))
	code, out, errOut := kecis(t, nil, "envelope", "validate", file("edited.xml"))
	if code != 1 || !strings.Contains(errOut, "schema problem") {
		t.Fatalf("edited: exit %d\n%s%s", code, out, errOut)
	}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(file("edited.xml")) + `:[0-9]+: `)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("not FILE:LINE: message: %q", l)
		}
	}
	if !strings.Contains(out, "edited.xml:1: ") || !strings.Contains(out, "Version") {
		t.Errorf("the version's problem on line 1 is missing:\n%s", out)
	}
	if strings.Contains(out+errOut, pan) {
		t.Errorf("the output repeats the card number:\n%s%s", out, errOut)
	}

	// The other command's documents.
	if code, _, errOut := kecis(t, nil, "envelope", "validate", file("pg.xml")); code != 1 || !strings.Contains(errOut, "kecis metadata validate") {
		t.Errorf("envelope validate of metadata: exit %d, %s", code, errOut)
	}
	if code, _, errOut := kecis(t, nil, "metadata", "validate", file("signed.xml")); code != 1 || !strings.Contains(errOut, "kecis envelope validate") {
		t.Errorf("metadata validate of a message: exit %d, %s", code, errOut)
	}
	if code, _, errOut := kecis(t, []byte("not xml"), "envelope", "validate"); code != 1 || !strings.Contains(errOut, "not an XML document") {
		t.Errorf("not XML: exit %d, %s", code, errOut)
	}

	// Usage, and xmllint missing.
	if code, _, _ := kecis(t, nil, "envelope", "validate", file("signed.xml"), file("pg.xml")); code != 2 {
		t.Errorf("two files: exit %d", code)
	}
	t.Setenv("PATH", t.TempDir())
	if code, _, errOut := kecis(t, nil, "metadata", "validate", file("pg.xml")); code != 2 || !strings.Contains(errOut, "libxml2-utils") {
		t.Errorf("without xmllint: exit %d, %s", code, errOut)
	}
}
