package server_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/evidence"
	"github.com/kecis/kecis/internal/testutil"
)

// TestEvidenceBundleVerifiesWithXMLSec: the bundle of a relayed card
// approval and of a facade approval verifies with xmlsec1 alone.
func TestEvidenceBundleVerifiesWithXMLSec(t *testing.T) {
	testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	testutil.RequireTool(t, "openssl", "openssl")
	f := setupFederationWith(t, 2*time.Second, apiKeyYAML())
	if st, _, err := f.send(t, &f.mTLS, f.approve(t, "ev-1", "15000", f.dest)); err != nil || !st.OK() {
		t.Fatalf("relay: %v %+v", err, st)
	}
	code, route := f.facadeCall(t, "/v1/routes", "", map[string]string{"service": "urn:kecis:service:card:approve", "card_bin": "411111"})
	if code != 200 {
		t.Fatal(route)
	}
	card := browserEncryptedCard(t, route["encryption_certificate"].(string), issuerID)
	if code, out := f.facadeCall(t, "/v1/card/approve", "ev-web", map[string]any{"fields": approveFields("5000"),
		"encrypted": map[string]string{"card": card}, "routing": map[string]string{"card_bin": "411111", "card_last4": "1111"}}); code != 200 {
		t.Fatalf("facade: %d %v", code, out)
	}
	for _, tc := range []struct {
		tx    string
		items int
		auth  bool
	}{{merchantID + "|ev-1", 2, false}, {"https://hub.test/kecis|ev-web", 2, true}} {
		dir := t.TempDir()
		m, err := evidence.Export(context.Background(), f.h.st, "https://hub.test/kecis", f.h.hubCert, tc.tx, dir, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", tc.tx, err)
		}
		if len(m.Items) < tc.items || len(m.Snapshots) == 0 {
			t.Fatalf("%s: %d items, %d snapshots", tc.tx, len(m.Items), len(m.Snapshots))
		}
		if tc.auth && !strings.Contains(m.Items[0].AuthDetail, `"auth_method":"api-key"`) {
			t.Fatalf("facade evidence lacks the merchant's authentication: %+v", m.Items[0])
		}
		out, err := exec.Command("sh", filepath.Join(dir, "VERIFY.sh")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "all signatures verify") {
			t.Fatalf("%s: VERIFY.sh: %v\n%s", tc.tx, err, out)
		}
	}
}
