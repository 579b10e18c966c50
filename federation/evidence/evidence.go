// Package evidence exports what settles a dispute over one transaction:
// every signed message the hub relayed or originated for it, exactly as
// received or sent; the hub-signed metadata snapshot of each signer in force
// at the time (versioned, so that a key rolled over since still verifies);
// for JSON-facade transactions, the hub's record of how it authenticated
// the merchant; and a script that checks it all with xmlsec1 and openssl
// alone, without trusting the hub's software (KECIS §12.5).
package evidence

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// Item is one signed message of the bundle.
type Item struct {
	File       string    `json:"file"`
	Kind       string    `json:"kind"`
	Root       string    `json:"root"` // ServiceRequest or ServiceResponse
	Issuer     string    `json:"issuer"`
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	SignerCert string    `json:"signer_cert"`           // certs/<sha256>.pem
	Snapshot   string    `json:"snapshot,omitempty"`    // metadata/<file>.xml
	AuthDetail string    `json:"auth_detail,omitempty"` // facade: how the merchant was authenticated
}

// Manifest describes a bundle.
type Manifest struct {
	Tx         string    `json:"transaction"`
	ExportedAt time.Time `json:"exported_at"`
	Hub        string    `json:"hub_entity_id"`
	HubCert    string    `json:"hub_cert"`
	Items      []Item    `json:"items"`
	Snapshots  []string  `json:"snapshots"`
}

// ErrNoRecords: the transaction is unknown.
var ErrNoRecords = errors.New("evidence: no audit record for that transaction")

// Export writes the bundle of transaction tx (an audit TxID, or a message
// ID) into dir.
func Export(ctx context.Context, st store.Store, hubEntityID string, hubCert *x509.Certificate, tx, dir string, now time.Time) (*Manifest, error) {
	recs, err := st.ListAudit(ctx, store.AuditFilter{TxID: tx})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		recs, err = st.ListAudit(ctx, store.AuditFilter{RequestID: tx})
		if err != nil {
			return nil, err
		}
	}
	// The hub's own statuses are filed by the request they answer.
	seen := map[int64]bool{}
	for _, r := range recs {
		seen[r.ID] = true
	}
	reqIDs := map[string]bool{}
	for _, r := range recs {
		if r.RequestID != "" {
			reqIDs[r.RequestID] = true
		}
	}
	for id := range reqIDs {
		more, err := st.ListAudit(ctx, store.AuditFilter{RequestID: id})
		if err != nil {
			return nil, err
		}
		for _, r := range more {
			if !seen[r.ID] {
				seen[r.ID] = true
				recs = append(recs, r)
			}
		}
	}
	if len(recs) == 0 {
		return nil, ErrNoRecords
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	for _, sub := range []string{"messages", "metadata", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	m := &Manifest{Tx: tx, ExportedAt: now.UTC(), Hub: hubEntityID, HubCert: "certs/hub.pem"}
	if err := os.WriteFile(filepath.Join(dir, "certs", "hub.pem"), saml.EncodeCertPEM(hubCert), 0o644); err != nil {
		return nil, err
	}
	snaps := map[string]bool{}
	n := 0
	for _, r := range recs {
		if len(r.Message) == 0 {
			continue
		}
		n++
		it := Item{Kind: r.Kind, Time: r.Time.UTC()}
		root, err := saml.ParseDocument(r.Message, saml.Limits{MaxBytes: 16 << 20})
		if err != nil {
			return nil, fmt.Errorf("audit record %d: %w", r.ID, err)
		}
		it.Root, it.ID = root.Tag, root.SelectAttrValue("ID", "")
		if iss := childNamed(root, "Issuer"); iss != nil {
			it.Issuer = iss.Text()
		}
		if r.Kind == "facade.request" {
			it.AuthDetail = r.Detail
		}
		it.File = fmt.Sprintf("messages/%02d-%s-%s.xml", n, strings.ReplaceAll(r.Kind, ".", "-"), strings.ToLower(it.Root))
		if err := os.WriteFile(filepath.Join(dir, it.File), r.Message, 0o644); err != nil {
			return nil, err
		}
		cert, err := signerCert(root)
		if err != nil {
			return nil, fmt.Errorf("audit record %d: %w", r.ID, err)
		}
		it.SignerCert = "certs/" + saml.Fingerprint(cert) + ".pem"
		if err := os.WriteFile(filepath.Join(dir, it.SignerCert), saml.EncodeCertPEM(cert), 0o644); err != nil {
			return nil, err
		}
		if it.Issuer != hubEntityID {
			s, err := st.SnapshotAt(ctx, it.Issuer, r.Time)
			if err == nil {
				name := fmt.Sprintf("metadata/%s-v%d.xml", safe(it.Issuer), s.Version)
				if !snaps[name] {
					if err := os.WriteFile(filepath.Join(dir, name), s.Signed, 0o644); err != nil {
						return nil, err
					}
					snaps[name] = true
					m.Snapshots = append(m.Snapshots, name)
				}
				it.Snapshot = name
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		m.Items = append(m.Items, it)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "VERIFY.sh"), verifyScript(m), 0o755); err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(dir, "README.txt"), []byte(readme), 0o644)
}

func childNamed(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

func signerCert(root *etree.Element) (*x509.Certificate, error) {
	sig := childNamed(root, "Signature")
	if sig == nil {
		return nil, errors.New("message is not signed")
	}
	c := sig.FindElement(".//X509Certificate")
	if c == nil {
		return nil, errors.New("signature without a certificate")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), ""))
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// verifyScript checks every signature with xmlsec1 alone: each snapshot
// against the hub's certificate, each message against its signer's
// certificate; and, with openssl, that the issuer's snapshot lists that
// certificate as a signing key (KECIS §12.5). Any failed check stops the
// script with a non-zero status before "all signatures verify". The
// snapshots are the hub's own serialisation (saml/metadata), so the
// signing key is matched as that writes it, white space removed.
func verifyScript(m *Manifest) []byte {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Verifies this evidence bundle with xmlsec1 and openssl alone (Debian packages xmlsec1, openssl).\nset -e\ncd \"$(dirname \"$0\")\"\n")
	for _, s := range m.Snapshots {
		fmt.Fprintf(&b, "xmlsec1 --verify --pubkey-cert-pem %s --id-attr:ID urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor %s\n", m.HubCert, s)
	}
	for _, it := range m.Items {
		fmt.Fprintf(&b, "xmlsec1 --verify --pubkey-cert-pem %s --id-attr:ID urn:kecis:protocol:1.0:%s %s\n", it.SignerCert, it.Root, it.File)
		if it.Snapshot != "" {
			fp := strings.TrimSuffix(filepath.Base(it.SignerCert), ".pem")
			fmt.Fprintf(&b, "# %s was signed by certificate %s; %s must list it as a signing key:\n", it.File, fp, it.Snapshot)
			fmt.Fprintf(&b, "cert=$(openssl x509 -in %s -outform DER | base64 | tr -d '\\n')\n", it.SignerCert)
			fmt.Fprintf(&b, "tr -d ' \\t\\r\\n' < %s | grep -qF \"use=\\\"signing\\\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$cert</ds:X509Certificate>\" ||\n", it.Snapshot)
			fmt.Fprintf(&b, "    { echo \"%s: signer NOT listed as a signing key in %s\" >&2; exit 1; }\n", it.File, it.Snapshot)
			fmt.Fprintf(&b, "echo \"%s: signer listed in %s\"\n", it.File, it.Snapshot)
		}
	}
	b.WriteString("echo \"all signatures verify\"\n")
	return []byte(b.String())
}

const readme = `KECIS evidence bundle

messages/   every signed message of the transaction, byte for byte as the hub received or sent it
metadata/   the hub-signed metadata of each signer in force at the time of its messages
certs/      each signer's certificate (taken from its message) and the hub's certificate
manifest.json  what each file is; for JSON-facade requests, how the hub authenticated the merchant

Run VERIFY.sh: it checks every snapshot against the hub's certificate and every message against
its signer's certificate with xmlsec1, and checks that each signer's certificate is listed as a
signing key in its issuer's snapshot; it stops with an error at the first check that fails.
Nothing here needs the hub's software.
`
