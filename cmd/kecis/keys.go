package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/saml"
)

func init() { registerCommand(newKeysCmd) }

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate and inspect KECIS signing and encryption keys",
	}
	cmd.AddCommand(newKeysGenerateCmd())
	return cmd
}

func newKeysGenerateCmd() *cobra.Command {
	var (
		typ      string
		out      string
		cn       string
		validity time.Duration
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "generate --type rsa|ecdsa --out DIR",
		Short: "Write a new key (key.pem) and a self-signed certificate (cert.pem) into DIR",
		Long: `Generate a key the KECIS signature profile allows — RSA 2048 (rsa-sha256) or
ECDSA P-256 (ecdsa-sha256) — and a self-signed certificate for it. KECIS trusts
a key because the federation metadata lists its certificate, not because of a
CA chain. key.pem is written with mode 0600 and never overwritten unless
--force is given.`,
		Example: `  kecis keys generate --type ecdsa --out ./keys/signing
  kecis keys generate --type rsa --out ./keys/encryption --cn "Example PG encryption"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out DIR is required")
			}
			if kt := saml.KeyType(typ); kt != saml.KeyRSA && kt != saml.KeyECDSA {
				return usagef("--type %q: use %s or %s", typ, saml.KeyRSA, saml.KeyECDSA)
			}
			key, err := saml.GenerateKey(saml.KeyType(typ), nil)
			if err != nil {
				return err
			}
			cert, err := saml.SelfSignedCertificate(key, cn, time.Now(), validity, nil)
			if err != nil {
				return err
			}
			keyPEM, err := saml.EncodeKeyPEM(key)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			kp, cp := filepath.Join(out, "key.pem"), filepath.Join(out, "cert.pem")
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			if err := writeFile(kp, keyPEM, 0o600, flags); err != nil {
				return err
			}
			if err := writeFile(cp, saml.EncodeCertPEM(cert), 0o644, flags); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (%s, SHA-256 %s, valid until %s)\n",
				kp, cp, typ, saml.Fingerprint(cert), cert.NotAfter.UTC().Format(time.DateOnly))
			return nil
		},
	}
	cmd.Flags().StringVar(&typ, "type", "ecdsa", "key type: rsa (2048) or ecdsa (P-256)")
	cmd.Flags().StringVar(&out, "out", "", "directory to write key.pem and cert.pem into")
	cmd.Flags().StringVar(&cn, "cn", "KECIS participant", "certificate subject common name")
	cmd.Flags().DurationVar(&validity, "validity", 2*365*24*time.Hour, "certificate validity")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

func writeFile(path string, data []byte, mode os.FileMode, flags int) error {
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
