package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/saml"
)

func TestKeysGenerateSignInspect(t *testing.T) {
	for _, typ := range []string{"rsa", "ecdsa"} {
		t.Run(typ, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "k")
			if code, _, stderr := kecis(t, nil, "keys", "generate", "--type", typ, "--out", dir); code != 0 {
				t.Fatalf("generate: %s", stderr)
			}
			st, err := os.Stat(filepath.Join(dir, "key.pem"))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key.pem: %v %v", err, st)
			}
			// Never overwritten without --force.
			if code, _, _ := kecis(t, nil, "keys", "generate", "--type", typ, "--out", dir); code == 0 {
				t.Fatal("overwrote an existing key")
			}
			unsigned, _ := saml.Serialize(unsignedRequest(t))
			code, signed, stderr := kecis(t, unsigned, "envelope", "sign", "--key", filepath.Join(dir, "key.pem"), "--cert", filepath.Join(dir, "cert.pem"))
			if code != 0 {
				t.Fatal(stderr)
			}
			code, out, _ := kecis(t, []byte(signed), "envelope", "inspect")
			if code != 0 {
				t.Fatal(out)
			}
			for _, want := range []string{"message:         ServiceRequest", "service:         urn:kecis:service:card:cancel", "sha256:", "problems:        none visible without keys"} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestInspectShowsProblems(t *testing.T) {
	for _, tc := range []struct{ fixture, want string }{
		{"sha1-signature", "forbidden signature method http://www.w3.org/2000/09/xmldsig#rsa-sha1"},
		{"two-signatures", "is not where the profile puts one"},
		{"unsigned", "unsigned"},
		{"xsw7-forged-result-in-extensions", "profile:"},
	} {
		data, err := os.ReadFile(filepath.Join("../../saml/testdata/attacks", tc.fixture+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		_, out, _ := kecis(t, data, "envelope", "inspect")
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: inspect does not say %q:\n%s", tc.fixture, tc.want, out)
		}
	}
	// A mutation without an idempotency key.
	root := unsignedRequest(t)
	for _, c := range root.ChildElements() {
		if c.Tag == "IdempotencyKey" {
			root.RemoveChild(c)
		}
	}
	data, _ := saml.Serialize(root)
	_, out, _ := kecis(t, data, "envelope", "inspect", "--json")
	if !strings.Contains(out, "no IdempotencyKey, but urn:kecis:service:card:cancel changes state") {
		t.Errorf("missing idempotency key not reported:\n%s", out)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	root := newRootCmd()
	var all [][]string
	for _, c := range root.Commands() {
		all = append(all, []string{c.Name()})
		for _, s := range c.Commands() {
			all = append(all, []string{c.Name(), s.Name()})
		}
	}
	for _, args := range all {
		code, out, stderr := kecis(t, nil, append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("kecis %s --help: exit %d, %s%s", strings.Join(args, " "), code, out, stderr)
		}
	}
}
