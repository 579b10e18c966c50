package kecisadapter_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/bank"
	"github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

const (
	bankID     = "https://bank-b.test/kecis" // the provider, bank code 081
	remitterID = "https://bank-a.test/kecis" // a bank, code 004
	merchantID = "https://shop.test/kecis"   // no bank
	endpoint   = "https://bank-b.test/kecis/soap"
	payeeCode  = "081"
	remitCode  = "004"
)

var ctx = context.Background()

// directory is the federation's metadata in memory.
type directory struct {
	eds map[string]*metadata.EntityDescriptor
}

func (d *directory) Lookup(_ context.Context, id string) (*metadata.EntityDescriptor, error) {
	if ed, ok := d.eds[id]; ok {
		return ed, nil
	}
	return nil, saml.ErrUnknownEntity
}

func (d *directory) SigningCertificates(ctx context.Context, id string) ([]*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ed.SigningCertificates(), nil
}

func (d *directory) EncryptionCertificate(ctx context.Context, id string) (*x509.Certificate, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := ed.EncryptionCertificates(); len(c) > 0 {
		return c[0], nil
	}
	return nil, fmt.Errorf("%s has no encryption key", id)
}

func (d *directory) Endpoint(ctx context.Context, id, service, binding string) (metadata.Endpoint, error) {
	ed, err := d.Lookup(ctx, id)
	if err != nil {
		return metadata.Endpoint{}, err
	}
	e, ok := ed.Endpoint(service, binding)
	if !ok {
		return metadata.Endpoint{}, errors.New("no endpoint")
	}
	return e, nil
}

func signer(t testing.TB, name string) *saml.Signer {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "saml", "testdata", "keys")
	s, err := saml.LoadSigner(filepath.Join(dir, name+".key.pem"), filepath.Join(dir, name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func participant(id string, role metadata.Role, s *saml.Signer) *metadata.EntityDescriptor {
	return &metadata.EntityDescriptor{EntityID: id, DisplayName: id, Roles: []metadata.Role{role},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: s.Cert}, {Use: metadata.UseEncryption, Certificate: s.Cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: "https://" + id[8:] + "/soap"}}}
}

// rig is bank B (code 081) behind the SDK Handler, with bank A (004) and
// a shop in the federation's metadata.
type rig struct {
	bk                       *bank.Bank
	inbox                    *bank.Inbox
	h                        *connectors.Handler
	dir                      *directory
	provider, remitter, shop *saml.Signer
	logs                     *syncBuffer
	now                      time.Time
	account                  *bank.OpenedAccount
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// newRig builds the federation; admit are the roles the provider's
// metadata admits to its services (banks only, unless a test widens it).
func newRig(t *testing.T, admit ...metadata.Role) *rig {
	t.Helper()
	if len(admit) == 0 {
		admit = []metadata.Role{metadata.RoleBank}
	}
	r := &rig{inbox: &bank.Inbox{}, logs: &syncBuffer{}, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		provider: signer(t, "issuer-rsa"), remitter: signer(t, "merchant-rsa"), shop: signer(t, "attacker-rsa")}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bk, err := bank.Open(ctx, bank.Config{BankCode: payeeCode, DSN: sqltest.TestSQLiteDSN(t), DataKey: bytes.Repeat([]byte{0x42}, 32),
		Pepper: bytes.Repeat([]byte{0x17}, 32), MaxCredit: 10_000_000, Notifier: r.inbox, Logger: log,
		Now: func() time.Time { return r.now }, Rand: rand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	r.bk = bk
	c, err := bk.NewCustomer(ctx, bank.NewCustomerRequest{Name: "김영희", Phone: "010-3456-7890", Login: "kim",
		Password: "a-good-password", IdempotencyKey: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.account, err = bk.OpenAccount(ctx, bank.OpenAccountRequest{CustomerID: c.ID, Number: "081-123-456789", IdempotencyKey: "a1"}); err != nil {
		t.Fatal(err)
	}

	prov := participant(bankID, metadata.RoleBank, r.provider)
	for _, s := range []string{banking.ServiceCredit, banking.ServiceInquire, banking.ServiceHolderInquiry} {
		prov.Services = append(prov.Services, metadata.OfferedService{Service: s, Callers: admit, BankCodes: []string{payeeCode}})
	}
	rem := participant(remitterID, metadata.RoleBank, r.remitter)
	rem.Services = []metadata.OfferedService{{Service: banking.ServiceCredit, Callers: []metadata.Role{metadata.RoleBank}, BankCodes: []string{remitCode}}}
	r.dir = &directory{eds: map[string]*metadata.EntityDescriptor{bankID: prov, remitterID: rem,
		merchantID: participant(merchantID, metadata.RoleMerchant, r.shop)}}

	db, err := sqlstore.Open(ctx, sqltest.TestSQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := sqlitestore.New(ctx, db, bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := &kecisadapter.Adapter{Bank: bk}
	r.h, err = connectors.NewHandler(connectors.HandlerConfig{EntityID: bankID, Signer: r.provider,
		Decryption: []saml.DecryptionKey{{Cert: r.provider.Cert, Key: r.provider.Key.(crypto.Decrypter)}},
		Endpoints:  []string{endpoint}, Directory: r.dir, Services: a.Services(r.dir), Store: st,
		IdemKey: bytes.Repeat([]byte{4}, 32), Now: func() time.Time { return r.now }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// call sends a signed request from caller (its sensitive elements
// encrypted for the bank) through Handler.Handle and returns the verified,
// decrypted answer and its bytes.
func (r *rig) call(t *testing.T, caller string, s *saml.Signer, service, key string, p *ecml.Payload) (*saml.ServiceResponse, []byte) {
	t.Helper()
	b := &saml.Builder{Issuer: caller, Now: func() time.Time { return r.now }}
	req, err := b.NewRequest(endpoint, service)
	if err != nil {
		t.Fatal(err)
	}
	req.IdempotencyKey, req.Payload = key, p
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.EncryptDocument(el, &saml.Encryptor{Recipient: bankID, Cert: r.provider.Cert}); err != nil {
		t.Fatal(err)
	}
	msg, err := s.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, []byte("123-456789")) {
		t.Fatal("the request carries the account number in clear")
	}
	out, err := r.h.Handle(ctx, msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	pending := saml.NewMemoryPending(func() time.Time { return r.now })
	if err := pending.Add(ctx, req.ID, bankID, r.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rc := &saml.Receiver{Keys: r.dir, Replay: saml.NewMemoryReplayCache(func() time.Time { return r.now }), Pending: pending,
		Decrypter:       &saml.Decryptor{EntityID: caller, Keys: []saml.DecryptionKey{{Cert: s.Cert, Key: s.Key.(crypto.Decrypter)}}},
		ValidatePayload: true, Now: func() time.Time { return r.now }}
	got, err := rc.ReceiveResponse(ctx, out)
	if err != nil {
		t.Fatalf("the answer does not verify: %v", err)
	}
	return got.Response, out
}

func creditPayload(t *testing.T, ref string, amount int64, payeeBank string, number ecml.Secret) *ecml.Payload {
	t.Helper()
	p, err := banking.CreditRequestPayload(&banking.CreditRequest{Reference: ref, Amount: ecml.Money{Minor: amount, Currency: "KRW"},
		PayeeBank: payeeBank, PayeeAccount: number, RemitterBank: remitCode, RemitterName: "홍길동", RemitterAccount: "004-11-222333"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func status(t *testing.T, resp *saml.ServiceResponse, top, sub, msg string) {
	t.Helper()
	if resp.Status.Code != top || resp.Status.SubCode != sub || (msg != "" && resp.Status.Message != msg) {
		t.Fatalf("status %+v, want %s / %s %q", resp.Status, top, sub, msg)
	}
}

// TestCredit: a bank's credit through the SDK is the bank's CreditIn:
// success answers the credit reference, "credited" and the amount; a
// repeat with the key answers the same; the same reference with another
// key and the same content the existing credit, with other content
// Duplicate; unknown accounts, another bank code and the limit refuse as
// KECIS §15.8 says; inquire finds the caller's transfer only.
func TestCredit(t *testing.T) {
	r := newRig(t)
	resp, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "k1", creditPayload(t, "TR-1", 15_000, payeeCode, r.account.Number))
	status(t, resp, saml.StatusSuccess, "", "")
	c, err := banking.CreditFromPayload(resp.Payload)
	if err != nil || c.Reference != "TR-1" || c.State != banking.StateCredited || !strings.HasPrefix(c.CreditRef, "C") ||
		c.Amount != (ecml.Money{Minor: 15_000, Currency: "KRW"}) {
		t.Fatalf("credit %+v %v", c, err)
	}
	if a, _ := r.bk.Account(ctx, r.account.ID); a.Balance != 15_000 {
		t.Fatalf("balance %d", a.Balance)
	}
	again, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "k1", creditPayload(t, "TR-1", 15_000, payeeCode, r.account.Number))
	if c2, _ := banking.CreditFromPayload(again.Payload); c2 == nil || c2.CreditRef != c.CreditRef {
		t.Fatalf("repeat: %+v", again.Status)
	}
	other, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "k2", creditPayload(t, "TR-1", 15_000, payeeCode, r.account.Number))
	if c3, _ := banking.CreditFromPayload(other.Payload); c3 == nil || c3.CreditRef != c.CreditRef {
		t.Fatalf("same reference, another key: %+v", other.Status)
	}
	dup, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "k3", creditPayload(t, "TR-1", 16_000, payeeCode, r.account.Number))
	status(t, dup, saml.StatusRequester, saml.CodeDuplicate, "")
	if a, _ := r.bk.Account(ctx, r.account.ID); a.Balance != 15_000 {
		t.Fatalf("balance %d after repeats", a.Balance)
	}
	for i, p := range []*ecml.Payload{
		creditPayload(t, "TR-2", 1_000, payeeCode, "081-999-999999"),
		creditPayload(t, "TR-3", 1_000, "088", r.account.Number),
	} {
		resp, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, fmt.Sprintf("n%d", i), p)
		status(t, resp, saml.StatusResponder, saml.CodeDeclined, "no such account")
	}
	over, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "big", creditPayload(t, "TR-4", 10_000_001, payeeCode, r.account.Number))
	status(t, over, saml.StatusResponder, saml.CodeLimitExceeded, "")
	noHolder := creditPayload(t, "TR-5", 1_000, payeeCode, r.account.Number)
	noHolder.BankAccounts[1].Holder = ""
	bad, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "bad", noHolder)
	status(t, bad, saml.StatusRequester, saml.CodeInvalidPayload, "")
	// A remitting bank code the caller does not publish.
	foreign := creditPayload(t, "TR-6", 1_000, payeeCode, r.account.Number)
	foreign.BankAccounts[1].BankCode = "088"
	fr, _ := r.call(t, remitterID, r.remitter, banking.ServiceCredit, "foreign", foreign)
	status(t, fr, saml.StatusRequester, saml.StatusRequestDenied, "")

	inq := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "TR-1"}}
	got, _ := r.call(t, remitterID, r.remitter, banking.ServiceInquire, "", inq)
	if ic, _ := banking.CreditFromPayload(got.Payload); ic == nil || ic.CreditRef != c.CreditRef || ic.State != banking.StateCredited {
		t.Fatalf("inquire: %+v", got.Status)
	}
	none, _ := r.call(t, remitterID, r.remitter, banking.ServiceInquire, "", &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "TR-none"}})
	status(t, none, saml.StatusRequester, saml.CodeDeclined, "no such transfer")
	if rep, err := r.bk.CheckLedger(ctx); err != nil || rep.Clearing[remitCode] != -15_000 {
		t.Fatalf("ledger %+v %v", rep, err)
	}
	noSecrets(t, r)
}

// TestHolderInquiry: a bank gets the holder's name, never the number;
// an unknown or closed account, or another bank code, is no such account.
func TestHolderInquiry(t *testing.T) {
	r := newRig(t)
	resp, raw := r.call(t, remitterID, r.remitter, banking.ServiceHolderInquiry, "", banking.HolderRequestPayload(payeeCode, r.account.Number))
	status(t, resp, saml.StatusSuccess, "", "")
	h, err := banking.HolderFromPayload(resp.Payload)
	if err != nil || h.Name != "김영희" || h.BankCode != payeeCode {
		t.Fatalf("holder %+v %v", h, err)
	}
	if a := resp.Payload.BankAccounts[0]; a.AccountNumber != "" || a.EncryptedAccountNumber != nil || bytes.Contains(raw, []byte("AccountNumber")) {
		t.Fatal("the answer carries an account number")
	}
	for _, p := range []*ecml.Payload{
		banking.HolderRequestPayload(payeeCode, "081-000-000000"),
		banking.HolderRequestPayload("088", r.account.Number),
	} {
		resp, _ := r.call(t, remitterID, r.remitter, banking.ServiceHolderInquiry, "", p)
		status(t, resp, saml.StatusResponder, saml.CodeDeclined, "no such account")
	}
	noSecrets(t, r)
}

// TestOnlyBanks: a shop is refused by the service's metadata callers —
// and, where the provider's metadata wrongly admits it, by the role check
// the provider repeats; the bank is never asked.
func TestOnlyBanks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		admit []metadata.Role
	}{{"metadata", nil}, {"provider re-check", []metadata.Role{metadata.RoleBank, metadata.RoleMerchant}}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.admit...)
			for _, c := range []struct {
				service string
				p       *ecml.Payload
			}{
				{banking.ServiceHolderInquiry, banking.HolderRequestPayload(payeeCode, r.account.Number)},
				{banking.ServiceCredit, creditPayload(t, "TR-1", 1_000, payeeCode, r.account.Number)},
				{banking.ServiceInquire, &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: "TR-1"}}},
			} {
				resp, raw := r.call(t, merchantID, r.shop, c.service, "shop-"+c.service, c.p)
				status(t, resp, saml.StatusRequester, saml.StatusRequestDenied, "")
				if bytes.Contains(raw, []byte("김영희")) {
					t.Fatal("a refusal names the holder")
				}
			}
			if a, _ := r.bk.Account(ctx, r.account.ID); a.Balance != 0 {
				t.Fatal("a shop's credit reached the bank")
			}
		})
	}
}

// noSecrets: the account number appears in no log line and no stored row
// of the bank.
func noSecrets(t *testing.T, r *rig) {
	t.Helper()
	digits, _ := ecml.AccountDigits(r.account.Number.Reveal())
	for _, s := range []string{digits, r.account.Number.Reveal(), "004-11-222333", "00411222333"} {
		if strings.Contains(r.logs.String(), s) {
			t.Fatalf("the logs carry an account number")
		}
	}
	rows, err := r.bk.DB().QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tb := range tables {
		rows, err := r.bk.DB().QueryContext(ctx, `SELECT * FROM `+tb)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for k := range vals {
				ptrs[k] = &vals[k]
			}
			rows.Scan(ptrs...)
			for k, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				if strings.Contains(s, digits) || strings.Contains(s, "00411222333") {
					t.Fatalf("%s.%s holds an account number in clear", tb, cols[k])
				}
			}
		}
		rows.Close()
	}
}
