package metadata_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

func TestSignVerifyEntity(t *testing.T) {
	for _, hubKey := range []string{"issuer-rsa", "issuer-ec"} {
		t.Run(hubKey, func(t *testing.T) {
			signer := loadSigner(t, hubKey)
			trusted := []*x509.Certificate{signer.Cert}
			ed := withValidity(simple(t), 24*time.Hour, time.Hour)
			signed, err := metadata.SignEntity(ed, signer)
			if err != nil {
				t.Fatal(err)
			}
			if ed.ID != "" {
				t.Fatal("SignEntity modified its argument")
			}
			root, err := saml.ParseDocument(signed, saml.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if first := root.ChildElements()[0]; first.Tag != "Signature" {
				t.Fatalf("the signature is not the first child but %s", first.FullTag())
			}
			if id := root.SelectAttrValue("ID", ""); !strings.HasPrefix(id, "_") || len(id) != 33 {
				t.Fatalf("ID %q", id)
			}
			got, err := metadata.VerifyEntity(signed, trusted, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.EntityID != simpleID || len(got.SigningCertificates()) != 2 || !got.ValidUntil.Equal(ed.ValidUntil) || got.CacheDuration != time.Hour {
				t.Fatalf("verified descriptor differs: %+v", got)
			}
			// Several trusted hub certificates (the hub's own rollover).
			if _, err := metadata.VerifyEntity(signed, []*x509.Certificate{loadCert(t, "attacker-rsa"), signer.Cert}, now); err != nil {
				t.Fatal(err)
			}

			refuse := func(name string, data []byte, trusted []*x509.Certificate, at time.Time, want error, text string) {
				t.Helper()
				_, err := metadata.VerifyEntity(data, trusted, at)
				if err == nil {
					t.Fatalf("%s: accepted", name)
				}
				if want != nil && !errors.Is(err, want) {
					t.Fatalf("%s: %v, want %v", name, err, want)
				}
				if text != "" && !strings.Contains(err.Error(), text) {
					t.Fatalf("%s: %v, want %q", name, err, text)
				}
			}
			refuse("wrong hub", signed, []*x509.Certificate{loadCert(t, "attacker-rsa")}, now, saml.ErrSignature, "not one of")
			refuse("tampered endpoint", []byte(strings.Replace(string(signed), "https://pg.example/kecis/soap", "https://attacker.example/soap", 1)), trusted, now, saml.ErrSignature, "digest")
			refuse("tampered BINs", []byte(strings.Replace(string(signed), "411111-411199", "400000-499999", 1)), trusted, now, saml.ErrSignature, "digest")
			refuse("expired", signed, trusted, now.Add(24*time.Hour), metadata.ErrExpired, "")
			refuse("signature removed", removeSignature(t, signed), trusted, now, saml.ErrShape, "")
			refuse("aggregate instead", []byte(strings.ReplaceAll(string(signed), "md:EntityDescriptor", "md:EntitiesDescriptor")), trusted, now, nil, "not an md:EntityDescriptor")
			refuse("DOCTYPE", append([]byte(`<!DOCTYPE md:EntityDescriptor>`), signed...), trusted, now, saml.ErrDoctype, "")
			// A second, inner signature (signature wrapping) is refused.
			wrapped := strings.Replace(string(signed), "</md:RoleDescriptor>", "</md:RoleDescriptor>"+signatureOf(t, signed), 1)
			refuse("second signature", []byte(wrapped), trusted, now, saml.ErrShape, "")
		})
	}
}

func TestSignEntityNeedsValidUntil(t *testing.T) {
	if _, err := metadata.SignEntity(simple(t), hub(t)); !errors.Is(err, metadata.ErrNoValidUntil) {
		t.Fatalf("%v", err)
	}
	// And a verifier refuses a signed descriptor without one (one signed by
	// other means): it could be replayed after a key was removed.
	el, err := simple(t).ToElement()
	if err != nil {
		t.Fatal(err)
	}
	el.CreateAttr("ID", "_nobound")
	signed, err := hub(t).SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metadata.VerifyEntity(signed, []*x509.Certificate{hub(t).Cert}, now); !errors.Is(err, metadata.ErrNoValidUntil) {
		t.Fatalf("%v", err)
	}
}

func removeSignature(t *testing.T, signed []byte) []byte {
	t.Helper()
	s := string(signed)
	i := strings.Index(s, "<ds:Signature")
	j := strings.Index(s, "</ds:Signature>") + len("</ds:Signature>")
	return []byte(s[:i] + s[j:])
}

func signatureOf(t *testing.T, signed []byte) string {
	t.Helper()
	s := string(signed)
	return s[strings.Index(s, "<ds:Signature") : strings.Index(s, "</ds:Signature>")+len("</ds:Signature>")]
}

func TestAggregateSmall(t *testing.T) {
	signer := hub(t)
	eds := participants()[:20]
	expiring := withValidity(participants()[20], time.Hour, 0)
	all := append(append([]*metadata.EntityDescriptor{}, eds...), expiring)
	signed, err := metadata.BuildAggregate(all, "urn:kecis:federation:test", "", now.Add(24*time.Hour), 6*time.Hour, signer)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := metadata.VerifyAggregate(signed, []*x509.Certificate{signer.Cert}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Entities) != 21 || agg.Name != "urn:kecis:federation:test" || agg.CacheDuration != 6*time.Hour || len(agg.Expired) != 0 {
		t.Fatalf("%d entities, %+v", len(agg.Entities), agg)
	}
	if ed, ok := agg.Entity(eds[7].EntityID); !ok || len(ed.Endpoints) != 10 {
		t.Fatal("Entity lookup")
	}
	// Two hours later the one participant whose own validUntil passed is
	// left out; the rest stands.
	agg, err = metadata.VerifyAggregate(signed, []*x509.Certificate{signer.Cert}, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Entities) != 20 || len(agg.Expired) != 1 || agg.Expired[0] != expiring.EntityID {
		t.Fatalf("expired child: %d entities, %v", len(agg.Entities), agg.Expired)
	}
	for name, c := range map[string]struct {
		data  string
		at    time.Time
		trust string
		want  string
	}{
		"expired":   {string(signed), now.Add(25 * time.Hour), "issuer-rsa", "validUntil has passed"},
		"wrong hub": {string(signed), now, "attacker-rsa", "not verified"},
		"tampered":  {strings.Replace(string(signed), `Roles="pg"`, `Roles="pg issuer"`, 1), now, "issuer-rsa", "digest"},
		"entity":    {string(mustSignEntity(t, withValidity(eds[0], time.Hour, 0))), now, "issuer-rsa", "not an md:EntitiesDescriptor"},
	} {
		if _, err := metadata.VerifyAggregate([]byte(c.data), []*x509.Certificate{loadCert(t, c.trust)}, c.at); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), c.want) && !(name == "wrong hub" && errors.Is(err, saml.ErrSignature)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := metadata.BuildAggregate(append(all, eds[0]), "", "", now.Add(time.Hour), 0, signer); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate entity: %v", err)
	}
	if _, err := metadata.BuildAggregate(all, "", "", time.Time{}, 0, signer); !errors.Is(err, metadata.ErrNoValidUntil) {
		t.Fatalf("no validUntil: %v", err)
	}
}

// TestAggregateChildIsPlainDescriptor: the children of an aggregate carry
// neither IDs nor their own namespace declarations (only the aggregate's
// signature stands) and read as descriptors in place.
func TestAggregateChildIsPlainDescriptor(t *testing.T) {
	signed, err := metadata.BuildAggregate(participants()[:3], "", "_agg1", now.Add(time.Hour), 0, hub(t))
	if err != nil {
		t.Fatal(err)
	}
	root, err := saml.ParseDocument(signed, saml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if root.SelectAttrValue("ID", "") != "_agg1" {
		t.Fatal("aggregate ID")
	}
	kids := root.ChildElements()
	if len(kids) != 4 || kids[0].Tag != "Signature" {
		t.Fatalf("children: %d", len(kids))
	}
	for _, k := range kids[1:] {
		if k.SelectAttr("ID") != nil || k.SelectAttr("xmlns:md") != nil {
			t.Fatal("children carry their own ID or namespace declarations")
		}
		if _, err := metadata.FromElement(k); err != nil {
			t.Fatal(err)
		}
	}
}

func mustSignEntity(t *testing.T, ed *metadata.EntityDescriptor) []byte {
	t.Helper()
	b, err := metadata.SignEntity(ed, hub(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
