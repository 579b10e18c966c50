package cardauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
)

var at0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func TestPolicyTable(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		amount   int64
		currency string
		merchant string
		second   bool
	}{
		{99999, "KRW", "m", false},
		{100000, "KRW", "m", true},
		{1, "KRW", "m", false},
		{5000000, "KRW", "m", true},
		{100, "USD", "m", true}, // another currency: the second factor
	}
	for _, c := range cases {
		d, err := p.Decide(c.amount, c.currency, c.merchant)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Needs(FactorPassword) || d.SecondFactor() != c.second {
			t.Errorf("%d %s: %+v, second factor want %v", c.amount, c.currency, d, c.second)
		}
		if c.second && !(d.Offers(FactorTOTP) && d.Offers(FactorClientCert)) {
			t.Errorf("%d %s: %+v offers not both second factors", c.amount, c.currency, d)
		}
	}
	// Configuration overrides: a threshold of 50,000 KRW with TOTP only;
	// a trusted merchant needs the password alone up to 1,000,000.
	o := Policy{Rules: []Rule{
		{Currency: "KRW", Require: []Factor{FactorPassword}},
		{Currency: "KRW", AtLeast: 50000, Require: []Factor{FactorPassword}, AnyOf: []Factor{FactorTOTP}},
		{Currency: "KRW", Merchants: []string{"trusted"}, Require: []Factor{FactorPassword}},
		{Currency: "KRW", Merchants: []string{"trusted"}, AtLeast: 1000000, Require: []Factor{FactorPassword, FactorClientCert}},
	}}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		amount   int64
		merchant string
		want     Decision
	}{
		{49999, "m", Decision{Require: []Factor{FactorPassword}}},
		{50000, "m", Decision{Require: []Factor{FactorPassword}, AnyOf: []Factor{FactorTOTP}}},
		{999999, "trusted", Decision{Require: []Factor{FactorPassword}}},
		{1000000, "trusted", Decision{Require: []Factor{FactorPassword, FactorClientCert}}},
	} {
		d, err := o.Decide(c.amount, "KRW", c.merchant)
		if err != nil || !slices.Equal(d.Require, c.want.Require) || !slices.Equal(d.AnyOf, c.want.AnyOf) {
			t.Errorf("%d %s: %+v %v, want %+v", c.amount, c.merchant, d, err, c.want)
		}
	}
	if _, err := o.Decide(100, "USD", "m"); !errors.Is(err, ErrNoRule) {
		t.Errorf("USD under a KRW-only policy: %v", err)
	}
	for _, bad := range []Policy{{}, {Rules: []Rule{{Require: []Factor{"sms"}}}}, {Rules: []Rule{{Require: []Factor{FactorTOTP}}}},
		{Rules: []Rule{{AtLeast: -1, Require: []Factor{FactorPassword}}}}, {Rules: []Rule{{Currency: "krw", Require: []Factor{FactorPassword}}}}} {
		if bad.Check() == nil {
			t.Errorf("%+v passed Check", bad)
		}
	}
}

func newAAV(keys ...[]byte) *AAV {
	return &AAV{Keys: keys, Now: func() time.Time { return at0 }, Rand: rand.Reader}
}

func TestAAVBinding(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a := newAAV(k1)
	pan := ecml.PAN("4111111111111111")
	exp := at0.Add(10 * time.Minute)
	v, err := a.Mint(pan, 150000, "KRW", "https://shop.test", "O-1", MethodTOTP, exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > AAVMaxLen {
		t.Fatalf("AAV of %d characters", len(v))
	}
	id, gotExp, err := a.CheckAuthValue(v, pan, 150000, "KRW", "https://shop.test", "O-1", at0)
	if err != nil || id == "" || !gotExp.Equal(exp) {
		t.Fatalf("check: %q %v %v", id, gotExp, err)
	}
	if m, err := MethodOfAuthValue(v); err != nil || m != MethodTOTP {
		t.Errorf("method %q %v", m, err)
	}
	for name, c := range map[string]func() error{
		"number": func() error {
			_, _, err := a.CheckAuthValue(v, "5555555555554444", 150000, "KRW", "https://shop.test", "O-1", at0)
			return err
		},
		"amount": func() error {
			_, _, err := a.CheckAuthValue(v, pan, 150001, "KRW", "https://shop.test", "O-1", at0)
			return err
		},
		"currency": func() error {
			_, _, err := a.CheckAuthValue(v, pan, 150000, "USD", "https://shop.test", "O-1", at0)
			return err
		},
		"merchant": func() error {
			_, _, err := a.CheckAuthValue(v, pan, 150000, "KRW", "https://shop2.test", "O-1", at0)
			return err
		},
		"order": func() error {
			_, _, err := a.CheckAuthValue(v, pan, 150000, "KRW", "https://shop.test", "O-2", at0)
			return err
		},
		"tampered": func() error {
			b := []byte(v)
			b[5] ^= 1
			_, _, err := a.CheckAuthValue(string(b), pan, 150000, "KRW", "https://shop.test", "O-1", at0)
			return err
		},
		"other key": func() error {
			_, _, err := newAAV(k2).CheckAuthValue(v, pan, 150000, "KRW", "https://shop.test", "O-1", at0)
			return err
		},
	} {
		if err := c(); !errors.Is(err, ErrAAVMismatch) {
			t.Errorf("%s changed: %v, want mismatch", name, err)
		}
	}
	if _, _, err := a.CheckAuthValue(v, pan, 150000, "KRW", "https://shop.test", "O-1", exp); !errors.Is(err, ErrAAVExpired) {
		t.Errorf("at expiry: %v", err)
	}
	// Rotation: a new key mints, the old one still checks; retired, it does not.
	rot := newAAV(k2, k1)
	if _, _, err := rot.CheckAuthValue(v, pan, 150000, "KRW", "https://shop.test", "O-1", at0); err != nil {
		t.Errorf("old key after rotation: %v", err)
	}
	v2, err := rot.Mint(pan, 1000, "KRW", "m", "o", MethodPassword, exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := newAAV(k2).CheckAuthValue(v2, pan, 1000, "KRW", "m", "o", at0); err != nil {
		t.Errorf("new key: %v", err)
	}
	if _, _, err := newAAV(k1).CheckAuthValue(v2, pan, 1000, "KRW", "m", "o", at0); !errors.Is(err, ErrAAVMismatch) {
		t.Errorf("retired key: %v", err)
	}
	if bytes.Contains([]byte(v), []byte(pan.Reveal()[6:])) {
		t.Error("the value shows the number")
	}
	if _, err := a.Mint(pan, 1, "KRW", "m", "o", "urn:x", exp); err == nil {
		t.Error("unknown method minted")
	}
	if _, err := a.Mint(pan, 1, "KRW", "m", "o", MethodPassword, at0); err == nil {
		t.Error("expired value minted")
	}
}

func FuzzAAVParse(f *testing.F) {
	a := newAAV(bytes.Repeat([]byte{1}, 32))
	a.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, aavNonce)) // the same value in every fuzz worker
	v, _ := a.Mint("4111111111111111", 1000, "KRW", "m", "o", MethodPassword, at0.Add(time.Minute))
	f.Add(v)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseAAV(s)
		if err == nil && (tok.method == "" || len(tok.mac) != aavMAC) {
			t.Fatalf("parsed %q into %+v", s, tok)
		}
		if _, _, err := a.CheckAuthValue(s, "4111111111111111", 1000, "KRW", "m", "o", at0); err == nil && s != v {
			t.Fatalf("%q checked", s)
		}
	})
}

// testCA is a cardholder CA with its CRL.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: at0.Add(-time.Hour),
		NotAfter: at0.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

func (ca *testCA) issue(t testing.TB, serial int64, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cardholder"}, NotBefore: at0.Add(-time.Hour),
		NotAfter: at0.Add(30 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func (ca *testCA) crl(t testing.TB, next time.Time, revoked ...int64) *x509.RevocationList {
	t.Helper()
	tpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: at0.Add(-time.Hour), NextUpdate: next}
	for _, s := range revoked {
		tpl.RevokedCertificateEntries = append(tpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: at0})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := x509.ParseRevocationList(der)
	return l
}

func (ca *testCA) verifier(crl func() *x509.RevocationList) *CertVerifier {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &CertVerifier{Roots: roots, CRL: func(context.Context) (*x509.RevocationList, error) { return crl(), nil }}
}

func TestCertVerifier(t *testing.T) {
	ctx := context.Background()
	ca, other := newCA(t, "issuer cardholder CA"), newCA(t, "another CA")
	good, _ := ca.issue(t, 10, x509.ExtKeyUsageClientAuth)
	revoked, _ := ca.issue(t, 11, x509.ExtKeyUsageClientAuth)
	server, _ := ca.issue(t, 12, x509.ExtKeyUsageServerAuth)
	foreign, _ := other.issue(t, 10, x509.ExtKeyUsageClientAuth)
	fresh := ca.crl(t, at0.Add(time.Hour), 11)
	v := ca.verifier(func() *x509.RevocationList { return fresh })
	if leaf, err := v.Verify(ctx, []*x509.Certificate{good}, at0); err != nil || leaf != good {
		t.Fatalf("good: %v", err)
	}
	for name, c := range map[string]struct {
		cert *x509.Certificate
		v    *CertVerifier
		want error
	}{
		"wrong CA":        {foreign, v, ErrCertUntrusted},
		"revoked":         {revoked, v, ErrCertRevoked},
		"not clientAuth":  {server, v, ErrCertUntrusted},
		"stale CRL":       {good, ca.verifier(func() *x509.RevocationList { return ca.crl(t, at0.Add(-time.Minute)) }), ErrCRLUnusable},
		"CRL of other CA": {good, ca.verifier(func() *x509.RevocationList { return other.crl(t, at0.Add(time.Hour)) }), ErrCRLUnusable},
	} {
		if _, err := c.v.Verify(ctx, []*x509.Certificate{c.cert}, at0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := v.Verify(ctx, nil, at0); !errors.Is(err, ErrCertUntrusted) {
		t.Errorf("none: %v", err)
	}
}
