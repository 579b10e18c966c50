package saml_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/xsd"
	"github.com/kecis/kecis/internal/xsd/xsdtest"
	"github.com/kecis/kecis/saml"
)

// The differential test of KECIS §9.12: the schemas (docs/spec/schema)
// and the receive pipeline (KECIS §5.1) judge the same documents — the
// golden, attack and fuzz corpora — and every document on which they
// disagree is listed, with the class of difference §9.12 explains, in
// testdata/schema-diff.txt. A new disagreement, or one that vanished, fails
// the test until the file (and, for a new class, the spec) says why.

// moduleRoot is the repository root, from this package's directory.
const moduleRoot = ".."

const diffFile = "testdata/schema-diff.txt"

// unexplained is the class -update gives a new disagreement.
const unexplained = "unexplained"

// xmlFuzzCorpora are the fuzz corpora of the XML parsers: their entries
// are documents. nonXMLFuzzCorpora are the others, with what they hold;
// a corpus in neither list fails TestSchemaDiffCoversFuzzCorpora.
var xmlFuzzCorpora = []string{
	"saml/testdata/fuzz/FuzzReceiveRequest",
	"saml/testdata/fuzz/FuzzInspect",
	"saml/testdata/fuzz/FuzzCanonicalizeExclusive",
	"ecml/testdata/fuzz/FuzzParseDocument",
}

var nonXMLFuzzCorpora = map[string]string{
	"connectors/cardauth/testdata/fuzz/FuzzAAVParse":         "AAV strings",
	"connectors/microdeposit/testdata/fuzz/FuzzParseAmounts": "typed amounts",
	"connectors/microdeposit/testdata/fuzz/FuzzParseCode":    "typed codes",
	"connectors/vcn/testdata/fuzz/FuzzParse":                 "virtual card numbers",
	"connectors/vcn/testdata/fuzz/FuzzPermutation":           "permutation keys and numbers",
	"ecml/testdata/fuzz/FuzzFromForm":                        "ECML form fields (query strings)",
	"ecml/testdata/fuzz/FuzzParseAmount":                     "amount strings and currency codes",
	"examples/telecom/testdata/fuzz/FuzzNormalizeName":       "holder names",
	"federation/facade/testdata/fuzz/FuzzFacadeCall":         "JSON facade calls",
	"federation/policy/testdata/fuzz/FuzzParse":              "YAML payment policies",
}

// corpusDoc is one document of the corpora.
type corpusDoc struct {
	Path  string // from the module root, slash-separated
	Data  []byte
	Setup string // the attack manifest's setup (deliver-first)
}

// loadCorpora reads every document the test judges.
func loadCorpora(t *testing.T) []corpusDoc {
	t.Helper()
	var docs []corpusDoc
	setup := map[string]string{}
	b, err := os.ReadFile(filepath.Join("testdata", "attacks", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct{ Name, Setup string }
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	for _, m := range manifest {
		setup["saml/testdata/attacks/"+m.Name+".xml"] = m.Setup
	}
	for _, glob := range []string{
		"saml/testdata/golden/*.xml",
		"saml/testdata/attacks/*.xml",
		"ecml/testdata/golden/*.xml",
		"ecml/testdata/*.xml", // FuzzParseDocument's seeds
	} {
		files, err := filepath.Glob(filepath.Join(moduleRoot, filepath.FromSlash(glob)))
		if err != nil || len(files) == 0 {
			t.Fatalf("no corpus files %s: %v", glob, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := relPath(t, f)
			docs = append(docs, corpusDoc{Path: p, Data: data, Setup: setup[p]})
		}
	}
	for _, dir := range xmlFuzzCorpora {
		entries, err := os.ReadDir(filepath.Join(moduleRoot, filepath.FromSlash(dir)))
		if err != nil {
			t.Fatalf("fuzz corpus %s: %v", dir, err)
		}
		for _, e := range entries {
			f := filepath.Join(moduleRoot, filepath.FromSlash(dir), e.Name())
			data, err := readFuzzEntry(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, corpusDoc{Path: dir + "/" + e.Name(), Data: data})
		}
	}
	return docs
}

func relPath(t *testing.T, f string) string {
	t.Helper()
	r, err := filepath.Rel(moduleRoot, f)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(r)
}

// readFuzzEntry decodes a corpus file of `go test fuzz v1` whose only
// value is the document ([]byte or string).
func readFuzzEntry(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a one-value go test fuzz v1 file")
	}
	v := lines[1]
	for _, typ := range []string{"[]byte(", "string("} {
		if strings.HasPrefix(v, typ) && strings.HasSuffix(v, ")") {
			s, err := strconv.Unquote(v[len(typ) : len(v)-1])
			if err != nil {
				return nil, err
			}
			return []byte(s), nil
		}
	}
	return nil, fmt.Errorf("value %.40q is neither []byte nor string", v)
}

// verdict is how the schema and the pipeline judge one document.
type verdict struct {
	Schema   string // valid | invalid
	Pipeline string // accepted | refused:<Error.Reason>
}

func (v verdict) disagree() bool {
	return (v.Schema == "valid") != (v.Pipeline == "accepted")
}

// pipeline runs each document through the receive pipeline the corpora
// were made for: the test keys, the fixed clock (testutil.FixedNow, so
// time decides only for documents made to be early or late).
type pipeline struct {
	cw saml.CorpusWorld
	// goldenRequest is the ID of saml/testdata/golden/request-rsa.xml: the
	// merchant awaits the issuer's answer to it.
	goldenRequest string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "request-rsa.xml"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := saml.ParseDocument(b, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline{cw: saml.NewCorpusWorld(t), goldenRequest: root.SelectAttrValue("ID", "")}
}

// judge runs doc through the pipeline for its root element: a request
// through the issuer's endpoint (delivered twice for a deliver-first
// attack, as TestAttackCorpus does), a response through the merchant's
// (awaiting the golden request's answer), an authentication result through
// its own verification (KECIS §3.2), a bare ECML document (Ecom or
// kecis:Payload) through the payload steps (KECIS §5.1 steps 7–8, as a
// hub runs them: nothing sensitive in clear, stand-ins allowed), and
// anything else through the request endpoint, which is where it would
// arrive.
func (p *pipeline) judge(ctx context.Context, doc corpusDoc) (outcome, cause string) {
	ns, local, _ := xsd.RootKind(doc.Data) // unreadable: no KECIS root, the default branch
	var err error
	switch {
	case ns == saml.NSKECIS && local == "ServiceResponse":
		pending := saml.NewMemoryPending(p.cw.Now)
		if err = pending.Add(ctx, p.goldenRequest, saml.CorpusIssuerID, p.cw.Now().Add(time.Hour)); err == nil {
			_, err = p.cw.MerchantReceiver(pending).ReceiveResponse(ctx, doc.Data)
		}
	case ns == saml.NSKECIS && local == "AuthenticationResult":
		var el *etree.Element
		if el, err = saml.ParseDocument(doc.Data, saml.Limits{}); err == nil {
			_, _, err = saml.VerifyAuthenticationResult(ctx, el, p.cw.Keys(), p.cw.Now(), saml.DefaultClockSkew)
		}
	case ns == "" && local == "Ecom", ns == ecml.ProtocolNamespace && local == ecml.PayloadElement:
		return judgePayload(doc.Data)
	default:
		rc := p.cw.IssuerReceiver()
		if doc.Setup == "deliver-first" {
			if _, err := rc.ReceiveRequest(ctx, doc.Data); err != nil {
				return "refused(first delivery):" + saml.AsError(err).Reason, errCause(err)
			}
		}
		_, err = rc.ReceiveRequest(ctx, doc.Data)
	}
	if err != nil {
		return "refused:" + saml.AsError(err).Reason, errCause(err)
	}
	return "accepted", ""
}

// errCause is the private cause of a pipeline refusal.
func errCause(err error) string {
	if c := saml.AsError(err).Cause(); c != nil {
		return c.Error()
	}
	return err.Error()
}

// ecmlCorpusNow is the instant ecml's corpora were made for (ecml's
// testNow, ecml/helpers_test.go).
var ecmlCorpusNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

// judgePayload runs a bare ECML document through the payload steps of
// the receive pipeline as a hub runs them (KECIS §5.1 steps 7–8, §8.1): the
// document read strictly, no sensitive element in clear (refused as
// "decryption", as the pipeline refuses it), then ECML validation with
// encrypted stand-ins allowed ("payload"); cause is the problems.
func judgePayload(data []byte) (outcome, cause string) {
	pl, err := ecml.ParseDocument(data)
	if err != nil {
		return "refused:payload", err.Error()
	}
	lax := pl.Validate(ecml.ValidateOptions{Now: ecmlCorpusNow, AllowEncrypted: true})
	strict := pl.Validate(ecml.ValidateOptions{Now: ecmlCorpusNow, AllowEncrypted: true, RequireEncrypted: true})
	switch {
	case len(strict) > len(lax):
		return "refused:decryption", strict.Error()
	case len(lax) > 0:
		return "refused:payload", lax.Error()
	}
	return "accepted", ""
}

// schemaInvalid validates the files against the KECIS schemas
// (internal/xsd: xmllint, kecis-all.xsd, offline) and returns the invalid
// ones with their problems. A file xmllint cannot validate at all
// ("validation generated an internal error": an entity reference left in
// the tree by a DOCTYPE) is invalid; the rest are validated again
// without it.
func schemaInvalid(t *testing.T, ctx context.Context, v *xsd.Validator, paths []string) map[string][]xsd.Problem {
	t.Helper()
	invalid := map[string][]xsd.Problem{}
	rest := slices.Clone(paths)
	for {
		res, err := v.ValidateFiles(ctx, rest)
		if err == nil {
			for p, ps := range res {
				invalid[p] = ps
			}
			return invalid
		}
		i := slices.IndexFunc(rest, func(p string) bool {
			return strings.Contains(err.Error(), p+" validation generated an internal error")
		})
		if i < 0 {
			t.Fatal(err)
		}
		invalid[rest[i]] = []xsd.Problem{{Message: "xmllint: validation generated an internal error"}}
		rest = slices.Delete(rest, i, i+1)
	}
}

// judged is a document's verdict and why: the schema's first problem,
// the pipeline's private cause.
type judged struct {
	verdict
	why string
}

// judgeAll returns every document's verdict.
func judgeAll(t *testing.T) map[string]judged {
	t.Helper()
	ctx := context.Background()
	docs := loadCorpora(t)
	tmp := t.TempDir()
	files := make([]string, len(docs))
	for i, d := range docs {
		files[i] = filepath.Join(tmp, fmt.Sprintf("doc%04d.xml", i))
		if err := os.WriteFile(files[i], d.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	invalid := schemaInvalid(t, ctx, xsdtest.Require(t), files)
	p := newPipeline(t)
	out := map[string]judged{}
	for i, d := range docs {
		if _, dup := out[d.Path]; dup {
			t.Fatalf("%s twice in the corpora", d.Path)
		}
		var j judged
		var cause string
		j.Pipeline, cause = p.judge(ctx, d)
		j.Schema = "valid"
		if ps, bad := invalid[files[i]]; bad {
			j.Schema = "invalid"
			j.why = "schema: " + ps[0].String()
		}
		if cause != "" {
			j.why = strings.TrimPrefix(j.why+"; ", "; ") + "pipeline: " + cause
		}
		out[d.Path] = j
	}
	return out
}

// diffEntry is a line of testdata/schema-diff.txt.
type diffEntry struct {
	verdict
	Class string
}

const diffHeader = `# The documents of the golden, attack and fuzz corpora on which the schemas
# (docs/spec/schema/kecis-all.xsd, xmllint) and the receive pipeline (KECIS §5.1,
# the corpora's test keys, the clock at testutil.FixedNow) disagree — KECIS §9.12.
# Columns (tab-separated): document, schema verdict, pipeline verdict, class.
# Each class is one of the classes KECIS §9.12 explains.
# Rewritten by: go test ./saml -run TestSchemaDifferential -update
# (a new document gets the class "unexplained": replace it by the class §9.12
# gives it, or explain a new class there first).
`

func readDiffFile(t *testing.T) map[string]diffEntry {
	t.Helper()
	b, err := os.ReadFile(diffFile)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]diffEntry{}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]diffEntry{}
	for n, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("%s:%d: want 4 tab-separated fields, got %q", diffFile, n+1, line)
		}
		out[f[0]] = diffEntry{verdict: verdict{Schema: f[1], Pipeline: f[2]}, Class: f[3]}
	}
	return out
}

func writeDiffFile(t *testing.T, entries map[string]diffEntry) {
	t.Helper()
	var b strings.Builder
	b.WriteString(diffHeader)
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := entries[p]
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", p, e.Schema, e.Pipeline, e.Class)
	}
	if err := os.WriteFile(diffFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// updating is the package's -update flag (declared by the internal tests
// of package saml, in the same test binary).
func updating() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	return ok && g.Get() == true
}

// TestSchemaDifferential judges the corpora with the schemas and with the
// receive pipeline and compares the disagreements with
// testdata/schema-diff.txt (KECIS §9.12).
func TestSchemaDifferential(t *testing.T) {
	got := judgeAll(t)
	want := readDiffFile(t)

	quad := map[verdict]int{}
	for _, j := range got {
		v := j.verdict
		quad[verdict{Schema: v.Schema, Pipeline: strings.SplitN(v.Pipeline, ":", 2)[0]}]++
	}
	t.Logf("%d documents: schema valid and accepted %d, valid and refused %d, invalid and refused %d, invalid and accepted %d",
		len(got), quad[verdict{"valid", "accepted"}], quad[verdict{"valid", "refused"}], quad[verdict{"invalid", "refused"}], quad[verdict{"invalid", "accepted"}])

	if updating() {
		next := map[string]diffEntry{}
		for p, j := range got {
			v := j.verdict
			if !v.disagree() {
				continue
			}
			class := unexplained
			if old, ok := want[p]; ok && old.Class != unexplained {
				class = old.Class
			}
			next[p] = diffEntry{verdict: v, Class: class}
		}
		writeDiffFile(t, next)
		want = next
	}

	var problems []string
	for p, j := range got {
		v := j.verdict
		w, listed := want[p]
		switch {
		case v.disagree() && !listed:
			problems = append(problems, fmt.Sprintf("NEW      %s: schema %s, pipeline %s (%.300s)", p, v.Schema, v.Pipeline, j.why))
		case v.disagree() && w.verdict != v:
			problems = append(problems, fmt.Sprintf("CHANGED  %s: schema %s, pipeline %s, listed schema %s, pipeline %s (%.300s)", p, v.Schema, v.Pipeline, w.Schema, w.Pipeline, j.why))
		case !v.disagree() && listed:
			problems = append(problems, fmt.Sprintf("VANISHED %s: now schema %s, pipeline %s; listed %s, %s, class %s (%.300s)", p, v.Schema, v.Pipeline, w.Schema, w.Pipeline, w.Class, j.why))
		}
	}
	for p, w := range want {
		if _, ok := got[p]; !ok {
			problems = append(problems, fmt.Sprintf("GONE     %s: listed (%s, %s, class %s) but no longer in the corpora", p, w.Schema, w.Pipeline, w.Class))
		}
	}
	classes := documentedClasses(t)
	for p, w := range want {
		switch {
		case w.Class == unexplained:
			problems = append(problems, fmt.Sprintf("UNEXPLAINED %s (schema %s, pipeline %s): give it a class of KECIS §9.12", p, w.Schema, w.Pipeline))
		case !classes[w.Class]:
			problems = append(problems, fmt.Sprintf("CLASS    %s: class %q is not one KECIS §9.12 (docs/spec/09-security.md) explains", p, w.Class))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Errorf("the schemas and the receive pipeline disagree otherwise than %s says:\n  %s\n\n"+
			"If the change is intended: run go test ./saml -run TestSchemaDifferential -update, give each\n"+
			"\"unexplained\" document the class of KECIS §9.12 that explains it (docs/spec/09-security.md;\n"+
			"a new kind of difference needs a new class there, saying why a receiver is safe), and commit both.\n"+
			"If not: the schemas (docs/spec/schema) or the pipeline changed what they accept.",
			diffFile, strings.Join(problems, "\n  "))
	}
	perClass := map[string]int{}
	for _, w := range want {
		perClass[w.Class]++
	}
	t.Logf("%d disagreements by class: %v", len(want), perClass)
}

// documentedClasses are the classes KECIS §9.12 explains: the `code`
// spans opening its list items ("- `wrapping` — …").
func documentedClasses(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "spec", "09-security.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## 9.12 ")
	if i < 0 {
		t.Fatal("docs/spec/09-security.md has no section 9.12")
	}
	sec := doc[i+1:]
	if j := strings.Index(sec[1:], "\n## "); j >= 0 {
		sec = sec[:j+1]
	}
	out := map[string]bool{}
	for _, line := range strings.Split(sec, "\n") {
		if rest, ok := strings.CutPrefix(line, "- `"); ok {
			if k := strings.Index(rest, "`"); k > 0 {
				out[rest[:k]] = true
			}
		}
	}
	return out
}

// TestSchemaDiffCoversFuzzCorpora: every fuzz corpus of the repository
// is judged by TestSchemaDifferential (its entries are XML documents) or
// listed as holding something else, so a new XML parser's corpus is not
// forgotten.
func TestSchemaDiffCoversFuzzCorpora(t *testing.T) {
	var found []string
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() && filepath.Base(filepath.Dir(path)) == "fuzz" && filepath.Base(filepath.Dir(filepath.Dir(path))) == "testdata" {
			found = append(found, relPath(t, path))
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range found {
		if !slices.Contains(xmlFuzzCorpora, c) && nonXMLFuzzCorpora[c] == "" {
			t.Errorf("fuzz corpus %s is in neither list of schema_diff_test.go: add it to xmlFuzzCorpora if its entries are XML documents, else to nonXMLFuzzCorpora", c)
		}
	}
	for _, c := range xmlFuzzCorpora {
		if !slices.Contains(found, c) {
			t.Errorf("xmlFuzzCorpora lists %s, which does not exist", c)
		}
	}
}
