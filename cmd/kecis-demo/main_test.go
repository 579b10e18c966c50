package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitStatus: --help prints the usage and every flag (0); an unknown
// flag or an argument is a usage error (2); a federation or walkthrough
// that cannot start fails (1), naming why.
func TestExitStatus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(file, "demo")
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"--help"}, 0, "--walkthrough", ""},
		{[]string{"--bogus"}, exitUsage, "", "unknown flag: --bogus"},
		{[]string{"serve"}, exitUsage, "", `unexpected argument "serve"`},
		{[]string{"--pprof", "0.0.0.0:0"}, exitUsage, "", "not a loopback address"},
		{[]string{"--aa-method", "sms"}, exitUsage, "", `--aa-method "sms": amount or descriptor`},
		{[]string{"--dir", notDir}, exitFailed, "", "not a directory"},
		{[]string{"--walkthrough", "--dir", notDir}, exitFailed, "", "not a directory"},
	} {
		var out, errs bytes.Buffer
		if code := run(c.args, &out, &errs); code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.args, code, c.code, out.String(), errs.String())
		}
		if !strings.Contains(out.String(), c.out) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("%v: stdout %q, stderr %q; want %q, %q", c.args, out.String(), errs.String(), c.out, c.errs)
		}
	}
	var out bytes.Buffer
	run([]string{"--help"}, &out, &out)
	for _, f := range []string{"--dir", "--hub", "--hub-ops", "--issuer", "--issuer-api", "--telecom", "--pg-api", "--pg-kecis", "--pg-call", "--pg-page", "--shop", "--issuer-page", "--issuer-cert", "--telecom-kecis", "--bank-a", "--bank-a-kecis", "--bank-b", "--bank-b-kecis", "--aa-method", "Exit status"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}
