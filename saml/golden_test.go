package saml

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// goldenMessages builds the deterministic messages kept under
// testdata/golden (RSA PKCS#1 v1.5 signatures are deterministic; the clock
// and the ID source are fixed).
func goldenMessages(t *testing.T) map[string][]byte {
	w := newWorld(t)
	req := w.cancelRequest(t, "golden-request")
	resp, err := w.builder(issuerID, "golden-response").NewResponse(req.ID, "", Status{Code: StatusSuccess})
	if err != nil {
		t.Fatal(err)
	}
	resp.Payload = payloadFrom(t, cancelPayloadXML)
	declined, err := w.builder(issuerID, "golden-declined").NewResponse(req.ID, "", Status{Code: StatusResponder, SubCode: CodeDuplicate, Message: "the approval was already cancelled"})
	if err != nil {
		t.Fatal(err)
	}
	ar := w.authResult(t, "golden-ar", w.issuer.Signer, issuerID)
	return map[string][]byte{
		"request-rsa.xml":             signRequest(t, req, w.merchant.Signer),
		"response-rsa.xml":            signResponse(t, resp, w.issuer.Signer),
		"response-duplicate.xml":      signResponse(t, declined, w.issuer.Signer),
		"auth-result-rsa.xml":         ser(t, ar),
		"request-with-authresult.xml": w.withAuthResult(t, "golden-with-ar", ar, nil),
	}
}

func TestGoldenEnvelopes(t *testing.T) {
	for name, data := range goldenMessages(t) {
		t.Run(name, func(t *testing.T) {
			golden(t, name, data)
			// Every golden message is accepted by the pipeline.
			if strings.HasPrefix(name, "auth-result") {
				if _, _, err := VerifyAuthenticationResult(bg, parseRoot(t, data), newWorld(t).keys(), newWorld(t).clock.Now(), DefaultClockSkew); err != nil {
					t.Fatal(err)
				}
				return
			}
			rc := newWorld(t).issuerReceiver()
			if _, _, err := rc.Verify(bg, data); err != nil {
				t.Fatalf("golden %s does not verify: %v (%v)", name, err, AsError(err).Cause())
			}
		})
	}
}

var specExample = regexp.MustCompile("(?s)<!-- golden:([a-z0-9.-]+) -->\n```xml\n(.*?)```")

// TestSpecExamples keeps the examples in docs/spec identical to the golden
// files; -update rewrites the documents.
func TestSpecExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "docs", "spec", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no spec files: %v", err)
	}
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		out := specExample.ReplaceAllStringFunc(doc, func(m string) string {
			name := specExample.FindStringSubmatch(m)[1]
			g, err := os.ReadFile(filepath.Join("testdata", "golden", name))
			if err != nil {
				t.Errorf("%s cites golden file %s: %v", f, name, err)
				return m
			}
			found++
			return "<!-- golden:" + name + " -->\n```xml\n" + indentXML(t, g) + "\n```"
		})
		if out != doc {
			if *update {
				if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("%s: examples differ from the golden files; run go test ./saml -run TestSpecExamples -update", f)
		}
	}
	if found == 0 {
		t.Fatal("the spec cites no golden example")
	}
}

// indentXML pretty-prints a golden message for reading. The signed bytes
// are the golden file itself; indentation adds white space, so the
// document shows the structure and the file is what verifies.
func indentXML(t *testing.T, data []byte) string {
	doc := etree.NewDocument()
	doc.SetRoot(parseRoot(t, data))
	doc.Indent(2)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}
