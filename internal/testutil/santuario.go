package testutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/javatool"
)

// modulePath is the module whose root holds the Java source.
const modulePath = "github.com/kecis/kecis"

// santuarioSource is the Java tool, relative to the module root.
const santuarioSource = "saml/testdata/santuario/KecisXmlEnc.java"

// santuarioMainClass is the class santuarioSource defines.
const santuarioMainClass = "KecisXmlEnc"

// SantuarioClasspathEnv, when set, replaces the Debian jars below with a
// list of jars separated by the OS path-list separator (for a machine that
// is not Debian). The Java class directory is always put in front of it.
const SantuarioClasspathEnv = "KECIS_SANTUARIO_CLASSPATH"

// santuarioJars is the minimal runtime classpath on Debian bookworm
// (libxml-security-java 2.1.7 and its dependency libslf4j-java). xmlsec.jar
// needs slf4j-api.jar (org.apache.xml.security.Init logs through SLF4J);
// commons-codec and woodstox, the package's other dependencies, are only
// used by Santuario's StAX API, which the tool does not touch.
var santuarioJars = []santuarioJar{
	{path: "/usr/share/java/xmlsec.jar", pkg: "libxml-security-java"},
	{path: "/usr/share/java/slf4j-api.jar", pkg: "libslf4j-java"},
	// Optional: silences SLF4J's "no binding" warning on stderr.
	{path: "/usr/share/java/slf4j-nop.jar", pkg: "libslf4j-java", optional: true},
}

type santuarioJar struct {
	path     string
	pkg      string
	optional bool
}

// santuarioTimeout bounds one run of the Java tool.
const santuarioTimeout = 2 * time.Minute

// SantuarioTool runs the Apache Santuario XML Encryption tool
// (saml/testdata/santuario/KecisXmlEnc.java) for interoperability tests.
// It is safe for concurrent use.
type SantuarioTool struct {
	java      string
	classpath string
}

var santuario struct {
	once     sync.Once
	classDir string
	compiled bool // this process ran javac (not a cache hit)
	took     time.Duration
	err      error
	logged   sync.Once
}

// Santuario returns the Santuario tool, compiling its Java source once per
// test process into os.TempDir()/kecis-santuario-<hash>, where later test
// runs find it (the hash covers the source, the javac and the classpath).
// Without java, javac or the Santuario jars the test skips, or fails under
// CI=true; a compile error always fails.
func Santuario(t testing.TB) *SantuarioTool {
	t.Helper()
	java := RequireTool(t, "java", "default-jre-headless")
	javac := RequireTool(t, "javac", "default-jdk-headless")
	jars := santuarioClasspath(t)
	src, err := findSantuarioSource()
	if err != nil {
		t.Fatalf("santuario: %v", err)
	}
	santuario.once.Do(func() {
		start := time.Now()
		santuario.classDir, santuario.compiled, santuario.err = compileSantuario(javac, src, jars)
		santuario.took = time.Since(start)
	})
	if santuario.err != nil {
		t.Fatalf("santuario: %v", santuario.err)
	}
	santuario.logged.Do(func() {
		if santuario.compiled {
			t.Logf("santuario: compiled %s into %s in %v", santuarioSource, santuario.classDir, santuario.took.Round(time.Millisecond))
		}
	})
	return &SantuarioTool{
		java:      java,
		classpath: santuario.classDir + string(os.PathListSeparator) + jars,
	}
}

// Classpath returns the classpath the tool runs with: the compiled class
// directory, then the Santuario jars.
func (s *SantuarioTool) Classpath() string { return s.classpath }

// Encrypt replaces the first element named element (a local name in no
// namespace, e.g. "Card") in inXML by an xenc:EncryptedData
// (Type #Element, xmlenc11#aes256-gcm) whose ds:KeyInfo holds one
// xenc:EncryptedKey for the certificate in certPEMPath, with keyTransport
// "rsa-oaep" (xmlenc11#rsa-oaep, SHA-256 digest, MGF1-SHA-256) or
// "rsa-oaep-mgf1p" (SHA-1), and Recipient=recipient when it is not empty.
// Any failure fails the test.
func (s *SantuarioTool) Encrypt(t testing.TB, certPEMPath string, inXML []byte, element, keyTransport, recipient string) []byte {
	t.Helper()
	cert, err := filepath.Abs(certPEMPath)
	if err != nil {
		t.Fatalf("santuario encrypt: %v", err)
	}
	args := []string{"encrypt", "--cert", cert, "--element", element, "--key-transport", keyTransport}
	if recipient != "" {
		args = append(args, "--recipient", recipient)
	}
	out, err := s.run(args, inXML)
	if err != nil {
		t.Fatalf("santuario encrypt %s with %s: %v", element, keyTransport, err)
	}
	return out
}

// Decrypt decrypts every xenc:EncryptedData in inXML with the PKCS#8 PEM RSA
// private key in keyPEMPath. Santuario's refusal (an algorithm other than
// aes128-gcm/aes256-gcm or rsa-oaep/rsa-oaep-mgf1p, a wrong key, a bad GCM
// tag, no EncryptedData at all) is returned as an error carrying the tool's
// message; tests of negative cases assert on it.
func (s *SantuarioTool) Decrypt(t testing.TB, keyPEMPath string, inXML []byte) ([]byte, error) {
	t.Helper()
	key, err := filepath.Abs(keyPEMPath)
	if err != nil {
		t.Fatalf("santuario decrypt: %v", err)
	}
	return s.run([]string{"decrypt", "--key", key}, inXML)
}

// run runs the tool with args plus --in and --out files in a private
// temporary directory, and returns the output file.
func (s *SantuarioTool) run(args []string, in []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "kecis-santuario-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	inPath := filepath.Join(dir, "in.xml")
	outPath := filepath.Join(dir, "out.xml")
	if err := os.WriteFile(inPath, in, 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), santuarioTimeout)
	defer cancel()
	// Start fast: these runs are short.
	argv := append(slices.Clone(javatool.FastStart), "-cp", s.classpath, santuarioMainClass)
	argv = append(argv, args...)
	argv = append(argv, "--in", inPath, "--out", outPath)
	cmd := exec.CommandContext(ctx, s.java, argv...)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(output.String())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("timed out after %v: %s", santuarioTimeout, msg)
		}
		if msg == "" {
			return nil, err
		}
		return nil, errors.New(msg)
	}
	return os.ReadFile(outPath)
}

// santuarioClasspath returns the jars, from SantuarioClasspathEnv or the
// Debian defaults; a missing Debian jar skips the test (fails under CI).
func santuarioClasspath(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(SantuarioClasspathEnv); v != "" {
		return v
	}
	var parts []string
	for _, j := range santuarioJars {
		if _, err := os.Stat(j.path); err != nil {
			if j.optional {
				continue
			}
			if CI() {
				t.Fatalf("%s not found, but CI=true: .ci/run must install the Debian package %s", j.path, j.pkg)
			}
			t.Skipf("%s not found: install the Debian package %s (or set %s) to run this interop test", j.path, j.pkg, SantuarioClasspathEnv)
		}
		parts = append(parts, j.path)
	}
	return strings.Join(parts, string(os.PathListSeparator))
}

// findSantuarioSource finds the Java source under the module root: the
// nearest directory above the working directory whose go.mod declares
// modulePath, else (a test outside the module using this package) the
// directory this file was compiled from.
func findSantuarioSource() (string, error) {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; {
			if isModuleRoot(dir) {
				roots = append(roots, dir)
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		roots = append(roots, filepath.Join(filepath.Dir(file), "..", ".."))
	}
	for _, root := range roots {
		p := filepath.Join(root, filepath.FromSlash(santuarioSource))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("cannot find %s: no go.mod for %s above the working directory", santuarioSource, modulePath)
}

// isModuleRoot reports whether dir holds the go.mod of modulePath.
func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == modulePath
		}
	}
	return false
}

// compileSantuario compiles src into the cache directory for its hash,
// unless a previous run already did; it reports whether it ran javac.
func compileSantuario(javac, src, jars string) (dir string, compiled bool, err error) {
	source, err := os.ReadFile(src)
	if err != nil {
		return "", false, err
	}
	return javatool.Compile(context.Background(), javac, javatool.Program{
		Name:      "santuario",
		File:      filepath.Base(src),
		Source:    source,
		Classpath: jars,
	})
}
