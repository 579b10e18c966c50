package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help.golden from the current commands")

// TestHelp keeps the help of kecis and of every subcommand — usage, long
// text, flags and their defaults — as testdata/help.golden records it, so
// that reshaping how the commands are built cannot change what an operator
// reads. A deliberate change of the CLI rewrites the file:
// go test ./cmd/kecis -run TestHelp -update-help.
func TestHelp(t *testing.T) {
	var b strings.Builder
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		code, out, errOut := kecis(t, nil, append(append([]string{}, path...), "--help")...)
		if code != 0 || errOut != "" {
			t.Fatalf("kecis %s --help: exit %d\n%s", strings.Join(path, " "), code, errOut)
		}
		fmt.Fprintf(&b, "=== %s\n%s", strings.Join(append([]string{"kecis"}, path...), " "), out)
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	root := newRootCmd()
	root.InitDefaultHelpCmd()
	walk(root, nil)
	got := b.String()

	path := filepath.Join("testdata", "help.golden")
	if *updateHelp {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./cmd/kecis -run TestHelp -update-help", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the help differs from %s at line %d:\n got: %q\nwant: %q\n(a deliberate change: go test ./cmd/kecis -run TestHelp -update-help)", path, i+1, g, w)
			}
		}
	}
}
