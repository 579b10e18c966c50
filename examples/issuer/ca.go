package issuer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/kecis/kecis/connectors/sqlstore"
)

// The issuer's cardholder CA (KECIS §15.7.2): it issues each cardholder a
// TLS client certificate (ECDSA P-256, client authentication only) for the
// authentication page's mutual-TLS endpoint — the web-standard replacement
// of the 공인인증서 — records which card each serial belongs to, revokes
// them and publishes a short-lived CRL. The chain and CRL check of a
// presented certificate is the page's (connectors/cardauth CertVerifier);
// CertificateCard maps a checked certificate to its card.

// certAuthority is the CA's key and certificate and its current CRL.
type certAuthority struct {
	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	validity    time.Duration
	crlValidity time.Duration

	mu        sync.Mutex
	crl       *x509.RevocationList
	crlNumber int64
}

func newCertAuthority(cfg Config) (*certAuthority, error) {
	if cfg.CACert == nil && cfg.CAKey == nil {
		return nil, nil
	}
	cert, key, err := ParseCA(cfg.CACert, cfg.CAKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: config: %w", err)
	}
	ca := &certAuthority{cert: cert, key: key, validity: cfg.ClientCertValidity, crlValidity: cfg.CRLValidity}
	if ca.validity == 0 {
		ca.validity = 365 * 24 * time.Hour
	}
	if ca.crlValidity == 0 {
		ca.crlValidity = 10 * time.Minute
	}
	if ca.validity < 0 || ca.crlValidity < time.Minute {
		return nil, errors.New("issuer: config: client_cert_validity must be positive and crl_validity at least a minute")
	}
	return ca, nil
}

// GenerateCA makes a cardholder CA: an ECDSA P-256 key and a self-signed
// certificate named commonName, valid from now for validity, returned as
// PEM for the caller to keep (e.g. in its data directory) and give back in
// Config.CACert and Config.CAKey.
func GenerateCA(commonName string, now time.Time, validity time.Duration, rand io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: CA key: %w", err)
	}
	serial, err := randomSerial(rand)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// ParseCA reads a CA certificate and its ECDSA P-256 key from PEM and
// checks that they belong together and that the certificate is a CA's.
func ParseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("CA certificate: no PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, errors.New("CA certificate: not a CA (basic constraints, key usage certSign)")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("CA key: no PEM block")
	}
	var k any
	switch kb.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		return nil, nil, fmt.Errorf("CA key: unexpected PEM block %q", kb.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, nil, errors.New("CA key: not an ECDSA P-256 key")
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("CA key does not belong to the CA certificate")
	}
	return cert, key, nil
}

// randomSerial is a positive 127-bit serial number.
func randomSerial(r io.Reader) (*big.Int, error) {
	b, err := randomBytes(r, 16)
	if err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never short, never zero
	return new(big.Int).SetBytes(b), nil
}

// CACertificate is the cardholder CA's certificate (the root the
// authentication page trusts for client certificates), nil when none is
// configured.
func (i *Issuer) CACertificate() *x509.Certificate {
	if i.ca == nil {
		return nil
	}
	return i.ca.cert
}

// ClientCertificate is a cardholder's TLS client certificate and its
// private key, as IssueClientCertificate made them: the key is not kept
// by the issuer, so this is the only copy.
type ClientCertificate struct {
	CardID      string
	Serial      string // hexadecimal, as RevokeCertificate takes it
	Certificate *x509.Certificate
	Key         *ecdsa.PrivateKey
	// CA is the issuing CA's certificate (the chain of Certificate).
	CA *x509.Certificate
}

// PKCS12 is the certificate, its key and the CA's certificate as a
// PKCS#12 file for a browser (PBES2 with AES-256 and PBKDF2-SHA256, an
// HMAC-SHA256 MAC: software.sslmate.com/src/go-pkcs12 Modern2023),
// protected by password. rand nil is crypto/rand.
func (c *ClientCertificate) PKCS12(password string, rand io.Reader) ([]byte, error) {
	enc := pkcs12.Modern2023
	if rand != nil {
		enc = enc.WithRand(rand)
	}
	p12, err := enc.Encode(c.Key, c.Certificate, []*x509.Certificate{c.CA}, password)
	if err != nil {
		return nil, fmt.Errorf("issuer: PKCS#12: %w", err)
	}
	return p12, nil
}

// PEM is the certificate and the key (PKCS#8) in PEM.
func (c *ClientCertificate) PEM() (certPEM, keyPEM []byte, err error) {
	kder, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// IssueClientCertificate issues the cardholder of an active card a TLS
// client certificate (ECDSA P-256, extended key usage clientAuth only)
// named holderName, valid for Config.ClientCertValidity but never past the
// card's expiry or the CA's, and records its serial for the card. Each
// call issues a new certificate; the key is returned, not kept. Errors:
// NO_CA, NOT_FOUND, DECLINED (the card is not active), EXPIRED,
// INVALID_REQUEST.
func (i *Issuer) IssueClientCertificate(ctx context.Context, cardID, holderName string) (*ClientCertificate, error) {
	if i.ca == nil {
		return nil, newError(CodeNoCA, "the issuer has no cardholder CA")
	}
	if e := checkText("holder name", holderName, 64, true); e != nil {
		return nil, e
	}
	card, err := i.Card(ctx, cardID)
	if err != nil {
		return nil, err
	}
	if card.Status != CardActive {
		return nil, newError(CodeDeclined, "card "+string(card.Status))
	}
	if i.expired(card.ExpMonth, card.ExpYear, i.now()) {
		return nil, newError(CodeExpired, "card expired")
	}
	// Dated by the authentication clock: a TLS peer checks the validity
	// against real time (Config.AuthNow).
	now := i.authNow()
	end := time.Date(card.ExpYear, time.Month(card.ExpMonth)+1, 1, 0, 0, 0, 0, i.loc)
	notAfter := now.Add(i.ca.validity)
	for _, t := range []time.Time{end, i.ca.cert.NotAfter} {
		if t.Before(notAfter) {
			notAfter = t
		}
	}
	notAfter = notAfter.Truncate(time.Second)
	key, err := ecdsa.GenerateKey(elliptic.P256(), i.rand)
	if err != nil {
		return nil, fmt.Errorf("issuer: client key: %w", err)
	}
	serial, err := randomSerial(i.rand)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: holderName, Organization: []string{i.brand}},
		NotBefore:             now.Add(-time.Minute).Truncate(time.Second),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(i.rand, tmpl, i.ca.cert, &key.PublicKey, i.ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuer: client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issuer: client certificate: %w", err)
	}
	fp := sha256.Sum256(der)
	hexSerial := serial.Text(16)
	if err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO issuer_client_certs (serial, card_id, fingerprint, not_after, issued_at)
			VALUES ($1, $2, $3, $4, $5)`, hexSerial, card.ID, fp[:], i.t(notAfter), i.t(now))
		return err
	}); err != nil {
		return nil, fmt.Errorf("issuer: record client certificate: %w", err)
	}
	i.log.InfoContext(ctx, "client certificate issued", "card", card.ID, "serial", hexSerial, "not_after", notAfter)
	return &ClientCertificate{CardID: card.ID, Serial: hexSerial, Certificate: cert, Key: key, CA: i.ca.cert}, nil
}

// CertificateCard returns the card a client certificate of the issuer's CA
// was issued for: the CA signed it, its serial is recorded with this very
// certificate, it is not revoked and the card is active. It checks no
// validity period or chain: the page's CertVerifier does that with the CRL
// before. Errors: NO_CA, NOT_FOUND (not the CA's, unknown), DECLINED
// (revoked, card not active).
func (i *Issuer) CertificateCard(ctx context.Context, cert *x509.Certificate) (string, error) {
	if i.ca == nil {
		return "", newError(CodeNoCA, "the issuer has no cardholder CA")
	}
	if cert == nil || cert.SerialNumber == nil || cert.CheckSignatureFrom(i.ca.cert) != nil {
		return "", newError(CodeNotFound, "not a certificate of the issuer's cardholder CA")
	}
	var cardID, status string
	var fp []byte
	var revoked time.Time
	err := i.db.QueryRowContext(ctx, `SELECT cc.card_id, cc.fingerprint, cc.revoked_at, c.status
		FROM issuer_client_certs cc JOIN issuer_cards c ON c.id = cc.card_id WHERE cc.serial = $1`,
		cert.SerialNumber.Text(16)).Scan(&cardID, &fp, sqlstore.ScanTime(&revoked), &status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", newError(CodeNotFound, "unknown client certificate")
	}
	if err != nil {
		return "", fmt.Errorf("issuer: find client certificate: %w", err)
	}
	if got := sha256.Sum256(cert.Raw); !bytes.Equal(got[:], fp) {
		return "", newError(CodeNotFound, "unknown client certificate")
	}
	if !revoked.IsZero() {
		return "", newError(CodeDeclined, "client certificate revoked")
	}
	if CardStatus(status) != CardActive {
		return "", newError(CodeDeclined, "card "+status)
	}
	return cardID, nil
}

// ClientCertificates lists the serials (hexadecimal) of a card's
// certificates that are not revoked.
func (i *Issuer) ClientCertificates(ctx context.Context, cardID string) ([]string, error) {
	rows, err := i.db.QueryContext(ctx, `SELECT serial FROM issuer_client_certs
		WHERE card_id = $1 AND revoked_at IS NULL ORDER BY issued_at, serial`, cardID)
	if err != nil {
		return nil, fmt.Errorf("issuer: list client certificates: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("issuer: list client certificates: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RevokeCertificate revokes a client certificate by its serial
// (hexadecimal): the next CRL lists it, and CertificateCard refuses it.
// Revoking a revoked certificate changes nothing; NOT_FOUND when the CA
// never issued it.
func (i *Issuer) RevokeCertificate(ctx context.Context, serial string) error {
	if i.ca == nil {
		return newError(CodeNoCA, "the issuer has no cardholder CA")
	}
	n, ok := new(big.Int).SetString(serial, 16)
	if !ok || n.Sign() <= 0 || len(serial) > 40 {
		return invalid("a certificate serial is hexadecimal")
	}
	hexSerial := n.Text(16)
	now := i.authNow()
	var found bool
	err := i.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		found = false
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_client_certs SET revoked_at = $1
			WHERE serial = $2 AND revoked_at IS NULL`, i.t(now), hexSerial); err != nil {
			return fmt.Errorf("issuer: revoke client certificate: %w", err)
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM issuer_client_certs WHERE serial = $1`, hexSerial).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return err
	}
	if !found {
		return newError(CodeNotFound, "no such client certificate")
	}
	i.ca.mu.Lock()
	i.ca.crl = nil
	i.ca.mu.Unlock()
	i.log.InfoContext(ctx, "client certificate revoked", "serial", hexSerial)
	return nil
}

// CRL returns the cardholder CA's current certificate revocation list
// (RFC 5280), signed by the CA: every revoked certificate not yet expired,
// NextUpdate Config.CRLValidity after ThisUpdate. It is signed again when
// half of that has passed or this issuer revoked a certificate; another
// process's revocation shows within half the validity. Raw holds its DER
// (the native API serves it at GET /ca/crl).
func (i *Issuer) CRL(ctx context.Context) (*x509.RevocationList, error) {
	if i.ca == nil {
		return nil, newError(CodeNoCA, "the issuer has no cardholder CA")
	}
	ca := i.ca
	ca.mu.Lock()
	defer ca.mu.Unlock()
	now := i.authNow()
	if ca.crl != nil && now.Before(ca.crl.ThisUpdate.Add(ca.crlValidity/2)) && !now.Before(ca.crl.ThisUpdate) {
		return ca.crl, nil
	}
	rows, err := i.db.QueryContext(ctx, `SELECT serial, revoked_at FROM issuer_client_certs
		WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial`, i.t(now))
	if err != nil {
		return nil, fmt.Errorf("issuer: CRL: %w", err)
	}
	defer rows.Close()
	var entries []x509.RevocationListEntry
	for rows.Next() {
		var s string
		var at time.Time
		if err := rows.Scan(&s, sqlstore.ScanTime(&at)); err != nil {
			return nil, fmt.Errorf("issuer: CRL: %w", err)
		}
		n, _ := new(big.Int).SetString(s, 16)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: at})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer: CRL: %w", err)
	}
	this := now.Truncate(time.Second)
	number := max(this.UnixMilli(), ca.crlNumber+1)
	der, err := x509.CreateRevocationList(i.rand, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                this,
		NextUpdate:                this.Add(ca.crlValidity),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuer: CRL: %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("issuer: CRL: %w", err)
	}
	ca.crl, ca.crlNumber = crl, number
	return crl, nil
}
