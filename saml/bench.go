package saml

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
)

// BenchConfig is what `kecis envelope bench` measures with: one document
// and the keys to sign, verify, encrypt and decrypt it.
type BenchConfig struct {
	// Doc is an unsigned KECIS request whose payload holds the sensitive
	// elements to encrypt.
	Doc []byte
	// Signers: an RSA and/or an ECDSA signer (either may be nil).
	RSA, ECDSA *Signer
	// Recipient for the encryption operations (both or neither).
	RecipientCert *x509.Certificate
	RecipientKey  crypto.Decrypter
	// Duration of each operation's measurement.
	Duration time.Duration
	// Progress, when set, is told each operation's name before it runs.
	Progress func(op string)
}

// BenchResult is one operation's rate.
type BenchResult struct {
	Op        string  `json:"op"`
	OpsPerSec float64 `json:"opsPerSec"`
	Ops       int     `json:"ops"`
}

// measure runs f on this goroutine for d and returns its rate.
func measure(op string, d time.Duration, f func() error) (BenchResult, error) {
	if err := f(); err != nil { // warm up, and fail early
		return BenchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	for {
		for i := 0; i < 8; i++ {
			if err := f(); err != nil {
				return BenchResult{}, fmt.Errorf("%s: %w", op, err)
			}
			n++
		}
		if now := time.Now(); !now.Before(deadline) {
			return BenchResult{Op: op, Ops: n, OpsPerSec: float64(n) / now.Sub(start).Seconds()}, nil
		}
	}
}

// Bench measures the envelope operations of issue #4's table, each on one
// goroutine: parse + sign + serialise; parse + every receive check up to
// and including signature verification; parse + encrypt the sensitive
// elements + serialise; parse + decrypt + serialise; and the bare crypto
// operations beside them, so that each ratio is taken within one run.
func Bench(ctx context.Context, c BenchConfig) ([]BenchResult, error) {
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	root, err := ParseDocument(c.Doc, Limits{})
	if err != nil {
		return nil, err
	}
	issuer := ""
	if iss := root.SelectElement("saml:Issuer"); iss != nil {
		issuer = iss.Text()
	}
	issued, err := ParseTime(root.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return nil, fmt.Errorf("the bench document needs an IssueInstant: %w", err)
	}
	var out []BenchResult
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
		r, _ := ParseDocument(c.Doc, Limits{})
		enc := &Encryptor{Recipient: "urn:kecis:bench:recipient", Cert: c.RecipientCert}
		if err := encryptMessage(enc, r); err != nil {
			return nil, err
		}
		if plainDoc, err = Serialize(r); err != nil {
			return nil, err
		}
	}
	for _, s := range []*Signer{c.RSA, c.ECDSA} {
		if s == nil {
			continue
		}
		name := "rsa-sha256"
		if s.Algorithm() == AlgECDSASHA256 {
			name = "ecdsa-sha256"
		}
		if err := run(name+"-sign", func() error {
			r, err := ParseDocument(plainDoc, Limits{})
			if err != nil {
				return err
			}
			_, err = s.SignToBytes(r)
			return err
		}); err != nil {
			return out, err
		}
		r, _ := ParseDocument(plainDoc, Limits{})
		signed, err := s.SignToBytes(r)
		if err != nil {
			return out, err
		}
		rc := &Receiver{Keys: StaticKeys{issuer: {s.Cert}}, Now: func() time.Time { return issued }}
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
		enc := &Encryptor{Recipient: "urn:kecis:bench:recipient", Cert: c.RecipientCert}
		if err := run("xmlenc-gcm256-oaep-encrypt", func() error {
			r, err := ParseDocument(c.Doc, Limits{})
			if err != nil {
				return err
			}
			if err := encryptMessage(enc, r); err != nil {
				return err
			}
			_, err = Serialize(r)
			return err
		}); err != nil {
			return out, err
		}
		dec := &Decryptor{EntityID: "urn:kecis:bench:recipient", Keys: []DecryptionKey{{Cert: c.RecipientCert, Key: c.RecipientKey}}}
		if err := run("xmlenc-gcm256-oaep-decrypt", func() error {
			r, err := ParseDocument(plainDoc, Limits{})
			if err != nil {
				return err
			}
			p := findPayload(r)
			if p == nil {
				return errors.New("no kecis:Payload")
			}
			if err := dec.DecryptPayload(ctx, p); err != nil {
				return AsError(err).Cause()
			}
			_, err = Serialize(r)
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
			ct, err := rsa.EncryptOAEP(sha1New(), rand.Reader, pub, make([]byte, 32), nil)
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

func signerKey[K any](s *Signer) (K, bool) {
	var zero K
	if s == nil {
		return zero, false
	}
	k, ok := s.Key.(K)
	return k, ok
}

// encryptMessage encrypts every sensitive element of a message's payload.
func encryptMessage(e *Encryptor, root *etree.Element) error {
	p := findPayload(root)
	if p == nil {
		return errors.New("no kecis:Payload to encrypt")
	}
	_, err := e.EncryptPayload(p)
	return err
}
