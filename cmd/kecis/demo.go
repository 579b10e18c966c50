package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/saml"
)

func init() { registerCommand(newDemoCmd) }

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

func newDemoCmd() *cobra.Command {
	var (
		dir         string
		walkthrough bool
		addrs       demoAddrs
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole KECIS federation on this machine (what `make run` starts)",
		Long: `Starts, on loopback, the KECIS hub, a simulated card issuer behind its KECIS
adapter (with its own native API and admin page), a simulated mobile carrier
whose phones receive the issuer's approval texts, a payment gateway behind the
KECIS sidecar, and two demo merchants — with a development PKI generated on
first run into --dir, every participant registered and approved, on SQLite. It
prints what to open and a curl line that approves a card payment through the
hub's JSON facade, then runs until Ctrl-C.

Once the federation is up it writes DIR/demo.json (0600): the hub's URL and CA,
each merchant's API key and TLS client certificate, the test cards, every
participant's keys and the addresses actually bound — what scripts read
(docs/demo.md). Every address flag accepts port 0 (a free port), so several
demos run side by side in different directories.

The demo hub enables the facade's clear-card development mode (card numbers in
clear over TLS, encrypted by the hub at once); a production hub refuses them.

--walkthrough instead walks one message through the envelope layer and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if walkthrough {
				return runDemo(cmd.Context(), cmd.OutOrStdout(), filepath.Join(dir, "walkthrough"), time.Now)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runFederationDemo(ctx, cmd.OutOrStdout(), dir, addrs, nil)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".kecis-dev", "directory for the development keys and databases")
	cmd.Flags().BoolVar(&walkthrough, "walkthrough", false, "walk one card approval through the envelope layer and exit")
	cmd.Flags().StringVar(&addrs.hub, "hub", "127.0.0.1:8443", "the hub's HTTPS address")
	cmd.Flags().StringVar(&addrs.ops, "hub-ops", "127.0.0.1:9090", "the hub's /healthz, /readyz, /metrics")
	cmd.Flags().StringVar(&addrs.issuer, "issuer", "127.0.0.1:8444", "the issuer's KECIS endpoint")
	cmd.Flags().StringVar(&addrs.native, "issuer-api", "127.0.0.1:8081", "the issuer's own API and admin page")
	cmd.Flags().StringVar(&addrs.telecom, "telecom", "127.0.0.1:8082", "the carrier's SMS gateway and phone pages")
	cmd.Flags().StringVar(&addrs.pgNative, "pg-api", "127.0.0.1:8083", "the PG's own API")
	cmd.Flags().StringVar(&addrs.pgKECIS, "pg-kecis", "127.0.0.1:8445", "the PG sidecar's KECIS endpoint")
	cmd.Flags().StringVar(&addrs.pgCall, "pg-call", "127.0.0.1:8446", "the PG sidecar's local calling endpoint")
	return cmd
}

type demoAddrs struct{ hub, ops, issuer, native, telecom, pgNative, pgKECIS, pgCall string }

// runFederationDemo starts the demo federation, prints the guide and waits
// for ctx. ready, when set, receives the demo once it is up (tests).
func runFederationDemo(ctx context.Context, w io.Writer, dir string, a demoAddrs, ready chan<- *demo.Demo) error {
	if ctx == nil {
		ctx = context.Background()
	}
	logFile, err := openDemoLog(dir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d, err := demo.Start(ctx, demo.Config{Dir: dir, HubListen: a.hub, HubOps: a.ops, IssuerKECIS: a.issuer, IssuerNative: a.native, Telecom: a.telecom,
		PGNative: a.pgNative, PGKECIS: a.pgKECIS, PGCall: a.pgCall,
		AllowClearCard: true, Log: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		return err
	}
	defer d.Close()
	c, m := d.Cards[0], d.Merchants[0]
	var shops strings.Builder
	for _, s := range d.Merchants {
		fmt.Fprintf(&shops, "  %-15s %s\n", s.Name, s.EntityID)
	}
	fmt.Fprintf(w, `KECIS demo federation is up (state and logs in %s).

  hub             %s   (metadata: %s/kecis/metadata, ops: %s/readyz)
  payment gateway %s   (its own API; it joins KECIS through the sidecar at %s)
  card issuer     %s   (its own API; admin page: %s/admin)
  mobile carrier  %s/phones   (the cardholders' phones and their texts)

Merchants (each with its own API key and TLS client certificate):
%s
Everything a script needs — the hub's URL and CA, the merchants' API keys and
certificates, the test cards, every participant's keys, the addresses bound —
is in %s (docs/demo.md).

NOTE: the demo hub's JSON facade accepts card numbers in clear (development
mode): the hub encrypts them for the issuer at once. A production hub refuses
them; merchants' pages encrypt the card for the provider in the browser.

Test card: %s, expires %02d/%d, holder %s, phone %s (%s)

Approve a card payment as %s through the hub's JSON facade (merchant → hub →
PG, through its sidecar → hub → issuer); with another merchant's api_key from
demo.json, the same line pays that merchant:

%s

Then open the holder's phone to see the issuer's approval text:
  %s/phones/%s

Press Ctrl-C to stop.
`, dir, d.HubURL, d.HubURL, d.HubOps, d.PGNative, d.PGKECIS, d.IssuerNative, d.IssuerNative, d.TelecomURL,
		shops.String(), filepath.Join(dir, demo.ManifestFile),
		c.PAN.Reveal(), c.ExpMonth, c.ExpYear, c.Holder, c.Phone, c.Description,
		m.Name, curlLine(d, m, c), d.TelecomURL, strings.ReplaceAll(c.Phone, "-", ""))
	if ready != nil {
		ready <- d
	}
	<-ctx.Done()
	fmt.Fprintln(w, "stopping")
	return nil
}

func openDemoLog(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "demo.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
}

// curlLine is a shell command that approves 15,000 KRW on the test card as
// merchant m, with a fresh order and idempotency key each time it runs.
func curlLine(d *demo.Demo, m *demo.Merchant, c demo.TestCard) string {
	body := fmt.Sprintf(`{"fields":{"Ecom_ConsumerOrderID":"ORDER-'"$T"'","Ecom_Transaction_Amount":"15000","Ecom_Transaction_CurrencyCode":"KRW","Ecom_Transaction_Type":"credit","Ecom_Payment_Card_Number":"%s","Ecom_Payment_Card_ExpDate_Month":"%02d","Ecom_Payment_Card_ExpDate_Year":"%d"}}`,
		c.PAN.Reveal(), c.ExpMonth, c.ExpYear)
	return fmt.Sprintf("  T=$(date +%%s%%N); curl -sS --cacert %s %s/v1/card/approve \\\n"+
		"    -H 'Authorization: Bearer %s' -H \"Idempotency-Key: demo-$T\" -H 'Content-Type: application/json' \\\n"+
		"    -d '%s'", d.HubTLSCert, d.HubURL, m.APIKey, body)
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

func runDemo(ctx context.Context, w io.Writer, dir string, now func() time.Time) error {
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
	pan := card.Number.Reveal()
	req.Routing = &saml.Routing{CardBIN: pan[:6], CardLast4: pan[len(pan)-4:]}
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

func short(uri string) string {
	for i := len(uri) - 1; i >= 0; i-- {
		if uri[i] == ':' || uri[i] == '#' {
			return uri[i+1:]
		}
	}
	return uri
}
