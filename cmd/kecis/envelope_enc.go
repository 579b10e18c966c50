package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/saml"
)

func init() {
	envelopeSubcommands = append(envelopeSubcommands, newEnvelopeEncryptCmd, newEnvelopeDecryptCmd, newEnvelopeBenchCmd)
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
			certs, err := saml.LoadCertificates(certPath)
			if err != nil {
				return err
			}
			enc := &saml.Encryptor{Recipient: recipient, Cert: certs[0]}
			switch transport {
			case "rsa-oaep-mgf1p":
				enc.KeyTransport = saml.AlgRSAOAEPMGF1P
			case "rsa-oaep":
				enc.KeyTransport = saml.AlgRSAOAEP
			default:
				return fmt.Errorf("--key-transport %q: use rsa-oaep-mgf1p or rsa-oaep", transport)
			}
			switch content {
			case "aes256-gcm":
				enc.Content = saml.AES256GCM
			case "aes128-gcm":
				enc.Content = saml.AES128GCM
			default:
				return fmt.Errorf("--content %q: use aes256-gcm or aes128-gcm", content)
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

func newEnvelopeBenchCmd() *cobra.Command {
	var (
		in, keyPath, certPath, ecKey, ecCert, rcert, rkey string
		duration                                          time.Duration
		asJSON                                            bool
	)
	cmd := &cobra.Command{
		Use:   "bench --in FILE --key K --cert C [--recipient-cert C2 --recipient-key K2] [--duration 3s]",
		Short: "Measure sign, verify, encrypt and decrypt on one document, on one goroutine",
		Long: `Measures, each on one goroutine for --duration, on the given unsigned document:
  rsa-sha256-sign / ecdsa-sha256-sign       parse + sign + serialise
  rsa-sha256-verify / ecdsa-sha256-verify   parse + every receive check up to and including signature verification
  xmlenc-gcm256-oaep-encrypt                parse + encrypt the sensitive elements + serialise
  xmlenc-gcm256-oaep-decrypt                parse + decrypt them + serialise
  raw-rsa2048-sign, raw-rsa2048-oaep-decrypt, raw-ecdsa-p256-sign, raw-ecdsa-p256-verify
                                            the bare Go crypto operations, in the same run
The signed documents carry the encrypted elements, as on the wire. Prints one
line per operation, "RESULT kecis <op> <ops_per_sec>", or JSON with --json.
--key may be RSA or ECDSA; --ec-key/--ec-cert add the other kind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := os.ReadFile(in)
			if err != nil {
				return err
			}
			cfg := saml.BenchConfig{Doc: doc, Duration: duration}
			for _, kc := range [][2]string{{keyPath, certPath}, {ecKey, ecCert}} {
				if kc[0] == "" {
					continue
				}
				s, err := saml.LoadSigner(kc[0], kc[1])
				if err != nil {
					return err
				}
				if s.Algorithm() == saml.AlgECDSASHA256 {
					cfg.ECDSA = s
				} else {
					cfg.RSA = s
				}
			}
			if rcert != "" || rkey != "" {
				s, err := saml.LoadSigner(rkey, rcert)
				if err != nil {
					return fmt.Errorf("recipient: %w", err)
				}
				dk, ok := s.Key.(crypto.Decrypter)
				if !ok {
					return errors.New("the recipient key cannot decrypt")
				}
				cfg.RecipientCert, cfg.RecipientKey = s.Cert, dk
			}
			cfg.Progress = func(op string) { fmt.Fprintf(cmd.ErrOrStderr(), "bench: %s (%s)\n", op, duration) }
			res, err := saml.Bench(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			for _, r := range res {
				fmt.Fprintf(cmd.OutOrStdout(), "RESULT kecis %s %.1f\n", r.Op, r.OpsPerSec)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "unsigned KECIS request to measure with (required)")
	cmd.Flags().StringVar(&keyPath, "key", "", "signing key (PEM, RSA or ECDSA) (required)")
	cmd.Flags().StringVar(&certPath, "cert", "", "its certificate (required)")
	cmd.Flags().StringVar(&ecKey, "ec-key", "", "a second signing key, of the other kind")
	cmd.Flags().StringVar(&ecCert, "ec-cert", "", "its certificate")
	cmd.Flags().StringVar(&rcert, "recipient-cert", "", "encryption recipient certificate (RSA)")
	cmd.Flags().StringVar(&rkey, "recipient-key", "", "encryption recipient private key")
	cmd.Flags().DurationVar(&duration, "duration", 3*time.Second, "measuring time per operation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("cert")
	return cmd
}
