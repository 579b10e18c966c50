package sidecar

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/connectors/store/storesql"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
	"github.com/kecis/kecis/saml/metadata/metadatatest"
)

const (
	aaPG     = "https://pg.test/kecis"
	aaIssuer = "https://issuer.test/kecis"
	aaPAN    = "4111111111111111"
)

// aaCardIssuer is the card's issuer as the engine sees it through the
// hub: it approves every verification approval, keeps its challenge for
// the test to "read the text", and voids, refunds and inquires them.
type aaCardIssuer struct {
	mu         sync.Mutex
	challenges map[string]ecml.Money // by order
	names      map[string]string     // the shop the text names, by order
	states     map[string]card.State // by order
	calls      int
}

func newAACardIssuer() *aaCardIssuer {
	return &aaCardIssuer{challenges: map[string]ecml.Money{}, names: map[string]string{}, states: map[string]card.State{}}
}

func aaOK(order string, st card.State) *card.Outcome {
	return &card.Outcome{Approval: &card.Approval{ApprovalNumber: "V-" + order, OrderID: order, State: st},
		Result: &connectors.Result{Status: saml.Status{Code: saml.StatusSuccess}, From: aaIssuer}}
}

func (f *aaCardIssuer) ApproveVerification(_ context.Context, recipient string, r *card.VerificationRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if recipient != aaIssuer || r.Merchant != aaPG || r.Challenge.Minor <= 0 || r.Challenge.Minor >= r.Ceiling.Minor {
		return nil, fmt.Errorf("unexpected verification request to %s: %v", recipient, r)
	}
	if _, dup := f.states[r.OrderID]; !dup {
		f.challenges[r.OrderID], f.names[r.OrderID], f.states[r.OrderID] = r.Challenge, r.SubMerchant, card.Approved
	}
	return aaOK(r.OrderID, f.states[r.OrderID]), nil
}

func (f *aaCardIssuer) Cancel(_ context.Context, _ string, r *card.CancelRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := f.states[r.OrderID]; !ok {
		return &card.Outcome{Result: &connectors.Result{Status: card.NoSuchApproval}}, nil
	}
	f.states[r.OrderID] = card.Cancelled
	return aaOK(r.OrderID, card.Cancelled), nil
}

func (f *aaCardIssuer) Refund(_ context.Context, _ string, r *card.RefundRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.states[r.OrderID] = card.Refunded
	return aaOK(r.OrderID, card.Refunded), nil
}

func (f *aaCardIssuer) Inquire(_ context.Context, _ string, r *card.InquireRequest) (*card.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	st, ok := f.states[r.OrderID]
	if !ok {
		return &card.Outcome{Result: &connectors.Result{Status: card.NoSuchApproval}}, nil
	}
	return aaOK(r.OrderID, st), nil
}

// the only verification approval: its order, challenge and state.
func (f *aaCardIssuer) only(t *testing.T) (string, ecml.Money, card.State) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.challenges) != 1 {
		t.Fatalf("%d verification approvals at the issuer, want 1", len(f.challenges))
	}
	for o, c := range f.challenges {
		return o, c, f.states[o]
	}
	return "", ecml.Money{}, ""
}

// aaHub is the hub behind the sidecar's calling endpoint, as the native
// PG's issuer gateway reaches it: it records each call and approves,
// cancels and inquires as the card's issuer.
type aaHub struct {
	mu    sync.Mutex
	calls []connectors.Call
}

func (h *aaHub) Do(_ context.Context, call connectors.Call) (*connectors.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
	e := call.Payload.Ecom
	t := &ecml.Transaction{Type: "credit", Code: &ecml.Code{Approval: fmt.Sprintf("P%07d", len(h.calls))},
		Data: &ecml.Data{Response: &ecml.Text{Value: "approved"}}}
	if e.Transaction != nil {
		t.Amount, t.Currency = e.Transaction.Amount, e.Transaction.Currency
	}
	if call.Service == card.ServiceCancel {
		t.Data.Response.Value = "cancelled"
	}
	return &connectors.Result{Status: saml.Status{Code: saml.StatusSuccess}, From: call.Recipient,
		Response: &saml.ServiceResponse{ID: "_resp", InResponseTo: "_req"},
		Payload:  &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: e.ConsumerOrderID, Transaction: t}}}, nil
}

func (h *aaHub) approvals() []connectors.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []connectors.Call
	for _, c := range h.calls {
		if c.Service == card.ServiceApprove {
			out = append(out, c)
		}
	}
	return out
}

// pgKeys is the PG's signing certificate, as the federation metadata
// gives it to whoever verifies its authentication results.
type pgKeys struct{ cert *x509.Certificate }

func (k pgKeys) SigningCertificates(_ context.Context, id string) ([]*x509.Certificate, error) {
	if id != aaPG {
		return nil, fmt.Errorf("unknown %s", id)
	}
	return []*x509.Certificate{k.cert}, nil
}

// aaRig is the example PG (examples/pg) behind the sidecar with amount
// authentication enabled by its own adapter.yaml: the engine the sidecar
// builds (newAmountAuth) on the adapter store, the native approve through
// the card:approve mapping, the PG's issuer gateway being the sidecar's
// calling endpoint in front of a recording hub, the card's issuer a fake
// that shows the test the challenge.
type aaRig struct {
	aa      *amountAuth
	svc     map[string]connectors.ServiceFunc
	pg      *pg.PG
	mids    map[string]string
	issuer  *aaCardIssuer
	hub     *aaHub
	store   *storesql.Store
	signer  *saml.Signer
	page    *httptest.Server
	natives func() int
}

func newAARig(t *testing.T) *aaRig {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	keyPEM, certPEM, err := devpki.Generate(devpki.Signing, "pg signing", nil, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := saml.ParseKeyPEM(keyPEM)
	certs, _ := saml.ParseCertificatesPEM(certPEM)
	signer, err := saml.NewSigner(key, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The federation metadata: the card's issuer offers card:approve and
	// approve-verification to PGs for its BINs.
	iss := metadatatest.Simple(aaIssuer, metadatatest.Pool()[2])
	iss.Roles = []metadata.Role{metadata.RoleIssuer}
	iss.Services = append(iss.Services, metadata.OfferedService{Service: card.ServiceApproveVerification, BINs: iss.Services[0].BINs,
		Callers: []metadata.Role{metadata.RolePG}})
	md := metadatatest.NewHub(t, signer, nil, iss, metadatatest.Simple(aaPG, signer.Cert))
	resolver := &connectors.Resolver{HubURL: md.URL, HubCerts: []*x509.Certificate{signer.Cert}, HTTP: md.Client(), Self: aaPG}

	hub := &aaHub{}
	gateway := httptest.NewServer(&Caller{Client: hub, Resolver: resolver})
	t.Cleanup(gateway.Close)
	g, err := pg.Open(ctx, pg.Config{DSN: sqltest.TestSQLiteDSN(t), IssuerGatewayURL: gateway.URL, DataKey: make([]byte, 32),
		AdminToken: "admin", GatewayTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var natives sync.Map
	native := g.Handler()
	nsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := natives.LoadOrStore("n", new(int))
		*n.(*int)++
		native.ServeHTTP(w, r)
	}))
	t.Cleanup(nsrv.Close)

	dir := t.TempDir()
	env := map[string]string{"PG_NATIVE_URL": nsrv.URL, "PG_MERCHANTS_FILE": filepath.Join(dir, "merchants.yaml"), "STATE": dir,
		"PG_AMOUNTAUTH": "true", "PG_AA_PAGE_URL": "http://127.0.0.1:1/amountauth"}
	rig := &aaRig{pg: g, mids: map[string]string{}, issuer: newAACardIssuer(), hub: hub, signer: signer}
	table := "merchants:\n"
	for i, id := range []string{shopA, shopB} {
		m, err := g.CreateMerchant(ctx, pg.NewMerchant{Name: fmt.Sprintf("Shop %d", i), Contract: pg.Contract{FeeBPS: 250}})
		if err != nil {
			t.Fatal(err)
		}
		rig.mids[id] = m.MID
		v := fmt.Sprintf("PG_KEY_%d", i)
		env[v] = m.APIKey
		table += fmt.Sprintf("  %q: {id: %s, headers: {X-PG-Key: \"${%s}\"}", id, m.MID, v)
		if id == shopA {
			table += `, amountauth: {name: "KECIS 상점", attempts: 2, return_url: "https://shop.test/aa-done"}`
		}
		table += "}\n"
	}
	if err := os.WriteFile(env["PG_MERCHANTS_FILE"], []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(pg.KECISMapping, "examples/pg/adapter.yaml", dir, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "PG_AA_") {
			return ""
		}
		return "https://x.test/" + k
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.EntityID = aaPG
	atRest := make([]byte, 32)
	db, st, err := openStore(ctx, sqltest.TestSQLiteDSN(t), atRest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := NewEngine(cfg, nil, nil)
	rig.aa, err = newAmountAuth(ctx, cfg, aaDeps{signer: signer, db: db, atRest: atRest, issuer: rig.issuer, route: issuerRoute(resolver),
		acquirer: &nativeApprove{engine: eng, service: cfg.Services[card.ServiceApprove], objects: st, now: time.Now}})
	if err != nil {
		t.Fatal(err)
	}
	rig.svc, rig.store = rig.aa.services(eng), st
	rig.page = httptest.NewServer(rig.aa.page)
	t.Cleanup(rig.page.Close)
	rig.natives = func() int {
		n, ok := natives.Load("n")
		if !ok {
			return 0
		}
		return *n.(*int)
	}
	return rig
}

// call runs an amountauth service for merchant.
func (r *aaRig) call(t *testing.T, merchant, service, key string, p *ecml.Payload) (*connectors.Response, error) {
	t.Helper()
	return r.svc[service](context.Background(), &connectors.Request{Service: service, Issuer: merchant, IdempotencyKey: key, Payload: p})
}

func aaStartPayload(t *testing.T, order string, amount int64) *ecml.Payload {
	t.Helper()
	tr := &ecml.Transaction{Type: "credit"}
	if err := tr.SetMoney(ecml.Money{Minor: amount, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	return &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Transaction: tr,
		Payment: &ecml.Payment{Card: &ecml.Card{Number: aaPAN, ExpDate: &ecml.Date{Month: "12", Year: "2030"}}}}}
}

func aaConfirmPayload(t *testing.T, id string, ceiling int64, typed int64) *ecml.Payload {
	t.Helper()
	a := &ecml.AmountAuth{SessionID: id}
	if err := a.SetCeiling(ecml.Money{Minor: ceiling, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetChallenge(ecml.Money{Minor: typed, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	return &ecml.Payload{AmountAuth: a}
}

func aaState(resp *connectors.Response) string {
	if resp == nil || resp.Payload == nil || resp.Payload.Ecom == nil || resp.Payload.Ecom.Transaction == nil ||
		resp.Payload.Ecom.Transaction.Data == nil || resp.Payload.Ecom.Transaction.Data.Response == nil {
		return ""
	}
	return resp.Payload.Ecom.Transaction.Data.Response.Value
}

// TestAmountAuthThroughTheSidecar is an amount-authenticated purchase at
// the example PG, which has no KECIS code, through the sidecar's engine
// as its adapter.yaml enables it: start draws the challenge and asks the
// card's issuer for the verification approval (the test reads the
// challenge there, as the cardholder reads the text); the page shows the
// session; a wrong amount is counted and reaches no native API; the right
// one voids the verification approval and approves the purchase at the
// native PG through the card:approve mapping, whose issuer-gateway call
// through the sidecar's calling endpoint carries the PG's signed
// kecis:AuthenticationResult, embedded unchanged, which verifies and is
// bound to the purchase. The purchase is then the merchant's to inquire
// through the hub (its order and approval recorded as the merchant's).
func TestAmountAuthThroughTheSidecar(t *testing.T) {
	r := newAARig(t)
	ctx := context.Background()
	resp, err := r.call(t, shopA, amountauth.ServiceStart, "aa-start-1", aaStartPayload(t, "ORD-AA-1", 150000))
	if err != nil || !resp.Status.OK() || aaState(resp) != string(amountauth.AwaitingAmount) {
		t.Fatalf("start: %v %+v %q", err, resp, aaState(resp))
	}
	id := resp.Payload.AmountAuth.SessionID
	ceiling, _ := resp.Payload.AmountAuth.CeilingMoney()
	order, challenge, state := r.issuer.only(t)
	if state != card.Approved || r.issuer.names[order] != "KECIS 상점" {
		t.Fatalf("verification approval %s %s for %q", order, state, r.issuer.names[order])
	}
	if n := r.natives(); n != 0 {
		t.Fatalf("%d native calls before the cardholder matched", n)
	}

	// The page (served under page_url's path) shows the session's form.
	pr, err := http.PostForm(r.page.URL+"/amountauth", url.Values{"SessionID": {id}})
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK {
		t.Fatalf("the page answered %s for an awaiting session", pr.Status)
	}

	// A wrong amount: counted (shop A allows 2 attempts), nothing approved.
	resp, err = r.call(t, shopA, amountauth.ServiceConfirm, "aa-confirm-1", aaConfirmPayload(t, id, ceiling.Minor, challenge.Minor+1))
	if err != nil || resp.Status.SubCode != saml.CodeDeclined || !strings.Contains(resp.Status.Message, "1 of 2") {
		t.Fatalf("wrong amount: %v %+v", err, resp.Status)
	}
	// Another merchant's confirm finds no session.
	if _, err := r.call(t, shopB, amountauth.ServiceConfirm, "b-confirm", aaConfirmPayload(t, id, ceiling.Minor, challenge.Minor)); err == nil {
		t.Fatal("shop B confirmed shop A's session")
	} else if st, _ := connectors.AsStatus(err); st != amountauth.NoSuchSession {
		t.Fatalf("shop B: %v", err)
	}

	resp, err = r.call(t, shopA, amountauth.ServiceConfirm, "aa-confirm-2", aaConfirmPayload(t, id, ceiling.Minor, challenge.Minor))
	if err != nil || !resp.Status.OK() || aaState(resp) != string(amountauth.Approved) || len(resp.AuthResults) != 1 {
		t.Fatalf("right amount: %v %+v %q", err, resp, aaState(resp))
	}
	if _, _, st := r.issuer.only(t); st != card.Cancelled {
		t.Fatalf("the verification approval is %s, want cancelled", st)
	}
	approval := resp.Payload.Ecom.Transaction.Code.Approval

	// The native PG approved the purchase for shop A's account.
	pay, err := r.pg.Find(ctx, r.mids[shopA], "ORD-AA-1")
	if err != nil || pay.Status != pg.StatusApproved || pay.Amount != 150000 || pay.ApprovalNo != approval {
		t.Fatalf("the native payment: %v %+v (the session's approval %s)", err, pay, approval)
	}
	// …and its issuer-gateway call carried the signed result, unchanged.
	calls := r.hub.approvals()
	if len(calls) != 1 || len(calls[0].AuthResults) != 1 {
		t.Fatalf("%d approvals at the hub, %v", len(calls), calls)
	}
	res, _, err := saml.VerifyAuthenticationResult(ctx, calls[0].AuthResults[0], pgKeys{r.signer.Cert}, time.Now(), time.Minute)
	if err != nil {
		t.Fatalf("the forwarded result does not verify: %v", err)
	}
	if res.Method != amountauth.MethodURI || res.Amount != "150000" || res.Currency != "KRW" || res.Merchant != shopA ||
		res.OrderID != "ORD-AA-1" || res.CardRef != "411111******1111" {
		t.Fatalf("forwarded result %+v", res)
	}
	if calls[0].Payload.Ecom.Transaction.Amount != "150000" || calls[0].Recipient != aaIssuer {
		t.Fatalf("the purchase at the hub: %s to %s", calls[0].Payload.Ecom.Transaction.Amount, calls[0].Recipient)
	}

	// The order and the approval are shop A's: an inquire through the hub
	// passes the object check; shop B's reads as unknown.
	now := time.Now()
	for _, ref := range []connectors.ObjectRef{{Kind: card.ObjectOrder, ID: "ORD-AA-1", PerOwner: true}, {Kind: card.ObjectApproval, ID: approval}} {
		if err := r.store.Objects(ctx, store.Objects{Owner: shopA, Check: []connectors.ObjectRef{ref}}, now); err != nil {
			t.Errorf("shop A's %s: %v", ref.Kind, err)
		}
		if err := r.store.Objects(ctx, store.Objects{Owner: shopB, Check: []connectors.ObjectRef{ref}}, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("shop B's %s: %v", ref.Kind, err)
		}
	}

	// A repeated confirm answers the same, and approves nothing again.
	again, err := r.call(t, shopA, amountauth.ServiceConfirm, "aa-confirm-3", aaConfirmPayload(t, id, ceiling.Minor, challenge.Minor))
	if err != nil || !again.Status.OK() || again.Payload.Ecom.Transaction.Code.Approval != approval || len(r.hub.approvals()) != 1 {
		t.Fatalf("repeat: %v %+v, %d approvals", err, again, len(r.hub.approvals()))
	}
}

// TestAmountAuthRefusesMerchantsWithoutAccount: a caller without a native
// account is refused as the mapped services refuse it, before any
// verification approval (its purchase could never be approved).
func TestAmountAuthRefusesMerchantsWithoutAccount(t *testing.T) {
	r := newAARig(t)
	_, err := r.call(t, "https://shop3.test/kecis", amountauth.ServiceStart, "k", aaStartPayload(t, "ORD-X", 150000))
	if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.StatusRequestDenied {
		t.Fatalf("start by a merchant without an account: %v", err)
	}
	if r.issuer.calls != 0 || r.natives() != 0 {
		t.Fatalf("%d issuer calls, %d native calls", r.issuer.calls, r.natives())
	}
}

// TestNativeApproveUnknownOutcome: while the native PG cannot be reached,
// the purchase's outcome is unknown — ProviderUnavailable, which the
// engine asks again with the same idempotency key — never a refusal.
func TestNativeApproveUnknownOutcome(t *testing.T) {
	dir := t.TempDir()
	mf := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(mf, []byte("merchants:\n  \""+shopA+"\": {id: M0001, headers: {X-PG-Key: k}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(pg.KECISMapping, "examples/pg/adapter.yaml", dir, func(k string) string {
		switch {
		case k == "PG_NATIVE_URL":
			return "http://127.0.0.1:1"
		case k == "PG_MERCHANTS_FILE":
			return mf
		case strings.HasPrefix(k, "PG_AA_"), k == "PG_AMOUNTAUTH":
			return ""
		}
		return "https://x.test/" + k
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &nativeApprove{engine: NewEngine(cfg, nil, nil), service: cfg.Services[card.ServiceApprove], objects: noObjects{}, now: time.Now}
	p := &amountauth.Purchase{ApproveRequest: card.ApproveRequest{Merchant: shopA, OrderID: "ORD-1", Amount: ecml.Money{Minor: 15000, Currency: "KRW"},
		Card: card.Card{Number: aaPAN, ExpMonth: "12", ExpYear: "2030"}, IdempotencyKey: "aa-x-purchase"}}
	_, err = a.ApprovePurchase(context.Background(), p)
	if st, ok := connectors.AsStatus(err); !ok || st.SubCode != saml.CodeProviderUnavailable {
		t.Fatalf("unreachable native API: %v", err)
	}
}

type noObjects struct{}

func (noObjects) Objects(context.Context, store.Objects, time.Time) error { return nil }

// TestPurchasePayload: the synthesized card:approve carries the order, the
// amount, the card and the sub-merchant the engine gave, and reads back
// as the flat fields the mapping sends.
func TestPurchasePayload(t *testing.T) {
	p, err := purchasePayload(&amountauth.Purchase{ApproveRequest: card.ApproveRequest{OrderID: "ORD-1", Amount: ecml.Money{Minor: 15000, Currency: "KRW"},
		Card: card.Card{Number: aaPAN, ExpMonth: "12", ExpYear: "2030"}, SubMerchant: "상점", SubMerchantID: "M0001"}})
	if err != nil {
		t.Fatal(err)
	}
	f := p.Form()
	for k, want := range map[string]string{"Ecom_ConsumerOrderID": "ORD-1", "Ecom_Transaction_Amount": "15000", "Ecom_Transaction_CurrencyCode": "KRW",
		"Ecom_Payment_Card_Number": aaPAN, "Ecom_Payment_Card_ExpDate_Month": "12", "Ecom_Payment_Card_ExpDate_Year": "2030", "Ecom_Merchant": "상점",
		"Ecom_Transaction_Type": "credit"} {
		if got := f.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, err := purchasePayload(&amountauth.Purchase{ApproveRequest: card.ApproveRequest{Amount: ecml.Money{Minor: 1, Currency: "XX"}}}); err == nil {
		t.Error("an amount in no currency was accepted")
	}
}

// TestSidecarServesAmountAuth: New with amountauth enabled builds the
// engine (its key made on first run), Serve serves the cardholder's page
// under page_url's path on its own listener and runs the recovery, and
// /readyz names the amountauth store's check — failing once the store is
// closed.
func TestSidecarServesAmountAuth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := goodSidecar(t, ctx, "amountauth:\n  enabled: true\n  key_file: aa.key\n  page_listen: 127.0.0.1:0\n"+
		"  page_url: http://127.0.0.1:1/amountauth\n  recover_every: 1s\n")
	if s.aa == nil {
		t.Fatal("amountauth not built")
	}
	b, err := os.ReadFile(s.Config.Path("aa.key"))
	if err != nil || len(strings.TrimSpace(string(b))) != 64 {
		t.Fatalf("the key file: %v %q", err, b)
	}
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	s.OpsListener, s.PageListener = listen(), listen()
	kl := listen()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, kl, nil) }()
	page, ops := "http://"+s.PageListener.Addr().String(), "http://"+s.OpsListener.Addr().String()

	resp, err := http.PostForm(page+"/amountauth", url.Values{"SessionID": {"AAAAAAAAAAAAAAAAAAAAAA"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("an unknown session on the page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(ops + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\namountauth: ok\n") {
		t.Fatalf("/readyz:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.aa.ready(context.Background()); err == nil {
		t.Fatal("the amountauth check passes on a closed store")
	}
}
