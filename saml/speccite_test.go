package saml

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSpecCitations: every "KECIS §N.M" that a Go file of the repository
// cites (in a comment or a message, with the sections listed after it:
// "KECIS §8.1, §15.3") is a heading of docs/spec, and no Go file cites a
// design document the repository does not hold, so that a reader can
// follow every citation.
func TestSpecCitations(t *testing.T) {
	root := filepath.Join("..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "spec", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("docs/spec: %v", err)
	}
	heading := regexp.MustCompile(`(?m)^#+ (\d+(?:\.\d+)*)\.? `)
	sections := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
			sections[m[1]] = true
		}
	}
	cite := regexp.MustCompile(`KECIS (?:spec )?§(\d+(?:\.\d+)*)((?:,? (?:and )?§\d+(?:\.\d+)*)*)`)
	more := regexp.MustCompile(`§(\d+(?:\.\d+)*)`)
	private := regexp.MustCompile(`\b(?:DESIGN|XMLSEC|ECML|STYLE)\.md\b|\bDESIGN §`)
	cited := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if private.MatchString(line) {
				t.Errorf("%s:%d cites a document that is not in the repository: %s", path, i+1, strings.TrimSpace(line))
			}
			for _, m := range cite.FindAllStringSubmatch(line, -1) {
				refs := []string{m[1]}
				for _, mm := range more.FindAllStringSubmatch(m[2], -1) {
					refs = append(refs, mm[1])
				}
				for _, r := range refs {
					cited++
					if !sections[r] {
						t.Errorf("%s:%d cites KECIS §%s, which is no section of docs/spec", path, i+1, r)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cited == 0 {
		t.Fatal("no citation found: is the walk rooted at the repository?")
	}
}
