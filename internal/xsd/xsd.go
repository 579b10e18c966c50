// Package xsd validates KECIS documents against the KECIS 1.0 XML Schemas
// (docs/spec/schema, KECIS §2, §3, §11, §14) with xmllint, libxml2's
// command-line tool: a validator no one here wrote. Validation is offline:
// the schemas are embedded in the binary (docs/spec/schema.FS), written to
// a directory of the temporary directory named by their SHA-256 (made once,
// shared by this user's processes, checked before reuse), and their
// catalog maps every
// OASIS and W3C schema they import to Debian's packaged copies
// (opensaml-schemas, xmltooling-schemas); xmllint runs with --nonet.
//
// A Problem carries a line number and libxml2's message with every value
// taken out: a schema error about an element's content never repeats the
// content (a card number in a bad Ecom_Payment_Card_Number stays out of
// logs and terminals).
package xsd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Driver is the schema file of docs/spec/schema that imports every
// namespace a KECIS document uses; xmllint loads it as the one schema.
const Driver = "kecis-all.xsd"

// Catalog is the XML catalog in docs/spec/schema mapping the OASIS and
// W3C schema locations to Debian's packaged copies.
const Catalog = "catalog.xml"

// Packages are the Debian packages validation needs.
const Packages = "libxml2-utils opensaml-schemas xmltooling-schemas"

// BatchSize is how many files one xmllint process validates: the schemas
// are compiled once per process, so a batch pays for it once.
const BatchSize = 400

// ErrUnavailable is wrapped by the errors of a machine lacking xmllint or
// the Debian schema files: tests skip on it (xsdtest.Require), except
// under CI=true; anything else (schemas that do not load) is a failure.
var ErrUnavailable = errors.New("xsd: validation unavailable")

// Validator validates KECIS documents with xmllint (libxml2) against
// docs/spec/schema, offline. The zero value is ready to use.
type Validator struct {
	// XMLLint is the xmllint binary; empty means exec.LookPath("xmllint").
	XMLLint string
}

// Problem is one schema or well-formedness error of a document.
type Problem struct {
	Line    int    // 1-based; 0 when xmllint named no line
	Message string // libxml2's message, values withheld; never element text content
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// Available reports whether validation can run here: xmllint on PATH and
// every file the schemas' catalog points at present. Its error names the
// Debian packages to install.
func Available() error {
	if _, err := exec.LookPath("xmllint"); err != nil {
		return errNoXMLLint
	}
	_, _, err := SchemaFiles()
	return err
}

var errNoXMLLint = fmt.Errorf("%w: xmllint not found: install the Debian packages %s", ErrUnavailable, Packages)

// SchemaFiles returns the schemas on disk, for another processor to load
// (internal/xsd/javaxsd): the driver (kecis-all.xsd) and the XML catalog,
// in the private directory this process materialised. The error wraps
// ErrUnavailable when a file the catalog maps to is missing.
func SchemaFiles() (driver, catalog string, err error) {
	set, err := schemas()
	if err != nil {
		return "", "", err
	}
	var missing []string
	for _, f := range set.external {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("%w: the schemas import %s, which is missing: install the Debian packages %s", ErrUnavailable, strings.Join(missing, ", "), Packages)
	}
	return set.driver, set.catalog, nil
}

func (v *Validator) xmllint() (string, error) {
	if v != nil && v.XMLLint != "" {
		return v.XMLLint, nil
	}
	p, err := exec.LookPath("xmllint")
	if err != nil {
		return "", errNoXMLLint
	}
	return p, nil
}

// Validate validates one document (given on xmllint's standard input).
// It returns nil, nil for a valid document, its problems for an invalid
// one, and an error when xmllint could not run or could not load the
// schemas.
func (v *Validator) Validate(ctx context.Context, doc []byte) ([]Problem, error) {
	res, err := v.run(ctx, []string{"-"}, bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	return res["-"], nil
}

// ValidateFiles validates files, BatchSize per xmllint process, up to one
// process per CPU at once. The map holds an entry for every invalid file
// (its problems, never empty); a valid file has none.
func (v *Validator) ValidateFiles(ctx context.Context, paths []string) (map[string][]Problem, error) {
	for _, p := range paths {
		if strings.HasPrefix(p, "-") { // xmllint would read an option or stdin
			return nil, fmt.Errorf("xsd: %q: a path may not start with '-' (write ./%s)", p, p)
		}
	}
	out := map[string][]Problem{}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for batch := range slices.Chunk(slices.Clip(paths), BatchSize) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := v.run(ctx, batch, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			for p, ps := range res {
				out[p] = ps
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// run runs one xmllint over paths ("-" reads stdin) and reads its report.
func (v *Validator) run(ctx context.Context, paths []string, stdin io.Reader) (map[string][]Problem, error) {
	bin, err := v.xmllint()
	if err != nil {
		return nil, err
	}
	set, err := schemas()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--noout", "--nonet", "--schema", set.driver}, paths...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "XML_CATALOG_FILES="+set.catalog)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	code := 0
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) {
			return nil, fmt.Errorf("xsd: running xmllint: %w", runErr)
		}
		code = ee.ExitCode()
	}
	// xmllint's exit status: 0 all valid, 1 a file not well-formed, 3
	// invalid, 4 a file unreadable; anything else (5: the schemas do not
	// compile) is ours to fix.
	switch code {
	case 0, 1, 3, 4:
	default:
		return nil, fmt.Errorf("xsd: xmllint could not load the schemas (exit status %d): %s", code, firstLines(stderr.String(), 5))
	}
	res, err := parseReport(stderr.Bytes(), paths)
	if err != nil {
		return nil, err
	}
	if code == 0 && len(res) > 0 {
		return nil, fmt.Errorf("xsd: xmllint exited 0 but reported problems: %s", firstLines(stderr.String(), 5))
	}
	return res, nil
}

// parseReport reads xmllint's standard error for paths: "P:LINE: ..."
// problem lines, "P validates", "P fails to validate". Lines echoing the
// document after a parser error (and the caret under them) are dropped:
// they repeat the document's text.
func parseReport(stderr []byte, paths []string) (map[string][]Problem, error) {
	want := make(map[string]bool, len(paths))
	for _, p := range paths {
		want[p] = true
	}
	res := map[string][]Problem{}
	status := map[string]bool{} // path → a status line was seen
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutSuffix(line, " validates"); ok && want[p] {
			status[p] = true
			continue
		}
		if p, ok := strings.CutSuffix(line, " fails to validate"); ok && want[p] {
			status[p] = true
			if len(res[p]) == 0 {
				res[p] = []Problem{{Message: "fails to validate"}}
			}
			continue
		}
		// libxml2 validates no entity reference (a DOCTYPE's entities,
		// which KECIS refuses anyway, §2.5): the document is not valid.
		if p, ok := strings.CutSuffix(line, " validation generated an internal error"); ok && want[p] {
			status[p] = true
			if len(res[p]) == 0 {
				res[p] = []Problem{{Message: "xmllint could not validate it (an internal error)"}}
			}
			continue
		}
		p, n, msg, ok := splitProblem(line, want)
		if !ok {
			continue // a schema warning, an echoed source line, a caret
		}
		status[p] = true // a parser error ends the file's report
		// "element X: Schemas validity error : Element '{ns}X': …" says
		// the element twice: the part after the marker is the message.
		if _, m, ok := strings.Cut(msg, "Schemas validity error : "); ok {
			msg = m
		}
		res[p] = append(res[p], Problem{Line: n, Message: Redact(msg)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("xsd: reading xmllint's report: %w", err)
	}
	for _, p := range paths {
		if !status[p] {
			return nil, fmt.Errorf("xsd: xmllint said nothing about %s: %s", p, firstLines(string(stderr), 5))
		}
	}
	return res, nil
}

// splitProblem reads "PATH:LINE: MESSAGE" for a PATH of want (a path may
// itself hold colons, so every colon is tried).
func splitProblem(line string, want map[string]bool) (path string, n int, msg string, ok bool) {
	for i := 0; i < len(line); i++ {
		if line[i] != ':' {
			continue
		}
		if !want[line[:i]] {
			continue
		}
		rest := line[i+1:]
		j := strings.IndexByte(rest, ':')
		if j <= 0 {
			continue
		}
		n, err := strconv.Atoi(rest[:j])
		if err != nil {
			continue
		}
		return line[:i], n, strings.TrimSpace(rest[j+1:]), true
	}
	return "", 0, "", false
}

// Values in libxml2's messages, each a pattern whose first group is the
// value; Redact replaces it. Greedy, so a value holding a quote is taken
// whole up to the message's fixed wording.
var valuePatterns = []*regexp.Regexp{
	regexp.MustCompile(`The value '(.*)' (?:is not accepted by|has a length|is not an element of|is less than|is greater than|has more|is not facet-valid|does not match|of simple type)`),
	regexp.MustCompile(`(?:actual value|element content|the content) '(.*)' (?:does not|is not)`),
	regexp.MustCompile(`: '(.*)' is not a valid value of`),
	regexp.MustCompile(`key-sequence \[(.*)\] (?:in|of|for)`),
}

// Redact takes every value out of a libxml2 message: what an attribute or
// element held never appears, only the names, types and facets.
func Redact(msg string) string {
	for _, re := range valuePatterns {
		if m := re.FindStringSubmatchIndex(msg); m != nil && m[2] >= 0 {
			msg = msg[:m[2]] + "…" + msg[m[3]:]
		}
	}
	return msg
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " / ")
}

// RootKind returns the namespace and local name of doc's root element.
func RootKind(doc []byte) (ns, local string, err error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return "", "", errors.New("xsd: no root element")
		}
		if err != nil {
			return "", "", fmt.Errorf("xsd: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		// RawToken leaves prefixes unresolved: the root declares
		// what it uses (KECIS §2.5), so its own attributes resolve it.
		prefix := se.Name.Space
		for _, a := range se.Attr {
			if prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns" {
				return a.Value, se.Name.Local, nil
			}
			if prefix != "" && a.Name.Space == "xmlns" && a.Name.Local == prefix {
				return a.Value, se.Name.Local, nil
			}
		}
		if prefix != "" {
			return "", "", fmt.Errorf("xsd: the root element's prefix %q is not declared on it", prefix)
		}
		return "", se.Name.Local, nil
	}
}

var hasSchema sync.Map // kind → bool

// HasSchema reports whether the schemas declare a global element ns:local,
// so that a document with that root can be validated at all. It asks
// xmllint (the answer is cached per process) and is false when xmllint is
// unavailable; call Available first to tell the two apart.
func HasSchema(ns, local string) bool {
	key := "{" + ns + "}" + local
	if v, ok := hasSchema.Load(key); ok {
		return v.(bool)
	}
	ok := probe(ns, local)
	hasSchema.Store(key, ok)
	return ok
}

// noDeclaration is libxml2's message for a root no global element
// declaration matches.
const noDeclaration = "No matching global declaration available for the validation root"

// probe validates an empty element ns:local: libxml2 says noDeclaration
// when the schemas have no global element of that name; any other answer
// (a missing attribute, a missing child) means they have one.
func probe(ns, local string) bool {
	var b bytes.Buffer
	b.WriteString("<k:")
	xml.EscapeText(&b, []byte(local))
	b.WriteString(` xmlns:k="`)
	xml.EscapeText(&b, []byte(ns))
	b.WriteString(`"/>`)
	if ns == "" {
		b.Reset()
		b.WriteString("<")
		xml.EscapeText(&b, []byte(local))
		b.WriteString("/>")
	}
	ps, err := (&Validator{}).Validate(context.Background(), b.Bytes())
	if err != nil {
		return false
	}
	for _, p := range ps {
		if strings.Contains(p.Message, noDeclaration) || strings.Contains(p.Message, "parser error") {
			return false
		}
	}
	return true
}

// NoSchema reports whether problems say the root has no schema at all.
func NoSchema(problems []Problem) bool {
	return slices.ContainsFunc(problems, func(p Problem) bool { return strings.Contains(p.Message, noDeclaration) })
}
