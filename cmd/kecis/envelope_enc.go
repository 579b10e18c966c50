package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/saml"
)

func init() {
	envelopeSubcommands = append(envelopeSubcommands, newEnvelopeEncryptCmd, newEnvelopeDecryptCmd)
}

func newEnvelopeEncryptCmd() *cobra.Command {
	var (
		certPath, recipient, transport, content string
		elements                                []string
	)
	cmd := &cobra.Command{
		Use:   "encrypt --recipient-cert C [--element NAME...] [FILE]",
		Short: "Encrypt the sensitive ECML elements of a message for its final recipient",
		Long: `Replaces each sensitive ECML element of an unsigned KECIS message (or of a bare
payload or Ecom) by an xenc:EncryptedData for the recipient certificate:
AES-256-GCM content encryption, the key wrapped with RSA-OAEP (rsa-oaep-mgf1p by
default, which xmlsec1 1.2 reads; --key-transport rsa-oaep for xmlenc11#rsa-oaep
with SHA-256). By default every sensitive element is encrypted: Payment/Card,
Loyalty, User/Password, Track1/Track2, and the kx: birth date, account number,
one-time code, amount-authentication challenge, virtual card number and key-in
data. Encrypt first, then sign.`,
		Example: `  kecis envelope encrypt --recipient-cert issuer-enc.pem --recipient https://issuer.example/kecis request.xml \
    | kecis envelope sign --key merchant.key --cert merchant.pem > signed.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			enc, err := encryptorFor(certPath, recipient, transport, content)
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
			n, err := saml.EncryptDocument(root, enc, elements...)
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "kecis: warning: no sensitive element to encrypt")
			}
			out, err := saml.Serialize(root)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&certPath, "recipient-cert", "", "the final recipient's encryption certificate (PEM, RSA >= 2048) (required)")
	cmd.Flags().StringVar(&recipient, "recipient", "", "the final recipient's entityID, written as EncryptedKey/@Recipient")
	cmd.Flags().StringArrayVar(&elements, "element", nil, "encrypt only sensitive elements with this local name (repeatable), e.g. Card")
	cmd.Flags().StringVar(&transport, "key-transport", "rsa-oaep-mgf1p", "rsa-oaep-mgf1p or rsa-oaep")
	cmd.Flags().StringVar(&content, "content", "aes256-gcm", "aes256-gcm or aes128-gcm")
	_ = cmd.MarkFlagRequired("recipient-cert")
	return cmd
}

// encryptorFor is the Encryptor of kecis envelope encrypt's flags: the
// recipient's certificate, its entityID, the key transport and the content
// algorithm by their flag names.
func encryptorFor(certPath, recipient, transport, content string) (*saml.Encryptor, error) {
	certs, err := saml.LoadCertificates(certPath)
	if err != nil {
		return nil, err
	}
	enc := &saml.Encryptor{Recipient: recipient, Cert: certs[0]}
	switch transport {
	case "rsa-oaep-mgf1p":
		enc.KeyTransport = saml.AlgRSAOAEPMGF1P
	case "rsa-oaep":
		enc.KeyTransport = saml.AlgRSAOAEP
	default:
		return nil, usagef("--key-transport %q: use rsa-oaep-mgf1p or rsa-oaep", transport)
	}
	switch content {
	case "aes256-gcm":
		enc.Content = saml.AES256GCM
	case "aes128-gcm":
		enc.Content = saml.AES128GCM
	default:
		return nil, usagef("--content %q: use aes256-gcm or aes128-gcm", content)
	}
	return enc, nil
}

func newEnvelopeDecryptCmd() *cobra.Command {
	var keyPath, certPath, entity string
	cmd := &cobra.Command{
		Use:   "decrypt --key K [--cert C] [FILE]",
		Short: "Decrypt the encrypted elements of a message with your private key",
		Long: `Decrypts every xenc:EncryptedData of a KECIS message (or of a bare payload or
Ecom) with the RSA private key: only AES-GCM content and RSA-OAEP key transport
are accepted (CBC, 3DES, SEED and rsa-1_5 are refused), and every failure is
the same error. With --cert the EncryptedKey must name that certificate; with
--recipient it must be addressed to that entityID. Prints the document.

The output holds the decrypted secrets: write it only where they may be.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dk, err := saml.LoadDecryptionKey(keyPath, certPath)
			if err != nil {
				return err
			}
			d := &saml.Decryptor{EntityID: entity, Keys: []saml.DecryptionKey{dk}}
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			root, err := saml.ParseDocument(data, saml.Limits{MaxBytes: maxInput, MaxDepth: 256})
			if err != nil {
				return fmt.Errorf("input: %s", describeErr(err))
			}
			if err := saml.DecryptDocument(context.Background(), root, d); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "refused:", saml.AsError(err).Public)
				return fail(1, nil)
			}
			out, err := saml.Serialize(root)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "PEM private key (required)")
	cmd.Flags().StringVar(&certPath, "cert", "", "the key's certificate (EncryptedKey must name it)")
	cmd.Flags().StringVar(&entity, "recipient", "", "your entityID (EncryptedKey/@Recipient must match)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
