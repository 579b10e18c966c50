package kecisadapter

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
)

// TestCardholders: the adapter is the issuer's side of its
// authentication page (cardauth.Cardholders, KECIS §15.7).
func TestCardholders(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	caCert, caKey, err := issuer.GenerateCA("Test Cardholder CA", now, 24*time.Hour, cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	iss, err := issuer.Open(ctx, issuer.Config{DSN: sqltest.TestSQLiteDSN(t),
		DataKey: bytes.Repeat([]byte{0x42}, 32), Pepper: bytes.Repeat([]byte{0x17}, 32), Notifier: &issuer.Inbox{},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return now },
		Rand: rand.NewChaCha8([32]byte{2}), PasswordHashing: issuer.Argon2Params{MemoryKiB: 1024, Threads: 1},
		CACert: caCert, CAKey: caKey, MaxAuthFailures: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	a := &Adapter{Issuer: iss, CardType: "BC", Acquirers: map[string]bool{pgID: true}}
	issue := func(key string, pw ecml.Secret) *issuer.IssuedCard {
		c, err := iss.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동",
			HolderPhone: "010-2345-6789", BirthDate: "870312", Password: "4821", Limit: 100_000,
			AuthPassword: pw, EnrolTOTP: pw != "", IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := issue("card-auth", "Ansim-7Q2x")
	plain := issue("card-plain", "")

	got, err := a.FindCard(ctx, c.PAN)
	if err != nil || got.Ref != c.ID || got.Type != "BC" || got.Masked != c.PAN.Masked() || !got.TOTP ||
		got.ExpMonth != c.ExpMonth || got.ExpYear != c.ExpYear {
		t.Fatalf("FindCard = %+v, %v", got, err)
	}
	for _, pan := range []ecml.PAN{plain.PAN, "9490100000000000"} {
		if _, err := a.FindCard(ctx, pan); !errors.Is(err, cardauth.ErrUnknownCard) {
			t.Fatalf("FindCard(%s) = %v, want ErrUnknownCard", pan, err)
		}
	}
	if pan, err := a.CardNumber(ctx, c.ID); err != nil || pan != c.PAN {
		t.Fatalf("CardNumber = %s, %v", pan, err)
	}

	if err := a.CheckPassword(ctx, c.ID, "Ansim-7Q2x"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	var fe *cardauth.FactorError
	if err := a.CheckTOTP(ctx, c.ID, "12345"); !errors.As(err, &fe) || fe.Left != 3 {
		t.Fatalf("malformed code: %v (not counted: 3 left)", err)
	}
	for left := 2; left >= 0; left-- {
		if err := a.CheckPassword(ctx, c.ID, "wrong-password"); !errors.As(err, &fe) || fe.Left != left {
			t.Fatalf("wrong password: %v, want %d left", err, left)
		}
	}
	if err := a.CheckPassword(ctx, c.ID, "Ansim-7Q2x"); !errors.Is(err, cardauth.ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	if err := a.CheckTOTP(ctx, c.ID, "123456"); !errors.Is(err, cardauth.ErrLocked) {
		t.Fatalf("locked TOTP: %v", err)
	}
	if err := a.CheckPassword(ctx, plain.ID, "whatever-pw"); !errors.Is(err, cardauth.ErrUnknownCard) {
		t.Fatalf("no password: %v", err)
	}

	cc, err := iss.IssueClientCertificate(ctx, c.ID, "Hong Gildong")
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := a.CertificateCard(ctx, cc.Certificate); err != nil || ref != c.ID {
		t.Fatalf("CertificateCard = %q, %v", ref, err)
	}
	if err := iss.RevokeCertificate(ctx, cc.Serial); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CertificateCard(ctx, cc.Certificate); !errors.Is(err, cardauth.ErrUnknownCard) {
		t.Fatalf("revoked: %v", err)
	}

	v, err := a.IssueVirtual(ctx, c.ID, cardauth.VirtualControls{SingleUse: true, Merchant: "https://shop.example",
		NotOnOrAfter: now.Add(10 * time.Minute)})
	if err != nil || v.Number.BIN() != "404143" || v.Type != ecml.VirtualCardCredit || v.Controls.Merchant != "https://shop.example" {
		t.Fatalf("IssueVirtual = %+v, %v", v, err)
	}
	if _, err := a.IssueVirtual(ctx, "card_none", cardauth.VirtualControls{}); !errors.Is(err, cardauth.ErrUnknownCard) {
		t.Fatalf("IssueVirtual of no card: %v", err)
	}
	if ecml.ContainsPAN(logs.String()) {
		t.Fatal("a log line holds a card number")
	}

	// The merchant of the AAV and of a virtual number's lock.
	if got := a.authMerchant(pgID, "https://shop.example"); got != "https://shop.example" {
		t.Fatalf("acquirer's sub-merchant: %q", got)
	}
	if got := a.authMerchant("https://shop.example", "https://other.example"); got != "https://shop.example" {
		t.Fatalf("a merchant naming a sub-merchant: %q", got)
	}
}

// TestAuthenticationFailedStatus: the issuer's AAV decline is
// Responder/AuthenticationRequired with its message.
func TestAuthenticationFailedStatus(t *testing.T) {
	err := mapError(&issuer.Error{Code: issuer.CodeAuthenticationFailed, Message: "the authentication value was already used"})
	var se *connectors.StatusError
	if !errors.As(err, &se) || se.Status.Code != saml.StatusResponder || se.Status.SubCode != saml.CodeAuthenticationRequired ||
		se.Status.Message != "the authentication value was already used" {
		t.Fatalf("mapError = %#v", err)
	}
}

// TestApproveWithAuthValue: an approval through the adapter carries the
// AAV cardauth minted and the shop the acquirer names; the issuer accepts
// it once, then answers Responder/AuthenticationRequired.
func TestApproveWithAuthValue(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	aav := &cardauth.AAV{Keys: [][]byte{bytes.Repeat([]byte{7}, 32)}, Now: func() time.Time { return now }}
	iss, err := issuer.Open(ctx, issuer.Config{DSN: sqltest.TestSQLiteDSN(t),
		DataKey: bytes.Repeat([]byte{0x42}, 32), Pepper: bytes.Repeat([]byte{0x17}, 32), Notifier: &issuer.Inbox{},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
		Rand: rand.NewChaCha8([32]byte{3}), AuthValues: aav})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	c, err := iss.IssueCard(ctx, issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동",
		HolderPhone: "010-2345-6789", BirthDate: "870312", Password: "4821", Limit: 500_000, IdempotencyKey: "card"})
	if err != nil {
		t.Fatal(err)
	}
	const shop = "https://shop.example/kecis"
	value, err := aav.Mint(c.PAN, 150_000, "KRW", shop, "ORD-1", cardauth.MethodClientCert, now.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	a := &Adapter{Issuer: iss, Acquirers: map[string]bool{pgID: true}}
	req := &card.ApproveRequest{Merchant: pgID, OrderID: "ORD-1", Amount: krw(150_000),
		Card:        card.Card{Number: c.PAN, ExpMonth: strconv.Itoa(c.ExpMonth), ExpYear: strconv.Itoa(c.ExpYear)},
		SubMerchant: "Shop", SubMerchantID: shop, AuthValue: value, IdempotencyKey: "k1"}
	if _, err := a.Approve(ctx, req); err != nil {
		t.Fatalf("approve with the AAV: %v", err)
	}
	for k, mod := range []func(r *card.ApproveRequest){
		func(r *card.ApproveRequest) { r.Merchant = "https://pg2.example/kecis"; a.Acquirers[r.Merchant] = true },
		func(r *card.ApproveRequest) { r.OrderID = "ORD-3"; r.Amount = krw(150_001) },
		func(r *card.ApproveRequest) { r.OrderID = "ORD-4"; r.SubMerchantID = "https://other.example" },
	} {
		r := *req
		r.IdempotencyKey = "k" + strconv.Itoa(k+2)
		mod(&r)
		if r.OrderID != req.OrderID {
			// A fresh value for this order, for the original amount and shop.
			if r.AuthValue, err = aav.Mint(c.PAN, 150_000, "KRW", shop, r.OrderID, cardauth.MethodPassword, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := a.Approve(ctx, &r)
		var se *connectors.StatusError
		if !errors.As(err, &se) || se.Status.SubCode != saml.CodeAuthenticationRequired {
			t.Fatalf("case %d: %v", k, err)
		}
	}
}
