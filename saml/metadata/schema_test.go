package metadata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/internal/xsd/xsdtest"
	"github.com/kecis/kecis/saml/metadata"
)

// TestSchema1000: what the hub publishes for the 1,000 generated
// participants (KECIS §11.2) is valid against the KECIS 1.0 XML Schemas
// (docs/spec/schema, kecis-metadata.xsd's ParticipantDescriptorType over
// the OASIS metadata schema), checked with xmllint: the signed aggregate,
// each descriptor signed on its own as the Metadata Query endpoint serves
// it, and each as a participant registers it (metadata.Marshal). A
// descriptor edited against the schema fails, so the check is not vacuous.
func TestSchema1000(t *testing.T) {
	v := xsdtest.Require(t)
	ctx := context.Background()
	agg, err := aggregate1000()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	xsdtest.Valid(t, v, "the aggregate of 1,000 participants", agg)
	aggTook := time.Since(start)

	signer := hub(t)
	dir := t.TempDir()
	var paths []string
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var edited []byte
	for i, ed := range participants() {
		signed, err := metadata.SignEntity(withValidity(ed, 24*time.Hour, time.Hour), signer)
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("mdq-%04d.xml", i), signed)
		registered, err := metadata.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("registered-%04d.xml", i), registered)
		if i == 5 {
			edited = []byte(replaceOnce(string(signed), ` entityID="`, ` entityId="`))
		}
	}
	write("edited.xml", edited)
	start = time.Now()
	res, err := v.ValidateFiles(ctx, paths)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	bad := filepath.Join(dir, "edited.xml")
	if ps := res[bad]; len(ps) == 0 || !strings.Contains(ps[0].Message, "entityI") {
		t.Errorf("a descriptor with entityId for entityID passed: %v", ps)
	}
	delete(res, bad)
	for p, ps := range res {
		t.Errorf("%s: %d problems, first: %s", filepath.Base(p), len(ps), ps[0])
	}
	t.Logf("xmllint: the aggregate (%d bytes) in %v; %d per-entity and registered descriptors in %v",
		len(agg), aggTook.Round(time.Millisecond), len(paths)-1, took.Round(time.Millisecond))
}
