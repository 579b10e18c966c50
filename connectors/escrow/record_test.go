package escrow

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
)

// TestRecordsVerifyWithXMLSec: every event of an escrow's life carries a
// record signed by the bank that verifies with xmlsec1 alone (and with
// saml.VerifyElement), states the change, and holds no account number in
// clear; a record whose amount or state was changed no longer verifies.
func TestRecordsVerifyWithXMLSec(t *testing.T) { recordsVerify(t, newRig(t)) }

func recordsVerify(t *testing.T, r *rig) {
	x := r.ok(t)(r.e.Open(ctx, r.order(150_000)))
	r.ok(t)(r.e.Pay(ctx, buyer, x.Reference, buyerAccount))
	r.ok(t)(r.e.Ship(ctx, shopID, Ref{Reference: x.Reference}, "CJ대한통운", "601234567890", "s"))
	r.ok(t)(r.e.Dispute(ctx, buyer, x.Reference, "상자가 파손됨"))
	r.ok(t)(r.e.Refund(ctx, shopID, Ref{Reference: x.Reference}, "r"))
	events, err := r.e.Events(ctx, x.Reference)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 {
		t.Fatalf("%d events", len(events))
	}

	xmlsec := testutil.RequireTool(t, "xmlsec1", "xmlsec1")
	dir := t.TempDir()
	pem := filepath.Join(keyDir, "merchant-ec.cert.pem")
	verify := func(name string, data []byte) error {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", pem, "--id-attr:ID", saml.NSKECIS+":"+RecordRoot, f).CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	ids := map[string]bool{}
	for _, ev := range events {
		doc := string(ev.Record)
		for _, secret := range []string{buyerAccount, shopAccount, "110123456789", "110987654321"} {
			if strings.Contains(doc, secret) {
				t.Fatalf("event %d's record holds %s", ev.Seq, secret)
			}
		}
		for _, want := range []string{`Reference="` + x.Reference + `"`, `Merchant="` + shopID + `"`, `Amount="150000"`, `Currency="KRW"`,
			`State="` + string(ev.To) + `"`, `Kind="` + ev.Kind + `"`, `Account="****-4321"`, "<saml:Issuer>" + bankID} {
			if !strings.Contains(doc, want) {
				t.Errorf("event %d (%s): the record lacks %s", ev.Seq, ev.Kind, want)
			}
		}
		root, err := saml.ParseDocument(ev.Record, saml.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		ids[root.SelectAttrValue("ID", "")] = true
		if _, _, err := saml.VerifyElement(root, []*x509.Certificate{r.signer.Cert}, r.clock.Now()); err != nil {
			t.Fatalf("event %d: VerifyElement: %v", ev.Seq, err)
		}
		if err := verify("record.xml", ev.Record); err != nil {
			t.Fatalf("event %d: xmlsec1 --verify: %v", ev.Seq, err)
		}
	}
	if len(ids) != len(events) {
		t.Fatalf("record IDs repeat: %v", ids)
	}
	disputed := string(events[3].Record)
	for _, want := range []string{`Reason="상자가 파손됨"`, `Carrier="CJ대한통운"`, `Tracking="601234567890"`, `From="shipped"`,
		`Actor="buyer:` + buyer + `"`, `ConfirmBy="2026-12-10T10:00:00Z"`, `<kecis:Buyer Account="****-6789"/>`} {
		if !strings.Contains(disputed, want) {
			t.Errorf("the dispute's record lacks %s:\n%s", want, disputed)
		}
	}
	for old, changed := range map[string]string{`Amount="150000"`: `Amount="15000"`, `To="disputed"`: `To="confirmed"`} {
		tampered := bytes.Replace(events[3].Record, []byte(old), []byte(changed), 1)
		if err := verify("tampered.xml", tampered); err == nil {
			t.Fatalf("xmlsec1 verified a record with %s", changed)
		}
	}
}
