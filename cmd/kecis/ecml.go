package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/ecml"
)

func init() { registerCommand(newEcmlCmd) }

// ecmlMaxFormSize caps what from-form reads: a checkout form is a few kilobytes.
const ecmlMaxFormSize = 1 << 20

func newEcmlCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ecml",
		Short: "Validate and convert ECML v2 payloads (RFC 4112)",
		Long: `ecml works on ECML v2 data (RFC 4112) as KECIS carries it: a standalone
document whose root is a bare Ecom element, or a kecis:Payload container
(urn:kecis:protocol:1.0) holding Ecom and the KECIS extension elements
(urn:kecis:ecml-ext:1.0).

It validates documents, and converts between the XML and the ECML flat field
names of HTML checkout forms (Ecom_ShipTo_Postal_City, Ecom_Payment_Card_Number…).
No card number, password or other secret is ever printed in a message.`,
	}
	cmd.AddCommand(newEcmlValidateCmd(), newEcmlFromFormCmd(), newEcmlToFormCmd())
	return cmd
}

func newEcmlValidateCmd() *cobra.Command {
	var (
		now              string
		requireEncrypted bool
		allowEncrypted   bool
	)
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check an ECML document and list every problem",
		Long: `validate reads an ECML document from FILE, or standard input when FILE is
absent or "-", and checks it against RFC 4112 and the KECIS profile: structure,
card numbers (length and Luhn), expiry dates, card types, currencies and
amounts, country codes, lengths, the extension elements, and
Ecom/@SchemaVersion, which a standalone document must carry.

Each problem is printed on standard output as "PATH: message", one per line,
and the exit status is 1; a valid document prints nothing and exits 0. A
document that cannot be read (not XML, a DOCTYPE, an unknown element) exits 1
with the reason on standard error. Messages never show a full card number.`,
		Example: `  kecis ecml validate order.xml
  kecis ecml validate --now 2026-11-05T00:00:00Z < order.xml
  kecis ecml validate --require-encrypted outgoing-payload.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := ecml.ValidateOptions{
				Now:                  time.Now(),
				AllowEncrypted:       allowEncrypted,
				RequireEncrypted:     requireEncrypted,
				RequireSchemaVersion: true,
			}
			if now != "" {
				t, err := time.Parse(time.RFC3339, now)
				if err != nil {
					return ecmlUsageError(cmd, "--now must be an RFC 3339 time, e.g. 2026-11-05T00:00:00Z")
				}
				opts.Now = t
			}
			p, err := ecmlReadDocument(cmd, args)
			if err != nil {
				return err
			}
			problems := p.Validate(opts)
			for _, pr := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), pr.String())
			}
			if len(problems) > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&now, "now", "", "validation time for expiry checks, RFC 3339 (default: the current time)")
	cmd.Flags().BoolVar(&allowEncrypted, "allow-encrypted", true, "accept xenc:EncryptedData where a sensitive element stands")
	cmd.Flags().BoolVar(&requireEncrypted, "require-encrypted", false, "report every sensitive element in clear (what a sender checks before sending)")
	return cmd
}

func newEcmlFromFormCmd() *cobra.Command {
	var allowUnknown bool
	cmd := &cobra.Command{
		Use:   "from-form",
		Short: "Convert ECML flat fields (a urlencoded form) on standard input to ECML v2 XML",
		Long: `from-form reads application/x-www-form-urlencoded data on standard input,
takes the ECML flat fields (names starting with "Ecom_"; others are ignored)
and prints the ECML v2 document: a bare Ecom, or a kecis:Payload container
when fields without an ECML slot (user gender, birth date, preferences,
device) need the KECIS extension elements.

Names that start with "Ecom_" but are not ECML v2 flat names are listed on
standard error and the exit status is 1, unless --allow-unknown is given.
A name given twice, or a value that cannot be stored, always fails. The
values themselves are not validated: pipe the output to "kecis ecml validate".`,
		Example: `  printf 'Ecom_Payment_Card_Number=4111111111111111&Ecom_Transaction_Amount=15000' |
    kecis ecml from-form
  kecis ecml from-form --allow-unknown < checkout-form.txt > order.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := ecmlReadLimited(cmd.InOrStdin(), ecmlMaxFormSize)
			if err != nil {
				return ecmlFailf(cmd, "reading standard input: %v", err)
			}
			values, err := url.ParseQuery(string(ecmlTrimNewline(data)))
			if err != nil {
				return ecmlFailf(cmd, "not application/x-www-form-urlencoded data: %v", err)
			}
			p, err := ecml.FromForm(values)
			var fe *ecml.FormError
			switch {
			case errors.As(err, &fe):
				for _, n := range fe.Unknown {
					fmt.Fprintf(cmd.ErrOrStderr(), "kecis: unknown ECML field name %s\n", n)
				}
				for _, pr := range fe.Problems {
					fmt.Fprintf(cmd.ErrOrStderr(), "kecis: %s: %s\n", pr.Name, pr.Message)
				}
				if !fe.OnlyUnknown() || !allowUnknown {
					return &exitError{code: exitFailed}
				}
			case err != nil:
				return ecmlFailf(cmd, "%v", err)
			}
			out, err := p.MarshalDocument()
			if err != nil {
				return ecmlFailf(cmd, "%v", err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&allowUnknown, "allow-unknown", false, "report unknown Ecom_ names but convert the rest and exit 0")
	return cmd
}

func newEcmlToFormCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "to-form [FILE]",
		Short: "Convert an ECML document to ECML flat fields (a urlencoded form)",
		Long: `to-form reads an ECML document from FILE, or standard input when FILE is
absent or "-", and prints its ECML flat fields as one line of
application/x-www-form-urlencoded data, names sorted. What flat names cannot
express (Mode and id attributes, bank accounts and the other extension
elements without flat names, encrypted elements) is left out. The output
holds the document's values, card numbers included: treat it like the input.`,
		Example: `  kecis ecml to-form order.xml
  kecis ecml from-form < form.txt | kecis ecml to-form`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := ecmlReadDocument(cmd, args)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), p.Form().Encode())
			return err
		},
	}
}

// ecmlReadDocument reads and parses the document named by args (or stdin); a
// failure is reported on stderr and becomes exit status 1.
func ecmlReadDocument(cmd *cobra.Command, args []string) (*ecml.Payload, error) {
	var (
		data []byte
		err  error
	)
	if len(args) == 0 || args[0] == "-" {
		data, err = ecmlReadLimited(cmd.InOrStdin(), ecml.MaxDocumentSize)
	} else {
		var f *os.File
		f, err = os.Open(args[0])
		if err == nil {
			data, err = ecmlReadLimited(f, ecml.MaxDocumentSize)
			f.Close()
		}
	}
	if err != nil {
		return nil, ecmlFailf(cmd, "%v", err)
	}
	p, err := ecml.ParseDocument(data)
	if err != nil {
		return nil, ecmlFailf(cmd, "%v", err)
	}
	return p, nil
}

// ecmlReadLimited reads all of r, refusing more than max bytes.
func ecmlReadLimited(r io.Reader, max int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("input is larger than %d bytes", max)
	}
	return data, nil
}

func ecmlTrimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// ecmlFailf prints a message on stderr and returns exit status 1 without a
// second message.
func ecmlFailf(cmd *cobra.Command, format string, args ...any) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "kecis: "+format+"\n", args...)
	return &exitError{code: exitFailed}
}

// ecmlUsageError reports a bad flag value with exit status 2.
func ecmlUsageError(cmd *cobra.Command, msg string) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "kecis: "+msg)
	return &exitError{code: exitUsage}
}
