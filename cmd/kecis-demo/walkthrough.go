package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// demoForm is what a merchant's checkout page posts: the flat ECML field
// names of RFC 4112 §2.1. 4111111111111111 is the well-known test card.
var demoForm = url.Values{
	"Ecom_SchemaVersion":               {ecml.SchemaVersion},
	"Ecom_ConsumerOrderID":             {"ORDER-DEMO-0001"},
	"Ecom_BillTo_Postal_Name_First":    {"Gildong"},
	"Ecom_BillTo_Postal_Name_Last":     {"Hong"},
	"Ecom_BillTo_Postal_CountryCode":   {"KR"},
	"Ecom_BillTo_Online_Email":         {"gildong@example.kr"},
	"Ecom_BillTo_Telecom_Phone_Number": {"01012345678"},
	"Ecom_Payment_Card_Name":           {"HONG GILDONG"},
	"Ecom_Payment_Card_Type":           {"VISA"},
	"Ecom_Payment_Card_Number":         {"4111111111111111"},
	"Ecom_Payment_Card_ExpDate_Month":  {"12"},
	"Ecom_Payment_Card_ExpDate_Year":   {"2030"},
	"Ecom_Transaction_Amount":          {"15000"},
	"Ecom_Transaction_CurrencyCode":    {"KRW"},
	"Ecom_Transaction_Type":            {"credit"},
}

type demoParty struct {
	name, entityID string
	signer         *saml.Signer
}

func demoKeys(dir, name string, typ saml.KeyType, now time.Time) (*saml.Signer, bool, error) {
	d := filepath.Join(dir, name)
	kp, cp := filepath.Join(d, "key.pem"), filepath.Join(d, "cert.pem")
	if s, err := saml.LoadSigner(kp, cp); err == nil {
		return s, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("%s: %w (delete the directory to start afresh)", d, err)
	}
	key, err := saml.GenerateKey(typ, nil)
	if err != nil {
		return nil, false, err
	}
	cert, err := saml.SelfSignedCertificate(key, name+" (KECIS development key)", now, 365*24*time.Hour, nil)
	if err != nil {
		return nil, false, err
	}
	pemKey, err := saml.EncodeKeyPEM(key)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(kp, pemKey, 0o600); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(cp, saml.EncodeCertPEM(cert), 0o644); err != nil {
		return nil, false, err
	}
	s, err := saml.NewSigner(key, cert)
	return s, true, err
}

// runWalkthrough walks one card approval through the envelope layer —
// ECML from a checkout form, encrypted, signed, received, tampered with,
// replayed — with the two parties' keys kept in dir.
func runWalkthrough(ctx context.Context, w io.Writer, dir string, now func() time.Time) error {
	if ctx == nil {
		ctx = context.Background()
	}
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(w, "\n[%d] "+format+"\n", append([]any{step}, args...)...)
	}
	fmt.Fprintln(w, "KECIS demo — one card approval, end to end through the envelope layer")

	merchant := demoParty{name: "merchant", entityID: "https://merchant.demo.kecis.example/kecis"}
	issuer := demoParty{name: "issuer", entityID: "https://issuer.demo.kecis.example/kecis"}
	endpoint := "https://issuer.demo.kecis.example/kecis/soap"
	for _, p := range []*demoParty{&merchant, &issuer} {
		typ := saml.KeyECDSA
		if p.name == "issuer" {
			typ = saml.KeyRSA
		}
		s, created, err := demoKeys(dir, p.name, typ, now())
		if err != nil {
			return err
		}
		p.signer = s
		verb := "loaded"
		if created {
			verb = "generated"
		}
		fmt.Fprintf(w, "    %s %s signing key %s (%s)\n", verb, p.name, filepath.Join(dir, p.name, "key.pem"), saml.Fingerprint(s.Cert)[:16])
	}

	say("The merchant's checkout page posts flat ECML fields (RFC 4112 §2.1)")
	payload, err := ecml.FromForm(demoForm)
	if err != nil {
		return err
	}
	card := payload.Ecom.Payment.Card
	money, err := payload.Ecom.Transaction.Money()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    order %s: %v, card %v (%s), expires %s/%s\n", payload.Ecom.ConsumerOrderID, money, card.Number, card.Type, card.ExpDate.Month, card.ExpDate.Year)

	say("ECML validation (Luhn, expiry, currency, amount form, …)")
	if problems := payload.Validate(ecml.ValidateOptions{Now: now(), RequireSchemaVersion: true}); len(problems) > 0 {
		return problems
	}
	fmt.Fprintln(w, "    valid")

	say("The merchant encrypts the card for the issuer, then signs the request (exclusive c14n, %s)", short(merchant.signer.Algorithm()))
	b := &saml.Builder{Issuer: merchant.entityID, Now: now}
	req, err := b.NewRequest(endpoint, saml.ServiceURI("card", "approve"))
	if err != nil {
		return err
	}
	req.IdempotencyKey = "ORDER-DEMO-0001/approve"
	req.Routing = &saml.Routing{CardBIN: card.Number.BIN(), CardLast4: card.Number.Last4()}
	req.Payload = payload
	el, err := req.Element()
	if err != nil {
		return err
	}
	// Encrypt first (the card, for the issuer only), then sign.
	enc := &saml.Encryptor{Recipient: issuer.entityID, Cert: issuer.signer.Cert}
	if _, err := saml.EncryptDocument(el, enc); err != nil {
		return err
	}
	signed, err := merchant.signer.SignToBytes(el)
	if err != nil {
		return err
	}
	rep := saml.Inspect(signed)
	fmt.Fprintf(w, "    %s %s, %d bytes, service %s, signed by %s\n", rep.Kind, rep.ID, len(signed), rep.Service, rep.Signatures[0].CertSubject)
	for _, e := range rep.Encrypted {
		fmt.Fprintf(w, "    %s encrypted for %s (%s, %s)\n", e.Path, e.Recipient, short(e.EncryptionMethod), short(e.KeyTransport))
	}
	fmt.Fprintf(w, "    a relay sees no card number: %v\n", !ecml.ContainsPAN(string(signed)))

	say("The issuer's receive pipeline: size, DOCTYPE, parse, shape, signature, time, Destination, replay, decryption, ECML")
	rc := &saml.Receiver{
		Keys:         saml.StaticKeys{merchant.entityID: []*x509.Certificate{merchant.signer.Cert}},
		Replay:       saml.NewMemoryReplayCache(now),
		Destinations: []string{endpoint},
		Decrypter: &saml.Decryptor{EntityID: issuer.entityID, Keys: []saml.DecryptionKey{
			{Cert: issuer.signer.Cert, Key: issuer.signer.Key.(crypto.Decrypter)},
		}},
		ValidatePayload: true,
		Now:             now,
	}
	got, err := rc.ReceiveRequest(ctx, signed)
	if err != nil {
		return fmt.Errorf("the honest request was refused: %w", err)
	}
	gm, _ := got.Request.Payload.Ecom.Transaction.Money()
	fmt.Fprintf(w, "    accepted from %s: %s for %v on card %v\n", got.Request.Issuer, got.Request.Service, gm, got.Request.Payload.Ecom.Payment.Card.Number)

	say("A relay changes the amount: refused before any handler runs")
	tampered := bytes.Replace(signed, []byte(`Amount="15000"`), []byte(`Amount="150"`), 1)
	if _, err := rc.ReceiveRequest(ctx, tampered); err != nil {
		e := saml.AsError(err)
		fmt.Fprintf(w, "    refused (%s, %s): %s\n", e.Reason, e.Stage, e.Public)
	} else {
		return errors.New("tampered request accepted")
	}

	say("The same message delivered again: a replay, answered with a signed status")
	if _, err := rc.ReceiveRequest(ctx, signed); err != nil {
		e := saml.AsError(err)
		fmt.Fprintf(w, "    refused (%s, %s): %s → %s\n", e.Reason, e.Stage, short(e.Status), short(e.SubStatus))
	} else {
		return errors.New("replay accepted")
	}

	resp, err := (&saml.Builder{Issuer: issuer.entityID, Now: now}).NewResponse(req.ID, "", saml.Status{Code: saml.StatusSuccess})
	if err != nil {
		return err
	}
	rel, err := resp.Element()
	if err != nil {
		return err
	}
	if _, err := issuer.signer.SignToBytes(rel); err != nil {
		return err
	}
	say("The issuer answers with a signed ServiceResponse (InResponseTo %s)", req.ID)
	fmt.Fprintf(w, `
Next:
  kecis envelope inspect FILE        what a message is, without keys
  kecis envelope verify --trust C    the receive pipeline on your own messages
  kecis ecml validate FILE           ECML v2 validation with paths
  make test                          every test, including xmlsec1 interop and the attack corpus
`)
	return nil
}

// short is the last segment of an algorithm or status URI.
func short(uri string) string { return uri[strings.LastIndexAny(uri, ":#")+1:] }
