// Package javaxsd validates KECIS documents against the KECIS 1.0 XML
// Schemas (docs/spec/schema) with a second, independent schema processor:
// the JDK's javax.xml.validation (Xerces inside the JDK, W3C XML Schema
// 1.0), where package xsd uses libxml2. A schema construct the two read
// differently shows up as a document one accepts and the other refuses.
//
// Validate.java, embedded here, is compiled once (internal/javatool) and
// validates a whole batch of files in one JVM. It is offline by
// construction: every schema location resolves through the schemas' XML
// catalog (javax.xml.catalog, RESOLVE=strict) to Debian's packaged OASIS
// and W3C schemas, or is a file next to the importing schema; nothing else
// is fetched (accessExternalSchema=file). A document with a DOCTYPE is
// refused before any entity or DTD is read. Messages never carry an
// element's or attribute's value: the program quotes it as [value].
package javaxsd

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/internal/javatool"
	"github.com/kecis/kecis/internal/xsd"
)

//go:embed Validate.java
var source []byte

// mainClass is the class Validate.java defines.
const mainClass = "Validate"

// BatchSize is how many files one JVM validates by default: loading the
// schemas costs a fraction of a second, a document a fraction of a
// millisecond.
const BatchSize = 2000

// runTimeout bounds one JVM run of a full batch.
const runTimeout = 5 * time.Minute

// Problem is one schema or well-formedness error of a document.
type Problem struct {
	Line    int    // 1-based; 0 when the processor named no position
	Column  int    // 1-based; 0 when unknown
	Message string // Xerces's message, values quoted as [value]
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d:%d: %s", p.Line, p.Column, p.Message)
}

// Validator validates documents with the JDK's schema processor.
type Validator struct {
	// Schema is the driver schema (kecis-all.xsd) and Catalog the XML
	// catalog beside it; empty means DefaultFiles.
	Schema, Catalog string
	// Java is the java command; empty means exec.LookPath("java").
	Java string
	// BatchSize is how many files one JVM validates; 0 means BatchSize.
	BatchSize int
	// Stats, when set, receives the summary line of each JVM run (files,
	// invalid, time to load the schemas and to validate).
	Stats func(line string)
}

// DefaultFiles returns the driver schema and catalog a Validator with none
// set uses: docs/spec/schema as package xsd writes it to disk from the
// binary (the same files xmllint reads).
var DefaultFiles = xsd.SchemaFiles

// Available reports whether validation can run here: java and javac on
// PATH, and the Debian schema files the catalog maps to. Its error names
// the Debian packages to install.
func Available() error {
	if _, _, err := javatool.Tools(); err != nil {
		return fmt.Errorf("javaxsd: %w", err)
	}
	if _, _, err := DefaultFiles(); err != nil {
		return fmt.Errorf("javaxsd: %w", err)
	}
	return nil
}

// Validate validates files with a default Validator.
func Validate(ctx context.Context, paths []string) (map[string][]Problem, error) {
	return (&Validator{}).Validate(ctx, paths)
}

// compiled is the class directory of Validate.java, compiled once per
// process (and cached across processes by javatool).
var compiled = sync.OnceValues(func() (string, error) {
	_, javac, err := javatool.Tools()
	if err != nil {
		return "", err
	}
	dir, _, err := javatool.Compile(context.Background(), javac, javatool.Program{
		Name: "javaxsd", File: mainClass + ".java", Source: source,
	})
	return dir, err
})

// Validate validates every file, one JVM per batch. The map holds the
// problems of each invalid file, keyed by its path as given; a valid file
// has no entry. The error is for what stops validation itself: no JDK,
// schemas that do not load, a file that cannot be read.
func (v *Validator) Validate(ctx context.Context, paths []string) (map[string][]Problem, error) {
	for _, p := range paths {
		// The program reads the names as UTF-8 lines and prints them back.
		if strings.ContainsAny(p, "\n\r") || p == "" || !utf8.ValidString(p) {
			return nil, fmt.Errorf("javaxsd: unusable file name %q", p)
		}
		if fi, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("javaxsd: %w", err)
		} else if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("javaxsd: %s is not a regular file", p)
		}
	}
	out := map[string][]Problem{}
	if len(paths) == 0 {
		return out, nil
	}
	argv, java, err := v.command()
	if err != nil {
		return nil, err
	}
	n := v.BatchSize
	if n <= 0 {
		n = BatchSize
	}
	for batch := range slices.Chunk(paths, n) {
		if err := v.run(ctx, java, argv, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ValidateDoc validates one document: nil, nil when it is valid.
func (v *Validator) ValidateDoc(ctx context.Context, doc []byte) ([]Problem, error) {
	dir, err := os.MkdirTemp("", "kecis-javaxsd-doc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "doc.xml")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		return nil, err
	}
	m, err := v.Validate(ctx, []string{p})
	if err != nil {
		return nil, err
	}
	return m[p], nil
}

// command returns the JVM's arguments (without the files) and the java
// command.
func (v *Validator) command() (argv []string, java string, err error) {
	schema, catalog := v.Schema, v.Catalog
	if schema == "" || catalog == "" {
		if schema, catalog, err = DefaultFiles(); err != nil {
			return nil, "", err
		}
	}
	java = v.Java
	if java == "" {
		if java, _, err = javatool.Tools(); err != nil {
			return nil, "", fmt.Errorf("javaxsd: %w", err)
		}
	}
	classes, err := compiled()
	if err != nil {
		return nil, "", fmt.Errorf("javaxsd: %w", err)
	}
	argv = append(slices.Clone(javatool.FastStart),
		// The validator reads everything it needs from the file system:
		// no proxy, no network, whatever the JVM's defaults.
		"-Djava.net.useSystemProxies=false",
		// Standard output is the report: the VM's own warnings go to
		// standard error.
		"-XX:+DisplayVMOutputToStderr",
		"-cp", classes, mainClass, "--catalog", catalog, "--schema", schema)
	return argv, java, nil
}

// run validates one batch, adding its problems to out.
func (v *Validator) run(ctx context.Context, java string, argv, batch []string, out map[string][]Problem) error {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, argv...)
	cmd.Stdin = strings.NewReader(strings.Join(batch, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		return fmt.Errorf("javaxsd: %d files: %w", len(batch), ctx.Err())
	}
	if err != nil && code != 1 {
		return fmt.Errorf("javaxsd: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if v.Stats != nil {
		for line := range strings.Lines(stderr.String()) {
			if strings.HasPrefix(line, "validated ") {
				v.Stats(strings.TrimSpace(line))
			}
		}
	}
	got, err := parse(stdout.Bytes(), batch)
	if err != nil {
		return err
	}
	if code == 1 && len(got) == 0 {
		return fmt.Errorf("javaxsd: the validator reported invalid documents but named none: %s", strings.TrimSpace(stderr.String()))
	}
	for p, ps := range got {
		out[p] = append(out[p], ps...)
	}
	return nil
}

// parse reads the program's "path:line:col: message" lines; a path is one
// of paths (the longest that fits, as a path may hold a colon).
func parse(stdout []byte, paths []string) (map[string][]Problem, error) {
	byLen := slices.Clone(paths)
	slices.SortFunc(byLen, func(a, b string) int { return len(b) - len(a) })
	out := map[string][]Problem{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		p, pr, ok := splitLine(line, byLen)
		if !ok {
			return nil, fmt.Errorf("javaxsd: unexpected output line %q", line)
		}
		out[p] = append(out[p], pr)
	}
	return out, sc.Err()
}

func splitLine(line string, paths []string) (string, Problem, bool) {
	for _, p := range paths {
		rest, ok := strings.CutPrefix(line, p+":")
		if !ok {
			continue
		}
		ln, rest, ok1 := strings.Cut(rest, ":")
		col, msg, ok2 := strings.Cut(rest, ": ")
		l, err1 := strconv.Atoi(ln)
		c, err2 := strconv.Atoi(col)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		return p, Problem{Line: l, Column: c, Message: msg}, true
	}
	return "", Problem{}, false
}
