package sidecar

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf is a lookup over a fixed environment.
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// goodEnv sets what testdata/good.yaml references.
func goodEnv() map[string]string {
	return map[string]string{"PG_KEY": "secret-a", "PG_KEY_2": "secret-b"}
}

func readGood(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEnvPerValue: a value is expanded after parsing, so what the
// variable holds arrives as it is — the three cases of the raw-text
// expansion it replaces: a comment marker, a key-value separator, and an
// unset variable.
func TestEnvPerValue(t *testing.T) {
	good := readGood(t)
	for _, secret := range []string{"p@ss word # x", "a: b", `"quoted" 'and' {braces} [x], *star &amp !tag`, "line\tend ${NOT_A_REF}", "$$ and $PLAIN"} {
		env := goodEnv()
		env["PG_KEY"] = secret
		cfg, err := parse([]byte(good), "good.yaml", t.TempDir(), envOf(env))
		if err != nil {
			t.Fatalf("secret %q: %v", secret, err)
		}
		if got := cfg.Native.Merchants[shopA].Headers["X-PG-Key"]; got != secret {
			t.Errorf("secret %q arrived as %q", secret, got)
		}
	}
	// Several references in one value, text around them, in a plain
	// scalar, a sequence item and a block literal; "$${" is a literal.
	doc := strings.Replace(good, "  dsn: sqlite:adapter.db\n", "  dsn: sqlite:${STATE}/${DB}.db\n", 1)
	doc = strings.Replace(doc, "native:\n", "testers: [\"${TESTER}\", \"literal-$${TESTER}\"]\nnative:\n", 1)
	env := goodEnv()
	env["STATE"], env["DB"], env["TESTER"] = "/var/lib/a b", "adapter", "AB12"
	cfg, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.DSN != "sqlite:/var/lib/a b/adapter.db" {
		t.Errorf("dsn %q", cfg.State.DSN)
	}
	if len(cfg.Testers) != 2 || cfg.Testers[0] != "AB12" || cfg.Testers[1] != "literal-${TESTER}" {
		t.Errorf("testers %q", cfg.Testers)
	}
	// A variable set to the empty string is set (Load's os.LookupEnv):
	// the value is checked as empty, not reported as unset.
	env = goodEnv()
	env["PG_KEY"] = ""
	_, err = parse([]byte(good), "good.yaml", t.TempDir(), envOf(env))
	if err == nil || !strings.Contains(err.Error(), "X-PG-Key: is empty") || strings.Contains(err.Error(), "is not set") {
		t.Errorf("empty variable: %v", err)
	}
}

// TestEnvUnset: every unset variable is reported at once with its name and
// the key path (file and line), with the other problems of the file, and
// not again as the empty value it left.
func TestEnvUnset(t *testing.T) {
	good := readGood(t)
	doc := strings.Replace(good, "entity_id: https://pg.test/kecis\n", "entity_id: ${PG_ENTITY_ID}\n", 1)
	doc = strings.Replace(doc, "  dsn: sqlite:adapter.db\n", "  dsn: sqlite:${STATE}/adapter.db\n", 1)
	doc = strings.Replace(doc, "native:\n", "testers: [AB, \"${TESTER}\"]\nnative:\n", 1)
	doc = strings.Replace(doc, "  merchants:\n", "  merchants_file: m.yaml\n  merchants:\n", 1)
	doc = strings.Replace(doc, "method: POST\n", "method: PATCH\n", 1) // a mapping mistake as well
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte("merchants:\n  https://shop3.test/kecis: {id: M3, headers: {X-PG-Key: \"${PG_KEY_3}\"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PG_KEY": "secret-a"} // PG_KEY_2 unset too
	_, err := parse([]byte(doc), "good.yaml", dir, envOf(env))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	for _, w := range []string{
		"good.yaml:1: entity_id: ${PG_ENTITY_ID} is not set",
		"good.yaml:15: state.dsn: ${STATE} is not set",
		"testers[1]: ${TESTER} is not set",
		"native.merchants.https://shop2.test/kecis.headers.X-PG-Key: ${PG_KEY_2} is not set",
		filepath.Join(dir, "m.yaml") + ":2: merchants.https://shop3.test/kecis.headers.X-PG-Key: ${PG_KEY_3} is not set",
		"services.urn:kecis:service:card:approve.method: must be GET, POST, PUT or DELETE",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	for _, not := range []string{"entity_id: is required", "X-PG-Key: is empty", "secret-a"} {
		if strings.Contains(err.Error(), not) {
			t.Errorf("%q in:\n%v", not, err)
		}
	}
}

// TestEnvMistakes: a reference that is not one, and a reference in a key.
func TestEnvMistakes(t *testing.T) {
	good := readGood(t)
	for _, c := range []struct{ from, to, want string }{
		{"  dsn: sqlite:adapter.db\n", "  dsn: sqlite:${STATE\n", "state.dsn: has a ${ without its }"},
		{"  dsn: sqlite:adapter.db\n", "  dsn: \"${1X}\"\n", `state.dsn: "${1X}" is not a variable reference`},
		{"  dsn: sqlite:adapter.db\n", "  dsn: \"${A-B}\"\n", `"${A-B}" is not a variable reference`},
		{"    https://shop2.test/kecis:", "    ${SHOP}:", "native.merchants.${SHOP}: ${…} in a key is not expanded: only values are"},
	} {
		doc := strings.Replace(good, c.from, c.to, 1)
		env := goodEnv()
		env["SHOP"] = "https://shop2.test/kecis"
		_, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want %q, got %v", c.to, c.want, err)
		}
	}
}

// TestLoadEnv: Load reads the process environment, where a variable set
// to nothing is set.
func TestLoadEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "adapter.yaml")
	if err := os.WriteFile(p, []byte(readGood(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PG_KEY", "p@ss word # x")
	t.Setenv("PG_KEY_2", "a: b")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Native.Merchants[shopA].Headers["X-PG-Key"] != "p@ss word # x" {
		t.Errorf("headers %v", cfg.Native.Merchants[shopA].Headers)
	}
}

// TestEnvUnsetMerchantsFile: an unset merchants_file is reported as such,
// not also as a configuration that lists no merchant.
func TestEnvUnsetMerchantsFile(t *testing.T) {
	good := readGood(t)
	i := strings.Index(good, "  merchants:\n")
	j := strings.Index(good, "services:\n")
	doc := good[:i] + "  merchants_file: ${PG_MERCHANTS_FILE}\n" + good[j:]
	_, err := parse([]byte(doc), "good.yaml", t.TempDir(), envOf(goodEnv()))
	if err == nil || !strings.Contains(err.Error(), "native.merchants_file: ${PG_MERCHANTS_FILE} is not set") || strings.Contains(err.Error(), "lists no merchant") {
		t.Fatalf("got %v", err)
	}
}
