package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/internal/xsd"
	"github.com/kecis/kecis/saml/metadata"
)

func init() { envelopeSubcommands = append(envelopeSubcommands, newEnvelopeValidateCmd) }

// schemaCheck is what kecis envelope validate and kecis metadata validate
// share: one document against docs/spec/schema, with xmllint.
type schemaCheck struct {
	// what the command validates, for its messages ("a KECIS message").
	what string
	// accepts says whether the root belongs to this command; other names
	// the command that takes the rest.
	accepts func(ns, local string) bool
	other   string
}

func newEnvelopeValidateCmd() *cobra.Command {
	return schemaCheck{
		what:    "a KECIS message",
		accepts: func(ns, _ string) bool { return ns != metadata.NSMD },
		other:   "kecis metadata validate",
	}.command(`Check a KECIS message against the KECIS 1.0 XML Schemas, with line numbers`,
		`Validates a request, response, authentication result, record or ECML
document against the KECIS 1.0 XML Schemas (docs/spec/schema: kecis.xsd,
kecis-ecml-ext.xsd, ecml-v2.xsd over the OASIS SAML 2.0, XML Signature and XML
Encryption schemas) with xmllint (libxml2), offline: the schemas are built
into kecis and their catalog maps every OASIS and W3C schema to Debian's
packaged copies (libxml2-utils, opensaml-schemas, xmltooling-schemas).

Each problem is printed on standard output as "FILE:LINE: message" (FILE is
"-" for standard input), and the exit status is 1; a valid message prints
nothing and exits 0. Messages name elements and types, never a value the
document holds. Exit status 2 when xmllint or the schema packages are
missing: the check cannot run.

Schema validity is not security: a message can be valid and still be
refused by the receive pipeline (a wrapped signature, an expired message;
KECIS §9.12). kecis envelope verify runs that pipeline.`,
		`  kecis envelope validate signed.xml
  kecis envelope sign --key keys/signing/key.pem --cert keys/signing/cert.pem request.xml | kecis envelope validate`)
}

func newMetadataValidateCmd() *cobra.Command {
	return schemaCheck{
		what:    "a metadata document",
		accepts: func(ns, _ string) bool { return ns == metadata.NSMD },
		other:   "kecis envelope validate",
	}.command(`Check a metadata document against the KECIS 1.0 XML Schemas, with line numbers`,
		`Validates an md:EntityDescriptor (a participant's descriptor, as generate
writes it or the hub's Metadata Query endpoint serves it, signed) or an
md:EntitiesDescriptor (the hub's aggregate) against the KECIS 1.0 XML Schemas
(docs/spec/schema: kecis-metadata.xsd's ParticipantDescriptorType over the
OASIS SAML 2.0 metadata schema) with xmllint (libxml2), offline, as kecis
envelope validate does for messages. It checks no signature: kecis metadata
verify does.

Each problem is printed on standard output as "FILE:LINE: message", and the
exit status is 1; a valid document prints nothing and exits 0. Exit status 2
when xmllint or the schema packages (libxml2-utils, opensaml-schemas,
xmltooling-schemas) are missing.`,
		`  kecis metadata validate federation.xml
  kecis metadata validate pg.xml`)
}

func (c schemaCheck) command(short, long, example string) *cobra.Command {
	return &cobra.Command{
		Use:     "validate [FILE]",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			if len(data) >= maxInput {
				return fmt.Errorf("%s: larger than %d MiB", name, maxInput>>20)
			}
			return c.validate(cmd.Context(), cmd.OutOrStdout(), name, data)
		},
	}
}

func (c schemaCheck) validate(ctx context.Context, out io.Writer, name string, data []byte) error {
	if err := xsd.Available(); err != nil {
		if errors.Is(err, xsd.ErrUnavailable) {
			return fail(exitUsage, err)
		}
		return err
	}
	ns, local, err := xsd.RootKind(data)
	if err != nil {
		return fmt.Errorf("%s: not an XML document: %v", name, err)
	}
	if !c.accepts(ns, local) {
		return fmt.Errorf("%s: the root {%s}%s is not %s: use %s", name, ns, local, c.what, c.other)
	}
	problems, err := (&xsd.Validator{}).Validate(ctx, data)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(out, "%s:%d: %s\n", name, p.Line, p.Message)
	}
	if len(problems) > 0 {
		return fail(exitFailed, fmt.Errorf("%s: %d schema problem(s)", name, len(problems)))
	}
	return nil
}
