package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/internal/testutil"
)

// recipe is a code block of docs/merchant.md, announced by a comment
// <!-- recipe: NAME; expect TEXT --> (the expectation optional).
type recipe struct {
	name, expect, lang, code string
}

var recipeRE = regexp.MustCompile("(?s)<!-- recipe: ([a-z-]+)(?:; expect (.*?))? -->\n```(sh|go)\n(.*?)\n```")

// recipes are docs/merchant.md's recipes, in order.
func recipes(t *testing.T) []recipe {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "merchant.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []recipe
	for _, m := range recipeRE.FindAllStringSubmatch(string(b), -1) {
		out = append(out, recipe{name: m[1], expect: m[2], lang: m[3], code: m[4]})
	}
	return out
}

// squeeze drops white space, so that an expectation written as readable
// JSON matches the facade's compact answer.
func squeeze(s string) string { return strings.Join(strings.Fields(s), "") }

// TestMerchantRecipes runs docs/merchant.md as a newcomer would: a demo
// in .kecis-dev of a fresh directory (what `make run` makes), then the
// page's shell recipes in order in one shell — approve, cancel, a refund
// refused before the settlement, the demo's settlement, a refund, an
// inquire — each answer holding what the page says it does, and then its
// Go program. No answer holds a card number.
func TestMerchantRecipes(t *testing.T) {
	testutil.RequireTool(t, "curl", "curl")
	testutil.RequireTool(t, "jq", "jq")
	goTool := testutil.RequireTool(t, "go", "golang-go")
	rs := recipes(t)
	var names []string
	for _, r := range rs {
		names = append(names, r.name)
	}
	if want := "setup approve cancel refund-too-early settle refund inquire go"; strings.Join(names, " ") != want {
		t.Fatalf("docs/merchant.md's recipes: %s, want %s", strings.Join(names, " "), want)
	}
	work := t.TempDir()
	d, err := Start(context.Background(), Config{Dir: filepath.Join(work, ".kecis-dev"), RelayTimeout: 5 * time.Second, AllowClearCard: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// The shell recipes, in one shell, each announced on the output.
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, r := range rs {
		if r.lang == "sh" {
			script.WriteString("echo '@@@ " + r.name + "'\n" + r.code + "\necho\n")
		}
	}
	cmd := exec.Command("sh", "-c", script.String())
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the recipes failed: %v\n%s", err, out)
	}
	t.Logf("the shell recipes printed\n%s", out)
	got := map[string]string{}
	for _, part := range strings.Split(string(out), "@@@ ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		got[name] = body
	}
	for _, r := range rs {
		if r.lang != "sh" || r.expect == "" {
			continue
		}
		if !strings.Contains(squeeze(got[r.name]), squeeze(r.expect)) {
			t.Errorf("recipe %s answered\n%s\nwhich lacks %s", r.name, got[r.name], r.expect)
		}
	}
	if ecml.ContainsPAN(strings.ReplaceAll(string(out), d.Cards[0].PAN.Reveal(), "")) {
		t.Error("an answer holds a card number")
	}

	// The Go program, as written.
	for _, r := range rs {
		if r.lang != "go" {
			continue
		}
		if err := os.WriteFile(filepath.Join(work, "merchant.go"), []byte(r.code), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(goTool, "run", "merchant.go")
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=auto")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the Go recipe failed: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "inquire") || !strings.Contains(string(out), "partially-refunded") {
			t.Fatalf("the Go recipe printed\n%s", out)
		}
		t.Logf("the Go recipe printed\n%s", out)
	}
}
