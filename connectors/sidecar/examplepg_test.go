package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/sqlstore/sqltest"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/pg"
	"github.com/kecis/kecis/saml"
)

// fakeIssuer is the issuer gateway behind the example PG: it approves,
// cancels and refunds whatever it is asked.
type fakeIssuer struct {
	mu   sync.Mutex
	next int
	// lastApprove is the last approval's body.
	lastApprove gatewayBody
}

type gatewayBody struct {
	Fields                map[string]string `json:"fields"`
	AuthenticationResults []string          `json:"authentication_results"`
}

func (f *fakeIssuer) last() gatewayBody {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastApprove
}

func (f *fakeIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req gatewayBody
	_ = json.NewDecoder(r.Body).Decode(&req)
	fields := map[string]string{"Ecom_ConsumerOrderID": req.Fields["Ecom_ConsumerOrderID"], "Ecom_Transaction_Amount": req.Fields["Ecom_Transaction_Amount"]}
	switch r.URL.Path {
	case "/v1/card/approve":
		f.mu.Lock()
		f.next++
		f.lastApprove = req
		fields["Ecom_Transaction_ApprovalCode"] = fmt.Sprintf("A%07d", f.next)
		f.mu.Unlock()
		fields["Ecom_Transaction_ResponseData"] = "approved"
	case "/v1/card/cancel":
		fields["Ecom_Transaction_ResponseData"] = "cancelled"
	case "/v1/card/refund":
	default:
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"outcome": "answered", "status": "Success", "fields": fields})
}

// examplePG is the example PG with two merchant accounts behind the
// sidecar engine of its own mapping file (examples/pg/adapter.yaml), one
// account per federation merchant, as the demo runs it.
type examplePG struct {
	pg    *pg.PG
	mids  map[string]string // entityID → mid
	svc   map[string]connectors.ServiceFunc
	calls atomic.Int64 // native API calls
	iss   *fakeIssuer  // the issuer gateway behind the PG
}

func newExamplePG(t *testing.T) *examplePG {
	t.Helper()
	ctx := context.Background()
	e := &examplePG{mids: map[string]string{}, iss: &fakeIssuer{}}
	iss := httptest.NewServer(e.iss)
	t.Cleanup(iss.Close)
	g, err := pg.Open(ctx, pg.Config{DSN: sqltest.TestSQLiteDSN(t), IssuerGatewayURL: iss.URL, DataKey: make([]byte, 32),
		AdminToken: "admin", GatewayTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	e.pg = g
	native := g.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		native.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	env := map[string]string{"PG_NATIVE_URL": srv.URL, "PG_MERCHANTS_FILE": filepath.Join(dir, "merchants.yaml")}
	table := "merchants:\n"
	for i, id := range []string{shopA, shopB} {
		m, err := g.CreateMerchant(ctx, pg.NewMerchant{Name: id, Contract: pg.Contract{FeeBPS: 250}})
		if err != nil {
			t.Fatal(err)
		}
		e.mids[id] = m.MID
		v := fmt.Sprintf("PG_KEY_%d", i)
		env[v] = m.APIKey
		table += fmt.Sprintf("  %q: {id: %s, headers: {X-PG-Key: \"${%s}\"}}\n", id, m.MID, v)
	}
	if err := os.WriteFile(env["PG_MERCHANTS_FILE"], []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(pg.KECISMapping, "examples/pg/adapter.yaml", dir, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "PG_AMOUNTAUTH" || strings.HasPrefix(k, "PG_AA_") {
			return "" // amount authentication's: the file's defaults
		}
		return "https://x.test/" + k
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = NewEngine(cfg, nil, nil).Services()
	return e
}

// do runs a card service for merchant.
func (e *examplePG) do(t *testing.T, merchant, op, key string, form map[string]string) (*connectors.Response, saml.Status) {
	t.Helper()
	v := map[string][]string{"Ecom_SchemaVersion": {ecml.SchemaVersion}}
	for k, x := range form {
		v[k] = []string{x}
	}
	p, err := ecml.FromForm(v)
	if err != nil {
		t.Fatal(err)
	}
	uri := saml.ServiceURI("card", op)
	resp, err := e.svc[uri](context.Background(), &connectors.Request{Service: uri, Issuer: merchant, IdempotencyKey: key, Payload: p})
	if err != nil {
		st, ok := connectors.AsStatus(err)
		if !ok {
			t.Fatalf("%s %s: %v", merchant, op, err)
		}
		return nil, st
	}
	return resp, saml.Status{Code: saml.StatusSuccess}
}

// TestExamplePGKeepsMerchantsApart is the regression test of issue 12
// finding 2: the example PG's mapping sent every federation merchant
// through one PG account and found an order by its number alone, so a
// second merchant inquired a first merchant's order (amount, approval
// code), cancelled it and refunded it, and got Duplicate for the first's
// order number. Through the sidecar and the real mapping file, merchant B
// now gets for merchant A's order exactly the answer an unknown order
// gets, A's payment is untouched, and B may use the same order number.
func TestExamplePGKeepsMerchantsApart(t *testing.T) {
	e := newExamplePG(t)
	ctx := context.Background()
	card := map[string]string{"Ecom_ConsumerOrderID": "ORD-1", "Ecom_Transaction_Amount": "15000", "Ecom_Transaction_CurrencyCode": "KRW",
		"Ecom_Payment_Card_Number": "9490100895085583", "Ecom_Payment_Card_ExpDate_Month": "11", "Ecom_Payment_Card_ExpDate_Year": "2031"}
	a, st := e.do(t, shopA, "approve", "a-approve", card)
	if !st.OK() || a.Payload.Ecom.Transaction.Code.Approval == "" {
		t.Fatalf("shop A's approval: %+v", st)
	}
	approvalA := a.Payload.Ecom.Transaction.Code.Approval

	// Shop B, by shop A's order number: as if it did not exist.
	for _, c := range []struct {
		op   string
		form map[string]string
	}{
		{"inquire", map[string]string{}},
		{"cancel", map[string]string{}},
		{"refund", map[string]string{"Ecom_Transaction_Amount": "5000", "Ecom_Transaction_CurrencyCode": "KRW"}},
	} {
		form := func(order string) map[string]string {
			f := map[string]string{"Ecom_ConsumerOrderID": order}
			for k, v := range c.form {
				f[k] = v
			}
			return f
		}
		resp, got := e.do(t, shopB, c.op, "b-"+c.op+"-1", form("ORD-1"))
		if got.OK() {
			t.Fatalf("shop B's %s of shop A's order succeeded: %+v", c.op, resp.Payload.Ecom.Transaction)
		}
		_, unknown := e.do(t, shopB, c.op, "b-"+c.op+"-2", form("NO-SUCH-ORDER"))
		if got != unknown {
			t.Errorf("shop B's %s of shop A's order: %+v; of an unknown order: %+v — they must not differ", c.op, got, unknown)
		}
		// …and the same as the SDK's own answer to an unknown object.
		if rule, _ := connectors.ObjectRuleOf(saml.ServiceURI("card", c.op)); got != rule.NotFound {
			t.Errorf("shop B's %s of shop A's order: %+v, want the card service's NotFound %+v", c.op, got, rule.NotFound)
		}
	}
	pay, err := e.pg.Find(ctx, e.mids[shopA], "ORD-1")
	if err != nil || pay.Status != pg.StatusApproved || pay.CancelledAmount != 0 {
		t.Fatalf("shop A's payment after shop B's attempts: %v %+v", err, pay)
	}

	// Shop B's own ORD-1: no Duplicate, its own amount; each sees its own.
	card["Ecom_Transaction_Amount"] = "20000"
	if _, st := e.do(t, shopB, "approve", "b-approve", card); !st.OK() {
		t.Fatalf("shop B's ORD-1: %+v", st)
	}
	for merchant, want := range map[string]string{shopA: "15000", shopB: "20000"} {
		q, st := e.do(t, merchant, "inquire", "", map[string]string{"Ecom_ConsumerOrderID": "ORD-1"})
		if !st.OK() || q.Payload.Ecom.Transaction.Amount != want {
			t.Fatalf("%s inquires ORD-1: %+v %+v, want its own %s", merchant, st, q, want)
		}
		if merchant == shopB && q.Payload.Ecom.Transaction.Code.Approval == approvalA {
			t.Fatal("shop B sees shop A's approval code")
		}
	}
	// Shop B cancels its own; shop A's stays approved.
	if r, st := e.do(t, shopB, "cancel", "b-cancel-own", map[string]string{"Ecom_ConsumerOrderID": "ORD-1"}); !st.OK() ||
		r.Payload.Ecom.Transaction.Data.Response.Value != "cancelled" {
		t.Fatalf("shop B cancels its own ORD-1: %+v", st)
	}
	if pay, err := e.pg.Find(ctx, e.mids[shopA], "ORD-1"); err != nil || pay.Status != pg.StatusApproved {
		t.Fatalf("shop A's payment after shop B cancelled its own: %v %+v", err, pay)
	}

	// A merchant without a PG account reaches nothing.
	n := e.calls.Load()
	if _, st := e.do(t, "https://shop3.test/kecis", "inquire", "", map[string]string{"Ecom_ConsumerOrderID": "ORD-1"}); st.SubCode != saml.StatusRequestDenied {
		t.Fatalf("unmapped merchant: %+v", st)
	}
	if e.calls.Load() != n {
		t.Fatal("the native API was called for an unmapped merchant")
	}
}
