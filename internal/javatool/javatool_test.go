package javatool_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/javatool"
	"github.com/kecis/kecis/internal/testutil"
)

// TestCompile: a program compiles once into its cache directory, a second
// call finds it there, a changed source gets a directory of its own, and a
// compile error carries javac's message.
func TestCompile(t *testing.T) {
	testutil.RequireTool(t, "java", javatool.JavaPackage)
	testutil.RequireTool(t, "javac", javatool.JavacPackage)
	java, javac, err := javatool.Tools()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", t.TempDir()) // a cache of this test's own
	p := javatool.Program{Name: "hello", File: "Hello.java", Source: []byte(
		`public class Hello { public static void main(String[] a) { System.out.println("hello " + a[0]); } }`)}

	dir, compiled, err := javatool.Compile(context.Background(), javac, p)
	if err != nil || !compiled {
		t.Fatalf("first compile: %v, compiled=%v", err, compiled)
	}
	if !strings.HasPrefix(filepath.Base(dir), "kecis-hello-") {
		t.Errorf("cache directory %s", dir)
	}
	out, err := exec.Command(java, append(javatool.FastStart, "-cp", dir, "Hello", "kecis")...).Output()
	if err != nil || string(out) != "hello kecis\n" {
		t.Fatalf("run: %q, %v", out, err)
	}

	again, compiled, err := javatool.Compile(context.Background(), javac, p)
	if err != nil || compiled || again != dir {
		t.Fatalf("second compile: %s, compiled=%v, %v; want the cache %s", again, compiled, err, dir)
	}

	p.Source = []byte(strings.Replace(string(p.Source), "hello ", "bye ", 1))
	other, compiled, err := javatool.Compile(context.Background(), javac, p)
	if err != nil || !compiled || other == dir {
		t.Fatalf("changed source: %s, compiled=%v, %v", other, compiled, err)
	}

	p.Source = []byte(`public class Hello { nonsense }`)
	if _, _, err := javatool.Compile(context.Background(), javac, p); err == nil || !strings.Contains(err.Error(), "Hello.java") {
		t.Fatalf("compile error: %v", err)
	}
}
