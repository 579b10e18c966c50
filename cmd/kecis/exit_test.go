package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// TestExitStatus: every command exits 0 on success, 1 on a refusal, a
// failed check or an error while running, and 2 on a usage error
// (docs/cli.md); the error is printed once, with one "kecis: " prefix, and
// a usage error says where the usage is.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	unsigned, err := saml.Serialize(unsignedRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	_, signed, _ := kecisAt(t, testutil.FixedNow, unsigned, "envelope", "sign", "--key", keyPath("merchant-rsa"), "--cert", certPath("merchant-rsa"))
	_, encrypted, _ := kecis(t, []byte(ecmlValidDoc), "envelope", "encrypt", "--recipient-cert", certPath("issuer-rsa"))
	missing := filepath.Join(dir, "missing.pem")
	invalidECML := `<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0"><Transaction Amount="1.5" Currency="KRW" Type="sale"/></Ecom>`
	hubYAML := filepath.Join(dir, "hub.yaml")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := os.WriteFile(hubYAML, []byte("entity_id: https://hub.test/kecis\nsigning:\n  cert: "+abs(certPath("issuer-rsa"))+"\n  key: "+abs(keyPath("issuer-rsa"))+"\ntls:\n  cert: "+abs(certPath("issuer-rsa"))+"\n  key: "+abs(keyPath("issuer-rsa"))+"\ndatabase:\n  dsn: sqlite:"+filepath.Join(dir, "hub.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		err   string // in stderr
	}{
		{"version", "", []string{"version"}, exitOK, ""},
		{"help", "", []string{"envelope", "sign", "--help"}, exitOK, ""},
		{"a group alone shows its help", "", []string{"envelope"}, exitOK, ""},
		{"keys generate", "", []string{"keys", "generate", "--out", filepath.Join(dir, "k")}, exitOK, ""},
		{"envelope verify", signed, []string{"envelope", "verify", "--trust", certPath("merchant-rsa"), "--now", nowFlag}, exitOK, ""},
		{"envelope inspect", signed, []string{"envelope", "inspect"}, exitOK, ""},

		// 2: usage errors, found by cobra or by the command.
		{"unknown command", "", []string{"bogus"}, exitUsage, `unknown command "bogus" for "kecis"`},
		{"unknown subcommand", "", []string{"envelope", "sing"}, exitUsage, `unknown command "sing" for "kecis envelope" (did you mean sign?)`},
		{"unknown federation subcommand", "", []string{"federation", "--hub", "https://h", "lst"}, exitUsage, `unknown command "lst"`},
		{"unknown flag", "", []string{"envelope", "sign", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"required flag", "", []string{"envelope", "sign"}, exitUsage, `required flag(s) "cert", "key" not set`},
		{"missing argument", "", []string{"federation", "show"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"extra argument", "", []string{"version", "now"}, exitUsage, `unknown command "now" for "kecis version"`},
		{"bad duration", "", []string{"keys", "generate", "--out", dir, "--validity", "soon"}, exitUsage, `invalid argument "soon"`},
		{"bad key type", "", []string{"keys", "generate", "--type", "dsa", "--out", filepath.Join(dir, "k2")}, exitUsage, `--type "dsa": use rsa or ecdsa`},
		{"keys generate without --out", "", []string{"keys", "generate"}, exitUsage, "--out DIR is required"},
		{"envelope verify --now", signed, []string{"envelope", "verify", "--trust", certPath("merchant-rsa"), "--now", "yesterday"}, exitUsage, "--now"},
		{"envelope encrypt --key-transport", string(unsigned), []string{"envelope", "encrypt", "--recipient-cert", certPath("issuer-rsa"), "--key-transport", "rsa-1_5"}, exitUsage, "--key-transport"},
		{"envelope bench recipient pair", "", []string{"envelope", "bench", "--in", missing, "--key", keyPath("merchant-rsa"), "--cert", certPath("merchant-rsa"), "--recipient-cert", certPath("issuer-rsa")}, exitUsage, "go together"},
		{"ecml validate --now", invalidECML, []string{"ecml", "validate", "--now", "later"}, exitUsage, "--now must be an RFC 3339 time"},
		{"metadata verify --now", "", []string{"metadata", "verify", "--trust", certPath("issuer-rsa"), "--now", "later"}, exitUsage, "--now"},
		{"metadata generate --endpoint", "", []string{"metadata", "generate", "--entity-id", "https://pg.test/kecis", "--roles", "pg", "--signing-cert", certPath("issuer-rsa"), "--endpoint", "card:approve"}, exitUsage, "--endpoint"},
		{"metadata generate --service", "", []string{"metadata", "generate", "--entity-id", "https://pg.test/kecis", "--roles", "pg", "--signing-cert", certPath("issuer-rsa"), "--service", "card:approve;KRW:lots"}, exitUsage, "--service"},
		{"conformance list --plan", "", []string{"conformance", "list", "--plan", "nope"}, exitUsage, `no plan "nope"`},
		{"conformance run without target", "", []string{"conformance", "run", "--profile", missing}, exitUsage, "--target-metadata and --profile are required"},
		{"conformance run --plan", "", []string{"conformance", "run", "--target-metadata", missing, "--profile", missing, "--plan", "nope"}, exitUsage, `no plan "nope"`},
		{"conformance run --module", "", []string{"conformance", "run", "--target-metadata", missing, "--profile", missing, "--plan", "issuer", "--module", "nope"}, exitUsage, `--module "nope"`},
		{"conformance run --keys-only", "", []string{"conformance", "run", "--keys-only"}, exitUsage, "--keys-only goes with --own-hub"},

		// 1: refusals, failed checks, errors while running.
		{"envelope verify refuses", signed, []string{"envelope", "verify", "--trust", certPath("attacker-rsa"), "--now", nowFlag}, exitFailed, "refused: message could not be verified"},
		{"envelope inspect finds problems", string(unsigned), []string{"envelope", "inspect"}, exitFailed, "problem(s) visible without keys"},
		{"envelope decrypt", encrypted, []string{"envelope", "decrypt", "--key", keyPath("issuer-rsa")}, exitOK, ""},
		{"envelope decrypt refuses", encrypted, []string{"envelope", "decrypt", "--key", keyPath("merchant-rsa")}, exitFailed, "refused:"},
		{"ecml validate finds problems", invalidECML, []string{"ecml", "validate", "--now", "2026-11-05T00:00:00Z"}, exitFailed, ""},
		{"metadata verify refuses", signed, []string{"metadata", "verify", "--trust", certPath("issuer-rsa")}, exitFailed, "refused:"},
		{"a file that cannot be read", string(unsigned), []string{"envelope", "sign", "--key", missing, "--cert", certPath("merchant-rsa")}, exitFailed, "no such file or directory"},
		{"a key the profile refuses", string(unsigned), []string{"envelope", "sign", "--key", keyPath("weak-rsa1024"), "--cert", certPath("weak-rsa1024")}, exitFailed, "RSA key of 1024 bits"},
		{"a hub that does not answer", "", []string{"federation", "list", "--hub", "https://127.0.0.1:1", "--timeout", "2s"}, exitFailed, "connection refused"},
		{"metadata export from no hub", "", []string{"metadata", "export", "--hub", "https://127.0.0.1:1", "--trust", certPath("issuer-rsa"), "--timeout", "2s"}, exitFailed, "connection refused"},
		{"audit export of nothing", "", []string{"audit", "export", "--config", hubYAML, "--tx", "order-0", "--out", filepath.Join(dir, "evidence")}, exitFailed, "request_id"},
		{"conformance run without its profile", "", []string{"conformance", "run", "--target-metadata", missing, "--profile", missing}, exitFailed, "missing.pem"},
		{"adapter --check of no file", "", []string{"adapter", "--config", missing, "--check"}, exitFailed, "no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := kecis(t, []byte(c.stdin), c.args...)
			if code != c.code {
				t.Fatalf("kecis %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.err) {
				t.Errorf("stderr %q lacks %q", stderr, c.err)
			}
			checkStderr(t, code, stderr)
		})
	}
}

// TestExitStatusMessage: the SDK's "kecis: " prefix is dropped where the
// error starts and where a command wrapped it, so that kecis prints it once.
func TestExitStatusMessage(t *testing.T) {
	sdk := errors.New("kecis: the recipient certificate needs an RSA key of at least 2048 bits")
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{sdk, exitUsage, "the recipient certificate needs an RSA key of at least 2048 bits"},
		{fail(exitFailed, fmt.Errorf("recipient: %w", sdk)), exitFailed, "recipient: the recipient certificate needs an RSA key of at least 2048 bits"},
		{fmt.Errorf("wrapped: %w", usagef("--now: bad")), exitUsage, "wrapped: --now: bad"},
		{fail(exitFailed, nil), exitFailed, ""},
	} {
		if code, msg := exitStatus(c.err); code != c.code || msg != c.msg {
			t.Errorf("exitStatus(%v) = %d %q, want %d %q", c.err, code, msg, c.code, c.msg)
		}
	}
}

// checkStderr: an error is printed once, with one "kecis: " prefix; a
// usage error ends with where the usage is.
func checkStderr(t *testing.T, code int, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "kecis: kecis:") || strings.Count(stderr, "kecis: ") > 1 {
		t.Errorf("the error is prefixed or printed twice: %q", stderr)
	}
	if code == exitUsage && !strings.Contains(stderr, "--help' for usage.") {
		t.Errorf("a usage error without its pointer to --help: %q", stderr)
	}
}

// TestUnknownFlagEverywhere: an unknown flag is a usage error (2) for
// every command, groups included.
func TestUnknownFlagEverywhere(t *testing.T) {
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		code, out, stderr := kecis(t, nil, append(append([]string{}, path...), "--no-such-flag")...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, "unknown flag: --no-such-flag") {
			t.Errorf("kecis %s --no-such-flag: exit %d, stdout %q, stderr %q", strings.Join(path, " "), code, out, stderr)
		}
		checkStderr(t, code, stderr)
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(newRootCmd(), nil)
}

// TestFlagUsageNoBackquotes: pflag takes a backquoted word of a flag's
// usage as the name of its argument (--plan `kecis conformance list`), so
// no usage has one.
func TestFlagUsageNoBackquotes(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: the usage has a backquote: %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}
