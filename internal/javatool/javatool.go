// Package javatool compiles and runs the project's small single-file Java
// programs: the Apache Santuario interoperability tool (internal/testutil)
// and the JDK schema validator (internal/xsd/javaxsd). A program is
// compiled once into a cache directory under os.TempDir() named by a hash
// of its source, the javac and its classpath, where later processes find
// it; compiling into a fresh directory renamed into place means processes
// running in parallel never see a half-written cache.
//
// It imports no testing package, so tools (go run ./tools/schemacheck) use
// it as tests do.
package javatool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Debian packages that provide the two commands.
const (
	JavaPackage  = "default-jre-headless"
	JavacPackage = "default-jdk-headless"
)

// CompileTimeout bounds one javac run.
const CompileTimeout = 2 * time.Minute

// FastStart are JVM options for short runs: the serial collector, the
// client compiler only and the class-data-sharing archive when present.
var FastStart = []string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"}

// Tools returns the paths of java and javac, or an error naming the Debian
// package that provides the missing one.
func Tools() (java, javac string, err error) {
	java, err = exec.LookPath("java")
	if err != nil {
		return "", "", fmt.Errorf("java not found: install the Debian package %s", JavaPackage)
	}
	javac, err = exec.LookPath("javac")
	if err != nil {
		return "", "", fmt.Errorf("javac not found: install the Debian package %s", JavacPackage)
	}
	return java, javac, nil
}

// Program is one Java source file to compile.
type Program struct {
	// Name names the cache directory: os.TempDir()/kecis-<Name>-<hash>.
	Name string
	// File is the source's file name (its public class plus ".java").
	File string
	// Source is the file's content.
	Source []byte
	// Classpath is the jars the program compiles against, separated by
	// the OS path-list separator; empty for the JDK alone.
	Classpath string
}

// Compile compiles p with javac into its cache directory unless an earlier
// run already did, and returns the directory (the class path entry of the
// compiled classes); compiled reports whether this call ran javac. A
// compile error carries javac's output.
func Compile(ctx context.Context, javac string, p Program) (dir string, compiled bool, err error) {
	if p.Name == "" || p.File == "" || len(p.Source) == 0 {
		return "", false, errors.New("javatool: a program needs a name, a file name and a source")
	}
	javacReal, err := filepath.EvalSymlinks(javac)
	if err != nil {
		javacReal = javac
	}
	h := sha256.New()
	for _, part := range []string{string(p.Source), javacReal, p.Classpath} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	dir = filepath.Join(os.TempDir(), "kecis-"+p.Name+"-"+sum)
	marker := filepath.Join(dir, "ok")
	if b, err := os.ReadFile(marker); err == nil && string(b) == sum {
		return dir, false, nil
	}

	tmp, err := os.MkdirTemp(os.TempDir(), "kecis-"+p.Name+"-build-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	srcDir := filepath.Join(tmp, "src")
	classes := filepath.Join(tmp, "classes")
	for _, d := range []string{srcDir, classes} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", false, err
		}
	}
	src := filepath.Join(srcDir, p.File)
	if err := os.WriteFile(src, p.Source, 0o644); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, CompileTimeout)
	defer cancel()
	args := []string{"--release", "17", "-encoding", "UTF-8", "-d", classes}
	if p.Classpath != "" {
		args = append(args, "-cp", p.Classpath)
	}
	cmd := exec.CommandContext(ctx, javac, append(args, src)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("javac %s: %v\n%s", p.File, err, out)
	}
	if err := os.WriteFile(filepath.Join(classes, "ok"), []byte(sum), 0o644); err != nil {
		return "", false, err
	}
	if err := os.Rename(classes, dir); err != nil {
		if b, err2 := os.ReadFile(marker); err2 == nil && string(b) == sum {
			return dir, false, nil // another process won the race
		}
		// A stale directory without the marker: replace it once.
		if err2 := os.RemoveAll(dir); err2 != nil {
			return "", false, errors.Join(err, err2)
		}
		if err2 := os.Rename(classes, dir); err2 != nil {
			return "", false, err2
		}
	}
	return dir, true, nil
}
