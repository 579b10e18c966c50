package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/spf13/cobra"

	"github.com/kecis/kecis/saml"
)

func init() { registerCommand(newEnvelopeCmd) }

func newEnvelopeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "envelope",
		Short: "Sign, verify and inspect KECIS messages (the tools to debug an integration with)",
		Long: `Tools in the spirit of xmlsec1 for KECIS messages. Every command reads FILE,
or stdin when FILE is absent or "-", and writes stdout.`,
	}
	cmd.AddCommand(newEnvelopeSignCmd(), newEnvelopeVerifyCmd(), newEnvelopeInspectCmd())
	for _, f := range envelopeSubcommands {
		cmd.AddCommand(f())
	}
	return cmd
}

// envelopeSubcommands are added by other files of this package.
var envelopeSubcommands []func() *cobra.Command

func newEnvelopeSignCmd() *cobra.Command {
	var (
		keyPath, certPath string
		keep              bool
	)
	cmd := &cobra.Command{
		Use:   "sign --key K --cert C [--keep] [FILE]",
		Short: "Sign the root of a KECIS message (or any root element with an ID)",
		Long: `Adds the enveloped signature of the KECIS signature profile to the document's
root element: exclusive c14n, one reference to the root's ID, SHA-256,
rsa-sha256 (RSA >= 2048) or ecdsa-sha256 (P-256, raw r||s), KeyInfo carrying
the certificate, placed right after saml:Issuer. Prints the signed document.

The input is a template: the signed message gets a fresh ID and, when the
root has one, an IssueInstant of now (an authentication result's
AuthnInstant and NotOnOrAfter move with it), so that a template signed twice makes
two messages a receiver accepts (KECIS §7.2 refuses a repeated ID and an
IssueInstant outside the clock skew; a retry is a new message with the same
IdempotencyKey, §7.1). --keep signs the ID and IssueInstant as they are (to
reproduce a message, or to sign one built elsewhere).`,
		Example: `  kecis envelope sign --key keys/signing/key.pem --cert keys/signing/cert.pem request.xml > signed.xml
  kecis envelope sign --keep --key keys/signing/key.pem --cert keys/signing/cert.pem request.xml > same-id.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			signer, err := saml.LoadSigner(keyPath, certPath)
			if err != nil {
				return err
			}
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			root, err := saml.ParseDocument(data, saml.Limits{MaxBytes: maxInput, MaxDepth: 256})
			if err != nil {
				return fmt.Errorf("input: %s", describeErr(err))
			}
			if !keep {
				if err := freshen(root, envOf(cmd)); err != nil {
					return err
				}
			}
			out, err := signer.SignToBytes(root)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "PEM private key (required)")
	cmd.Flags().StringVar(&certPath, "cert", "", "PEM certificate of the key (required)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the input's ID and IssueInstant instead of giving the message fresh ones")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("cert")
	return cmd
}

// freshen gives a template's root a fresh ID (saml.IDSource, from e's
// randomness) and, when it has one, an IssueInstant of e's now: what makes
// it a new message: a receiver refuses a repeated ID as a replay and an
// IssueInstant outside its clock skew, and a retry is a new message with
// the same idempotency key (KECIS §7.1, §7.2).
func freshen(root *etree.Element, e env) error {
	if root.SelectAttr("ID") == nil {
		return nil // SignToBytes says what is missing
	}
	id, err := saml.IDSource{Rand: e.rand}.NewID()
	if err != nil {
		return err
	}
	root.CreateAttr("ID", id)
	issued := root.SelectAttr("IssueInstant")
	if issued == nil {
		return nil
	}
	now := e.now().UTC()
	if was, err := time.Parse(time.RFC3339Nano, issued.Value); err == nil {
		// An authentication result's other instants move with it, so that
		// its validity window stays what the template says.
		for _, name := range []string{"AuthnInstant", "NotOnOrAfter"} {
			if a := root.SelectAttr(name); a != nil {
				if t, err := time.Parse(time.RFC3339Nano, a.Value); err == nil {
					a.Value = t.Add(now.Sub(was)).UTC().Format(saml.TimeLayout)
				}
			}
		}
	}
	issued.Value = now.Format(saml.TimeLayout)
	return nil
}

func newEnvelopeVerifyCmd() *cobra.Command {
	var (
		trust       []string
		nowFlag     string
		destination string
		skew        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify --trust CERT... [--now RFC3339] [--destination URL] [FILE]",
		Short: "Run the receive pipeline up to signature, time and Destination checks",
		Long: `Runs the KECIS receive pipeline on a request, response or authentication
result: size cap, DOCTYPE refusal, strict parse, profile shape, signature
verification against the --trust certificates (any of them; KeyInfo selects),
then Version, IssueInstant within the clock skew of --now (default: the
current time) and, when --destination is given, Destination.

Exits 0 and prints the element that verification returned (the only content
a receiver may use), or exits 1 with the public reason on stderr.`,
		Example: `  kecis envelope verify --trust partner-cert.pem signed.xml
  kecis envelope verify --trust old.pem --trust new.pem --now 2026-11-22T10:00:00Z --destination https://issuer.example/kecis/soap archived.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := verifierFor(trust, nowFlag, destination, skew)
			if err != nil {
				return err
			}
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			verified, _, err := r.Verify(context.Background(), data)
			if err != nil {
				e := saml.AsError(err)
				fmt.Fprintln(cmd.ErrOrStderr(), "refused:", e.Public)
				if v, _ := cmd.Flags().GetBool("explain"); v && e.Cause() != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "cause:", e.Cause())
				}
				return fail(1, nil)
			}
			out, err := saml.Serialize(verified)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&trust, "trust", nil, "PEM certificate trusted for the issuer (repeat for a rollover)")
	cmd.Flags().StringVar(&nowFlag, "now", "", "the clock, RFC 3339 (default: now)")
	cmd.Flags().StringVar(&destination, "destination", "", "check that Destination equals this URL")
	cmd.Flags().DurationVar(&skew, "clock-skew", saml.DefaultClockSkew, "acceptance window around IssueInstant")
	cmd.Flags().Bool("explain", false, "also print the private cause of a refusal (for the integrator's own messages)")
	_ = cmd.MarkFlagRequired("trust")
	return cmd
}

// verifierFor is the Receiver of kecis envelope verify's flags: any of the
// trusted certificates, the clock (RFC 3339, default now), the clock skew
// and, when given, the Destination to check.
func verifierFor(trust []string, nowFlag, destination string, skew time.Duration) (*saml.Receiver, error) {
	certs, err := saml.LoadCertificates(trust...)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if nowFlag != "" {
		if now, err = time.Parse(time.RFC3339, nowFlag); err != nil {
			return nil, usagef("--now: %v", err)
		}
	}
	r := &saml.Receiver{
		Keys:      saml.AnyIssuerKeys(certs),
		Now:       func() time.Time { return now },
		ClockSkew: skew,
		Limits:    saml.Limits{MaxBytes: maxInput},
	}
	if destination != "" {
		r.Destinations = []string{destination}
	}
	return r, nil
}

func newEnvelopeInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [FILE]",
		Short: "Show what a KECIS message is and what is wrong with it, without keys",
		Long: `Shows the message type, issuer, IDs, service, the signer certificate
(subject, SHA-256 fingerprint, expiry), what is encrypted for whom with which
algorithms, and every problem visible without keys: a forbidden algorithm, a
signature not at the profile's place, a missing idempotency key on an
operation that changes state. It does not verify anything.

Exits 0 when it sees no problem, 1 when it lists one (an unsigned message
is one).`,
		Example: `  kecis envelope inspect signed.xml
  kecis envelope inspect --json signed.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			rep := saml.Inspect(data)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if n := len(rep.Problems); n > 0 {
				return fail(exitFailed, fmt.Errorf("%d problem(s) visible without keys", n))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printReport(w io.Writer, r *saml.Report) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s %s\n", k+":", v)
		}
	}
	line("message", string(r.Kind))
	if r.Kind == "" {
		line("root", r.Root)
	}
	line("id", r.ID)
	line("in-response-to", r.InResponseTo)
	line("issuer", r.Issuer)
	line("issue-instant", r.IssueInstant)
	line("destination", r.Destination)
	line("service", r.Service)
	line("idempotency-key", r.IdempotencyKey)
	line("on-behalf-of", r.OnBehalfOf)
	if r.Status != nil {
		line("status", strings.TrimSpace(r.Status.Code+" "+r.Status.SubCode))
		line("status-message", r.Status.Message)
	}
	for _, s := range r.Signatures {
		fmt.Fprintf(w, "signature:       %s\n", s.Path)
		line("  method", s.SignatureMethod)
		line("  digest", s.DigestMethod)
		line("  reference", s.Reference)
		line("  signer", s.CertSubject)
		line("  sha256", s.CertFingerprint)
		if !s.CertNotAfter.IsZero() {
			line("  not-after", s.CertNotAfter.Format(time.RFC3339))
		}
	}
	for _, e := range r.Encrypted {
		fmt.Fprintf(w, "encrypted:       %s\n", e.Path)
		line("  data", e.EncryptionMethod)
		line("  key-transport", e.KeyTransport)
		line("  recipient", e.Recipient)
		line("  recipient-cert", e.RecipientCertSHA256)
	}
	for _, a := range r.AuthResults {
		line("auth-result", a)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "problems:        none visible without keys")
		return
	}
	fmt.Fprintln(w, "problems:")
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func describeErr(err error) string {
	e := saml.AsError(err)
	if c := e.Cause(); c != nil {
		return e.Public + ": " + c.Error()
	}
	return e.Public
}
