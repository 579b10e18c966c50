package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kecis/kecis/saml"
)

// `kecis envelope bench` measures the envelope library's operations on one
// document, as scripts/bench-peers.sh (make bench-peers) compares them with
// libxmlsec1: it is a tool of the command line, built only from saml's
// public API.

func init() { envelopeSubcommands = append(envelopeSubcommands, newEnvelopeBenchCmd) }

// benchFlags are the flags of kecis envelope bench.
type benchFlags struct {
	in, keyPath, certPath, ecKey, ecCert, rcert, rkey string
	duration                                          time.Duration
	asJSON                                            bool
}

func newEnvelopeBenchCmd() *cobra.Command {
	var o benchFlags
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
			cfg, err := o.config()
			if err != nil {
				return err
			}
			cfg.Progress = func(op string) { fmt.Fprintf(cmd.ErrOrStderr(), "bench: %s (%s)\n", op, o.duration) }
			res, err := envelopeBench(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printBench(cmd.OutOrStdout(), res, o.asJSON)
		},
	}
	cmd.Flags().StringVar(&o.in, "in", "", "unsigned KECIS request to measure with (required)")
	cmd.Flags().StringVar(&o.keyPath, "key", "", "signing key (PEM, RSA or ECDSA) (required)")
	cmd.Flags().StringVar(&o.certPath, "cert", "", "its certificate (required)")
	cmd.Flags().StringVar(&o.ecKey, "ec-key", "", "a second signing key, of the other kind")
	cmd.Flags().StringVar(&o.ecCert, "ec-cert", "", "its certificate")
	cmd.Flags().StringVar(&o.rcert, "recipient-cert", "", "encryption recipient certificate (RSA)")
	cmd.Flags().StringVar(&o.rkey, "recipient-key", "", "encryption recipient private key")
	cmd.Flags().DurationVar(&o.duration, "duration", 3*time.Second, "measuring time per operation")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("cert")
	return cmd
}

// config reads the document and the keys the flags name.
func (o *benchFlags) config() (benchConfig, error) {
	if (o.rcert == "") != (o.rkey == "") {
		return benchConfig{}, usagef("--recipient-key and --recipient-cert go together")
	}
	doc, err := os.ReadFile(o.in)
	if err != nil {
		return benchConfig{}, err
	}
	cfg := benchConfig{Doc: doc, Duration: o.duration}
	for _, kc := range [][2]string{{o.keyPath, o.certPath}, {o.ecKey, o.ecCert}} {
		if kc[0] == "" {
			continue
		}
		s, err := saml.LoadSigner(kc[0], kc[1])
		if err != nil {
			return benchConfig{}, err
		}
		if s.Algorithm() == saml.AlgECDSASHA256 {
			cfg.ECDSA = s
		} else {
			cfg.RSA = s
		}
	}
	if o.rcert != "" {
		dk, err := saml.LoadDecryptionKey(o.rkey, o.rcert)
		if err != nil {
			return benchConfig{}, fmt.Errorf("recipient: %w", err)
		}
		cfg.RecipientCert, cfg.RecipientKey = dk.Cert, dk.Key
	}
	return cfg, nil
}

// printBench writes one "RESULT kecis <op> <ops_per_sec>" line per
// operation (what scripts/bench-peers.sh reads), or the results as JSON.
func printBench(w io.Writer, res []benchResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for _, r := range res {
		fmt.Fprintf(w, "RESULT kecis %s %.1f\n", r.Op, r.OpsPerSec)
	}
	return nil
}

// benchConfig is what `kecis envelope bench` measures with: one document
// and the keys to sign, verify, encrypt and decrypt it.
type benchConfig struct {
	// Doc is an unsigned KECIS request whose payload holds the sensitive
	// elements to encrypt.
	Doc []byte
	// Signers: an RSA and/or an ECDSA signer (either may be nil).
	RSA, ECDSA *saml.Signer
	// Recipient for the encryption operations (both or neither).
	RecipientCert *x509.Certificate
	RecipientKey  crypto.Decrypter
	// Duration of each operation's measurement.
	Duration time.Duration
	// Progress, when set, is told each operation's name before it runs.
	Progress func(op string)
}

// benchResult is one operation's rate.
type benchResult struct {
	Op        string  `json:"op"`
	OpsPerSec float64 `json:"opsPerSec"`
	Ops       int     `json:"ops"`
}

// measure runs f on this goroutine for d and returns its rate.
func measure(op string, d time.Duration, f func() error) (benchResult, error) {
	if err := f(); err != nil { // warm up, and fail early
		return benchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	for {
		for i := 0; i < 8; i++ {
			if err := f(); err != nil {
				return benchResult{}, fmt.Errorf("%s: %w", op, err)
			}
			n++
		}
		if now := time.Now(); !now.Before(deadline) {
			return benchResult{Op: op, Ops: n, OpsPerSec: float64(n) / now.Sub(start).Seconds()}, nil
		}
	}
}

// envelopeBench measures the envelope operations of issue #4's table, each
// on one goroutine: parse + sign + serialise; parse + every receive check up
// to and including signature verification; parse + encrypt the sensitive
// elements + serialise; parse + decrypt + serialise; and the bare crypto
// operations beside them, so that each ratio is taken within one run.
func envelopeBench(ctx context.Context, c benchConfig) ([]benchResult, error) {
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	root, err := saml.ParseDocument(c.Doc, saml.Limits{})
	if err != nil {
		return nil, err
	}
	issuer := ""
	if iss := root.SelectElement("saml:Issuer"); iss != nil {
		issuer = iss.Text()
	}
	issued, err := saml.ParseTime(root.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return nil, fmt.Errorf("the bench document needs an IssueInstant: %w", err)
	}
	var out []benchResult
	run := func(op string, f func() error) error {
		if c.Progress != nil {
			c.Progress(op)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := measure(op, c.Duration, f)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	// The signed documents carry the encrypted card, as on the wire.
	plainDoc := c.Doc
	if c.RecipientCert != nil {
		r, _ := saml.ParseDocument(c.Doc, saml.Limits{})
		enc := &saml.Encryptor{Recipient: "urn:kecis:bench:recipient", Cert: c.RecipientCert}
		if _, err := saml.EncryptDocument(r, enc); err != nil {
			return nil, err
		}
		if plainDoc, err = saml.Serialize(r); err != nil {
			return nil, err
		}
	}
	for _, s := range []*saml.Signer{c.RSA, c.ECDSA} {
		if s == nil {
			continue
		}
		name := "rsa-sha256"
		if s.Algorithm() == saml.AlgECDSASHA256 {
			name = "ecdsa-sha256"
		}
		if err := run(name+"-sign", func() error {
			r, err := saml.ParseDocument(plainDoc, saml.Limits{})
			if err != nil {
				return err
			}
			_, err = s.SignToBytes(r)
			return err
		}); err != nil {
			return out, err
		}
		r, _ := saml.ParseDocument(plainDoc, saml.Limits{})
		signed, err := s.SignToBytes(r)
		if err != nil {
			return out, err
		}
		rc := &saml.Receiver{Keys: saml.StaticKeys{issuer: {s.Cert}}, Now: func() time.Time { return issued }}
		if dest := root.SelectAttrValue("Destination", ""); dest != "" {
			rc.Destinations = []string{dest}
		}
		if err := run(name+"-verify", func() error {
			_, _, err := rc.Verify(ctx, signed)
			return err
		}); err != nil {
			return out, err
		}
	}
	if c.RecipientCert != nil && c.RecipientKey != nil {
		enc := &saml.Encryptor{Recipient: "urn:kecis:bench:recipient", Cert: c.RecipientCert}
		if err := run("xmlenc-gcm256-oaep-encrypt", func() error {
			r, err := saml.ParseDocument(c.Doc, saml.Limits{})
			if err != nil {
				return err
			}
			if _, err := saml.EncryptDocument(r, enc); err != nil {
				return err
			}
			_, err = saml.Serialize(r)
			return err
		}); err != nil {
			return out, err
		}
		dec := &saml.Decryptor{EntityID: "urn:kecis:bench:recipient", Keys: []saml.DecryptionKey{{Cert: c.RecipientCert, Key: c.RecipientKey}}}
		if err := run("xmlenc-gcm256-oaep-decrypt", func() error {
			r, err := saml.ParseDocument(plainDoc, saml.Limits{})
			if err != nil {
				return err
			}
			if err := saml.DecryptDocument(ctx, r, dec); err != nil {
				if cause := saml.AsError(err).Cause(); cause != nil {
					return cause
				}
				return err
			}
			_, err = saml.Serialize(r)
			return err
		}); err != nil {
			return out, err
		}
	}
	// The bare operations.
	digest := sha256.Sum256([]byte("kecis bench"))
	rsaKey, _ := signerKey[*rsa.PrivateKey](c.RSA)
	if rsaKey == nil {
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return out, err
		}
	}
	if err := run("raw-rsa2048-sign", func() error {
		_, err := rsaKey.Sign(rand.Reader, digest[:], crypto.SHA256)
		return err
	}); err != nil {
		return out, err
	}
	if c.RecipientKey != nil && c.RecipientCert != nil {
		pub, ok := c.RecipientCert.PublicKey.(*rsa.PublicKey)
		if ok {
			ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, make([]byte, 32), nil)
			if err != nil {
				return out, err
			}
			if err := run("raw-rsa2048-oaep-decrypt", func() error {
				_, err := c.RecipientKey.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA1})
				return err
			}); err != nil {
				return out, err
			}
		}
	}
	ecKey, _ := signerKey[*ecdsa.PrivateKey](c.ECDSA)
	if ecKey == nil {
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return out, err
		}
	}
	var sig []byte
	if err := run("raw-ecdsa-p256-sign", func() error {
		var err error
		sig, err = ecKey.Sign(rand.Reader, digest[:], crypto.SHA256)
		return err
	}); err != nil {
		return out, err
	}
	if err := run("raw-ecdsa-p256-verify", func() error {
		if !ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], sig) {
			return errors.New("verify failed")
		}
		return nil
	}); err != nil {
		return out, err
	}
	return out, nil
}

func signerKey[K any](s *saml.Signer) (K, bool) {
	var zero K
	if s == nil {
		return zero, false
	}
	k, ok := s.Key.(K)
	return k, ok
}
