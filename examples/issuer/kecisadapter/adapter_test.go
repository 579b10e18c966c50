package kecisadapter

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/saml"
)

// TestMerchantName: the cardholder's text names the sub-merchant an
// acquirer pays for when it names one, cut to what the issuer keeps;
// otherwise — no name, or one the issuer could not keep (control
// characters, a card number) — the caller's name, or nothing (the issuer
// then shows the caller's entityID).
func TestMerchantName(t *testing.T) {
	a := &Adapter{MerchantNames: map[string]string{"https://pg.example/kecis": "Example PG"}}
	long := strings.Repeat("가", maxMerchantName+10)
	for _, c := range []struct{ caller, sub, want string }{
		{"https://pg.example/kecis", "Demo shop", "Demo shop"},
		{"https://pg.example/kecis", "  Demo shop ", "Demo shop"},
		{"https://pg.example/kecis", "", "Example PG"},
		{"https://pg.example/kecis", "shop\nline", "Example PG"},
		{"https://pg.example/kecis", "shop 4111111111111111", "Example PG"},
		{"https://pg.example/kecis", long, strings.Repeat("가", maxMerchantName)},
		{"https://other.example/kecis", "", ""},
	} {
		if got := a.merchantName(c.caller, c.sub); got != c.want {
			t.Errorf("caller %s, sub-merchant %q: %q, want %q", c.caller, c.sub, got, c.want)
		}
	}
}

const pgID = "https://pg.example/kecis"

// fixture is the adapter over an issuer on a fresh SQLite database, with
// a settable clock, a deterministic random source and an in-memory phone
// network.
type fixture struct {
	a     *Adapter
	iss   *issuer.Issuer
	inbox *issuer.Inbox
	logs  *bytes.Buffer
	now   time.Time
	card  *issuer.IssuedCard
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{inbox: &issuer.Inbox{}, logs: &bytes.Buffer{}, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	iss, err := issuer.Open(context.Background(), issuer.Config{DSN: sqltest.TestSQLiteDSN(t),
		DataKey: bytes.Repeat([]byte{0x42}, 32), Pepper: bytes.Repeat([]byte{0x17}, 32), Notifier: f.inbox,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Now: func() time.Time { return f.now },
		Rand: rand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	f.iss = iss
	f.a = &Adapter{Issuer: iss, MerchantNames: map[string]string{pgID: "Example PG"}}
	f.card, err = iss.IssueCard(context.Background(), issuer.IssueCardRequest{Type: issuer.Credit, HolderName: "홍길동",
		HolderPhone: "010-2345-6789", BirthDate: "870312", Password: "4821", Limit: 100_000, IdempotencyKey: "card-1"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func krw(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }

func (f *fixture) cardOf() card.Card {
	return card.Card{Number: f.card.PAN, ExpMonth: strconv.Itoa(f.card.ExpMonth), ExpYear: strconv.Itoa(f.card.ExpYear)}
}

func (f *fixture) verify(order string, challenge int64, code ecml.Secret) (*card.Approval, error) {
	return f.a.ApproveVerification(context.Background(), &card.VerificationRequest{Merchant: pgID, OrderID: order, SessionID: "S-" + order,
		Challenge: krw(challenge), Ceiling: krw(50_000), Card: f.cardOf(), DescriptorCode: code, SubMerchant: "Demo shop",
		IdempotencyKey: "verify-" + order})
}

// pastCutOff moves the clock past the cut-off of an approval made now.
func (f *fixture) pastCutOff() { f.now = f.iss.CutOffAfter(f.now).Add(time.Minute) }

// hidden checks that a is an answer about a verification approval: its
// number and state, never its amount, nor on the wire (KECIS §15.2).
func hidden(t *testing.T, what string, a *card.Approval, err error, state card.State) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if a.Amount != (ecml.Money{}) || a.Refunded != (ecml.Money{}) || a.State != state || a.ApprovalNumber == "" {
		t.Fatalf("%s: %+v, want %s without an amount", what, a, state)
	}
	if tr := card.ApprovalPayload(a).Ecom.Transaction; tr.Amount != "" || tr.Currency != "" || tr.Data.PrivateUse != nil {
		t.Fatalf("%s: the answer carries %+v", what, tr)
	}
}

func status(t *testing.T, err error, top, sub string) {
	t.Helper()
	var se *connectors.StatusError
	if !errors.As(err, &se) || se.Status.Code != top || se.Status.SubCode != sub {
		t.Fatalf("error %v, want %s / %s", err, top, sub)
	}
}

// TestVerificationApprovalHidesItsAmount: the adapter's verification
// approval is the issuer's (its SMS shows the amount, the shop and the
// code), and every answer about it — approve-verification, inquire,
// cancel, refund — reports it without its amount; a payment's answers keep
// theirs. A refund naming no amount refunds a verification approval whole
// and is InvalidPayload for a payment; the ceiling and the issuer's
// maximum are LimitExceeded.
func TestVerificationApprovalHidesItsAmount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)

	a, err := f.verify("AA-1", 1234, "482193")
	hidden(t, "approve-verification", a, err, card.Approved)
	if m, ok := f.inbox.Last("01023456789"); !ok || !strings.Contains(m.Text, "승인 1,234원 Demo shop 482193 ") {
		t.Fatalf("SMS %q", m.Text)
	}
	q, err := f.a.Inquire(ctx, &card.InquireRequest{Merchant: pgID, OrderID: "AA-1"})
	hidden(t, "inquire", q, err, card.Approved)
	c, err := f.a.Cancel(ctx, &card.CancelRequest{Merchant: pgID, ApprovalNumber: a.ApprovalNumber, IdempotencyKey: "cancel-AA-1"})
	hidden(t, "cancel", c, err, card.Cancelled)

	// Settled before it was voided: refunded whole, by the order.
	b, err := f.verify("AA-2", 2_345, "")
	hidden(t, "approve-verification without a code", b, err, card.Approved)
	f.pastCutOff()
	r, err := f.a.Refund(ctx, &card.RefundRequest{Merchant: pgID, OrderID: "AA-2", IdempotencyKey: "refund-AA-2"})
	hidden(t, "refund", r, err, card.Refunded)
	q, err = f.a.Inquire(ctx, &card.InquireRequest{Merchant: pgID, ApprovalNumber: b.ApprovalNumber})
	hidden(t, "inquire after the refund", q, err, card.Refunded)
	if got, err := f.iss.Card(ctx, f.card.ID); err != nil || got.Available != 100_000 {
		t.Fatalf("available %d, %v: the limit was not restored", got.Available, err)
	}

	// A payment keeps its amount, and a refund of it must name one.
	p, err := f.a.Approve(ctx, &card.ApproveRequest{Merchant: pgID, OrderID: "PAY-1", Amount: krw(15_000), Card: f.cardOf(), IdempotencyKey: "pay-1"})
	if err != nil || p.Amount != krw(15_000) {
		t.Fatalf("%+v, %v", p, err)
	}
	f.pastCutOff()
	_, err = f.a.Refund(ctx, &card.RefundRequest{Merchant: pgID, ApprovalNumber: p.ApprovalNumber, IdempotencyKey: "refund-pay-1"})
	status(t, err, saml.StatusRequester, saml.CodeInvalidPayload)

	// Above the ceiling, above the issuer's maximum.
	_, err = f.a.ApproveVerification(ctx, &card.VerificationRequest{Merchant: pgID, OrderID: "AA-3", Challenge: krw(5_001),
		Ceiling: krw(5_000), Card: f.cardOf(), IdempotencyKey: "verify-AA-3"})
	status(t, err, saml.StatusResponder, saml.CodeLimitExceeded)
	_, err = f.a.ApproveVerification(ctx, &card.VerificationRequest{Merchant: pgID, OrderID: "AA-4", Challenge: krw(50_001),
		Ceiling: krw(60_000), Card: f.cardOf(), IdempotencyKey: "verify-AA-4"})
	status(t, err, saml.StatusResponder, saml.CodeLimitExceeded)

	logs := f.logs.String()
	if !strings.Contains(logs, "amount=15000") || !strings.Contains(logs, "verification=true") {
		t.Fatalf("the logs:\n%s", logs)
	}
	for _, secret := range []string{"amount=1234", "amount=2345", "amount=5001", "amount=50001", "482193"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a log line shows %s:\n%s", secret, logs)
		}
	}
}
