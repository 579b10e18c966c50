// Command schemacheck validates every document in a directory against the
// KECIS 1.0 XML Schemas (docs/spec/schema) with two schema processors no
// one here wrote: libxml2's xmllint (internal/xsd) and the JDK's
// javax.xml.validation (internal/xsd/javaxsd). scripts/test.sh runs it
// after `go test` over what the capture hook wrote (saml/capture.go, build
// tag kecis_capture): every message the tests signed and every metadata
// document they serialised.
//
//	go run ./tools/schemacheck DIR
//
// It fails (exit status 1) on a document either processor finds invalid,
// on a document whose root element no schema declares (a new message kind
// without a schema), and on a file that is not XML; it prints how many
// documents of each root kind it checked and how long each processor took.
// Where xmllint or the JDK is missing it says so and skips that processor
// (both: exit status 0), except under CI=true, where .ci/run installs them
// and a missing one fails.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kecis/kecis/internal/xsd"
	"github.com/kecis/kecis/internal/xsd/javaxsd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// maxProblems bounds the problems printed for each invalid document,
// maxSummary the distinct problems of the summary.
const (
	maxProblems = 5
	maxSummary  = 30
)

// processor is one schema processor: its name and a batch validation.
type processor struct {
	name     string
	validate func(ctx context.Context, paths []string) (map[string][]string, error)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schemacheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	java := fs.Bool("java", true, "also validate with the JDK's javax.xml.validation")
	maxListed := fs.Int("list", 40, "how many invalid documents to print in full")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: schemacheck [-java=false] [-list N] DIR\n\nValidates every *.xml file in DIR against docs/spec/schema with xmllint and the JDK.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)
	ci := os.Getenv("CI") == "true"
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "schemacheck: "+format+"\n", a...)
		return 1
	}

	paths, err := documents(dir)
	if err != nil {
		return fail("%v", err)
	}
	var procs []processor
	if err := xsd.Available(); err != nil {
		if ci || !errors.Is(err, xsd.ErrUnavailable) {
			return fail("%v", err)
		}
		fmt.Fprintf(stdout, "schemacheck: skipped, %v\n", err)
		return 0
	}
	procs = append(procs, processor{"xmllint (libxml2)", libxml2})
	if *java {
		if err := javaxsd.Available(); err != nil {
			if ci {
				return fail("%v", err)
			}
			fmt.Fprintf(stdout, "schemacheck: the JDK's validator skipped, %v\n", err)
		} else {
			procs = append(procs, processor{"javax.xml.validation (JDK)", jdk})
		}
	}
	if len(paths) == 0 {
		fmt.Fprintf(stdout, "schemacheck: no documents in %s\n", dir)
		return 0
	}

	// Root kinds, and which of them no schema declares.
	kindOf := map[string]string{}
	count := map[string]int{}
	bad := map[string][]string{} // path → what is wrong with it
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return fail("%v", err)
		}
		ns, local, err := xsd.RootKind(b)
		if err != nil {
			bad[p] = append(bad[p], "not XML: "+err.Error())
			continue
		}
		k := "{" + ns + "}" + local
		kindOf[p] = k
		count[k]++
	}
	kinds := slices.SortedFunc(func(yield func(string) bool) {
		for k := range count {
			if !yield(k) {
				return
			}
		}
	}, func(a, b string) int { return cmp.Or(cmp.Compare(count[b], count[a]), cmp.Compare(a, b)) })
	fmt.Fprintf(stdout, "schemacheck: %d documents in %s, %d root kinds\n", len(paths), dir, len(kinds))
	var noSchema []string
	for _, k := range kinds {
		ns, local, _ := strings.Cut(strings.TrimPrefix(k, "{"), "}")
		mark := ""
		if !xsd.HasSchema(ns, local) {
			mark = "   NO SCHEMA"
			noSchema = append(noSchema, k)
		}
		fmt.Fprintf(stdout, "  %6d  %s%s\n", count[k], k, mark)
	}

	// The processors run side by side (xmllint takes seconds, the JDK
	// longer): the check costs the slower one's time, not the sum.
	type result struct {
		res  map[string][]string
		err  error
		took time.Duration
	}
	results := make([]result, len(procs))
	var wg sync.WaitGroup
	for i, pr := range procs {
		wg.Go(func() {
			start := time.Now()
			res, err := pr.validate(ctx, paths)
			results[i] = result{res, err, time.Since(start)}
		})
	}
	wg.Wait()
	for i, pr := range procs {
		r := results[i]
		if r.err != nil {
			return fail("%s: %v", pr.name, r.err)
		}
		for p, ps := range r.res {
			for _, m := range ps {
				bad[p] = append(bad[p], pr.name+": "+m)
			}
		}
		fmt.Fprintf(stdout, "schemacheck: %s: %d of %d documents invalid, %s\n", pr.name, len(r.res), len(paths), r.took.Round(time.Millisecond))
	}

	if len(noSchema) == 0 && len(bad) == 0 {
		fmt.Fprintf(stdout, "schemacheck: every document valid\n")
		return 0
	}
	for _, k := range noSchema {
		fmt.Fprintf(stderr, "schemacheck: no schema declares the root %s (%d documents): add it to docs/spec/schema\n", k, count[k])
	}
	listed := slices.Sorted(func(yield func(string) bool) {
		for p := range bad {
			if !yield(p) {
				return
			}
		}
	})
	for i, p := range listed {
		if i == *maxListed {
			fmt.Fprintf(stderr, "  … and %d more\n", len(listed)-*maxListed)
			break
		}
		fmt.Fprintf(stderr, "%s (%s):\n", p, kindOf[p])
		for j, m := range bad[p] {
			if j == maxProblems {
				fmt.Fprintf(stderr, "    … %d more\n", len(bad[p])-maxProblems)
				break
			}
			fmt.Fprintf(stderr, "    %s\n", m)
		}
	}
	summarise(stderr, bad)
	return fail("%d invalid documents, %d root kinds without a schema", len(bad), len(noSchema))
}

// lineNumber is the position a problem starts with ("line 12: ",
// "line 12:40: "), which the summary leaves out.
var lineNumber = regexp.MustCompile(`line [0-9]+(:[0-9]+)?: `)

// summarise prints the distinct problems, most frequent first, with how
// many documents have each.
func summarise(w io.Writer, bad map[string][]string) {
	docs := map[string]int{}
	for _, ms := range bad {
		seen := map[string]bool{}
		for _, m := range ms {
			m = lineNumber.ReplaceAllString(m, "")
			if !seen[m] {
				seen[m] = true
				docs[m]++
			}
		}
	}
	ms := slices.SortedFunc(func(yield func(string) bool) {
		for m := range docs {
			if !yield(m) {
				return
			}
		}
	}, func(a, b string) int { return cmp.Or(cmp.Compare(docs[b], docs[a]), cmp.Compare(a, b)) })
	fmt.Fprintf(w, "schemacheck: %d distinct problems:\n", len(ms))
	for i, m := range ms {
		if i == maxSummary {
			fmt.Fprintf(w, "  … and %d more\n", len(ms)-maxSummary)
			break
		}
		fmt.Fprintf(w, "  %6d  %s\n", docs[m], m)
	}
}

// documents lists the *.xml files of dir (the capture hook's
// <sha256>.xml), leaving out its temporary files.
func documents(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".xml") && !strings.HasPrefix(e.Name(), ".") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths, nil
}

func libxml2(ctx context.Context, paths []string) (map[string][]string, error) {
	res, err := (&xsd.Validator{}).ValidateFiles(ctx, paths)
	if err != nil {
		return nil, err
	}
	return stringify(res), nil
}

func jdk(ctx context.Context, paths []string) (map[string][]string, error) {
	res, err := javaxsd.Validate(ctx, paths)
	if err != nil {
		return nil, err
	}
	return stringify(res), nil
}

func stringify[P fmt.Stringer](res map[string][]P) map[string][]string {
	out := make(map[string][]string, len(res))
	for p, ps := range res {
		for _, x := range ps {
			out[p] = append(out[p], x.String())
		}
	}
	return out
}
