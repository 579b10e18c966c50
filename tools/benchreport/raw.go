package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// rawBench measures the two bare operations `kecis envelope bench` does
// not: an RSA 2048 PKCS#1 v1.5 SHA-256 verification and an RSA-OAEP
// (SHA-1, as XML Encryption's rsa-oaep-mgf1p) encryption of a 32-byte
// key, each on this goroutine for d, the way envelope bench measures (a
// warm-up call, then batches of 8 until d has passed). It writes ops/s by
// op as JSON; the report runs it in a child process pinned beside
// envelope bench (-raw-bench).
func rawBench(w io.Writer, d time.Duration) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("kecis bench"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	out := map[string]float64{}
	for _, op := range []struct {
		name string
		f    func() error
	}{
		{rawRSAVer, func() error { return rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig) }},
		{rawEncrypt, func() error {
			_, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key.PublicKey, secret, nil)
			return err
		}},
	} {
		r, err := measureOp(d, op.f)
		if err != nil {
			return fmt.Errorf("%s: %w", op.name, err)
		}
		out[op.name] = r
	}
	return json.NewEncoder(w).Encode(out)
}

// measureOp runs f for d and returns its rate in ops/s.
func measureOp(d time.Duration, f func() error) (float64, error) {
	if err := f(); err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	for {
		for range 8 {
			if err := f(); err != nil {
				return 0, err
			}
			n++
		}
		if now := time.Now(); !now.Before(deadline) {
			el := now.Sub(start).Seconds()
			if el <= 0 {
				return 0, errors.New("no time passed")
			}
			return float64(n) / el, nil
		}
	}
}
