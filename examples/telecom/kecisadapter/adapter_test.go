package kecisadapter_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/phone"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/examples/telecom/kecisadapter"
	"github.com/kecis/kecis/internal/testutil"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const (
	hubID            = "https://hub.test/kecis"
	bankID           = "https://bank.test/kecis"
	merchantID       = "https://shop.test/kecis"
	telecomID        = "https://telecom.test/kecis"
	telecomEndpoint  = telecomID + "/soap"
	keysDir          = "../../../saml/testdata/keys"
	payeePhone       = "010-1234-5678"
	payeeName        = "홍길동"
	suspendedPhone   = "010-5555-0002"
	unknownPhone     = "010-9999-0000"
	adapterRefusal   = "holder check refused: the caller is not a bank"
	handlerRefusal   = "caller_denied"
	holderCheckEvent = "telecom: holder check"
)

func loadSigner(t *testing.T, name string) *saml.Signer {
	t.Helper()
	s, err := saml.LoadSigner(filepath.Join(keysDir, name+".key.pem"), filepath.Join(keysDir, name+".cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func participant(id string, role metadata.Role, s *saml.Signer) *metadata.EntityDescriptor {
	return &metadata.EntityDescriptor{EntityID: id, DisplayName: id, Roles: []metadata.Role{role},
		Keys:      []metadata.KeyDescriptor{{Use: metadata.UseSigning, Certificate: s.Cert}, {Use: metadata.UseEncryption, Certificate: s.Cert}},
		Endpoints: []metadata.Endpoint{{Service: metadata.AnyService, Binding: saml.BindingSOAP, Location: id + "/soap"}}}
}

// world is the telecom's Handler around the adapter, in a federation of
// the hub, a bank and a merchant published by a metadata hub; every log
// line goes to logs.
type world struct {
	clock          *testutil.Clock
	h              *connectors.Handler
	dir            *metadata.Client
	bank, merchant *saml.Signer
	logs           *testutil.SyncBuffer
}

// newWorld builds the world; callers are the roles the telecom's metadata
// admits to the holder check (the adapter's Offered when nil).
func newWorld(t *testing.T, callers []metadata.Role) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{clock: testutil.NewClock(testutil.FixedNow), bank: loadSigner(t, "merchant-rsa"),
		merchant: loadSigner(t, "attacker-rsa"), logs: &testutil.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(w.logs, nil))
	tcSigner, hub := loadSigner(t, "issuer-rsa"), loadSigner(t, "merchant-ec")

	tc, err := telecom.Open(ctx, telecom.Config{DSN: sqltest.TestSQLiteDSN(t), Now: w.clock.Now, Logger: log,
		Rand: rand.NewChaCha8([32]byte{3})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	birth := time.Date(1990, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, s := range []telecom.Subscriber{
		{Phone: payeePhone, HolderName: payeeName, BirthDate: birth},
		{Phone: suspendedPhone, HolderName: "이영희", BirthDate: birth, Status: telecom.SubscriberSuspended},
	} {
		if err := tc.AddSubscriber(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	offered := kecisadapter.Offered()
	if callers != nil {
		offered.Callers = callers
	}
	telecomMD := participant(telecomID, metadata.RoleTelecom, tcSigner)
	telecomMD.Services = []metadata.OfferedService{offered}
	mdSigner := loadSigner(t, "issuer-ec")
	md := metadatatest.NewHub(t, mdSigner, w.clock.Now, participant(hubID, metadata.RoleHub, hub),
		participant(bankID, metadata.RoleBank, w.bank), participant(merchantID, metadata.RoleMerchant, w.merchant), telecomMD)
	w.dir = &metadata.Client{HubURL: md.URL, HubCerts: []*x509.Certificate{mdSigner.Cert}, HTTP: md.Client(), Now: w.clock.Now}

	st, err := sqlitestore.Open(ctx, sqltest.TestSQLiteDSN(t), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &kecisadapter.Adapter{Telecom: tc, Participants: w.dir, Log: log}
	w.h, err = connectors.NewHandler(connectors.HandlerConfig{
		EntityID: telecomID, Signer: tcSigner, Endpoints: []string{telecomEndpoint},
		Decryption: []saml.DecryptionKey{{Cert: tcSigner.Cert, Key: tcSigner.Key.(crypto.Decrypter)}},
		Directory:  w.dir, HubEntityID: hubID, Services: a.Services(), Store: st,
		IdemKey: []byte("a provider secret of 32 bytes..."), Now: w.clock.Now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// check sends a holder check from caller (signed by s) through the
// Handler and returns the verified answer and its bytes.
func (w *world) check(t *testing.T, caller string, s *saml.Signer, number, name string) (*saml.ServiceResponse, []byte) {
	t.Helper()
	p, err := phone.RequestPayload(number, name)
	if err != nil {
		t.Fatal(err)
	}
	req, err := (&saml.Builder{Issuer: caller, Now: w.clock.Now}).NewRequest(telecomEndpoint, phone.ServiceHolderCheck)
	if err != nil {
		t.Fatal(err)
	}
	req.Payload = p
	el, err := req.Element()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.SignToBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.h.Handle(context.Background(), msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	pending := saml.NewMemoryPending(w.clock.Now)
	if err := pending.Add(context.Background(), req.ID, telecomID, w.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rc := &saml.Receiver{Keys: w.dir, Replay: saml.NewMemoryReplayCache(w.clock.Now), Pending: pending,
		Decrypter:       &saml.Decryptor{EntityID: caller, Keys: []saml.DecryptionKey{{Cert: s.Cert, Key: s.Key.(crypto.Decrypter)}}},
		ValidatePayload: true, Now: w.clock.Now}
	got, err := rc.ReceiveResponse(context.Background(), out)
	if err != nil {
		t.Fatalf("the answer does not verify: %v", err)
	}
	return got.Response, out
}

func wantStatus(t *testing.T, r *saml.ServiceResponse, code, sub string) {
	t.Helper()
	if r.Status.Code != code || r.Status.SubCode != sub {
		t.Fatalf("status %s / %s (%s), want %s / %s", r.Status.Code, r.Status.SubCode, r.Status.Message, code, sub)
	}
}

// TestBankAdmitted: a bank gets each outcome through the SDK Handler; no
// answer carries the holder's name, and no log line the number in clear.
func TestBankAdmitted(t *testing.T) {
	w := newWorld(t, nil)
	for _, c := range []struct {
		number, name string
		want         phone.Outcome
	}{
		{payeePhone, payeeName, phone.Match},
		{"+82 10 1234 5678", "홍 길동", phone.Match},
		{payeePhone, "홍길둥", phone.CloseMatch},
		{payeePhone, "길동 홍", phone.CloseMatch},
		{payeePhone, "김철수", phone.NoMatch},
		{unknownPhone, payeeName, phone.NotPossible},
		{suspendedPhone, "이영희", phone.NotPossible},
		{"02-123-4567", payeeName, phone.NotPossible}, // no mobile number
	} {
		r, raw := w.check(t, bankID, w.bank, c.number, c.name)
		wantStatus(t, r, saml.StatusSuccess, "")
		got, err := phone.OutcomeFrom(r.Payload)
		if err != nil || got != c.want {
			t.Errorf("%s, %q: %s, %v; want %s", c.number, c.name, got, err, c.want)
		}
		if c.name != payeeName && bytes.Contains(raw, []byte(payeeName)) {
			t.Errorf("%s, %q: the answer carries the holder's name", c.number, c.name)
		}
	}
	noNumberInLogs(t, w.logs.String())
}

// TestMerchantRefused: a merchant is refused by the Handler (the
// metadata admits banks only) before the telecom is asked; and when the
// metadata admits merchants too, by the adapter's own check of the role.
func TestMerchantRefused(t *testing.T) {
	t.Run("by the metadata", func(t *testing.T) {
		w := newWorld(t, nil)
		r, _ := w.check(t, merchantID, w.merchant, payeePhone, payeeName)
		wantStatus(t, r, saml.StatusRequester, saml.StatusRequestDenied)
		logs := w.logs.String()
		if !strings.Contains(logs, handlerRefusal) || strings.Contains(logs, holderCheckEvent) {
			t.Fatalf("the Handler did not refuse before the telecom:\n%s", logs)
		}
	})
	t.Run("by the adapter", func(t *testing.T) {
		w := newWorld(t, []metadata.Role{metadata.RoleBank, metadata.RoleMerchant})
		r, _ := w.check(t, merchantID, w.merchant, payeePhone, payeeName)
		wantStatus(t, r, saml.StatusRequester, saml.StatusRequestDenied)
		logs := w.logs.String()
		if !strings.Contains(logs, adapterRefusal) || strings.Contains(logs, holderCheckEvent) {
			t.Fatalf("the adapter did not refuse before the telecom:\n%s", logs)
		}
		r, _ = w.check(t, bankID, w.bank, payeePhone, payeeName)
		wantStatus(t, r, saml.StatusSuccess, "")
		noNumberInLogs(t, w.logs.String())
	})
}

// TestInvalidPayload: a request without the name or the number is
// Requester / InvalidPayload.
func TestInvalidPayload(t *testing.T) {
	if _, err := phone.RequestPayload(payeePhone, "  "); err == nil {
		t.Fatal("a payload without a name was built")
	}
	req := &connectors.Request{Issuer: bankID, Payload: mustPayload(t, payeePhone, payeeName)}
	req.Payload.Ecom.BillTo.Postal = nil
	noNumber := &connectors.Request{Issuer: bankID, Payload: mustPayload(t, payeePhone, payeeName)}
	noNumber.Payload.Ecom.BillTo.Telecom = nil
	for _, r := range []*connectors.Request{req, noNumber, {Issuer: bankID}} {
		if _, err := phone.RequestFrom(r); err == nil {
			t.Fatal("a request without a name or a number was read")
		} else if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.CodeInvalidPayload {
			t.Fatalf("%v, want InvalidPayload", err)
		}
	}
}

func mustPayload(t *testing.T, number, name string) *ecml.Payload {
	t.Helper()
	p, err := phone.RequestPayload(number, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noNumberInLogs fails when a log line shows a tested number in clear.
func noNumberInLogs(t *testing.T, logs string) {
	t.Helper()
	if !strings.Contains(logs, holderCheckEvent) || !strings.Contains(logs, "010-****-5678") {
		t.Fatalf("the holder checks were not logged (masked):\n%s", logs)
	}
	for _, clear := range []string{"1234-5678", "12345678", "5555-0002", "55550002", "9999-0000", "99990000", "1234567", payeeName} {
		if strings.Contains(logs, clear) {
			t.Errorf("a log line shows %q:\n%s", clear, logs)
		}
	}
}
